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

    def forward(self, x: torch.Tensor, chunk_tokens: int | None = None) -> torch.Tensor:
        """``chunk_tokens`` bounds the width-4x activation to that many tokens at a time (same result)."""
        if chunk_tokens is None or x.shape[-2] <= chunk_tokens:
            return self.net(x)
        return torch.cat([self.net(part) for part in x.split(chunk_tokens, dim=-2)], dim=-2)
