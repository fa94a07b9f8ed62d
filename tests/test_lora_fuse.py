"""Fusing LoRAs into the weights in place (``fuse_loras_``), the headless pipeline's path for the model it owns:
parity with ltx-core 1.0.0's fusion, the rounding of bfloat16 and float8 storage against the exact sum, block
streaming of fused weights, and the pipeline (``loras`` fused at load, ``stage2_loras`` and later LoRAs per block,
giving what the non-destructive path gives)."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch
from test_lora import (
    PARITY_CASES,
    TOLERANCE,
    _lora,
    _reference,
    _reference_outputs,
    _relative,
    write_checkpoints,
)
from transformer_cases import make_case

from ltx_av.ltx_core import InputError, pipeline, tiny
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.lora import (
    AppliedLora,
    _all_finite,
    _as_float32,
    _change_bound,
    _float8_magnitude,
    _float8_to_float32,
    bind_lora,
    fuse_loras_,
    read_lora,
)
from ltx_av.ltx_core.offload import FLOAT8, dequantize_float8, place_weights
from ltx_av.ltx_core.transformer import AudioVideoTransformer

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[tuple[str, str], str]:
    return write_checkpoints(tmp_path_factory.mktemp("fuse_checkpoints"))


def _model(path: str, dtype: torch.dtype = torch.float32, **placement) -> AudioVideoTransformer:
    float8 = placement.get("float8", False)
    model = build_component(
        path, "transformer", AudioVideoTransformer, dtype=None if float8 else dtype, keep_float8=float8
    )
    place_weights(model, CPU, dtype, **placement)
    return model


def _weights(model) -> dict[str, torch.Tensor]:
    """Every parameter as the model computes with it (float8 dequantised with its row scales), in float64."""
    scales = model.block_weights.scales if model.block_weights is not None else {}
    return {
        k: (dequantize_float8(p, scales.get(k), torch.float64) if p.dtype == FLOAT8 else p.double())
        for k, p in model.named_parameters()
    }


def _exact(before: dict[str, torch.Tensor], stack: list[AppliedLora]) -> dict[str, torch.Tensor]:
    """The weights plus every LoRA's change, in float64."""
    out = dict(before)
    for applied in stack:
        for key, (down, up, scale) in applied.factors.items():
            out[key] = out[key] + applied.strength * scale * (up.double() @ down.double())
    return out


def _outputs(model, case):
    with torch.no_grad():
        return model(case.video, case.audio)


# -- parity with ltx-core ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["official", "kohya_with_alpha", "two_loras"])
def test_fused_weights_and_output_match_ltx_core(checkpoints, variant, name, tmp_path):
    """Float32 compute: ltx-core's builder fuses into the float32 state dict; ours fuses into the placed model."""
    path = checkpoints[variant, "bf16"]
    model, stack, ref_loras = _model(path), [], []
    for i, (layout, kind, seed, alpha, strength) in enumerate(PARITY_CASES[name]):
        ours = _lora(tmp_path, f"ours-{i}.safetensors", variant, kind, seed=seed, layout=layout, alpha=alpha)
        theirs = _lora(tmp_path, f"ref-{i}.safetensors", variant, kind, seed=seed)
        stack.append(bind_lora(read_lora(ours), model, variant, strength))
        ref_loras.append((theirs, strength * (alpha / 4 if alpha is not None else 1.0)))  # rank 4
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    changed = fuse_loras_(model, stack)
    ref = _reference(path, ref_loras)

    fused, expected = dict(model.named_parameters()), ref.state_dict()
    assert set(fused) == set(expected)
    errors = {k: _relative(fused[k].detach(), expected[k]) for k in expected}
    assert max(errors.values()) <= TOLERANCE, max(errors.items(), key=lambda kv: kv[1])
    touched = {k for applied in stack for k in applied.factors}
    assert changed == len(touched)
    assert all(torch.equal(fused[k], before[k]) == (k not in touched) for k in before)

    case = make_case(model.config, batch=2, sigmas=(0.9, 0.4), condition_first_frame=True, keyframe_at=9)
    for g, e in zip(_outputs(model, case), _reference_outputs(ref, case), strict=True):
        assert _relative(g, e) <= TOLERANCE


def test_bfloat16_storage_is_the_sum_rounded_to_bfloat16_and_matches_ltx_core(checkpoints, tmp_path):
    """Strength x scale goes in as addmm's alpha (one LoRA) or into up (two of different strengths): either way the
    fused weight is within bfloat16's rounding of the exact sum, and of ltx-core's own bfloat16 fusion."""
    path = checkpoints["LTX-2.3", "bf16"]
    with open(path, "rb") as f:
        on_disk = hashlib.sha256(f.read()).hexdigest()
    model = _model(path, torch.bfloat16)  # its weights are views of a private map of the file
    style = bind_lora(read_lora(_lora(tmp_path, "a.safetensors", "LTX-2.3", "outside", seed=3)), model, "LTX-2.3", 0.8)
    camera = bind_lora(read_lora(_lora(tmp_path, "b.safetensors", "LTX-2.3", seed=4)), model, "LTX-2.3", -0.5)
    exact = _exact(_weights(model), [style, camera])
    fuse_loras_(model, [style, camera])
    ref = _reference_bf16(path, [(_lora(tmp_path, "a2.safetensors", "LTX-2.3", "outside", seed=3), 0.8)], tmp_path)
    for key in {*style.factors, *camera.factors}:
        got = model.get_parameter(key).detach()
        assert got.dtype == torch.bfloat16
        # one rounding of the sum (2^-9 relative) plus the factors' rounding to bfloat16 (2^-9 of the change)
        assert _relative(got.double(), exact[key]) <= 2**-8, key
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == on_disk  # written in memory only, never to the file
    alone = _model(path, torch.bfloat16)
    fuse_loras_(alone, [bind_lora(style.file, alone, "LTX-2.3", 0.8)])
    for key in style.factors:
        assert _relative(alone.get_parameter(key).detach(), ref[key]) <= 2**-7, key


def _reference_bf16(path: str, loras: list[tuple[str, float]], tmp_path) -> dict[str, torch.Tensor]:
    from ltx_core.loader.sd_ops import LTXV_LORA_COMFY_RENAMING_MAP

    import tiny_models
    from reference import SingleGPUModelBuilder, transformer_cfg

    builder = SingleGPUModelBuilder(
        model_class_configurator=tiny_models._Configurator.of(tiny_models.REFERENCE_PARTS["transformer"][0]),
        model_path=path,
        model_sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
    )
    for lora, strength in loras:
        builder = builder.lora(lora, strength, LTXV_LORA_COMFY_RENAMING_MAP)
    return builder.build(device=CPU).state_dict()


# -- float8 storage: rounding back ------------------------------------------------------------------------------------


def _half_ulp_e4m3(x: torch.Tensor) -> torch.Tensor:
    """Half the spacing of float8 e4m3fn values around each of ``x`` (float64): 2^-10 below the smallest normal
    2^-6 (subnormal spacing 2^-9), else 2^(floor(log2 |x|) - 4)."""
    binade = torch.floor(torch.log2(x.abs().clamp(min=2**-6)))
    return torch.exp2(binade - 4)


def _assert_within_half_ulp(model, key: str, exact: torch.Tensor) -> None:
    stored = model.get_parameter(key).detach()
    assert stored.dtype == FLOAT8
    scale = model.block_weights.scales.get(key)
    scale = torch.ones(stored.shape[0], 1, dtype=torch.float64) if scale is None else scale.double()
    units = exact / scale  # the exact sum in the stored units
    assert units.abs().max() <= 448 * (1 + 2**-20), key  # nothing saturated
    error = (stored.double() - units).abs()
    # float32 forms the sum: its rounding (2^-24 relative) may tip a value that sits on a midpoint
    bound = _half_ulp_e4m3(units) + units.abs() * 2**-22
    assert (error <= bound).all(), (key, (error / _half_ulp_e4m3(units)).max().item())


@pytest.mark.parametrize("storage", ["file", "scaled"])
def test_float8_is_rounded_to_nearest_within_half_an_ulp_of_the_exact_sum(checkpoints, tmp_path, storage):
    """``file``: the -fp8 releases' float8 without scales; ``scaled``: our own per-row scales, whose largest row
    entry sits at the format's largest value, so adding a change pushes rows past it and their scale grows."""
    path = checkpoints["LTX-2.3", "fp8" if storage == "file" else "bf16"]
    model = _model(path, torch.float32, float8=True)
    stack = [
        bind_lora(read_lora(_lora(tmp_path, "a.safetensors", "LTX-2.3", "video", seed=5)), model, "LTX-2.3", 0.9),
        bind_lora(read_lora(_lora(tmp_path, "b.safetensors", "LTX-2.3", seed=6)), model, "LTX-2.3", 1.3),
    ]
    scales_before = {k: v.clone() for k, v in model.block_weights.scales.items()}
    exact = _exact(_weights(model), stack)
    fuse_loras_(model, stack)
    block_keys = [k for k in exact if k.startswith("transformer_blocks.") and model.get_parameter(k).dtype == FLOAT8]
    touched = [k for k in block_keys if any(k in a.factors for a in stack)]
    assert touched
    for key in touched:
        _assert_within_half_ulp(model, key, exact[key])
    if storage == "scaled":
        grown = sum(int((model.block_weights.scales[k] > scales_before[k]).sum()) for k in touched)
        assert grown > 0 and all((model.block_weights.scales[k] >= scales_before[k]).all() for k in touched)
    else:
        assert model.block_weights.scales == {}  # nothing left the range: no scales needed


def test_a_float8_weight_without_scales_gets_them_where_a_row_leaves_the_range(checkpoints, tmp_path):
    path = checkpoints["LTX-2.3", "fp8"]
    model = _model(path, torch.float32, float8=True)
    template = bind_lora(read_lora(_lora(tmp_path, "a.safetensors", "LTX-2.3", seed=1)), model, "LTX-2.3")
    key = "transformer_blocks.0.attn1.to_q.weight"
    out_features, in_features = model.get_parameter(key).shape
    down = torch.zeros(1, in_features)
    down[0, 3] = 1.0
    up = torch.zeros(out_features, 1)
    up[5, 0] = 500.0  # row 5, column 3 goes to ~500, past e4m3fn's 448
    exact = _exact(_weights(model), [AppliedLora(template.file, 1.0, {key: (down, up, 1.0)})])
    fuse_loras_(model, [AppliedLora(template.file, 1.0, {key: (down, up, 1.0)})])
    scale = model.block_weights.scales[key]
    assert scale[5, 0] > 1 and torch.equal(scale[torch.arange(out_features) != 5], torch.ones(out_features - 1, 1))
    _assert_within_half_ulp(model, key, exact[key])


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_the_float8_decoding_is_exact_for_every_code(dtype):
    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dtype).reshape(16, 16)
    out = torch.empty(16, 16)
    factor = _float8_to_float32(codes, out)
    expected = codes.float()
    finite = expected.isfinite()
    assert torch.equal(out[finite] / factor, expected[finite])
    assert finite.sum() == (254 if dtype == torch.float8_e4m3fn else 248)


def test_the_float8_range_check_bounds_are_tight_and_safe():
    g = torch.Generator().manual_seed(1)
    for sign in (1, -1):
        weights = (torch.randn(64, 48, generator=g) * 3).abs() * sign
        weights[7, 9] = -sign * 1.0  # the other sign, smaller
        q = weights.to(FLOAT8)
        assert _float8_magnitude(q) == q.float().abs().max().item()
    up, down = torch.randn(64, 4, generator=g), torch.randn(4, 48, generator=g)
    bound = _change_bound(up, down, -0.7)
    assert (0.7 * up @ down).abs().max() <= bound  # sum over the rank of |up| times the largest |down| of its row
    assert bound == pytest.approx(0.7 * (up.abs() * down.abs().amax(dim=1)).sum(dim=1).max().item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_small_factor_steps_done_in_numpy_are_exact(dtype):
    """Finiteness checks and the widening to float32 of LoRA factors run in numpy (no thread synchronisation)."""
    factor = torch.randn(4, 37, generator=torch.Generator().manual_seed(0)).to(dtype)[:, 1:]  # not contiguous
    assert _all_finite(factor) and torch.equal(_as_float32(factor, CPU), factor.float())
    for bad in (float("nan"), float("inf"), -float("inf")):
        damaged = factor.clone()
        damaged[2, 5] = bad
        assert not _all_finite(damaged)


# -- block streaming ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("float8", [False, True])
def test_streamed_fused_blocks_compute_like_resident_fused_ones(checkpoints, tmp_path, float8):
    """Fused weights are just the weights: streaming them block by block gives what resident ones give."""
    path = checkpoints["LTX-2", "bf16"]
    lora = read_lora(_lora(tmp_path, "l.safetensors", "LTX-2", "outside", seed=2))
    outputs = []
    for stream in (False, True):
        model = _model(path, stream_blocks=stream, float8=float8)
        fuse_loras_(model, [bind_lora(lora, model, "LTX-2", 0.7)])
        case = make_case(model.config, condition_first_frame=True)
        outputs.append(_outputs(model, case))
    plain = _outputs(_model(path, float8=float8), case)
    for a, b, p in zip(*outputs, plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        assert _relative(a, p) > 0.01  # the LoRA is in effect


# -- the pipeline ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuse_pipeline")
    distilled = tiny.write_tiny_lora(str(folder / "distilled.safetensors"), "lora-distilled-2.3")
    style = tiny.write_tiny_lora(str(folder / "style.safetensors"), "lora-ic-union-2.3", seed=3)
    return folder, distilled, style


def _two_stage(pipe, monkeypatch):
    """Run a tiny two-stage generation; returns (models each stage sampled with, their latents, the frames)."""
    stages = []
    real_sample = pipeline.sample

    def sample(model, *args, **kwargs):
        video, audio = real_sample(model, *args, **kwargs)
        stages.append((model, video, audio))
        return video, audio

    monkeypatch.setattr(pipeline, "sample", sample)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models are all overhead; one thread is as fast and immune to busy neighbours
    try:
        result = pipe.generate("a cat", width=64, height=64, frames=9, steps=1, seed=3, two_stage=True)
    finally:
        torch.set_num_threads(before)
        monkeypatch.setattr(pipeline, "sample", real_sample)
    return stages, result


def test_the_pipeline_fuses_the_loras_it_loads_with_and_gives_what_the_per_block_path_gives(
    tiny_files, monkeypatch, caplog
):
    folder, distilled, style = tiny_files
    with caplog.at_level(logging.INFO, logger="ltx_av"):
        fused = pipeline.tiny_pipeline(
            str(folder / "a"), upsampler=True, loras=[(style, 0.7)], stage2_loras=[(distilled, 1.0)]
        )
    assert "LoRA 'style.safetensors' at 0.7: fused into the transformer's weights" in caplog.text
    assert fused.fused_loras == fused.loras and len(fused.loras) == 1

    kept = pipeline.tiny_pipeline(str(folder / "b"), upsampler=True)
    stored = {k: p.detach().clone() for k, p in kept.transformer.named_parameters()}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ltx_av"):
        kept.set_loras([(style, 0.7)], [(distilled, 1.0)])
    assert "LoRA 'style.safetensors' at 0.7: applied per block as the transformer runs" in caplog.text
    assert kept.fused_loras == ()
    changed = [k for k, p in fused.transformer.named_parameters() if not torch.equal(p, stored[k])]
    assert len(changed) == len(fused.loras[0].factors)

    got, got_result = _two_stage(fused, monkeypatch)
    want, want_result = _two_stage(kept, monkeypatch)
    assert got[0][0] is fused.transformer  # stage 1: the fused weights, nothing applied per block
    assert want[0][0] is not kept.transformer and got[1][0] is not fused.transformer  # stage 2 adds the distilled
    for (_, gv, ga), (_, wv, wa) in zip(got, want, strict=True):
        assert _relative(gv, wv) <= 1e-4 and _relative(ga, wa) <= 1e-4
    assert (got_result.frames.float() - want_result.frames.float()).abs().max() <= 2  # uint8 levels
    # the per-block path never touched its transformer
    assert all(torch.equal(p, stored[k]) for k, p in kept.transformer.named_parameters())


def test_fused_loras_cannot_change_but_stage2_loras_can(tiny_files):
    folder, distilled, style = tiny_files
    pipe = pipeline.tiny_pipeline(str(folder / "c"), loras=[(style, 0.5)])
    fused = pipe.fused_loras
    weights = {k: p.detach().clone() for k, p in pipe.transformer.named_parameters()}
    for other in ([(style, 0.6)], [(distilled, 0.5)], [], [(style, 0.5), (distilled, 1.0)]):
        with pytest.raises(InputError, match="fused into its weights .*cannot be changed or removed"):
            pipe.set_loras(other)
    pipe.set_loras([(style, 0.5)], [(distilled, 1.0)])  # the same loras: fine, and a new stage-2 LoRA
    assert pipe.loras is fused and [a.name for a in pipe.stage2_loras] == ["distilled.safetensors"]
    pipe.set_loras([(str(style), 0.5)], fuse=True)  # never fused twice
    assert all(torch.equal(p, weights[k]) for k, p in pipe.transformer.named_parameters())
    assert pipe.stage2_loras == ()


def test_strength_zero_and_a_no_op_stack_change_nothing(checkpoints, tmp_path):
    model = _model(checkpoints["LTX-2", "bf16"])
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    applied = bind_lora(read_lora(_lora(tmp_path, "a.safetensors", "LTX-2")), model, "LTX-2", 0.0)
    assert fuse_loras_(model, [applied]) == 0 and fuse_loras_(model, []) == 0
    assert all(torch.equal(p, before[k]) for k, p in model.named_parameters())
