"""The official implementation, ltx-core 1.0.0, imported as a test oracle.

Two traps (see docs/ltx2-architecture.md §9.1): our own ``ltx_core/`` folder would shadow the reference if the
repository root were on ``sys.path``, and the reference imports torchaudio (absent for torch >= 2.12) at package
import although only its mel front end uses it. We drop the root from the path, import transformers first (so it
records torchaudio as missing) and stand in an empty torchaudio module.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_reference() -> types.ModuleType:
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != REPO_ROOT]
    import transformers  # noqa: F401  (must precede the torchaudio stand-in)

    if "torchaudio" not in sys.modules:
        stub = types.ModuleType("torchaudio")
        stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stub
    import ltx_core

    if os.path.dirname(os.path.abspath(ltx_core.__file__)) == os.path.join(REPO_ROOT, "ltx_core"):
        raise RuntimeError(
            "the pack's own ltx_core/ shadows the reference; run pytest without the repo root on sys.path"
        )
    import ltx_core.loader  # noqa: F401  (before ltx_core.quantization, which is circular on its own)

    return ltx_core


ltx_core_ref = _import_reference()

from ltx_core.loader import SingleGPUModelBuilder  # noqa: E402
from ltx_core.model.audio_vae import model_configurator as audio_cfg  # noqa: E402
from ltx_core.model.transformer import model_configurator as transformer_cfg  # noqa: E402
from ltx_core.model.video_vae import model_configurator as video_cfg  # noqa: E402
from ltx_core.text_encoders.gemma import embeddings_connector as connector_cfg  # noqa: E402
from ltx_core.text_encoders.gemma import feature_extractor as feature_ref  # noqa: E402

__all__ = [
    "SingleGPUModelBuilder",
    "audio_cfg",
    "connector_cfg",
    "feature_ref",
    "ltx_core_ref",
    "transformer_cfg",
    "video_cfg",
]
