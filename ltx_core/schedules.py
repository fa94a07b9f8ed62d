"""Noise schedules: sigma lists from 1 (pure noise) down to 0 (clean) for rectified-flow sampling."""

from __future__ import annotations

import math

import torch

from .errors import InputError

# Sigmas the distilled checkpoints were trained to take, 8 steps; and the 3-step refinement of a second stage.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
STAGE2_SIGMAS = (0.909375, 0.725, 0.421875, 0.0)

# The shift grows linearly with the token count between these two anchors.
_SHIFT_ANCHORS = (1024, 4096)
DEFAULT_TOKENS = 4096


def ltx2_sigmas(
    steps: int,
    tokens: int | None = None,
    max_shift: float = 2.05,
    base_shift: float = 0.95,
    stretch: bool = True,
    terminal: float = 0.1,
) -> torch.Tensor:
    """The LTX-2 schedule: ``steps + 1`` float32 sigmas, time-shifted for ``tokens`` latent tokens.

    ``sigma = e^shift / (e^shift + 1/t - 1)`` on a uniform grid ``t`` from 1 to 0, with ``shift`` interpolated
    between ``base_shift`` at 1024 tokens and ``max_shift`` at 4096. ``stretch`` rescales ``1 - sigma`` so the last
    non-zero sigma equals ``terminal``. The official pipelines pass no token count, i.e. 4096 (shift 2.05).
    """
    if steps < 1:
        raise InputError(f"steps must be at least 1; got {steps}")
    if stretch and not 0.0 < terminal < 1.0:
        raise InputError(f"terminal must be between 0 and 1; got {terminal}")
    tokens = DEFAULT_TOKENS if tokens is None else tokens
    low, high = _SHIFT_ANCHORS
    slope = (max_shift - base_shift) / (high - low)
    shift = math.exp(tokens * slope + (base_shift - slope * low))
    t = torch.linspace(1.0, 0.0, steps + 1)
    with torch.no_grad():
        sigmas = torch.where(t != 0, shift / (shift + (1 / t - 1)), 0.0)
    live = sigmas != 0
    distance = 1.0 - sigmas[live]
    # With one step the only non-zero sigma is 1 and there is nothing to stretch (the reference divides by zero).
    if stretch and distance[-1] > 0:
        sigmas[live] = 1.0 - distance / (distance[-1] / (1.0 - terminal))
    return sigmas.to(torch.float32)


def validate_sigmas(sigmas: torch.Tensor | list[float], name: str = "sigmas") -> torch.Tensor:
    """A 1-D float32 schedule of at least two strictly decreasing values in [0, 1]; raises naming the problem."""
    s = torch.as_tensor(sigmas, dtype=torch.float32).flatten()
    if s.numel() < 2:
        raise InputError(f"{name} needs at least two values (a start and an end); got {s.tolist()}")
    if not torch.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise InputError(f"{name} must lie in [0, 1]; got {[round(v, 6) for v in s.tolist()]}")
    steps = s[1:] - s[:-1]
    if (steps >= 0).any():
        i = int(torch.nonzero(steps >= 0)[0])
        raise InputError(f"{name} must be strictly decreasing; value {i + 1} ({s[i + 1]:.6g}) follows {s[i]:.6g}")
    return s
