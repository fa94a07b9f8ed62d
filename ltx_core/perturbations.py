"""Which attention paths a guidance pass switches off, per batch item and per block.

Guidance compares the model with weakened variants of itself: spatio-temporal guidance (STG) replaces a stream's
self-attention by its value projection at chosen blocks, and modality isolation removes the audio->video and
video->audio cross-attention. Each batch item carries its own set, so a sampler can stack the conditional,
unconditional and perturbed passes into one batch and run the model once, without copying it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import torch

from .errors import InputError


class Skip(str, Enum):
    """An attention path that can be switched off."""

    VIDEO_SELF_ATTENTION = "video_self_attention"  # STG: attention output replaced by the value projection
    AUDIO_SELF_ATTENTION = "audio_self_attention"  # STG for the audio stream
    AUDIO_TO_VIDEO = "audio_to_video"  # the video stream stops listening to audio (residual dropped)
    VIDEO_TO_AUDIO = "video_to_audio"  # the audio stream stops listening to video


@dataclass(frozen=True)
class Perturbation:
    """Switch off ``skip`` at the transformer blocks in ``blocks`` (``None``: every block)."""

    skip: Skip
    blocks: frozenset[int] | None = None

    def __init__(self, skip: Skip | str, blocks: Iterable[int] | None = None):
        object.__setattr__(self, "skip", Skip(skip))
        object.__setattr__(self, "blocks", None if blocks is None else frozenset(int(b) for b in blocks))

    def applies(self, skip: Skip, block: int) -> bool:
        return self.skip is skip and (self.blocks is None or block in self.blocks)


def stg(blocks: Iterable[int], video: bool = True, audio: bool = True) -> tuple[Perturbation, ...]:
    """Spatio-temporal guidance perturbations: self-attention value passthrough at ``blocks``."""
    blocks = tuple(blocks)
    chosen = [(video, Skip.VIDEO_SELF_ATTENTION), (audio, Skip.AUDIO_SELF_ATTENTION)]
    return tuple(Perturbation(skip, blocks) for wanted, skip in chosen if wanted)


def isolate_modalities() -> tuple[Perturbation, ...]:
    """Modality isolation: no audio<->video cross-attention in any block."""
    return (Perturbation(Skip.AUDIO_TO_VIDEO), Perturbation(Skip.VIDEO_TO_AUDIO))


@dataclass(frozen=True)
class Perturbations:
    """One tuple of :class:`Perturbation` per batch item (an empty tuple: the unperturbed model)."""

    per_item: tuple[tuple[Perturbation, ...], ...]

    @classmethod
    def of(cls, per_item: Sequence[Iterable[Perturbation]]) -> Perturbations:
        return cls(tuple(tuple(p) for p in per_item))

    @classmethod
    def same(cls, batch: int, perturbations: Iterable[Perturbation]) -> Perturbations:
        """The same perturbations for every one of ``batch`` items."""
        shared = tuple(perturbations)
        return cls((shared,) * batch)

    @property
    def batch(self) -> int:
        return len(self.per_item)

    def check(self, batch: int, num_blocks: int) -> None:
        """Raise unless there is one entry per batch item and every block index exists."""
        if self.batch != batch:
            raise InputError(f"perturbations are given for {self.batch} batch items but the batch has {batch}")
        for item in self.per_item:
            for p in item:
                if p.blocks is not None and any(not 0 <= b < num_blocks for b in p.blocks):
                    raise InputError(
                        f"perturbation {p.skip.value} names blocks {sorted(p.blocks)}; the model has blocks "
                        f"0..{num_blocks - 1}"
                    )

    def items(self, skip: Skip, block: int) -> list[bool]:
        """For each batch item: is ``skip`` switched off at ``block``?"""
        return [any(p.applies(skip, block) for p in item) for item in self.per_item]

    def select(self, skip: Skip, block: int, device: torch.device) -> bool | torch.Tensor | None:
        """``None`` (no item skips), ``True`` (all do) or a ``[B]`` float 0/1 tensor (1: this item skips)."""
        flags = self.items(skip, block)
        if not any(flags):
            return None
        if all(flags):
            return True
        return torch.tensor(flags, dtype=torch.float32, device=device)
