"""Multimodal guidance: combining the model's x0 predictions under CFG, STG and modality isolation.

Per step and per stream, up to four predictions exist: ``cond`` (prompt), ``uncond`` (negative prompt), ``perturbed``
(self-attention replaced by its values at the STG blocks) and ``isolated`` (no audio<->video attention). They are
combined as ``cond + (cfg-1)(cond-uncond) + stg(cond-perturbed) + (modality-1)(cond-isolated)``, optionally pulled
back toward ``cond``'s standard deviation (``rescale``). A pass is only computed when a stream needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .config import LTX23, LTX25


@dataclass(frozen=True)
class GuidanceParams:
    """Guidance for one stream (video or audio)."""

    cfg: float = 1.0
    stg: float = 0.0
    stg_blocks: tuple[int, ...] = field(default_factory=tuple)
    modality: float = 1.0
    rescale: float = 0.0

    @property
    def needs_uncond(self) -> bool:
        return not math.isclose(self.cfg, 1.0)

    @property
    def needs_perturbed(self) -> bool:
        return not math.isclose(self.stg, 0.0) and bool(self.stg_blocks)

    @property
    def needs_isolated(self) -> bool:
        return not math.isclose(self.modality, 1.0)


def default_guidance(variant: str | None) -> tuple[GuidanceParams, GuidanceParams]:
    """(video, audio) defaults of the official pipelines: STG at block 29 for LTX-2, block 28 for LTX-2.3."""
    # LTX-2.5 keeps LTX-2.3's 48-block layout and recipe (ltx-pipelines 1.2.0 uses the 2.3 parameters for 2.4+)
    block = (28,) if variant in (LTX23, LTX25) else (29,)
    video = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=block, modality=3.0, rescale=0.7)
    audio = GuidanceParams(cfg=7.0, stg=1.0, stg_blocks=block, modality=3.0, rescale=0.7)
    return video, audio


def default_steps(variant: str | None) -> int:
    return 30 if variant in (LTX23, LTX25) else 40


def guided_x0(
    params: GuidanceParams,
    cond: torch.Tensor,
    uncond: torch.Tensor | None = None,
    perturbed: torch.Tensor | None = None,
    isolated: torch.Tensor | None = None,
) -> torch.Tensor:
    """Combine predictions of one stream; a prediction may be None when its scale makes it irrelevant."""
    out = cond
    if params.needs_uncond:
        out = out + (params.cfg - 1) * (cond - uncond)
    if params.needs_perturbed:
        out = out + params.stg * (cond - perturbed)
    if params.needs_isolated:
        out = out + (params.modality - 1) * (cond - isolated)
    if params.rescale != 0 and out is not cond:
        # the spread of the guided prediction is pulled back toward that of the conditional one (whole tensor)
        factor = params.rescale * (cond.std() / out.std()) + (1 - params.rescale)
        out = out * factor
    return out
