"""Multi-head attention as LTX-2 uses it everywhere (transformer streams, audio<->video, text connectors).

q and k get a learned RMSNorm over the whole inner width (across heads) before RoPE; the kernel is PyTorch's
``scaled_dot_product_attention`` (no T x T mask is built unless one is given). LTX-2.3 adds a per-head output gate
``2 * sigmoid(to_gate_logits(x))``. A batch item can skip the attention and pass the value projection through
unchanged (spatio-temporal guidance), which costs no q/k work when every item skips.

Given a reusing :class:`.layers.Workspace` (the transformer passes one per forward), the projections, q/k
normalisation and RoPE write into its buffers and the per-head gate scales the attention output in place, so a
call allocates only what ``scaled_dot_product_attention`` returns; the result is the workspace's ``o`` buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Workspace, linear, rms_factor
from .parallel import TokenShard
from .rope import RopeTables, apply_rope, apply_rope_


class Attention(nn.Module):
    def __init__(
        self,
        query_dim: int,
        heads: int,
        head_dim: int,
        context_dim: int | None = None,
        gated: bool = False,
        eps: float = 1e-6,
    ):
        super().__init__()
        inner = heads * head_dim
        context_dim = query_dim if context_dim is None else context_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(query_dim, inner)
        self.to_k = nn.Linear(context_dim, inner)
        self.to_v = nn.Linear(context_dim, inner)
        self.q_norm = nn.RMSNorm(inner, eps=eps)
        self.k_norm = nn.RMSNorm(inner, eps=eps)
        self.to_gate_logits = nn.Linear(query_dim, heads) if gated else None
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Identity()])

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        rope: RopeTables | None = None,
        k_rope: RopeTables | None = None,
        passthrough: torch.Tensor | bool | None = None,
        workspace: Workspace | None = None,
        sequence: TokenShard | None = None,
        context_shard: TokenShard | None = None,
    ) -> torch.Tensor:
        """``x``: ``[B, T, query_dim]``; ``context``: ``[B, S, context_dim]`` (``x`` when None).

        ``mask``: additive ``[B, 1 or H, T, S]``. ``rope`` rotates q (and k unless ``k_rope`` is given).
        ``passthrough``: True, or a ``[B]`` 0/1 tensor: those items return ``to_v(context)`` instead of attending.
        ``workspace``: where the intermediates go (see the module notes); default: fresh tensors unless autograd is
        off. ``sequence``: ``x`` is this rank's share of a self-attention's tokens (:mod:`.parallel`); the
        attention still covers all of them. ``context_shard``: ``context`` is this rank's share of the keys (``x``
        holds every query); the result is attention over every rank's keys.
        """
        ws = workspace if workspace is not None else Workspace.for_call()
        context = x if context is None else context
        inner = self.heads * self.head_dim
        # q, k and v side by side in one slot (the feed-forward reuses it), v first: it is all a passthrough needs
        v_out, q_out, k_out = ws.carve(
            "v",
            [(*context.shape[:-1], inner), (*x.shape[:-1], inner), (*context.shape[:-1], inner)],
            x.dtype,
            x.device,
        )
        v = self._project(context, self.to_v, v_out, ws)
        if passthrough is True:
            out = v
        else:
            q = self._norm_and_rotate(self._project(x, self.to_q, q_out, ws), self.q_norm, rope, ws)
            k_tables = rope if rope is None or k_rope is None else k_rope
            k = self._norm_and_rotate(self._project(context, self.to_k, k_out, ws), self.k_norm, k_tables, ws)
            if sequence is not None:
                out = sequence.attend(q, k, v, mask, self._attend)
            elif context_shard is not None:
                out = context_shard.attend_to_shards(q, k, v, mask, self.heads)
            else:
                out = self._attend(q, k, v, mask, self.heads)
            if isinstance(passthrough, torch.Tensor):
                keep = (1 - passthrough).to(out.dtype).view(-1, 1, 1)
                out = out * keep + v * (1 - keep)
        if self.to_gate_logits is not None:
            gates = (2.0 * torch.sigmoid(linear(x, self.to_gate_logits))).unsqueeze(-1)  # [B, T, H, 1]
            heads = out.unflatten(-1, (self.heads, self.head_dim))
            # the attention output (or v) is this call's own tensor: scale it where it is
            out = heads.mul_(gates).flatten(-2) if ws.reuse else (heads * gates).flatten(-2)
        if not ws.reuse:
            return linear(out, self.to_out[0])
        return linear(
            out, self.to_out[0], ws.get("o", (*out.shape[:-1], self.to_out[0].out_features), out.dtype, out.device)
        )

    @staticmethod
    def _project(x: torch.Tensor, layer: nn.Linear, out: torch.Tensor, ws: Workspace) -> torch.Tensor:
        return linear(x, layer, out if ws.reuse else None)

    def _norm_and_rotate(
        self, t: torch.Tensor, norm: nn.RMSNorm, rope: RopeTables | None, ws: Workspace
    ) -> torch.Tensor:
        if not ws.reuse:
            return _norm_and_rotate(t, norm, rope)
        return _norm_and_rotate_(t, norm, rope, ws)

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int
    ) -> torch.Tensor:
        """``[B, *, heads*D]`` in and out (``heads``: all of the layer's, or a sequence-parallel rank's group)."""
        b = q.shape[0]
        q, k, v = (t.view(b, -1, heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(b, -1, heads * self.head_dim)


def _norm_and_rotate(t: torch.Tensor, norm: nn.RMSNorm, rope: RopeTables | None) -> torch.Tensor:
    """q/k RMSNorm then RoPE. Below float32 both run in float32 and the result is cast back: rotation angles
    reach ~1e4 rad, where half-precision arithmetic would visibly move positions."""
    if t.dtype == torch.float32:
        t = norm(t)
        return t if rope is None else apply_rope(t, rope)
    weight = None if norm.weight is None else norm.weight.float()
    out = F.rms_norm(t.float(), norm.normalized_shape, weight, norm.eps)
    if rope is not None:
        out = apply_rope(out, rope)
    return out.to(t.dtype)


def _norm_and_rotate_(t: torch.Tensor, norm: nn.RMSNorm, rope: RopeTables | None, ws: Workspace) -> torch.Tensor:
    """:func:`_norm_and_rotate` overwriting ``t`` (a workspace buffer): float32 work in the workspace's ``f32`` /
    ``rope`` buffers below float32, in ``t`` itself at float32. Returns ``t``."""
    work = t if t.dtype == torch.float32 else ws.like("f32", t, torch.float32).copy_(t)
    eps = norm.eps if norm.eps is not None else torch.finfo(torch.float32).eps
    work.mul_(rms_factor(work, eps))
    if norm.weight is not None:
        work.mul_(norm.weight.float())
    if rope is not None:
        apply_rope_(work, rope, ws.get("rope", (work.numel() // 2,), torch.float32, work.device))
    if work is not t:
        t.copy_(work)
    return t
