"""LTX-AV: ComfyUI nodes for Lightricks LTX-2 / LTX-2.3 audio-video generation.

ComfyUI imports this folder under whatever name it was cloned as; pip installs it as ``ltx_av``. Only relative
imports are used inside, so both work. If a Python dependency is missing we log one line naming what to install
and register no nodes, rather than breaking ComfyUI's start-up.
"""

import logging
import os

log = logging.getLogger("ltx_av")

# import name -> pip distribution, for the one-line hint when a dependency is missing
_PIP_NAMES = {
    "PIL": "pillow",
    "av": "av",
    "safetensors": "safetensors",
    "transformers": "transformers",
    "numpy": "numpy",
    "gguf": "gguf",
    "tokenizers": "tokenizers",
}

try:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
except ModuleNotFoundError as error:
    top = (error.name or "").split(".")[0]
    if not top or top == __name__.split(".")[0] or top not in _PIP_NAMES:
        raise
    requirements = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
    log.error(
        "LTX-AV is disabled: the Python package '%s' is missing. Install the pack's requirements into ComfyUI's "
        "Python: python -m pip install -r %s",
        _PIP_NAMES[top],
        requirements,
    )
    NODE_CLASS_MAPPINGS = {}
    NODE_DISPLAY_NAME_MAPPINGS = {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
