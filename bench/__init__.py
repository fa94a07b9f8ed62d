"""Side-by-side speed and memory benchmarks: ours against ltx-core 1.0.0 on identical weights and inputs.

``python -m bench NAME [--quick]`` runs ``bench/NAME.py``; see ``bench/runner.py`` for the protocol.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The repository root must not shadow the reference's top-level ltx_core with ours (the pack is imported as
# ltx_av); the test helpers shared with the benchmarks (reference import, tiny models) live in tests/.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _ROOT]
sys.path.insert(0, os.path.join(_ROOT, "tests"))
