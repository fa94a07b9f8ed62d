"""Shared building blocks against the reference: RoPE (both layouts, both grid precisions), attention, AdaLN."""

from __future__ import annotations

import pytest
import torch
from ltx_core.model.transformer import adaln as ref_adaln
from ltx_core.model.transformer import attention as ref_attention
from ltx_core.model.transformer import feed_forward as ref_ff
from ltx_core.model.transformer import rope as ref_rope

from ltx_av.ltx_core.attention import Attention
from ltx_av.ltx_core.layers import AdaLNSingle, FeedForward
from ltx_av.ltx_core.rope import apply_rope, rope_tables

from reference import ltx_core_ref  # noqa: F401  (imports the reference safely)


def _positions(b=2, axes=3, t=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(b, axes, t, generator=g) * 40
    return torch.stack([start, start + torch.rand(b, axes, t, generator=g) * 8], dim=-1)


@pytest.mark.parametrize("layout", ["split", "interleaved"])
@pytest.mark.parametrize("float64", [True, False])
@pytest.mark.parametrize("axes,dim,heads", [(3, 64, 4), (1, 32, 4), (3, 2048, 16)])
def test_rope_matches_reference(layout, float64, axes, dim, heads):
    max_pos = [20, 2048, 2048][:axes]
    pos = _positions(axes=axes)
    ours = rope_tables(pos, dim=dim, heads=heads, max_pos=tuple(max_pos), layout=layout, float64=float64)
    grid = ref_rope.generate_freq_grid_np if float64 else ref_rope.generate_freq_grid_pytorch
    ref = ref_rope.precompute_freqs_cis(
        pos, dim, torch.float32, 10000.0, max_pos, True, heads, ref_rope.LTXRopeType(layout), grid
    )
    x = torch.randn(2, pos.shape[2], dim)
    torch.testing.assert_close(
        apply_rope(x, ours), ref_rope.apply_rotary_emb(x, ref, ref_rope.LTXRopeType(layout)), atol=1e-6, rtol=0
    )


def _copy_into(ref_module, ours):
    missing, unexpected = ours.load_state_dict(ref_module.state_dict(), strict=True)
    return ours


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("layout", ["split", "interleaved"])
def test_attention_matches_reference(gated, layout):
    torch.manual_seed(0)
    ref = ref_attention.Attention(
        query_dim=48,
        context_dim=24,
        heads=4,
        dim_head=8,
        rope_type=ref_rope.LTXRopeType(layout),
        attention_function=ref_attention.AttentionFunction.PYTORCH,
        apply_gated_attention=gated,
    )
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ours = _copy_into(ref, Attention(48, heads=4, head_dim=8, context_dim=24, gated=gated))
    x, ctx = torch.randn(3, 7, 48), torch.randn(3, 5, 24)
    pe_q = rope_tables(_positions(3, 1, 7), dim=32, heads=4, max_pos=(20,), layout=layout)
    pe_k = rope_tables(_positions(3, 1, 5, seed=1), dim=32, heads=4, max_pos=(20,), layout=layout)
    ref_q = ref_rope.precompute_freqs_cis(
        _positions(3, 1, 7),
        32,
        torch.float32,
        10000.0,
        [20],
        True,
        4,
        ref_rope.LTXRopeType(layout),
        ref_rope.generate_freq_grid_np,
    )
    ref_k = ref_rope.precompute_freqs_cis(
        _positions(3, 1, 5, seed=1),
        32,
        torch.float32,
        10000.0,
        [20],
        True,
        4,
        ref_rope.LTXRopeType(layout),
        ref_rope.generate_freq_grid_np,
    )
    mask = torch.randn(3, 1, 7, 5)
    expected = ref(x, ctx, mask=mask, pe=ref_q, k_pe=ref_k)
    torch.testing.assert_close(ours(x, ctx, mask=mask, rope=pe_q, k_rope=pe_k), expected, atol=1e-5, rtol=1e-5)
    # value passthrough (self-attention) for the second item only, and for all items
    ctx = torch.randn(3, 7, 24)
    perturb = torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1)
    expected = ref(x, ctx, pe=ref_q, perturbation_mask=perturb)
    got = ours(x, ctx, rope=pe_q, passthrough=torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours(x, ctx, passthrough=True), ref(x, ctx, all_perturbed=True), atol=1e-6, rtol=0)


def test_feed_forward_and_adaln_match_reference():
    torch.manual_seed(0)
    ref = ref_ff.FeedForward(16, 16)
    ours = _copy_into(ref, FeedForward(16))
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours(x, chunk_tokens=4), ref(x))
    ref = ref_adaln.AdaLayerNormSingle(16, 9)
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.2)
    ours = _copy_into(ref, AdaLNSingle(16, 9))
    t = torch.rand(5) * 1000
    for a, b in zip(ours(t, torch.float32), ref(t, hidden_dtype=torch.float32), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
