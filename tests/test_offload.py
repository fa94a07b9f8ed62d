"""Weight placement: streamed blocks compute exactly what resident blocks do; float8 storage stays within its
stated tolerance (RMS error <= 4% of the velocity's std, max <= 20%)."""

from __future__ import annotations

import pytest
import torch
from transformer_cases import make_case

from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.offload import (
    FLOAT8,
    BlockWeights,
    dequantize_float8,
    place_weights,
    quantize_float8,
    weight_bytes,
)
from ltx_av.ltx_core.transformer import AudioVideoTransformer

FLOAT8_RMS_TOLERANCE = 0.04
FLOAT8_MAX_TOLERANCE = 0.20


def _load(path):
    return build_component(path, "transformer", AudioVideoTransformer)


def _run(model, case):
    with torch.no_grad():
        return model(case.video, case.audio)


@pytest.fixture
def setup(tiny_checkpoint):
    resident = _load(tiny_checkpoint)
    case = make_case(resident.config, batch=2, sigmas=(0.9, 0.3), condition_first_frame=True, keyframe_at=9)
    return tiny_checkpoint, case, _run(resident, case)


def test_streamed_blocks_equal_resident_blocks(setup, monkeypatch):
    path, case, expected = setup
    model = _load(path)
    place_weights(model, "cpu", torch.float32, stream_blocks=True)
    fetched = []
    original = BlockWeights.fetch
    monkeypatch.setattr(BlockWeights, "fetch", lambda self, i: fetched.append(i) or original(self, i))
    got = _run(model, case)
    assert fetched == list(range(model.config.num_layers))
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)


def test_every_block_weight_reaches_the_compute_device_through_the_streamer(setup):
    """Second-device stand-in: block weights stored as float64 "elsewhere" while the model computes in float32.
    Any block weight used where it is stored would fail the float32 matmuls, so equal outputs prove that every
    one was materialised by the streamer."""
    path, case, expected = setup
    model = _load(path)
    place_weights(model, "cpu", torch.float32, stream_blocks=True)
    for p in model.transformer_blocks.parameters():
        p.data = p.data.double()
    got = _run(model, case)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)


@pytest.mark.parametrize("stream", [False, True])
def test_float8_storage_stays_within_tolerance(setup, stream):
    path, case, expected = setup
    model = _load(path)
    before = weight_bytes(model)["cpu"]
    place_weights(model, "cpu", torch.float32, float8=True, stream_blocks=stream)
    stored = {n: p.dtype for n, p in model.named_parameters()}
    assert stored["transformer_blocks.0.ff.net.0.proj.weight"] == FLOAT8
    assert stored["transformer_blocks.0.scale_shift_table"] == torch.float32  # tables, norms, biases untouched
    assert stored["patchify_proj.weight"] == torch.float32  # outside the blocks: resident in the compute dtype
    assert weight_bytes(model)["cpu"] < 0.7 * before
    got = _run(model, case)
    for g, e in zip(got, expected, strict=True):
        err = g - e
        assert err.pow(2).mean().sqrt() <= FLOAT8_RMS_TOLERANCE * e.std()
        assert err.abs().max() <= FLOAT8_MAX_TOLERANCE * e.std()


def test_replacing_keeps_float8_scales_and_dequantises_on_request(setup):
    path, case, _ = setup
    model = _load(path)
    original = model.transformer_blocks[0].attn1.to_q.weight.detach().clone()
    place_weights(model, "cpu", torch.float32, float8=True)
    first = _run(model, case)
    place_weights(model, "cpu", torch.float32, float8=True, stream_blocks=True)  # e.g. park, then stream
    for a, b in zip(_run(model, case), first, strict=True):
        assert torch.equal(a, b)
    place_weights(model, "cpu", torch.float32)  # back to plain weights
    assert model.block_weights is None
    restored = model.transformer_blocks[0].attn1.to_q.weight
    assert restored.dtype == torch.float32
    torch.testing.assert_close(restored, original, atol=0.07 * original.abs().max().item(), rtol=0)


def test_float8_round_trip_error_is_bounded_per_row():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 48, generator=g) * torch.logspace(-3, 0, 64)[:, None]  # rows of very different scales
    q, scale = quantize_float8(w)
    assert q.dtype == FLOAT8 and scale.shape == (64, 1)
    back = dequantize_float8(q, scale, torch.float32)
    # e4m3 keeps 3 mantissa bits: relative rounding error <= 2^-4 for normal values, plus the subnormal step
    bound = w.abs() * 2**-4 + scale * 2**-9
    assert (back - w).abs().le(bound * 1.0001).all()
    assert torch.equal(quantize_float8(torch.zeros(2, 3))[1], torch.ones(2, 1))
