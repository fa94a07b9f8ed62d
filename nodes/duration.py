"""LTX-2.5's duration head as a node: how long the clip a prompt describes should be, as a frame count for
Empty Latent (video + audio)."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

import torch

from ..ltx_core import checks
from ..ltx_core.config import LTX25
from ..ltx_core.duration_head import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_MIN_SECONDS,
    DurationHead,
    load_duration_head,
    predict_duration,
)
from ..ltx_core.errors import CheckpointError, ConfigError, InputError
from .validation import checked, find_model_file, model_choices

log = logging.getLogger("ltx_av.nodes.duration")

HEAD_FOLDERS = ("model_patches",)
OFFICIAL_HEAD = "ltx-2.5-duration-head-bf16.safetensors"
# The head is a few MB: keep the last few loaded, keyed by the file and its modification time.
_HEADS: OrderedDict[tuple[str, float], DurationHead] = OrderedDict()
HEADS_KEPT = 2


def duration_head(path: str) -> DurationHead:
    """The head of ``path`` in float32 on the CPU (it runs once per prompt on 1024 tokens), cached."""
    real = os.path.realpath(path)
    key = (real, os.path.getmtime(real))
    head = _HEADS.get(key)
    if head is None:
        head = _HEADS[key] = load_duration_head(real, dtype=torch.float32, device="cpu")
        while len(_HEADS) > HEADS_KEPT:
            _HEADS.popitem(last=False)
    _HEADS.move_to_end(key)
    return head


def _contexts(conditioning: object, node: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The video and audio contexts of one LTX-2.5 prompt (what Text Encode (prompt) makes)."""
    entry = conditioning[0] if isinstance(conditioning, list) and conditioning else None
    if not isinstance(entry, (list, tuple)) or len(entry) < 2 or not isinstance(entry[1], dict):
        raise InputError(f"{node}: positive must be a CONDITIONING from Text Encode (prompt)")
    if len(conditioning) > 1:
        raise InputError(f"{node}: positive holds {len(conditioning)} prompts; connect one encoded prompt")
    video, extras = entry[0], entry[1]
    audio = extras.get("ltx_audio_context")
    if not isinstance(video, torch.Tensor) or not isinstance(audio, torch.Tensor):
        raise InputError(f"{node}: positive has no LTX audio context; it was not made by Text Encode (prompt)")
    signature = extras.get("ltx_text_path")
    variant = signature.get("variant") if isinstance(signature, dict) else None
    if variant != LTX25:
        raise InputError(
            f"{node}: positive was encoded with the {variant or 'unknown'} text path; the duration head reads "
            "LTX-2.5's contexts (load the text encoder with the LTX-2.5 transformer)"
        )
    for part, tensor in (("video", video), ("audio", audio)):
        if tensor.ndim != 3 or 0 in tensor.shape or not tensor.is_floating_point():
            raise InputError(f"{node}: positive {part} context is {list(tensor.shape)} {tensor.dtype}")
        checks.finite_tensor(tensor, f"{node}: positive {part} context")
    return video.float().cpu(), audio.float().cpu()


class LTXDurationPredict:
    DISPLAY_NAME = "Predict Duration (LTX-2.5)"
    CATEGORY = "LTX-AV/text"
    DESCRIPTION = (
        "LTX-2.5's duration head: reads the encoded prompt and predicts how long its clip is, as seconds and as "
        "the frame count to generate at frame_rate (8k+1 frames, within min..max seconds). Connect frames to "
        "Empty Latent (video + audio)'s frames."
    )
    RETURN_TYPES = ("INT", "FLOAT")
    RETURN_NAMES = ("frames", "seconds")
    OUTPUT_TOOLTIPS = (
        "Frames to generate (8k+1) for Empty Latent.",
        "The head's prediction in seconds, before the range and the 8k+1 grid.",
    )
    FUNCTION = "predict"
    FILE_INPUTS = ("head_name",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "head_name": (
                    model_choices(HEAD_FOLDERS) or [OFFICIAL_HEAD],
                    {"tooltip": f"The duration head from models/model_patches ({OFFICIAL_HEAD})."},
                ),
                "positive": ("CONDITIONING", {"tooltip": "The LTX-2.5 prompt, from Text Encode (prompt)."}),
                "frame_rate": (
                    "FLOAT",
                    {"default": 24.0, "min": 1.0, "max": 240.0, "step": 0.001, "tooltip": "Frames per second."},
                ),
                "min_seconds": (
                    "FLOAT",
                    {
                        "default": DEFAULT_MIN_SECONDS,
                        "min": 0.05,
                        "max": 600.0,
                        "step": 0.1,
                        "tooltip": "Shortest clip to generate.",
                    },
                ),
                "max_seconds": (
                    "FLOAT",
                    {
                        "default": DEFAULT_MAX_SECONDS,
                        "min": 0.05,
                        "max": 600.0,
                        "step": 0.1,
                        "tooltip": "Longest clip to generate (the official pipelines use 20 s).",
                    },
                ),
            }
        }

    @checked
    def predict(
        self,
        head_name: str,
        positive,
        frame_rate: float = 24.0,
        min_seconds: float = DEFAULT_MIN_SECONDS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ):
        node = "LTXDurationPredict"
        if max_seconds < min_seconds:
            raise InputError(f"{node}: max_seconds ({max_seconds:g}) is below min_seconds ({min_seconds:g})")
        video, audio = _contexts(positive, node)
        path = find_model_file(node, "head_name", HEAD_FOLDERS, head_name)
        try:
            head = duration_head(path)
        except (CheckpointError, ConfigError) as e:
            raise CheckpointError(f"{node}: head_name '{head_name}': {e}") from None
        config = head.config
        if (video.shape[-1], audio.shape[-1]) != (config.video_dim, config.audio_dim):
            raise InputError(
                f"{node}: head_name '{head_name}' reads contexts {config.video_dim} / {config.audio_dim} wide, but "
                f"positive's are {video.shape[-1]} / {audio.shape[-1]}: the head belongs to another model"
            )
        if video.shape[0] != 1 or audio.shape[0] != 1:
            raise InputError(f"{node}: positive holds a batch of {video.shape[0]} prompts; connect one")
        # predict_duration logs the seconds, the range and the frames (the snapping to 8k+1 is visible there).
        (prediction,) = predict_duration(
            head, video, audio, frame_rate=frame_rate, min_seconds=min_seconds, max_seconds=max_seconds
        )
        return (prediction.num_frames, prediction.seconds)


NODES: tuple[type, ...] = (LTXDurationPredict,)
