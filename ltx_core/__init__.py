"""LTX-2 / LTX-2.3 audio-video generation in plain PyTorch.

Pure PyTorch: nothing here imports ComfyUI or the node layer, so the same code serves the nodes and headless
scripts. Start with :func:`open_checkpoint` on an official ``.safetensors`` file.
"""

from .checkpoint import Checkpoint, build_component, load_strict, open_checkpoint
from .config import (
    LTX2,
    LTX23,
    AudioVAEConfig,
    CheckpointConfig,
    TextEncoderConfig,
    TransformerConfig,
    VideoVAEConfig,
    VocoderConfig,
)
from .errors import CheckpointError, ConfigError, InputError, LTXError

__all__ = [
    "LTX2",
    "LTX23",
    "AudioVAEConfig",
    "Checkpoint",
    "CheckpointConfig",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "LTXError",
    "TextEncoderConfig",
    "TransformerConfig",
    "VideoVAEConfig",
    "VocoderConfig",
    "build_component",
    "load_strict",
    "open_checkpoint",
]
