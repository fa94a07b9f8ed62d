"""Rotary position embeddings over fractional positions, as LTX-2 uses them.

A token's position on each axis is the midpoint of its ``[start, end)`` bounds (seconds for time, pixels for space)
divided by that axis' ``max_pos``, mapped to ``u in [-1, 1)``. Axis ``a`` and frequency ``k`` give the angle
``w_k * u_a`` with ``w_k = (pi/2) * theta^(k/(F-1))``, ``F = dim // (2 * axes)``; angles are ordered frequency-major,
axis-minor, and the unused leading channels are left unrotated.

Two channel layouts exist. ``split``: each head's channel ``i`` pairs with ``i + head_dim/2``. ``interleaved``:
channels ``2i`` and ``2i+1`` pair across the whole width.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch


@functools.lru_cache(maxsize=16)
def frequency_grid(theta: float, axes: int, dim: int, float64: bool) -> torch.Tensor:
    """``[F]`` float32 angular frequencies from pi/2 to theta*pi/2 (geometric). ``float64`` computes them in double
    precision before rounding, which is what the released checkpoints were trained with."""
    count = dim // (2 * axes)
    if float64:
        exponents = np.linspace(0.0, 1.0, count, dtype=np.float64)
        return torch.tensor(np.power(theta, exponents) * math.pi / 2, dtype=torch.float32)
    exponents = torch.linspace(0.0, 1.0, count, dtype=torch.float32)
    return (theta**exponents).to(torch.float32) * (math.pi / 2)


@dataclass
class RopeTables:
    """cos/sin tables for one token sequence. ``split``: ``[B, T, H, head_dim/2]``; ``interleaved``: ``[B, T, dim]``."""

    cos: torch.Tensor
    sin: torch.Tensor
    layout: str


def rope_tables(
    positions: torch.Tensor,
    *,
    dim: int,
    heads: int,
    max_pos: tuple[int, ...],
    theta: float = 10000.0,
    layout: str = "split",
    float64: bool = True,
    midpoint: bool = True,
    dtype: torch.dtype = torch.float32,
) -> RopeTables:
    """Tables for ``positions``: ``[B, axes, T, 2]`` bounds (``midpoint``) or ``[B, axes, T]`` points."""
    if midpoint:
        positions = (positions[..., 0] + positions[..., 1]) / 2.0
    axes = positions.shape[1]
    if axes != len(max_pos):
        raise ValueError(f"positions have {axes} axes but max_pos has {len(max_pos)}")
    grid = frequency_grid(float(theta), axes, dim, float64).to(positions.device)
    fraction = torch.stack([positions[:, a] / max_pos[a] for a in range(axes)], dim=-1)  # [B, T, axes]
    angles = grid * (fraction.unsqueeze(-1) * 2 - 1)  # [B, T, axes, F]
    angles = angles.transpose(-1, -2).flatten(2)  # [B, T, F * axes], frequency-major
    cos, sin = angles.cos(), angles.sin()
    b, t, used = cos.shape
    if layout == "split":
        pad = dim // 2 - used
        cos = torch.cat([cos.new_ones(b, t, pad), cos], dim=-1).reshape(b, t, heads, -1)
        sin = torch.cat([sin.new_zeros(b, t, pad), sin], dim=-1).reshape(b, t, heads, -1)
    elif layout == "interleaved":
        pad = dim % (2 * axes)
        cos = torch.cat([cos.new_ones(b, t, pad), cos.repeat_interleave(2, dim=-1)], dim=-1)
        sin = torch.cat([sin.new_zeros(b, t, pad), sin.repeat_interleave(2, dim=-1)], dim=-1)
    else:
        raise ValueError(f"unknown RoPE layout {layout!r}; expected 'split' or 'interleaved'")
    return RopeTables(cos.to(dtype), sin.to(dtype), layout)


def apply_rope(x: torch.Tensor, tables: RopeTables) -> torch.Tensor:
    """Rotate ``x`` of shape ``[B, T, heads * head_dim]``."""
    if tables.layout == "split":
        # halves (a, b) of each head -> (a cos - b sin, b cos + a sin): one product with cos over the whole input,
        # then the sin terms accumulated in place (half the passes over memory of building both halves apart)
        b, t, h, half = tables.cos.shape
        halves = x.reshape(b, t, h, 2, half)
        out = halves * tables.cos.unsqueeze(-2)
        out[..., 0, :].addcmul_(halves[..., 1, :], tables.sin, value=-1)
        out[..., 1, :].addcmul_(halves[..., 0, :], tables.sin)
        return out.view(x.shape)
    pairs = x.unflatten(-1, (-1, 2))
    swapped = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * tables.cos + swapped * tables.sin


def apply_rope_(x: torch.Tensor, tables: RopeTables, spare: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`apply_rope` in place on a contiguous ``x`` (same arithmetic, same result), returning ``x``.

    Each pair's first channel is saved before it is overwritten, the only extra memory: ``spare`` (half of ``x``'s
    elements, any shape) when given, else a new tensor."""
    if tables.layout == "split":
        b, t, h, half = tables.cos.shape
        pairs = x.view(b, t, h, 2, half)
        first, second = pairs[..., 0, :], pairs[..., 1, :]
        cos, sin = tables.cos, tables.sin
    else:
        pairs = x.view(*x.shape[:-1], -1, 2)
        first, second = pairs[..., 0], pairs[..., 1]
        cos, sin = tables.cos[..., 0::2], tables.sin[..., 0::2]
    saved = first.clone() if spare is None else spare.view(first.shape).copy_(first)
    first.mul_(cos).addcmul_(second, sin, value=-1)
    second.mul_(cos).addcmul_(saved, sin)
    return x
