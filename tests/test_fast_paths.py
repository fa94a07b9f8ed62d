"""The GPU fast paths, proven on the CPU: attention calls without materialised masks where none is needed, float8
compute through ``torch._scaled_mm``, and a block that ``torch.compile`` traces without graph breaks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from transformer_cases import make_case

from ltx_av.ltx_core import transformer as transformer_module
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.transformer import AudioVideoTransformer


@pytest.fixture(scope="module")
def models(tiny_checkpoints):
    return {v: build_component(p, "transformer", AudioVideoTransformer) for v, p in tiny_checkpoints.items()}


def _spy_attention(monkeypatch) -> list:
    """Record the ``attn_mask`` of every ``scaled_dot_product_attention`` call (the kernel still runs)."""
    masks = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, *args, **kwargs):
        masks.append(attn_mask)
        return real(q, k, v, attn_mask, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return masks


# -- attention without masks -----------------------------------------------------------------------------------


def test_all_real_masks_reach_attention_as_no_mask(models, variant, monkeypatch, one_thread):
    """A prompt mask of ones and a self-attention mask of full strength mean no mask: every attention call of the
    forward gets ``attn_mask=None`` (flash / memory-efficient kernels on CUDA), and the result is the maskless
    forward's, bit for bit."""
    model = models[variant]
    case = make_case(model.config, context_tokens=6)
    t = case.video.tokens
    video = dataclasses.replace(
        case.video, context_mask=torch.ones(1, 6, dtype=torch.bool), self_attention_mask=torch.ones(1, t, t)
    )
    audio = dataclasses.replace(case.audio, context_mask=torch.ones(1, 6))
    with torch.no_grad():
        plain = model(case.video, case.audio)
        masks = _spy_attention(monkeypatch)
        masked = model(video, audio)
    assert len(masks) == 6 * model.config.num_layers
    assert all(m is None for m in masks)
    for a, b in zip(masked, plain, strict=True):
        assert torch.equal(a, b)


def test_padded_prompt_tokens_are_dropped_not_masked(models, variant, monkeypatch, one_thread):
    """Batch 1 with two padded prompt tokens: the padding is cut from the text context, attention runs unmasked,
    and the velocity equals the masked computation's (additive bias on the padding) to float32 rounding, and the
    unpadded prompt's exactly."""
    model = models[variant]
    case = make_case(model.config, context_tokens=7, mask_context=True)  # the last two tokens are padding
    short = make_case(model.config, context_tokens=7)
    short_video = dataclasses.replace(short.video, context=case.video.context[:, :5])
    short_audio = dataclasses.replace(short.audio, context=case.audio.context[:, :5])
    with torch.no_grad():
        unpadded = model(short_video, short_audio)
        with monkeypatch.context() as patch:
            patch.setattr(transformer_module, "_drop_padding", lambda context, mask: (context, mask))
            biased = model(case.video, case.audio)
        masks = _spy_attention(monkeypatch)
        dropped = model(case.video, case.audio)
    assert masks and all(m is None for m in masks)
    for d, b, u in zip(dropped, biased, unpadded, strict=True):
        assert torch.equal(d, u)
        assert (d - b).abs().max() <= 1e-5 * b.abs().max()


def test_padding_of_some_items_keeps_a_mask(models, monkeypatch, one_thread):
    """Batch 2, only the second item padded: the padded columns hold the first item's real tokens, so the mask
    stays (and says so to the kernel), shaped for the kept tokens."""
    model = models["LTX-2.3"]
    case = make_case(model.config, batch=2, context_tokens=7, mask_context=True)
    masks = _spy_attention(monkeypatch)
    with torch.no_grad():
        model(case.video, case.audio)
    text = [m for m in masks if m is not None]
    assert len(text) == 2 * model.config.num_layers  # the video and audio text cross-attentions
    assert all(tuple(m.shape) == (2, 1, 1, 7) for m in text)
