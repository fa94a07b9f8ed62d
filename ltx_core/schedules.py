"""Noise schedules: sigma lists from 1 (pure noise) down to 0 (clean) for rectified-flow sampling."""

from __future__ import annotations

import math

import torch

from . import checks
from .errors import InputError

# Sigmas the distilled checkpoints were trained to take, 8 steps; and the 3-step refinement of a second stage.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
STAGE2_SIGMAS = (0.909375, 0.725, 0.421875, 0.0)

# Bounds of what a schedule may be asked for: more steps than this is a mistake (the widget allows 500), and a
# shift beyond +-MAX_SHIFT squeezes every sigma against 1 or 0.
MAX_STEPS = 1000
MAX_SHIFT = 20.0
MAX_LOG_SHIFT = 700.0  # e^700 is still a finite float64
MAX_SIGMAS = MAX_STEPS + 1

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
    steps = checks.integer(steps, "steps", minimum=1, maximum=MAX_STEPS)
    max_shift = checks.number(max_shift, "max_shift", minimum=-MAX_SHIFT, maximum=MAX_SHIFT)
    base_shift = checks.number(base_shift, "base_shift", minimum=-MAX_SHIFT, maximum=MAX_SHIFT)
    if stretch:
        terminal = checks.number(terminal, "terminal", above=0.0)
        if not terminal < 1.0:
            raise InputError(f"terminal must be between 0 and 1; got {terminal:g}")
    tokens = DEFAULT_TOKENS if tokens is None else checks.integer(tokens, "tokens", minimum=1)
    low, high = _SHIFT_ANCHORS
    slope = (max_shift - base_shift) / (high - low)
    # A huge token count (shift_by_size) would overflow e^shift; clamped, the schedule degenerates and is refused
    # below with the settings named.
    shift = math.exp(min(max(tokens * slope + (base_shift - slope * low), -MAX_LOG_SHIFT), MAX_LOG_SHIFT))
    t = torch.linspace(1.0, 0.0, steps + 1)
    with torch.no_grad():
        sigmas = torch.where(t != 0, shift / (shift + (1 / t - 1)), 0.0)
    live = sigmas != 0
    distance = 1.0 - sigmas[live]
    # With one step the only non-zero sigma is 1 and there is nothing to stretch (the reference divides by zero).
    if stretch and distance[-1] > 0:
        sigmas[live] = 1.0 - distance / (distance[-1] / (1.0 - terminal))
    sigmas = sigmas.to(torch.float32)
    # Steps that do not move (equal neighbours) are the reference's behaviour for large latents; a schedule that
    # is mostly such steps has collapsed and would return noise.
    still = int((sigmas[1:] == sigmas[:-1]).sum())
    if not torch.isfinite(sigmas).all() or still * 2 > steps:
        raise InputError(
            f"the ltx2 schedule for steps={steps}, max_shift={max_shift:g}, base_shift={base_shift:g}"
            f"{f', {tokens} tokens' if tokens != DEFAULT_TOKENS else ''} collapses ({still} of {steps} steps do not "
            "move); lower max_shift (the official value is 2.05) or turn shift_by_size off"
        )
    return sigmas


def validate_sigmas(sigmas: torch.Tensor | list[float], name: str = "sigmas") -> torch.Tensor:
    """A 1-D float32 schedule of at least two values in [0, 1] that never increase and end below the start; raises
    naming the problem. Repeated values are allowed (the reference's own schedule repeats 1.0 for very large
    latents with ``shift_by_size``): such a step changes nothing."""
    if not isinstance(sigmas, (torch.Tensor, list, tuple)):
        raise InputError(f"{name} must be a list or 1-D tensor of noise levels; got a {type(sigmas).__name__}")
    try:
        s = torch.as_tensor(sigmas, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError) as e:
        raise InputError(f"{name} must hold numbers; got {sigmas!r:.80}") from e
    if s.numel() > MAX_SIGMAS:
        raise InputError(f"{name} has {s.numel()} values, i.e. {s.numel() - 1} steps; at most {MAX_STEPS} are allowed")
    if s.numel() < 2:
        raise InputError(f"{name} needs at least two values (a start and an end); got {s.tolist()}")
    if not torch.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise InputError(f"{name} must lie in [0, 1]; got {[round(v, 6) for v in s.tolist()]}")
    steps = s[1:] - s[:-1]
    if (steps > 0).any():
        i = int(torch.nonzero(steps > 0)[0])
        raise InputError(f"{name} must decrease from start to end; value {i + 1} ({s[i + 1]:.6g}) follows {s[i]:.6g}")
    if not s[-1] < s[0]:
        raise InputError(f"{name} must end below where it starts; got {[round(v, 6) for v in s.tolist()]}")
    return s
