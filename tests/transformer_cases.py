"""Transformer inputs for the tiny models, built once and handed to both our model and the reference."""

from __future__ import annotations

import reference  # noqa: F401  (first: sets up the reference import safely, see tests/reference.py)

# isort: split

from dataclasses import dataclass, replace

import torch
from ltx_core.guidance.perturbations import (
    BatchedPerturbationConfig,
    PerturbationConfig,
    PerturbationType,
)
from ltx_core.guidance.perturbations import Perturbation as RefPerturbation
from ltx_core.model.transformer.modality import Modality

from ltx_av.ltx_core import patchify
from ltx_av.ltx_core.config import TransformerConfig
from ltx_av.ltx_core.perturbations import Perturbation, Perturbations, Skip
from ltx_av.ltx_core.transformer import StreamInput

FPS = 24.0
_REF_SKIPS = {
    Skip.VIDEO_SELF_ATTENTION: PerturbationType.SKIP_VIDEO_SELF_ATTN,
    Skip.AUDIO_SELF_ATTENTION: PerturbationType.SKIP_AUDIO_SELF_ATTN,
    Skip.AUDIO_TO_VIDEO: PerturbationType.SKIP_A2V_CROSS_ATTN,
    Skip.VIDEO_TO_AUDIO: PerturbationType.SKIP_V2A_CROSS_ATTN,
}


@dataclass
class Case:
    video: StreamInput | None
    audio: StreamInput | None

    def reference(self) -> tuple[Modality | None, Modality | None]:
        return _modality(self.video), _modality(self.audio)


def _modality(s: StreamInput | None) -> Modality | None:
    if s is None:
        return None
    mask = None if s.context_mask is None else s.context_mask.long()  # the reference reads floats as additive
    sigma = torch.as_tensor(s.sigma, dtype=torch.float32).reshape(-1).expand(s.batch).contiguous()
    return Modality(
        latent=s.latent,
        sigma=sigma,
        timesteps=s.timesteps,
        positions=s.positions,
        context=s.context,
        enabled=s.enabled,
        context_mask=mask,
        attention_mask=s.self_attention_mask,
    )


def make_case(
    config: TransformerConfig,
    *,
    batch: int = 1,
    grid: tuple[int, int, int] = (3, 4, 6),
    audio_tokens: int = 7,
    sigmas: tuple[float, ...] = (0.7,),
    audio_sigmas: tuple[float, ...] | None = None,
    condition_first_frame: bool = False,
    keyframe_at: int | None = None,
    keyframe_strength: float = 1.0,
    attention_strength: float | None = None,
    context_tokens: int = 5,
    mask_context: bool = False,
    video: bool = True,
    audio: bool = True,
    seed: int = 0,
) -> Case:
    """A forward's inputs. ``sigmas`` gives one sigma per batch item (cycled); the first latent frame can be
    replaced (timestep 0) and a one-frame keyframe group appended at pixel frame ``keyframe_at``."""
    g = torch.Generator().manual_seed(seed)
    sig = torch.tensor([sigmas[i % len(sigmas)] for i in range(batch)])
    asig = sig if audio_sigmas is None else torch.tensor([audio_sigmas[i % len(audio_sigmas)] for i in range(batch)])
    v1 = config.text_path_version == 1
    vs = as_ = None
    if video:
        f, h, w = grid
        n = f * h * w
        latent = torch.randn(batch, n, 128, generator=g)
        timesteps = sig[:, None].expand(batch, n).clone()
        positions = patchify.video_positions(batch, f, h, w, FPS)
        if condition_first_frame:
            timesteps[:, : h * w] = 0.0
        if keyframe_at is not None:
            latent = torch.cat([latent, torch.randn(batch, h * w, 128, generator=g)], dim=1)
            kt = (1.0 - keyframe_strength) * sig[:, None].expand(batch, h * w)
            timesteps = torch.cat([timesteps, kt], dim=1)
            positions = torch.cat([positions, patchify.keyframe_positions(batch, 1, h, w, keyframe_at, FPS)], dim=2)
        self_mask = None
        if attention_strength is not None:
            t = latent.shape[1]
            self_mask = torch.ones(batch, t, t)
            self_mask[:, :n, n:] = attention_strength  # generated tokens listen to the keyframe more weakly
            self_mask[:, n:, :n] = attention_strength
            self_mask[-1, 0, n:] = 0.0  # and one token not at all
        vs = StreamInput(
            latent=latent,
            sigma=sig,
            timesteps=timesteps,
            positions=positions,
            context=torch.randn(
                batch, context_tokens, config.caption_channels if v1 else config.video_dim, generator=g
            ),
            context_mask=_context_mask(batch, context_tokens) if mask_context else None,
            self_attention_mask=self_mask,
        )
    if audio:
        as_ = StreamInput(
            latent=torch.randn(batch, audio_tokens, 128, generator=g),
            sigma=asig,
            timesteps=asig[:, None].expand(batch, audio_tokens).clone(),
            positions=patchify.audio_positions(batch, audio_tokens),
            context=torch.randn(
                batch, context_tokens, config.caption_channels if v1 else config.audio_dim, generator=g
            ),
            context_mask=_context_mask(batch, context_tokens) if mask_context else None,
        )
    return Case(vs, as_)


def _context_mask(batch: int, tokens: int) -> torch.Tensor:
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    mask[-1, -2:] = False  # the last item's prompt is two tokens shorter
    return mask


def disabled(s: StreamInput) -> StreamInput:
    return replace(s, enabled=False)


def reference_perturbations(p: Perturbations | None, batch: int) -> BatchedPerturbationConfig:
    if p is None:
        return BatchedPerturbationConfig.empty(batch)
    return BatchedPerturbationConfig(
        [
            PerturbationConfig(
                [RefPerturbation(_REF_SKIPS[q.skip], None if q.blocks is None else sorted(q.blocks)) for q in item]
            )
            for item in p.per_item
        ]
    )


def stg_at(block: int) -> tuple[Perturbation, ...]:
    return (Perturbation(Skip.VIDEO_SELF_ATTENTION, [block]), Perturbation(Skip.AUDIO_SELF_ATTENTION, [block]))
