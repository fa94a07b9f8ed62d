"""Per-token AdaLN modulation computed once per distinct timestep.

Each token carries its own timestep (conditioning tokens sit at 0 while the rest are noisy), so the reference
projects a ``[B, T, rows x D]`` tensor through the AdaLN MLP: at full width that is an 800-GFLOP matmul and a
~400 MB tensor kept alive for the whole forward. A sample holds only a handful of distinct timesteps, so we run
the MLP on those values alone and gather rows per token when a block asks for one; a sample whose tokens share a
timestep gets a ``[B, 1, D]`` row that broadcasts without any gather.
"""

from __future__ import annotations

import torch

from .layers import AdaLNSingle


class TimestepModulation:
    """AdaLN outputs for a ``[B, T]`` grid of timesteps (already multiplied by the timestep scale)."""

    def __init__(self, adaln: AdaLNSingle, timesteps: torch.Tensor, dtype: torch.dtype):
        b = timesteps.shape[0]
        if timesteps.shape[1] == 1 or bool((timesteps == timesteps[:, :1]).all()):
            values = timesteps[:, 0]
            self.index = torch.arange(b, device=timesteps.device).view(b, 1)
        else:
            values, inverse = torch.unique(timesteps.reshape(-1), return_inverse=True)
            self.index = inverse.view(b, -1)
        modulation, embedded = adaln(values, dtype)
        self.values = modulation.view(values.shape[0], adaln.coefficients, -1)  # [U, rows, D]
        self.embedded = embedded  # [U, D]

    def row(self, table: torch.Tensor, i: int, plus: float = 0.0) -> torch.Tensor:
        """``table[i] + modulation row i (+ plus)`` per token, float32: ``[B, T, D]`` (``[B, 1, D]`` when uniform).

        ``plus=1`` gives a scale's ``1 + scale`` on the distinct values, before they are spread over the tokens."""
        row = table[i].float() + self.values[:, i].float()
        return (row + plus if plus else row)[self.index]

    def embedded_tokens(self) -> torch.Tensor:
        """The timestep embedding per token, ``[B, T or 1, D]`` (what the output head modulates with)."""
        return self.embedded[self.index]
