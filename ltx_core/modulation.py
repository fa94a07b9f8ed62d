"""Per-token AdaLN modulation computed once per distinct timestep.

Each token carries its own timestep (conditioning tokens sit at 0 while the rest are noisy), so the reference
projects a ``[B, T, rows x D]`` tensor through the AdaLN MLP: at full width that is an 800-GFLOP matmul and a
~400 MB tensor kept alive for the whole forward. A sample holds only a handful of distinct timesteps, so we run
the MLP on those values alone and gather rows per token when a block asks for one; a sample whose tokens share a
timestep gets a ``[B, 1, D]`` row that broadcasts without any gather.

Tokens that share a timestep usually come in a few long runs (a conditioned first frame, then the generated
frames), so :meth:`TimestepModulation.runs` hands out one ``[B, 1, D]`` row per run of tokens whose index is the
same in every batch item: the block modulates each run with a broadcast row instead of a gathered token-sized
tensor. Beyond :data:`MAX_RUNS` runs (scattered masks) it falls back to the per-token gather.
"""

from __future__ import annotations

import torch

from .layers import AdaLNSingle

# More runs than this and the per-token gather (one op) is cheaper than an op per run.
MAX_RUNS = 16


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
        self._runs = _token_runs(self.index)

    def row(self, table: torch.Tensor, i: int, plus: float = 0.0) -> torch.Tensor:
        """``table[i] + modulation row i (+ plus)`` per token, float32: ``[B, T, D]`` (``[B, 1, D]`` when uniform).

        ``plus=1`` gives a scale's ``1 + scale`` on the distinct values, before they are spread over the tokens."""
        row = table[i].float() + self.values[:, i].float()
        return (row + plus if plus else row)[self.index]

    def runs(self, table: torch.Tensor, i: int, plus: float = 0.0) -> list[tuple[slice, torch.Tensor]]:
        """:meth:`row` split by runs of tokens: ``(token slice, row)`` pairs covering the tokens in order, each row
        ``[B, 1, D]`` (or one ``[B, T, D]`` row for all tokens when they form too many runs)."""
        row = table[i].float() + self.values[:, i].float()
        return self._by_runs(row + plus if plus else row)

    def embedded_runs(self) -> list[tuple[slice, torch.Tensor]]:
        """:meth:`embedded_tokens` split like :meth:`runs`: ``(token slice, [B, 1, D] float32 embedding)`` pairs."""
        return self._by_runs(self.embedded.float())

    def _by_runs(self, values: torch.Tensor) -> list[tuple[slice, torch.Tensor]]:
        """Per-value rows ``[U, D]`` -> ``(token slice, [B, 1, D] row)`` per run (one ``[B, T, D]`` gather past
        :data:`MAX_RUNS` runs)."""
        if self._runs is None:
            return [(slice(None), values[self.index])]
        return [(tokens, values[rows].unsqueeze(1)) for tokens, rows in self._runs]

    def embedded_tokens(self) -> torch.Tensor:
        """The timestep embedding per token, ``[B, T or 1, D]`` (what the output head modulates with)."""
        return self.embedded[self.index]


def _token_runs(index: torch.Tensor) -> list[tuple[slice, slice | torch.Tensor]] | None:
    """``[B, T]`` (or ``[B, 1]``) modulation indices -> ``(token slice, rows of the [U, D] values)`` per run of
    tokens whose index stays the same in every batch item, or None past :data:`MAX_RUNS` runs. The rows are a
    slice when the batch items use consecutive values (always at batch 1), so picking them is a view, not a gather."""
    if index.shape[1] == 1:
        bounds = [0, None]
    else:
        changes = (index[:, 1:] != index[:, :-1]).any(0).nonzero().flatten()
        if changes.numel() >= MAX_RUNS:
            return None
        bounds = [0, *(int(c) + 1 for c in changes.tolist()), index.shape[1]]
    runs = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        rows = index[:, start]
        first = int(rows[0])
        if rows.tolist() == list(range(first, first + rows.numel())):
            rows = slice(first, first + rows.numel())
        runs.append((slice(start, stop), rows))
    return runs
