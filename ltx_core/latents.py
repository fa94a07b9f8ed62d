"""Latent geometry shared by the VAEs, the empty-latent node and the sampler.

The video VAE compresses 8 frames and 32x32 pixels into one 128-channel latent cell, keeping the first frame on
its own (so valid frame counts are 8k+1). Audio runs at 25 latent frames per second whatever the video frame rate.
"""

from __future__ import annotations

from .errors import InputError

VIDEO_LATENT_CHANNELS = 128
TIME_COMPRESSION = 8
SPACE_COMPRESSION = 32

AUDIO_LATENT_CHANNELS = 8
AUDIO_LATENT_MEL_BINS = 16
AUDIO_LATENTS_PER_SECOND = 25.0


def is_valid_frame_count(frames: int) -> bool:
    return frames >= 1 and (frames - 1) % TIME_COMPRESSION == 0


def nearest_frame_counts(frames: int) -> tuple[int, int]:
    """The valid frame counts (8k+1) just below and just above ``frames`` (equal when it is valid)."""
    below = max(1, (frames - 1) // TIME_COMPRESSION * TIME_COMPRESSION + 1)
    above = below if is_valid_frame_count(frames) else below + TIME_COMPRESSION
    return below, above


def nearest_sizes(pixels: int) -> tuple[int, int]:
    """The multiples of 32 just below and just above ``pixels`` (below is at least 32)."""
    below = max(SPACE_COMPRESSION, pixels // SPACE_COMPRESSION * SPACE_COMPRESSION)
    above = below if pixels % SPACE_COMPRESSION == 0 and pixels >= SPACE_COMPRESSION else below + SPACE_COMPRESSION
    return below, above


def video_latent_shape(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """(latent frames, latent height, latent width) for a video of valid size; raises naming the nearest valid
    values otherwise."""
    if not is_valid_frame_count(frames):
        lo, hi = nearest_frame_counts(frames)
        raise InputError(f"frames must be 8k+1 (1, 9, 17, ..., 121, ...); got {frames}, nearest valid: {lo} or {hi}")
    for name, value in (("height", height), ("width", width)):
        if value < SPACE_COMPRESSION or value % SPACE_COMPRESSION:
            lo, hi = nearest_sizes(value)
            raise InputError(f"{name} must be a multiple of 32; got {value}, nearest valid: {lo} or {hi}")
    return 1 + (frames - 1) // TIME_COMPRESSION, height // SPACE_COMPRESSION, width // SPACE_COMPRESSION


def video_frame_count(latent_frames: int) -> int:
    """Pixel frames decoded from ``latent_frames`` latent frames."""
    return 1 + (latent_frames - 1) * TIME_COMPRESSION


def audio_latent_length(frames: int, frame_rate: float, latents_per_second: float = AUDIO_LATENTS_PER_SECOND) -> int:
    """Audio latent frames that span a video of ``frames`` frames at ``frame_rate`` fps: round(F / fps * 25)."""
    if frame_rate <= 0:
        raise InputError(f"frame_rate must be positive; got {frame_rate}")
    return max(1, round(frames / frame_rate * latents_per_second))
