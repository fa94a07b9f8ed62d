"""Latents <-> transformer tokens, and where each token sits in time and space.

The transformer sees one token per latent cell: video ``[B, 128, F, H, W]`` becomes ``[B, F*H*W, 128]`` in
frame-major, row, column order; audio ``[B, 8, T, 16]`` becomes ``[B, T, 128]`` (channel-major features).

Every token also carries a ``[start, end)`` span per axis that RoPE turns into a rotation (its midpoint is used):

* video ``[B, 3, N, 2]``: (time in seconds, y in pixels, x in pixels). A latent frame ``f`` covers pixel frames
  ``[8f - 7, 8f + 1)`` because the causal VAE keeps the first frame on its own (latent frame 0 covers ``[0, 1)``),
  divided by the frame rate; a cell covers 32 x 32 pixels.
* a keyframe token group (a conditioning image appended after the video tokens) is placed at a pixel frame index:
  its frames cover ``[idx + 8f, idx + 8f + 8)`` without the causal shift (unless ``idx == 0``), over the frame rate.
* audio ``[B, 1, T, 2]``: seconds. Latent ``i`` covers mel frames ``[max(4i - 3, 0), max(4i + 1, 0))`` (the causal
  audio VAE is shifted by one mel frame) at 100 mel frames per second.

Positions are float32. (ltx-core 1.0.0 pipelines round video positions to the latent dtype, i.e. bfloat16, before
the transformer; 1.2.0 does not. Round them yourself, ``p.to(torch.bfloat16).float()``, to reproduce 1.0.0.)
"""

from __future__ import annotations

import torch

from .errors import InputError
from .latents import SPACE_COMPRESSION, TIME_COMPRESSION

# Audio timing of the LTX-2 audio VAE: 16 kHz audio, mel hop 160 samples, 4 mel frames per latent frame.
AUDIO_SAMPLE_RATE = 16000
AUDIO_HOP_LENGTH = 160
AUDIO_MEL_PER_LATENT = 4


def patchify_video(latent: torch.Tensor) -> torch.Tensor:
    """``[B, C, F, H, W]`` -> ``[B, F*H*W, C]`` tokens (frame-major, then row, then column)."""
    if latent.ndim != 5:
        raise InputError(f"video latent must be [B, C, F, H, W]; got shape {list(latent.shape)}")
    return latent.flatten(2).transpose(1, 2)


def unpatchify_video(tokens: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """``[B, F*H*W, C]`` -> ``[B, C, F, H, W]``; extra tokens (appended conditioning) must be cut off first."""
    b, n, c = _tokens_shape(tokens, "video tokens")
    if n != frames * height * width:
        raise InputError(
            f"video tokens: got {n} tokens but a {frames}x{height}x{width} latent has {frames * height * width}; "
            "remove appended conditioning tokens before unpatchifying"
        )
    return tokens.transpose(1, 2).reshape(b, c, frames, height, width)


def patchify_audio(latent: torch.Tensor) -> torch.Tensor:
    """``[B, C, T, M]`` -> ``[B, T, C*M]`` tokens (channel-major features)."""
    if latent.ndim != 4:
        raise InputError(f"audio latent must be [B, C, T, mel_bins]; got shape {list(latent.shape)}")
    return latent.transpose(1, 2).flatten(2)


def unpatchify_audio(tokens: torch.Tensor, channels: int = 8, mel_bins: int = 16) -> torch.Tensor:
    """``[B, T, C*M]`` -> ``[B, C, T, M]``."""
    b, t, features = _tokens_shape(tokens, "audio tokens")
    if features != channels * mel_bins:
        raise InputError(f"audio tokens have {features} features; expected channels x mel_bins = {channels * mel_bins}")
    return tokens.reshape(b, t, channels, mel_bins).transpose(1, 2)


def _tokens_shape(tokens: torch.Tensor, name: str) -> tuple[int, int, int]:
    if tokens.ndim != 3:
        raise InputError(f"{name} must be [B, N, C]; got shape {list(tokens.shape)}")
    return tokens.shape[0], tokens.shape[1], tokens.shape[2]


def _check_grid(frames: int, height: int, width: int, frame_rate: float) -> None:
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        if value < 1:
            raise InputError(f"latent {name} must be >= 1; got {value}")
    if not frame_rate > 0:
        raise InputError(f"frame_rate must be positive; got {frame_rate}")


def _latent_cells(frames: int, height: int, width: int, device: torch.device | str | None) -> torch.Tensor:
    """``[3, F*H*W]`` integer (frame, row, column) of every token, in token order."""
    grid = torch.meshgrid(
        torch.arange(frames, device=device),
        torch.arange(height, device=device),
        torch.arange(width, device=device),
        indexing="ij",
    )
    return torch.stack([g.reshape(-1) for g in grid])


def _pixel_bounds(cells: torch.Tensor, causal: bool, frame_offset: int, frame_rate: float) -> torch.Tensor:
    """Latent cells -> ``[3, N, 2]`` float32 bounds in (seconds, pixels, pixels)."""
    scale = torch.tensor([TIME_COMPRESSION, SPACE_COMPRESSION, SPACE_COMPRESSION], device=cells.device)[:, None]
    start = cells * scale
    bounds = torch.stack([start, start + scale], dim=-1)  # [3, N, 2], integers
    if causal:
        # The first latent frame holds one pixel frame; the others hold 8 that end one frame later than 8f.
        bounds[0] = (bounds[0] + 1 - TIME_COMPRESSION).clamp(min=0)
    bounds[0] += frame_offset
    bounds = bounds.to(torch.float32)
    bounds[0] /= frame_rate
    return bounds


def video_positions(
    batch: int,
    frames: int,
    height: int,
    width: int,
    frame_rate: float,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[B, 3, F*H*W, 2]`` float32 token bounds of a ``[B, 128, F, H, W]`` latent: (seconds, y px, x px)."""
    _check_grid(frames, height, width, frame_rate)
    bounds = _pixel_bounds(_latent_cells(frames, height, width, device), True, 0, frame_rate)
    return bounds.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def keyframe_positions(
    batch: int,
    frames: int,
    height: int,
    width: int,
    frame_idx: int,
    frame_rate: float,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[B, 3, F*H*W, 2]`` bounds of a keyframe token group (a ``[B, 128, F, H, W]`` latent appended after the
    video tokens) placed at pixel frame ``frame_idx``. Frame 0 gets the causal first-frame span like the video."""
    _check_grid(frames, height, width, frame_rate)
    if frame_idx < 0:
        raise InputError(f"keyframe frame_idx must be >= 0; got {frame_idx}")
    bounds = _pixel_bounds(_latent_cells(frames, height, width, device), frame_idx == 0, frame_idx, frame_rate)
    return bounds.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def reference_positions(
    batch: int,
    frames: int,
    height: int,
    width: int,
    scale: int,
    frame_rate: float,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[B, 3, F*H*W, 2]`` bounds of an IC-LoRA reference latent appended after the video tokens: its own grid laid
    over the video's in time from frame 0 (causal first frame, like the video), and its pixel bounds multiplied by
    ``scale`` so a reference encoded at ``1/scale`` of the video's size covers the same picture."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"reference scale must be a whole number >= 1; got {scale!r}")
    positions = video_positions(batch, frames, height, width, frame_rate, device=device)
    positions[:, 1:] *= scale
    return positions


def audio_positions(
    batch: int,
    length: int,
    *,
    start: int = 0,
    sample_rate: int = AUDIO_SAMPLE_RATE,
    hop_length: int = AUDIO_HOP_LENGTH,
    mel_per_latent: int = AUDIO_MEL_PER_LATENT,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[B, 1, T, 2]`` float32 bounds in seconds of audio latent frames ``start .. start + T - 1``."""
    if length < 0 or start < 0:
        raise InputError(f"audio positions need length >= 0 and start >= 0; got length {length}, start {start}")

    def seconds(first: int) -> torch.Tensor:
        mel = torch.arange(first, first + length, dtype=torch.float32, device=device) * mel_per_latent
        # Causal VAE: a latent frame becomes fully known one mel frame after its first input frame.
        mel = (mel + 1 - mel_per_latent).clip(min=0)
        return mel * hop_length / sample_rate

    bounds = torch.stack([seconds(start), seconds(start + 1)], dim=-1)  # [T, 2]
    return bounds.expand(batch, 1, -1, -1).contiguous()
