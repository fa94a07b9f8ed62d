"""LTX-2.5's duration head: how long the clip a prompt describes is, predicted from its text contexts.

A small regression head on the connectors' outputs (``model_patches/ltx-2.5-duration-head-bf16.safetensors``,
keys ``duration_head.*``): each stream's tokens are projected to a shared width and tagged with a learned modality
vector, learned queries pool them by cross-attention, and an MLP gives the log of the duration in seconds. The
seconds become a frame count the way ltx-pipelines 1.2.0 does it: rounded, clamped to the allowed range, then
floored to the video VAE's ``8k + 1`` frame grid (raised to the next grid point when that falls below the
minimum).

No attention mask is needed: the connectors fill every padded position with registers, so every context token is
valid. The config sits in the file's metadata (``config.transformer.{cross_attention_dim,
audio_cross_attention_dim}`` and ``config.duration_head``); absent keys mean what they mean to ltx-core 1.2.0.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import CheckpointError, ConfigError, InputError

log = logging.getLogger("ltx_av.duration_head")

PREFIX = "duration_head."
# The video VAE's temporal compression: frame counts the model generates are 8k + 1.
TIME_SCALE = 8
DEFAULT_MIN_SECONDS = 1.0
DEFAULT_MAX_SECONDS = 20.0


@dataclass(frozen=True)
class DurationHeadConfig:
    """Input widths (the video / audio text contexts) and the head's own sizes."""

    video_dim: int = 4096
    audio_dim: int = 2048
    pooler_hidden_dim: int = 256
    num_queries: int = 1
    num_pooler_heads: int = 4
    mlp_hidden: int = 256

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], name: str = "the duration head") -> DurationHeadConfig:
        """From a file's safetensors metadata (``config`` as a JSON string, or already parsed). The defaults are
        ltx-core 1.2.0's for absent keys (the released head is sized like them)."""
        config = metadata.get("config", {})
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except (ValueError, RecursionError) as e:
                raise ConfigError(f"{name}: its metadata config is not valid JSON") from e
        if not isinstance(config, Mapping):
            raise ConfigError(f"{name}: its metadata config is not a JSON object")
        transformer = _section(config, "transformer", name)
        head = _section(config, "duration_head", name)
        defaults = cls()
        values = cls(
            video_dim=_size(transformer, "cross_attention_dim", defaults.video_dim, f"{name}: transformer"),
            audio_dim=_size(transformer, "audio_cross_attention_dim", defaults.audio_dim, f"{name}: transformer"),
            pooler_hidden_dim=_size(head, "pooler_hidden_dim", defaults.pooler_hidden_dim, f"{name}: duration_head"),
            num_queries=_size(head, "num_queries", defaults.num_queries, f"{name}: duration_head"),
            num_pooler_heads=_size(head, "num_pooler_heads", defaults.num_pooler_heads, f"{name}: duration_head"),
            mlp_hidden=_size(head, "mlp_hidden", defaults.mlp_hidden, f"{name}: duration_head"),
        )
        if values.pooler_hidden_dim % values.num_pooler_heads:
            raise ConfigError(
                f"{name}: duration_head.num_pooler_heads = {values.num_pooler_heads} does not divide "
                f"pooler_hidden_dim = {values.pooler_hidden_dim}"
            )
        return values


def _section(config: Mapping[str, Any], key: str, name: str) -> Mapping[str, Any]:
    section = config.get(key) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{name}: config section '{key}' is not a JSON object")
    return section


def _size(section: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = section.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**20:
        raise ConfigError(f"{where}.{key} is {value!r}; expected a whole number from 1 to {2**20}")
    return value


class PoolingAttention(nn.Module):
    """Multi-head cross-attention with one packed q/k/v projection (``in_proj_*``) and ``out_proj``; the
    parameter names of ``torch.nn.MultiheadAttention``, which wrote the released file."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``queries`` ``[B, Q, D]`` attend ``tokens`` ``[B, T, D]`` -> ``[B, Q, D]``."""
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        b, d = queries.shape[0], queries.shape[-1]

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B, N, D] -> [B, heads, N, D / heads]
            return x.view(b, x.shape[1], self.heads, d // self.heads).transpose(1, 2)

        q, k, v = heads(F.linear(queries, wq, bq)), heads(F.linear(tokens, wk, bk)), heads(F.linear(tokens, wv, bv))
        pooled = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(pooled.transpose(1, 2).reshape(b, -1, d))


class AttentionPooler(nn.Module):
    """``num_queries`` learned tokens attend the whole token sequence: a fixed-size summary of any length."""

    def __init__(self, dim: int, num_queries: int, heads: int):
        super().__init__()
        self.query_tokens = nn.Parameter(torch.empty(num_queries, dim))
        self.cross_attn = PoolingAttention(dim, heads)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        queries = self.query_tokens.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.cross_attn(queries, tokens)


class DurationHead(nn.Module):
    """Text contexts -> predicted clip duration in seconds (``duration_head.*`` without the prefix)."""

    def __init__(self, config: DurationHeadConfig):
        super().__init__()
        self.config = config
        width = config.pooler_hidden_dim
        self.video_input_proj = nn.Linear(config.video_dim, width)
        self.video_modality_emb = nn.Parameter(torch.zeros(width))
        self.audio_input_proj = nn.Linear(config.audio_dim, width)
        self.audio_modality_emb = nn.Parameter(torch.zeros(width))
        self.attention_pooler = AttentionPooler(width, config.num_queries, config.num_pooler_heads)
        self.mlp_hidden = nn.Linear(width * config.num_queries, config.mlp_hidden)
        self.mlp_out = nn.Linear(config.mlp_hidden, 1)

    def forward(self, video: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> torch.Tensor:
        """``video`` ``[B, T, video_dim]`` and / or ``audio`` ``[B, T, audio_dim]`` -> seconds ``[B]``. The MLP
        predicts the log of the duration (trained in log-seconds)."""
        streams = []
        if video is not None:
            streams.append(self.video_input_proj(video) + self.video_modality_emb)
        if audio is not None:
            streams.append(self.audio_input_proj(audio) + self.audio_modality_emb)
        if not streams:
            raise InputError("the duration head needs the video or the audio text context (or both); got neither")
        pooled = self.attention_pooler(torch.cat(streams, dim=1))  # [B, Q, width]
        hidden = F.gelu(self.mlp_hidden(pooled.flatten(1)), approximate="tanh")
        return self.mlp_out(hidden).squeeze(-1).exp()


# ---------------------------------------------------------------------------------------------------------------
# Seconds -> frames


def seconds_to_num_frames(
    seconds: float,
    frame_rate: float,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    time_scale: int = TIME_SCALE,
) -> int:
    """A predicted duration as the frame count ltx-pipelines 1.2.0 generates for it.

    ``round(seconds * frame_rate)`` clamped to ``[round(min_seconds * fps), round(max_seconds * fps)]``, floored
    to ``k * time_scale + 1``; if that falls below the minimum, the next grid point (capped at the maximum).
    Python's ``round`` (halves to even) as in the reference.
    """
    for value, what in ((frame_rate, "frame_rate"), (min_seconds, "min_seconds"), (max_seconds, "max_seconds")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise InputError(f"{what} must be a positive number; got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"the predicted duration is {seconds!r} seconds; expected a finite, non-negative number")
    if max_seconds < min_seconds:
        raise InputError(f"max_seconds ({max_seconds}) is below min_seconds ({min_seconds})")
    min_frames, max_frames = round(min_seconds * frame_rate), round(max_seconds * frame_rate)
    if min_frames < 1:
        raise InputError(
            f"min_seconds {min_seconds} at {frame_rate} fps is {min_seconds * frame_rate:.3g} frames; it must "
            "round to at least one frame"
        )
    frames = max(min_frames, min(round(seconds * frame_rate), max_frames))
    frames = (frames - 1) // time_scale * time_scale + 1
    if frames < min_frames:
        frames = min(-(-(min_frames - 1) // time_scale) * time_scale + 1, max_frames)
    return frames


@dataclass(frozen=True)
class DurationPrediction:
    """One prompt's prediction: the raw seconds, the frame count to generate, and whether the range clamped it."""

    seconds: float
    num_frames: int
    clamped: bool


@torch.no_grad()
def predict_duration(
    head: DurationHead,
    video: torch.Tensor | None,
    audio: torch.Tensor | None,
    *,
    frame_rate: float,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> list[DurationPrediction]:
    """Per prompt of the batch: the duration the head predicts from its contexts (``[B, T, D]``, e.g.
    :class:`~.text_encoder.TextContexts` ``.video`` / ``.audio``; either may be ``None``) as seconds and frames."""
    param = head.mlp_out.weight
    video = video.to(param.device, param.dtype) if video is not None else None
    audio = audio.to(param.device, param.dtype) if audio is not None else None
    predictions = []
    for seconds in head(video, audio).float().tolist():
        frames = seconds_to_num_frames(seconds, frame_rate, min_seconds, max_seconds)
        clamped = not min_seconds <= seconds <= max_seconds
        log.info(
            "duration head: %.2f s%s -> %d frames at %g fps",
            seconds, f" (outside {min_seconds:g}..{max_seconds:g} s, clamped)" if clamped else "", frames, frame_rate,
        )  # fmt: skip
        predictions.append(DurationPrediction(seconds, frames, clamped))
    return predictions


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_duration_head(
    path: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> DurationHead:
    """The duration head of a ``.safetensors`` file (keys ``duration_head.*``, or bare), strictly. Float32 by
    default: the head is a few MB and its exponentiated output is sensitive to rounding."""
    from .checkpoint import SafetensorsFile, check_keys, load_strict

    file = SafetensorsFile(os.fspath(path))
    keys = [k for k in file.tensors if k.startswith(PREFIX)]
    prefix = PREFIX
    if not keys and "attention_pooler.query_tokens" in file.tensors:
        keys, prefix = list(file.tensors), ""
    if not keys:
        raise CheckpointError(
            f"'{file.name}' holds no duration head (no 'duration_head.*' tensors); LTX-2.5's is "
            "model_patches/ltx-2.5-duration-head-bf16.safetensors"
        )
    try:
        config = DurationHeadConfig.from_metadata(file.metadata, f"'{file.name}'")
    except ConfigError as e:
        raise CheckpointError(str(e)) from e
    with torch.device("meta"):
        head = DurationHead(config)
    shapes = {k[len(prefix) :]: tuple(file.tensors[k].shape) for k in keys}
    check_keys(head, shapes, component="duration head", source=file.path, variant="LTX-2.5")
    state_dict = {}
    for key in keys:
        tensor = file.tensor(key)
        if not tensor.is_floating_point():
            raise CheckpointError(f"'{file.name}' stores '{key}' as {tensor.dtype}; the duration head is float")
        state_dict[key[len(prefix) :]] = tensor.to(dtype)
    head = load_strict(head, state_dict, component="duration head", source=file.path, variant="LTX-2.5")
    return head.to(device) if device is not None else head
