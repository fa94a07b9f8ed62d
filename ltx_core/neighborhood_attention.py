"""Neighbourhood attention over a video volume: every query attends to a small 3-D window of keys around it.

A query at ``(t, h, w)`` sees the keys of a ``kt x kh x kw`` box. Near a border the box is shifted inward rather
than cut (NATTEN's rule, Hassani et al. 2023), so every query sees exactly ``kt * kh * kw`` keys: along an axis of
length ``L`` the window of position ``i`` starts at ``clamp(i - k // 2, 0, L - k)``.

Computed blockwise in plain PyTorch. Queries are grouped into small boxes of ``bt x bh x bw`` positions; the windows
of one box all lie inside a key box of ``b + k - 1`` positions per axis, which the block attends to densely with a
mask that keeps each query's own window. Small boxes waste few scores (a 3x3x3 box under 11x11x11 windows computes
1.65 times the needed ones) while giving the matrix products enough rows to run near full speed; the masked
scores cost as much as the kept ones, so the box shape is chosen to minimise their share (:func:`block_shape`).
Boxes that share a border pattern along every axis share one mask and are gathered (one ``index_select`` of the
flattened volume) and attended together, a bounded batch at a time.

Query and key tensors may cover a part of the volume (a range of frames, rows and columns), so a caller can bound
memory by attending slab by slab; the windows are those of the whole volume. When the optional ``natten`` package
is installed, CUDA tensors of a whole volume go to its kernel instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

try:  # optional fast kernel; never required
    import natten as _natten
except ImportError:  # pragma: no cover - depends on the environment
    _natten = None

# Bytes of gathered keys and values one attention call may hold (bounds the working memory of a row of boxes).
_GATHER_BYTES = 48 * 2**20

Range = tuple[int, int]


def window_start(position: int, length: int, kernel: int) -> int:
    """First key of the window of ``position`` along an axis of ``length`` (NATTEN's shifted border)."""
    return min(max(position - kernel // 2, 0), length - kernel)


def block_shape(kernel: tuple[int, int, int], extent: tuple[int, int, int], head_dim: int = 64) -> tuple[int, int, int]:
    """Query box for ``kernel`` windows over a query region of ``extent`` positions.

    Minimises an estimate of the time per query: the scores its box computes (masked ones cost as much as kept
    ones; attention calls with fewer than ~64 query rows run slower) plus copying the box's keys and values out of
    the volume (neighbouring boxes share keys, so each key is copied about ``prod(b + k - 1) / prod(b)`` times; one
    float copied costs about a fifth of a score). Measured on a 2-core AVX-512 CPU.
    """
    best: tuple[float, tuple[int, int, int]] | None = None
    ranges = [range(1, min(e, 8) + 1) for e in extent]
    for bt in ranges[0]:
        for bh in ranges[1]:
            for bw in ranges[2]:
                queries = bt * bh * bw
                keys = math.prod(min(b + k - 1, e) for b, k, e in zip((bt, bh, bw), kernel, extent, strict=True))
                cost = keys * (1 + 8 / queries) + keys / queries * 2 * head_dim * 0.2
                if best is None or cost < best[0]:
                    best = (cost, (bt, bh, bw))
    assert best is not None
    return best[1]


@dataclass(frozen=True)
class _AxisBlocks:
    """Query boxes along one axis: starts of the queries and of their key boxes, and each box's window pattern."""

    size: int  # queries per box
    keys: int  # keys per box
    query_starts: tuple[int, ...]  # relative to the query tensor
    key_starts: tuple[int, ...]  # relative to the key tensor
    patterns: tuple[tuple[int, ...], ...]  # per box: each query's window start inside the box's keys
    fresh: tuple[int, ...]  # per box: first query not written by an earlier box (the last box may overlap)


def _axis_blocks(length: int, kernel: int, block: int, queries: Range, keys: Range) -> _AxisBlocks:
    q0, q1 = queries
    k0, k1 = keys
    block = min(block, q1 - q0)
    span = min(block + kernel - 1, k1 - k0)
    starts = list(range(q0, q1 - block + 1, block))
    if starts[-1] + block < q1:  # the last box is shifted back to end at the last query
        starts.append(q1 - block)
    key_starts, patterns, fresh = [], [], []
    written = q0
    for s in starts:
        first = window_start(s, length, kernel)
        # The key box starts at the first window and must stay inside the keys given.
        r0 = min(first, k1 - span)
        if r0 < k0 or window_start(s + block - 1, length, kernel) + kernel > r0 + span:
            raise ValueError(f"keys {keys} do not cover the windows of queries {s}..{s + block - 1} (axis {length})")
        key_starts.append(r0 - k0)
        patterns.append(tuple(window_start(q, length, kernel) - r0 for q in range(s, s + block)))
        fresh.append(written - s)
        written = s + block
    return _AxisBlocks(block, span, tuple(s - q0 for s in starts), tuple(key_starts), tuple(patterns), tuple(fresh))


def _mask(
    patterns: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    spans: tuple[int, int, int],
    kernel: tuple[int, int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Additive ``[queries, keys]`` mask of one box, both ordered (t, h, w)."""
    axes = []
    for starts, span, k in zip(patterns, spans, kernel, strict=True):
        first = torch.tensor(starts, device=device)[:, None]
        index = torch.arange(span, device=device)[None, :]
        axes.append((index >= first) & (index < first + k))
    t, h, w = axes
    visible = t[:, None, None, :, None, None] & h[None, :, None, None, :, None] & w[None, None, :, None, None, :]
    q = visible.shape[0] * visible.shape[1] * visible.shape[2]
    mask = torch.zeros(visible.shape, dtype=dtype, device=device)
    return mask.masked_fill_(~visible, float("-inf")).view(q, -1)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel: tuple[int, int, int],
    extent: tuple[int, int, int],
    query_origin: tuple[int, int, int] = (0, 0, 0),
    key_origin: tuple[int, int, int] = (0, 0, 0),
) -> torch.Tensor:
    """Neighbourhood attention on head-major tensors ``[B, heads, T, H, W, d]`` (``q`` already scaled).

    ``extent``: the (T, H, W) of the whole volume the windows are taken in. ``q`` covers the positions from
    ``query_origin`` (t, h, w) on, ``k`` and ``v`` those from ``key_origin``; the keys must include every window of
    the queries. Returns the attention output shaped like ``q``.
    """
    b, heads, tq, hq, wq, d = q.shape
    tk, hk, wk = k.shape[2:5]
    sizes_q, sizes_k = (tq, hq, wq), (tk, hk, wk)
    block = block_shape(kernel, sizes_q, d)
    axes = [
        _axis_blocks(
            extent[a],
            kernel[a],
            block[a],
            (query_origin[a], query_origin[a] + sizes_q[a]),
            (key_origin[a], key_origin[a] + sizes_k[a]),
        )
        for a in range(3)
    ]
    device = q.device
    rows = b * heads
    qf, kf, vf = q.reshape(rows, -1, d), k.reshape(rows, -1, d), v.reshape(rows, -1, d)
    out = torch.empty_like(qf)
    spans = tuple(a.keys for a in axes)
    box = tuple(a.size for a in axes)

    def offsets(sizes: tuple[int, int, int], dims: tuple[int, int, int]) -> torch.Tensor:
        """Flat offsets of a box of ``sizes`` in a volume of ``dims``, ordered (t, h, w)."""
        t, h, w = (torch.arange(n, device=device) for n in sizes)
        return ((t[:, None, None] * dims[1] + h[None, :, None]) * dims[2] + w[None, None, :]).reshape(-1)

    q_offsets, k_offsets = offsets(box, sizes_q), offsets(spans, sizes_k)
    per_box = rows * (q_offsets.numel() + 2 * k_offsets.numel()) * d * q.element_size()
    most = max(1, _GATHER_BYTES // per_box)
    # Boxes are grouped by their window pattern along each axis; a group shares one mask.
    patterns = []
    for axis in axes:
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, pattern in enumerate(axis.patterns):
            groups.setdefault(pattern, []).append(i)
        patterns.append(list(groups.items()))

    def starts(axis: _AxisBlocks, boxes: list[int], query: bool) -> torch.Tensor:
        return torch.tensor([(axis.query_starts if query else axis.key_starts)[i] for i in boxes], device=device)

    def fresh(axis: _AxisBlocks, boxes: list[int], a: int) -> torch.Tensor:
        """Per box of the group, which of its queries along axis ``a`` no earlier box has written."""
        j = torch.arange(axis.size, device=device)
        return j[None, :] >= torch.tensor([axis.fresh[i] for i in boxes], device=device)[:, None]

    for tp, tb in patterns[0]:
        for hp, hb in patterns[1]:
            for wp, wb in patterns[2]:
                mask = _mask((tp, hp, wp), spans, kernel, q.dtype, device)
                qt, qh, qw = starts(axes[0], tb, True), starts(axes[1], hb, True), starts(axes[2], wb, True)
                kt, kh, kw = starts(axes[0], tb, False), starts(axes[1], hb, False), starts(axes[2], wb, False)
                q_base = ((qt[:, None, None] * hq + qh[None, :, None]) * wq + qw[None, None, :]).reshape(-1)
                k_base = ((kt[:, None, None] * hk + kh[None, :, None]) * wk + kw[None, None, :]).reshape(-1)
                ft, fh, fw = fresh(axes[0], tb, 0), fresh(axes[1], hb, 1), fresh(axes[2], wb, 2)
                keep = (
                    ft[:, None, None, :, None, None]
                    & fh[None, :, None, None, :, None]
                    & fw[None, None, :, None, None, :]
                ).reshape(q_base.numel(), -1)
                for c0 in range(0, q_base.numel(), most):
                    c1 = min(q_base.numel(), c0 + most)
                    n = c1 - c0
                    qi = (q_base[c0:c1, None] + q_offsets[None, :]).reshape(-1)
                    ki = (k_base[c0:c1, None] + k_offsets[None, :]).reshape(-1)
                    o = F.scaled_dot_product_attention(
                        qf.index_select(1, qi).view(rows, n, -1, d),
                        kf.index_select(1, ki).view(rows, n, -1, d),
                        vf.index_select(1, ki).view(rows, n, -1, d),
                        attn_mask=mask,
                        scale=1.0,
                    ).view(rows, -1, d)
                    written = keep[c0:c1].reshape(-1)
                    if not bool(written.all()):
                        chosen = written.nonzero().squeeze(1)
                        qi, o = qi[chosen], o.index_select(1, chosen)
                    out.index_copy_(1, qi, o)
    return out.view(q.shape)


def neighborhood_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: tuple[int, int, int]
) -> torch.Tensor:
    """``q``, ``k``, ``v`` ``[B, T, H, W, heads, d]`` (``q`` already scaled) -> ``[B, T, H, W, heads, d]``.

    Every axis must be at least as long as the window along it.
    """
    extent = tuple(q.shape[1:4])
    if any(e < w for e, w in zip(extent, kernel_size, strict=True)):
        raise ValueError(f"a {extent} volume is smaller than the {tuple(kernel_size)} attention window")
    if _natten is not None and q.is_cuda:
        return _natten.na3d(q, k, v, kernel_size=tuple(kernel_size), scale=1.0)
    qh, kh, vh = (x.permute(0, 4, 1, 2, 3, 5).contiguous() for x in (q, k, v))
    return attend(qh, kh, vh, tuple(kernel_size), extent).permute(0, 2, 3, 4, 1, 5)


def natten_available() -> bool:
    return _natten is not None


__all__ = ["attend", "block_shape", "natten_available", "neighborhood_attention", "window_start"]
