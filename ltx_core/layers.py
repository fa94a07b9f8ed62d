"""Small building blocks shared by the transformer, the text connectors and the video VAE decoder.

Module attribute names are the checkpoint's key names (``linear_1``, ``net.0.proj`` ...), so the official
state dicts load into these classes without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TIMESTEP_FEATURES = 256


def rms_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Root-mean-square normalisation over the last dimension, without a learned scale."""
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


def rms_factor(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``rsqrt(mean(x^2) + eps)`` per row, ``[..., 1]``: what :func:`rms_norm` multiplies by.

    One fused reduction over ``x`` instead of the square, mean and product passes (and two ``x``-sized temporaries)
    of ``F.rms_norm``'s CPU path; the caller applies it where the result has to go anyway. The norm is rounded
    once more than a mean of squares would be (relative 1e-7)."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return (norm.square() / x.shape[-1] + eps).rsqrt()


class Workspace:
    """Activation buffers of one forward, reused by every block instead of allocated per operation.

    A transformer block at full width produces tens of token-sized intermediates; fresh allocations of that size
    are new pages every time on the CPU (faulted in at ~1 GB/s, slower than the arithmetic on them) and a source
    of fragmentation elsewhere. Each *role* (``q``, ``o``, ``ff`` ...) lives in a *slot*, a byte buffer that grows
    to the largest request and lives until the forward ends; roles never alive at the same time share a slot
    (:data:`SLOTS`: the feed-forward's hidden layer and the attention's q/k/v, the RoPE spare and the output).
    The caller owns the lifetimes: a role's content is valid until the next request of any role of its slot.

    ``reuse=False`` hands out fresh tensors and tells callers to avoid in-place and ``out=`` forms (what autograd
    needs when gradients are on)."""

    # role -> slot, for the roles that share one (any other role is its own slot)
    SLOTS = {"q": "big", "k": "big", "v": "big", "ff": "big", "rope": "o", "ctx": "kv", "v2a.kv": "kv"}

    def __init__(self, reuse: bool = True):
        self.reuse = reuse
        self._slots: dict[tuple[str, torch.device], torch.Tensor] = {}

    @classmethod
    def for_call(cls) -> Workspace:
        """A workspace that reuses buffers unless autograd is recording."""
        return cls(reuse=not torch.is_grad_enabled())

    def get(self, role: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return self.carve(role, [shape], dtype, device)[0]

    def carve(
        self, role: str, shapes: list[tuple[int, ...]], dtype: torch.dtype, device: torch.device
    ) -> list[torch.Tensor]:
        """Several tensors at once, one after another in the role's slot (all valid together)."""
        if not self.reuse:
            return [torch.empty(shape, dtype=dtype, device=device) for shape in shapes]
        size = torch.empty((), dtype=dtype).element_size()
        counts = [math.prod(shape) for shape in shapes]
        key = (self.SLOTS.get(role, role), torch.device(device))
        slot = self._slots.get(key)
        if slot is None or slot.numel() < size * sum(counts):
            self._slots.pop(key, None)  # release the smaller one before allocating its replacement
            slot = self._slots[key] = torch.empty(size * sum(counts), dtype=torch.uint8, device=device)
        flat = slot[: size * sum(counts)].view(dtype)
        out, start = [], 0
        for shape, count in zip(shapes, counts, strict=True):
            out.append(flat[start : start + count].view(shape))
            start += count
        return out

    def like(self, role: str, t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        return self.get(role, tuple(t.shape), dtype or t.dtype, t.device)


def linear(x: torch.Tensor, layer: nn.Linear, out: torch.Tensor | None = None) -> torch.Tensor:
    """``layer(x)`` written into ``out`` (same kernel as ``F.linear``: ``addmm`` on the flattened tokens).

    Reads the layer's weight and bias at call time, so weights swapped in by ``torch.func.functional_call`` (LoRA
    patches, streamed or float8 blocks) are the ones used. A float8 weight (float8 compute, see
    :mod:`.offload`) runs as :func:`float8_linear` with the layer's ``weight_scale``."""
    weight, bias = layer.weight, layer.bias
    if weight.dtype in FLOAT8_TYPES:
        return float8_linear(x, weight, layer.weight_scale, bias, out)
    if out is None:
        return layer(x)
    rows = x.reshape(-1, x.shape[-1])
    flat = out.view(-1, weight.shape[0])
    if bias is None:
        torch.mm(rows, weight.t(), out=flat)
    else:
        torch.addmm(bias, rows, weight.t(), out=flat)
    return out


FLOAT8_TYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
FLOAT8 = torch.float8_e4m3fn
FLOAT8_MAX = torch.finfo(FLOAT8).max


def float8_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x @ (weight * weight_scale).T + bias`` as one float8 matmul (``torch._scaled_mm``), in ``x``'s dtype.

    ``weight``: ``[out, in]`` float8 codes with float32 row scales ``weight_scale`` ``[out, 1]``; ``x`` is quantised
    here, one scale per token (``max |row| / 448``), so both operands use the whole float8 range and the matmul
    accumulates in float32 on the tensor cores of cards that have float8 ones (twice bfloat16's rate on Hopper)."""
    rows = x.reshape(-1, x.shape[-1])
    amax = rows.abs().amax(dim=1, keepdim=True).float()
    scale = torch.where(amax > 0, amax / FLOAT8_MAX, 1.0)
    # the division in x's own dtype keeps the quantised copy the only token-sized temporary besides x; its
    # rounding (8 bits for bfloat16) is finer than float8's 4, and the clamp catches the one that lands past 448
    codes = torch.div(rows, scale.to(rows.dtype)).clamp_(-FLOAT8_MAX, FLOAT8_MAX).to(FLOAT8)
    flat = None if out is None else out.view(-1, weight.shape[0])
    result = torch._scaled_mm(
        codes,
        weight.t(),
        scale_a=scale,
        scale_b=weight_scale.reshape(1, -1).float(),
        bias=None if bias is None else bias.to(x.dtype),
        out_dtype=x.dtype,
        out=flat,
    )
    return out if out is not None else result.view(*x.shape[:-1], weight.shape[0])


def sinusoidal_embedding(
    t: torch.Tensor, features: int = TIMESTEP_FEATURES, max_period: float = 10000.0
) -> torch.Tensor:
    """``[N] -> [N, features]`` float32 features ``[cos(t w_i), sin(t w_i)]`` with ``w_i = max_period^(-i/half)``."""
    half = features // 2
    exponents = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device)
    angles = t.float()[:, None] * torch.exp(exponents / half)[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepMLP(nn.Module):
    """Linear -> SiLU -> Linear on sinusoidal timestep features."""

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TimestepEmbedder(nn.Module):
    """Scalar timesteps -> ``[N, dim]`` embeddings (sinusoid of 256 features, then an MLP)."""

    def __init__(self, dim: int):
        super().__init__()
        self.timestep_embedder = TimestepMLP(TIMESTEP_FEATURES, dim)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``t``: ``[N]`` timesteps already scaled to the 0..1000 range."""
        return self.timestep_embedder(sinusoidal_embedding(t).to(dtype))


class AdaLNSingle(nn.Module):
    """adaLN-single: one timestep embedding per token, projected to ``coefficients`` modulation rows of ``dim``."""

    def __init__(self, dim: int, coefficients: int):
        super().__init__()
        self.coefficients = coefficients
        self.emb = TimestepEmbedder(dim)
        self.linear = nn.Linear(dim, coefficients * dim)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``t``: ``[N]`` -> (modulation ``[N, coefficients * dim]``, embedded timestep ``[N, dim]``)."""
        embedded = self.emb(t, dtype)
        return self.linear(F.silu(embedded)), embedded


class GELUProjection(nn.Module):
    """Linear followed by tanh-approximated GELU (key ``proj``)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """``net.0`` (Linear + GELU-tanh, 4x wider) -> ``net.2`` (Linear back)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GELUProjection(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(
        self, x: torch.Tensor, chunk_tokens: int | None = None, workspace: Workspace | None = None
    ) -> torch.Tensor:
        """``chunk_tokens`` bounds the width-4x activation to that many tokens at a time (same result).

        With a reusing ``workspace`` the hidden activation and the output are its ``ff`` and ``o`` buffers (the
        output is valid until the next ``o`` request) and GELU runs in place."""
        up, down = self.net[0].proj, self.net[2]
        if workspace is None or not workspace.reuse:
            if chunk_tokens is None or x.shape[-2] <= chunk_tokens:
                return self._plain(x)
            return torch.cat([self._plain(part) for part in x.split(chunk_tokens, dim=-2)], dim=-2)
        x = x.contiguous()
        out = workspace.get("o", (*x.shape[:-1], down.out_features), x.dtype, x.device)
        # Tokens are independent rows here, so the pieces are row ranges of the flattened batch (as many rows as
        # the chunked path above holds at once: chunk_tokens per batch item).
        rows, flat = x.view(-1, x.shape[-1]), out.view(-1, down.out_features)
        step = rows.shape[0]
        if chunk_tokens is not None:
            step = max(1, min(step, chunk_tokens * (rows.shape[0] // max(1, x.shape[-2]))))
        for start in range(0, rows.shape[0], step):
            stop = min(start + step, rows.shape[0])
            hidden = workspace.get("ff", (stop - start, up.out_features), x.dtype, x.device)
            linear(rows[start:stop], up, hidden)
            torch.ops.aten.gelu_(hidden, approximate="tanh")
            linear(hidden, down, flat[start:stop])
        return out

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        """``self.net(x)`` through :func:`linear` (the same ops unless the weights are float8)."""
        return linear(F.gelu(linear(x, self.net[0].proj), approximate="tanh"), self.net[2])
