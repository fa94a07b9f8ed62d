"""LTX-AV: ComfyUI nodes for Lightricks LTX-2 / LTX-2.3 audio-video generation.

ComfyUI imports this folder under whatever name it was cloned as; pip installs it as ``ltx_av``. Only relative
imports are used inside, so both work. If a Python dependency is missing we log one line naming what to install
and register no nodes, rather than breaking ComfyUI's start-up.
"""

import importlib.util
import logging
import os

log = logging.getLogger("ltx_av")

# import name -> pip distribution of every runtime dependency (requirements.txt)
REQUIRED = {
    "numpy": "numpy",
    "safetensors": "safetensors",
    "transformers": "transformers",
    "av": "av",
    "PIL": "pillow",
}


def _missing_requirements() -> list[str]:
    # find_spec looks for an installed package without importing it, so the check costs nothing at start-up.
    return [pip for module, pip in REQUIRED.items() if importlib.util.find_spec(module) is None]


# ``__package__`` is empty when this file runs as a plain top-level module rather than as a package. ComfyUI and pip
# never do that, but pytest does: the repository root is both the pack and pytest's rootdir, and pytest (8+) treats a
# rootdir holding ``__init__.py`` as a test package whose ``__init__.py`` it imports before the first test, looking for
# ``setup_module``. In a folder whose name is a Python identifier it imports it as a package of that name; in one
# that is not (``ltx-av``, as the README's ``git clone`` makes) it imports it as the top-level module ``__init__``,
# where relative imports cannot work. There is no package to register nodes from then, so register none instead of
# failing every test; the tests use the pack installed as ``ltx_av``.
if not __package__:
    NODE_CLASS_MAPPINGS = {}
    NODE_DISPLAY_NAME_MAPPINGS = {}
elif _missing := _missing_requirements():
    log.error(
        "LTX-AV is disabled: missing Python package(s) %s. Install them into ComfyUI's Python with: "
        "python -m pip install -r %s",
        ", ".join(_missing),
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt"),
    )
    NODE_CLASS_MAPPINGS = {}
    NODE_DISPLAY_NAME_MAPPINGS = {}
else:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
