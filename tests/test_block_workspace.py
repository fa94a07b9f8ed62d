"""The transformer's fast path (one reused Workspace per forward, residual streams updated in place, per-run AdaLN
rows, in-place RoPE) against its plain path (fresh tensors, which autograd needs), and its pieces alone."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from transformer_cases import make_case

from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.layers import AdaLNSingle, FeedForward, Workspace, linear, rms_factor, rms_norm
from ltx_av.ltx_core.modulation import MAX_RUNS, TimestepModulation
from ltx_av.ltx_core.perturbations import Perturbations, isolate_modalities, stg
from ltx_av.ltx_core.rope import apply_rope, apply_rope_, rope_tables
from ltx_av.ltx_core.transformer import AudioVideoTransformer


@pytest.fixture(scope="module")
def models(tiny_checkpoints):
    return {v: build_component(p, "transformer", AudioVideoTransformer) for v, p in tiny_checkpoints.items()}


def _case(model, batch=3):
    return make_case(
        model.config,
        batch=batch,
        sigmas=(0.9, 0.4, 0.6),
        condition_first_frame=True,
        keyframe_at=9,
        keyframe_strength=0.7,
        mask_context=True,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reused_workspace_forward_equals_the_plain_forward(models, variant, dtype):
    """Conditioned tokens (several AdaLN runs), a keyframe group, a padded prompt, a batch mixing plain, STG and
    modality-isolated items (partial passthrough), a chunked feed-forward: no_grad (workspace) == grad mode
    (fresh tensors) up to the rms-factor rounding."""
    model = copy.deepcopy(models[variant]).to(dtype)
    model.ffn_chunk_tokens = 17
    case = _case(model)
    perturbations = Perturbations.of([(), stg([0]), isolate_modalities()])
    with torch.no_grad():
        fast = model(case.video, case.audio, perturbations)
    with torch.enable_grad():
        plain = model(case.video, case.audio, perturbations)
    tolerance = 1e-5 if dtype == torch.float32 else 0.02
    for f, p in zip(fast, plain, strict=True):
        assert f.dtype == torch.float32
        assert (f - p.detach()).abs().max() <= tolerance * p.abs().max()


def test_gradients_flow_through_the_plain_path(models):
    model = models["LTX-2.3"]
    case = _case(model, batch=1)
    latent = case.video.latent.clone().requires_grad_(True)
    video = dataclasses.replace(case.video, latent=latent)
    with torch.enable_grad():
        out_video, out_audio = model(video, case.audio)
        (out_video.square().sum() + out_audio.square().sum()).backward()
    assert latent.grad is not None and torch.isfinite(latent.grad).all() and latent.grad.abs().sum() > 0


def test_blocks_update_the_streams_in_place(models):
    """The fast path's documented contract: a block returns its inputs' residual tensors, updated."""
    model = models["LTX-2.3"]
    case = _case(model, batch=1)
    seen = []
    hook = model.transformer_blocks[0].register_forward_hook(
        lambda m, args, out: seen.append((args[0].x is out[0], args[1].x is out[1]))
    )
    try:
        with torch.no_grad():
            model(case.video, case.audio)
    finally:
        hook.remove()
    assert seen == [(True, True)]


@pytest.mark.parametrize("layout", ["split", "interleaved"])
@pytest.mark.parametrize("spare", [False, True])
def test_in_place_rope_is_apply_rope(layout, spare):
    g = torch.Generator().manual_seed(0)
    heads, dim = 4, 64
    positions = torch.rand(2, 3, 11, 2, generator=g) * 10
    tables = rope_tables(positions, dim=dim, heads=heads, max_pos=(20, 2048, 2048), layout=layout)
    x = torch.randn(2, 11, dim, generator=g)
    expected = apply_rope(x, tables)
    got = apply_rope_(x.clone(), tables, torch.empty(x.numel() // 2) if spare else None)
    if layout == "split":  # the same operations in the same order
        assert torch.equal(got, expected)
    else:  # a fused multiply-subtract where apply_rope adds a negated product: an ulp apart at most
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def _modulation(timesteps: torch.Tensor) -> TimestepModulation:
    torch.manual_seed(0)
    adaln = AdaLNSingle(8, 3)
    with torch.no_grad():
        return TimestepModulation(adaln, timesteps, torch.float32)


@pytest.mark.parametrize(
    "pattern",
    ["uniform", "first_frame", "per_item", "swapped", "scattered"],
)
def test_runs_cover_the_tokens_with_the_per_token_rows(pattern):
    t = torch.full((2, 12), 0.8)
    if pattern == "first_frame":
        t[:, :4] = 0.0
    elif pattern == "per_item":
        t[0, :4] = 0.0
        t[1] = 0.3
    elif pattern == "swapped":  # item 0 uses the larger value where item 1 uses the smaller: a real gather
        t[0, :6], t[1, 6:] = 0.1, 0.1
    elif pattern == "scattered":
        t = torch.rand(2, 3 * MAX_RUNS)
    m = _modulation(t * 1000)
    table = torch.randn(3, 8)
    for i, plus in ((0, 0.0), (1, 1.0)):
        expected = m.row(table, i, plus).expand(2, t.shape[1], 8)
        runs = m.runs(table, i, plus)
        got = torch.cat([row.expand(2, expected[:, tokens].shape[1], 8) for tokens, row in runs], dim=1)
        assert torch.equal(got, expected)
    if pattern == "scattered":
        assert len(runs) == 1 and runs[0][1].shape == (2, t.shape[1], 8)
    elif pattern == "uniform":
        assert len(runs) == 1 and runs[0][1].shape == (2, 1, 8)
    else:
        assert 1 < len(runs) <= 3 and all(row.shape == (2, 1, 8) for _, row in runs)


@pytest.mark.parametrize("chunk", [None, 5])
def test_feed_forward_in_a_workspace_is_the_plain_one(chunk):
    torch.manual_seed(0)
    ff = FeedForward(16)
    x = torch.randn(3, 11, 16)
    ws = Workspace()
    with torch.no_grad():
        expected = ff(x, chunk_tokens=chunk)
        got = ff(x, chunk_tokens=chunk, workspace=ws)
        assert got.data_ptr() == ws.get("o", (3, 11, 16), x.dtype, x.device).data_ptr()
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def test_workspace_slots_reuse_and_share_bytes():
    cpu = torch.device("cpu")
    ws = Workspace()
    a = ws.get("h", (4, 8), torch.float32, cpu)
    b = ws.get("h", (2, 8), torch.float32, cpu)
    c = ws.get("h2", (2, 8), torch.float32, cpu)
    assert a.data_ptr() == b.data_ptr() != c.data_ptr()
    big = ws.get("h", (8, 8), torch.float32, cpu)  # grows
    assert big.shape == (8, 8) and ws.get("h", (4, 8), torch.float32, cpu).data_ptr() == big.data_ptr()
    # roles of one slot share its bytes, across dtypes; carved tensors lie side by side
    v, q, k = ws.carve("v", [(3, 4), (5, 4), (3, 4)], torch.bfloat16, cpu)
    assert q.data_ptr() == v.data_ptr() + 24 and k.data_ptr() == q.data_ptr() + 40
    assert ws.get("ff", (2, 2), torch.float32, cpu).data_ptr() == v.data_ptr()
    assert ws.get("rope", (4,), torch.float32, cpu).data_ptr() == ws.get("o", (8,), torch.bfloat16, cpu).data_ptr()
    fresh = Workspace(reuse=False)
    assert (
        fresh.get("q", (4, 8), torch.float32, cpu).data_ptr() != fresh.get("q", (4, 8), torch.float32, cpu).data_ptr()
    )


def test_linear_into_a_buffer_and_the_rms_factor():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 8)
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        assert torch.equal(linear(x, layer, torch.empty(2, 5, 8)), layer(x))
        layer.bias = None
        assert torch.equal(linear(x, layer, torch.empty(2, 5, 8)), layer(x))
    torch.testing.assert_close(x * rms_factor(x, 1e-6), rms_norm(x, 1e-6), atol=1e-6, rtol=1e-6)
