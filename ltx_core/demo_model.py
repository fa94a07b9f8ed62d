"""The built-in demo model: an LTX-2.3 checkpoint at toy widths trained by ``python -m ltx_av train-demo`` on the
shapes-and-tones world of :mod:`.demo_world`, beside the Gemma stand-in it was trained with, in ``demo_model/``
next to this file. When those files are there it is the main job's default: it follows prompts of its world's
grammar ("a red ball moves left, low hum"), so a first run shows text conditioning, sound that belongs to the
picture and image conditioning.
"""

from __future__ import annotations

import os

import torch

from . import demo_world as world
from .demo_train import GEMMA, WEIGHTS

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_model")
CHECKPOINT = os.path.join(FOLDER, WEIGHTS)
GEMMA_FOLDER = os.path.join(FOLDER, GEMMA)


def available() -> bool:
    """Whether the shipped files are there (a checkout without them, e.g. a trimmed copy, falls back to the random
    tiny model)."""
    return os.path.isfile(CHECKPOINT) and os.path.isfile(os.path.join(GEMMA_FOLDER, "model.safetensors"))


def load(*, device: str | torch.device = "cpu", offload: str = "none"):
    """The demo model as a :class:`~.pipeline.Pipeline` (float32 on the CPU, the device's default dtype elsewhere)."""
    from .pipeline import Pipeline

    device = torch.device(device)
    dtype = torch.float32 if device.type == "cpu" else None
    return Pipeline.load(CHECKPOINT, GEMMA_FOLDER, device=device, dtype=dtype, offload=offload)


def outside_grammar(prompt: str) -> str | None:
    """A sentence for a prompt the demo model never saw the like of, else None."""
    if world.parse_caption(prompt) is not None:
        return None
    return (
        f"the demo model knows only its world's captions, 'a <colour> <shape> <motion>, <tone>' with colour one of "
        f"{', '.join(world.COLOURS)}, shape one of {', '.join(world.SHAPES)}, motion one of "
        f"{', '.join(world.MOTIONS)} and tone one of {', '.join(world.TONES)}; {prompt!r} is not one, so expect "
        "whatever it makes of the words it knows"
    )
