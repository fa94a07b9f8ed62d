"""LoRAs on the transformer: parity with ltx-core 1.0.0's fusion, every key layout, independent holders sharing one
base, float8 storage and block streaming, refusals of files that do not fit, and the LTXLoraLoader node."""

from __future__ import annotations

import json
import logging
import os

import pytest
import tiny_loras
import torch
from ltx_core.loader.sd_ops import LTXV_LORA_COMFY_RENAMING_MAP
from safetensors.torch import save_file
from transformer_cases import make_case, reference_perturbations

from ltx_av.ltx_core import CheckpointError, InputError
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.lora import LoraPatches, bind_lora, merged_state_dict, read_lora
from ltx_av.ltx_core.offload import FLOAT8, dequantize_float8, place_weights
from ltx_av.ltx_core.tiny import tiny_config
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.nodes import NODE_CLASS_MAPPINGS
from ltx_av.nodes import model as model_nodes
from ltx_av.nodes.lora import LTXLoraLoader
from ltx_av.nodes.model import LoadedTransformer, load_transformer

import tiny_models
from reference import SingleGPUModelBuilder, transformer_cfg

TOLERANCE = 1e-4  # relative: max |ours - ltx-core| / max |ltx-core| (measured: ~1e-7 outputs, 0 weights)
CPU = torch.device("cpu")


# -- files -------------------------------------------------------------------------------------------------------------


def _float8_blocks(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A stand-in for the ``-fp8`` releases: block linear weights cast to float8 (no scale), the rest bfloat16."""
    out = {}
    for key, t in tensors.items():
        block_linear = key.startswith("model.diffusion_model.transformer_blocks.") and key.endswith(".weight")
        if block_linear and t.ndim == 2:
            out[key] = t.to(FLOAT8)
        else:
            out[key] = t.to(torch.bfloat16) if t.is_floating_point() else t
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[tuple[str, str], str]:
    return write_checkpoints(tmp_path_factory.mktemp("lora_checkpoints"))


def write_checkpoints(folder) -> dict[tuple[str, str], str]:
    """(variant, "bf16" | "fp8") -> tiny monolith. ltx-core fuses LoRAs into bfloat16 and float8 weights only."""
    paths = {}
    for variant in ("LTX-2", "LTX-2.3"):
        bf16 = str(folder / f"tiny-{variant.lower()}-bf16.safetensors")
        tensors = tiny_models.write_monolith(bf16, variant, dtype=torch.bfloat16)
        fp8 = str(folder / f"tiny-{variant.lower()}-fp8.safetensors")
        metadata = {"config": json.dumps(tiny_config(variant)), "model_version": tiny_models.MODEL_VERSIONS[variant]}
        save_file(_float8_blocks(tensors), fp8, metadata=metadata)
        paths[variant, "bf16"], paths[variant, "fp8"] = bf16, fp8
    return paths


def _lora(tmp_path, name: str, variant: str, kind: str = "attention", **options) -> str:
    path = str(tmp_path / name)
    tiny_loras.write_lora(path, variant, kind, **options)
    return path


def _holder(path: str, dtype: str = "fp32"):
    return load_transformer(path, dtype=dtype, device=CPU, offload_device=CPU)


def _reference(path: str, loras: list[tuple[str, float]]) -> torch.nn.Module:
    """ltx-core's transformer with ``loras`` fused by its own builder (float32 compute)."""
    builder = SingleGPUModelBuilder(
        model_class_configurator=tiny_models._Configurator.of(tiny_models.REFERENCE_PARTS["transformer"][0]),
        model_path=path,
        model_sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
    )
    for lora, strength in loras:
        builder = builder.lora(lora, strength, LTXV_LORA_COMFY_RENAMING_MAP)
    # Fusing into the loaded state dict, ltx-core leaves the weights no LoRA touches in the file's dtype (the fused
    # ones are float32): cast them like the others.
    return builder.build(device=CPU, dtype=torch.float32).eval().float()


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got.float() - expected.float()).abs().max() / expected.float().abs().max().clamp(min=1e-12)).item()


def _outputs(holder, case):
    return holder(case.video, case.audio)


def _reference_outputs(ref, case):
    with torch.no_grad():
        return ref(*case.reference(), reference_perturbations(None, case.video.batch))


# -- parity with ltx-core ----------------------------------------------------------------------------------------------

# name -> LoRAs as (layout, kind, seed, alpha, strength). ltx-core reads only lora_A/lora_B keys and never an alpha:
# it is given the same factors in the official layout and, for a file with alpha, strength x alpha / rank (the
# ComfyUI convention, which we follow).
PARITY_CASES = {
    "official": [("official", "attention", 0, None, 0.7)],
    "down_up": [("down_up", "attention", 1, None, 1.0)],
    "kohya_with_alpha": [("kohya", "video", 2, 2.0, 1.5)],
    "two_loras": [("official", "outside", 3, None, 0.8), ("kohya", "attention", 4, 8.0, -0.5)],
}


@pytest.mark.parametrize("name", list(PARITY_CASES))
def test_merged_weights_and_output_match_ltx_core(checkpoints, variant, name, tmp_path):
    path = checkpoints[variant, "bf16"]
    holder, ref_loras = _holder(path), []
    for i, (layout, kind, seed, alpha, strength) in enumerate(PARITY_CASES[name]):
        ours = _lora(tmp_path, f"ours-{i}.safetensors", variant, kind, seed=seed, layout=layout, alpha=alpha)
        theirs = _lora(tmp_path, f"ref-{i}.safetensors", variant, kind, seed=seed)
        holder = holder.with_lora(read_lora(ours), strength)
        rank = 4
        ref_loras.append((theirs, strength * (alpha / rank if alpha is not None else 1.0)))
    ref = _reference(path, ref_loras)

    merged, expected = merged_state_dict(holder.model, holder.loras), ref.state_dict()
    assert set(merged) == set(expected)
    errors = {k: _relative(merged[k], expected[k]) for k in expected}
    assert max(errors.values()) <= TOLERANCE, max(errors.items(), key=lambda kv: kv[1])
    changed = [k for k in expected if not torch.equal(expected[k], _holder_weight(holder, k))]
    assert len(changed) == len({k for lora in holder.loras for k in lora.factors})

    case = make_case(holder.config, batch=2, sigmas=(0.9, 0.4), condition_first_frame=True, keyframe_at=9)
    got, want = _outputs(holder, case), _reference_outputs(ref, case)
    for g, e in zip(got, want, strict=True):
        assert _relative(g, e) <= TOLERANCE


def _holder_weight(holder, key: str) -> torch.Tensor:
    return holder.model.get_parameter(key).detach().float()


def test_every_key_layout_gives_the_same_weights(checkpoints, tmp_path):
    model = build_component(checkpoints["LTX-2.3", "bf16"], "transformer", AudioVideoTransformer, dtype=torch.float32)
    results = {}
    for layout in tiny_loras.LAYOUTS:
        lora = read_lora(_lora(tmp_path, f"{layout}.safetensors", "LTX-2.3", seed=5, layout=layout))
        applied = bind_lora(lora, model, "LTX-2.3", 0.5)
        results[layout] = merged_state_dict(model, [applied])
    first = results.pop("official")
    for layout, merged in results.items():
        assert all(torch.equal(merged[k], first[k]) for k in first), layout


def test_alpha_scales_by_alpha_over_rank(checkpoints, tmp_path):
    model = build_component(checkpoints["LTX-2", "bf16"], "transformer", AudioVideoTransformer, dtype=torch.float32)
    plain = bind_lora(read_lora(_lora(tmp_path, "plain.safetensors", "LTX-2", seed=6)), model, "LTX-2", 1.0)
    alpha = bind_lora(read_lora(_lora(tmp_path, "alpha.safetensors", "LTX-2", seed=6, alpha=1.0)), model, "LTX-2", 4.0)
    # rank 4, alpha 1: scale 1/4, so strength 4 is the file without alpha at strength 1
    a, b = merged_state_dict(model, [plain]), merged_state_dict(model, [alpha])
    assert max(_relative(a[k], b[k]) for k in a) <= 1e-6


# -- holders sharing one base ------------------------------------------------------------------------------------------


def test_two_strengths_from_one_base_are_independent_and_leave_the_base_bit_identical(checkpoints, tmp_path):
    path = checkpoints["LTX-2.3", "bf16"]
    base = _holder(path)
    case = make_case(base.config, condition_first_frame=True)
    stored = {k: (v.data_ptr(), v.detach().clone()) for k, v in base.model.state_dict().items()}
    before = _outputs(base, case)

    lora = read_lora(_lora(tmp_path, "style.safetensors", "LTX-2.3", kind="outside"))
    half, full = base.with_lora(lora, 0.5), base.with_lora(lora, 1.0)
    assert half.model is base.model is full.model and base.loras == ()
    first_half = _outputs(half, case)
    first_full = _outputs(full, case)
    with full.in_use():
        again_full = _outputs(full, case)
    again_half = _outputs(half, case)  # after the other holder parked the shared module
    after = _outputs(base, case)

    for b, h, f, h2, f2, a in zip(before, first_half, first_full, again_half, again_full, after, strict=True):
        assert torch.equal(b, a)  # the base computes exactly what it did before any LoRA
        assert torch.equal(h, h2) and torch.equal(f, f2)  # switching between holders changes nothing
        assert _relative(h, b) > 0.01 and _relative(f, h) > 0.01
        # strength is linear in the weights, so the output moves roughly twice as far at 1.0 as at 0.5
        assert 1.3 < (f - b).norm() / (h - b).norm() < 2.7
    for k, v in base.model.state_dict().items():
        assert v.data_ptr() == stored[k][0] and torch.equal(v, stored[k][1]), k


def test_new_strength_reapplies_without_reading_the_checkpoint(checkpoints, tmp_path):
    source = checkpoints["LTX-2", "bf16"]
    path = str(tmp_path / "moved.safetensors")
    os.link(source, path)
    base = _holder(path)
    os.remove(path)  # the base is never read from disk again
    lora = read_lora(_lora(tmp_path, "camera.safetensors", "LTX-2"))
    case = make_case(base.config)
    outputs = [_outputs(base.with_lora(lora, s), case)[0] for s in (0.0, 0.25, 1.0)]
    assert torch.equal(outputs[0], _outputs(base, case)[0])  # strength 0 is the base
    assert not torch.equal(outputs[1], outputs[2])


def test_holders_share_the_placement_of_their_module(checkpoints, tmp_path, monkeypatch):
    base = _holder(checkpoints["LTX-2.3", "bf16"], dtype="float8-storage")
    lora = read_lora(_lora(tmp_path, "a.safetensors", "LTX-2.3"))
    other = base.with_lora(lora, 1.0)
    assert other.float8 and other.dtype == base.dtype and other.offload == base.offload
    calls = []
    original = model_nodes.place_weights
    monkeypatch.setattr(model_nodes, "place_weights", lambda *a, **k: calls.append(k) or original(*a, **k))
    case = make_case(base.config)
    stored = base.model.transformer_blocks[0].attn1.to_q.weight.detach().clone()
    with base.in_use():
        plain = _outputs(base, case)
        patched = _outputs(other, case)  # the module is already where `other` wants it: no re-placement
        assert len(calls) <= 1
    assert base.model.transformer_blocks[0].attn1.to_q.weight.dtype == FLOAT8
    assert torch.equal(base.model.transformer_blocks[0].attn1.to_q.weight.view(torch.uint8), stored.view(torch.uint8))
    assert torch.equal(_outputs(base, case)[0], plain[0]) and not torch.equal(plain[0], patched[0])


def test_switching_holders_follows_the_shared_placement(checkpoints, tmp_path, monkeypatch):
    """Computing placement unlike the parked one (block streaming, simulated on the CPU): whichever holder places
    or parks the shared module, the others see it, and re-place it when they run next."""
    path = checkpoints["LTX-2", "bf16"]
    lora = read_lora(_lora(tmp_path, "a.safetensors", "LTX-2", "outside"))
    resident = _holder(path)
    case = make_case(resident.config, condition_first_frame=True)
    expected_base, expected_lora = _outputs(resident, case), _outputs(resident.with_lora(lora, 0.8), case)

    monkeypatch.setattr(LoadedTransformer, "stream_blocks", property(lambda self: True))
    base = _holder(path)
    styled = base.with_lora(lora, 0.8)
    streamed = []
    original = model_nodes.place_weights
    monkeypatch.setattr(
        model_nodes,
        "place_weights",
        lambda *a, **k: streamed.append(k.get("stream_blocks", False)) or original(*a, **k),
    )
    with base.in_use():
        got_lora, got_base = _outputs(styled, case), _outputs(base, case)
        assert base.model.placement.stream_blocks and styled._on_device
    assert streamed == [True, False]  # placed once for both holders, parked once
    assert not styled._on_device and not base.model.placement.stream_blocks
    again = _outputs(styled, case)
    assert streamed[-1] is True and styled._patches.placement.stream_blocks
    for outputs, expected in ((got_lora, expected_lora), (again, expected_lora), (got_base, expected_base)):
        for g, e in zip(outputs, expected, strict=True):
            assert torch.equal(g, e)


def test_timestep_rule_is_per_holder(checkpoints, tmp_path):
    base = _holder(checkpoints["LTX-2.3", "bf16"])
    other = base.with_lora(read_lora(_lora(tmp_path, "a.safetensors", "LTX-2.3")), 0.0)
    other.av_timestep_rule = "per_token"
    case = make_case(base.config, condition_first_frame=True)
    plain = _outputs(base, case)
    assert base.av_timestep_rule == "cross_sigma"
    assert not torch.equal(_outputs(other, case)[0], plain[0])
    assert torch.equal(_outputs(base, case)[0], plain[0])
    with pytest.raises(InputError, match="av_timestep_rule"):
        other.av_timestep_rule = "sometimes"


# -- float8 storage and block streaming --------------------------------------------------------------------------------


def test_float8_file_matches_ltx_core_and_is_never_requantised(checkpoints, variant, tmp_path):
    """The ``-fp8`` release path: ltx-core (on the CPU) adds the delta to the upcast float8 weight in the compute
    dtype, as we do per block; our stored float8 bits never change, so nothing is rounded back to float8."""
    path = checkpoints[variant, "fp8"]
    lora_path = _lora(tmp_path, "l.safetensors", variant, kind="outside", seed=7)
    base = _holder(path, dtype="float8-storage")
    holder = base.with_lora(read_lora(lora_path), 0.9)
    stored = {k: v.view(torch.uint8).clone() for k, v in base.model.state_dict().items() if v.dtype == FLOAT8}
    block_linears = [k for k in tiny_loras.linear_shapes(variant) if k.startswith("transformer_blocks.")]
    assert len(stored) == len(block_linears)  # every block linear weight is kept as the file's float8
    ref = _reference(path, [(lora_path, 0.9)])
    merged, expected = merged_state_dict(holder.model, holder.loras), ref.state_dict()
    assert max(_relative(merged[k], expected[k]) for k in expected) <= TOLERANCE
    case = make_case(holder.config, condition_first_frame=True)
    for _ in range(3):
        got = _outputs(holder, case)
    for g, e in zip(got, _reference_outputs(ref, case), strict=True):
        assert _relative(g, e) <= TOLERANCE
    for k, bits in stored.items():
        assert torch.equal(base.model.state_dict()[k].view(torch.uint8), bits), k


def test_float8_storage_adds_the_delta_to_the_dequantised_weight(checkpoints, tmp_path):
    """Our own float8 storage (per-row scales): the weight a block computes with is exactly dequantise(W) + delta
    in the compute dtype; the only error against float32 is the storage's own rounding of W."""
    path = checkpoints["LTX-2.3", "bf16"]
    lora = read_lora(_lora(tmp_path, "l.safetensors", "LTX-2.3", seed=8))
    quantised = _holder(path, dtype="float8-storage").with_lora(lora, 1.0)
    exact = _holder(path).with_lora(lora, 1.0)
    model = quantised.model
    merged = merged_state_dict(model, quantised.loras)
    for key, (down, up, scale) in quantised.loras[0].factors.items():
        stored = model.get_parameter(key)
        assert stored.dtype == FLOAT8
        by_hand = dequantize_float8(stored, model.block_weights.scales[key], torch.float32) + scale * up @ down
        torch.testing.assert_close(merged[key], by_hand, atol=1e-6, rtol=1e-6)
    case = make_case(quantised.config, batch=2, sigmas=(0.9, 0.3), condition_first_frame=True)
    for g, e in zip(_outputs(quantised, case), _outputs(exact, case), strict=True):
        err = g - e  # the float8 storage's stated tolerance (tests/test_offload.py)
        assert err.pow(2).mean().sqrt() <= 0.04 * e.std() and err.abs().max() <= 0.20 * e.std()


@pytest.mark.parametrize("float8", [False, True])
def test_streamed_blocks_with_lora_equal_resident_blocks(checkpoints, tmp_path, float8):
    """Streaming exercised on the CPU as tests/test_offload.py does: the block weights (and the LoRA factors) are
    stored as float64 "elsewhere" while the model computes in float32, so equal outputs prove that every block
    weight and every patch went through the block materialiser."""
    path = checkpoints["LTX-2", "bf16"]
    applied = None
    outputs = []
    for stream in (False, True):
        model = build_component(path, "transformer", AudioVideoTransformer, dtype=torch.float32)
        if applied is None:
            applied = bind_lora(read_lora(_lora(tmp_path, "l.safetensors", "LTX-2", "outside")), model, "LTX-2", 0.6)
        place_weights(model, CPU, torch.float32, stream_blocks=stream, float8=float8)
        patches = LoraPatches([applied], model)
        if stream:
            assert model.block_weights is not None and patches.placement.stream_blocks
            for p in model.transformer_blocks.parameters():
                if p.dtype != FLOAT8:
                    p.data = p.data.double()
            for block in patches.blocks.values():
                for name, (up, down) in block.items():
                    block[name] = (up.double(), down.double())
            patches._block_weights = None
        case = make_case(model.config, condition_first_frame=True)
        with torch.no_grad():
            outputs.append(patches.forward(model, case.video, case.audio))
            plain = model(case.video, case.audio)
    for a, b, p in zip(*outputs, plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        assert _relative(a, p) > 0.01  # the LoRA is in effect


def test_bfloat16_compute_rounds_the_patched_weight_once(checkpoints, tmp_path):
    """In bfloat16 the factors are cast (strength folded into up), then W + up @ down is one addmm: the result is
    the float32 value of that sum rounded once to bfloat16, and within bfloat16 precision of the float32 model."""
    path = checkpoints["LTX-2.3", "bf16"]
    lora = read_lora(_lora(tmp_path, "l.safetensors", "LTX-2.3", seed=9))
    low = _holder(path, dtype="bf16").with_lora(lora, 0.7)
    high = _holder(path).with_lora(lora, 0.7)
    merged_low, merged_high = merged_state_dict(low.model, low.loras), merged_state_dict(high.model, high.loras)
    patches = LoraPatches(low.loras, low.model)
    for key in low.loras[0].factors:
        index, name = key.removeprefix("transformer_blocks.").split(".", 1)
        up, down = patches.blocks[int(index)][name]
        assert up.dtype == down.dtype == merged_low[key].dtype == torch.bfloat16
        once = (low.model.get_parameter(key).float() + up.float() @ down.float()).to(torch.bfloat16)
        torch.testing.assert_close(merged_low[key], once, rtol=2**-8, atol=1e-5)
        assert _relative(merged_low[key], merged_high[key]) <= 2**-7


# -- files that do not fit ---------------------------------------------------------------------------------------------


def _write(tmp_path, name: str, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> str:
    path = str(tmp_path / name)
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=metadata)
    return path


def _pair(out_features: int, in_features: int, rank: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(rank, in_features) * 0.1, torch.randn(out_features, rank) * 0.1


def _official(layers: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return tiny_loras.lora_tensors(layers, "official")


@pytest.fixture(scope="module")
def tiny_model(checkpoints):
    return {
        v: build_component(checkpoints[v, "bf16"], "transformer", AudioVideoTransformer) for v in ("LTX-2", "LTX-2.3")
    }


def _bind(tiny_model, path: str, variant: str = "LTX-2.3"):
    return bind_lora(read_lora(path), tiny_model[variant], variant)


def test_pickles_and_non_loras_are_refused(tmp_path, checkpoints, tiny_model):
    pickle = tmp_path / "old.safetensors"
    torch.save({"a": torch.zeros(2)}, pickle)
    with pytest.raises(CheckpointError, match="pickle"):
        read_lora(str(pickle))
    with pytest.raises(CheckpointError, match=r"pickle file \(\.ckpt\)"):
        read_lora(str(tmp_path / "lora.ckpt"))
    with pytest.raises(CheckpointError, match="not a LoRA.*model checkpoint.*LTX-AV Load Model"):
        read_lora(checkpoints["LTX-2.3", "bf16"])
    with pytest.raises(CheckpointError, match="holds no tensors"):
        read_lora(_write(tmp_path, "empty.safetensors", {}))
    with pytest.raises(CheckpointError, match="does not exist"):
        read_lora(str(tmp_path / "nothing.safetensors"))


def test_other_families_and_variants_are_named(tmp_path, tiny_model):
    flux = _official({"double_blocks.0.img_attn.qkv": _pair(192, 64), "single_blocks.3.linear1": _pair(64, 64)})
    with pytest.raises(CheckpointError, match=r"2 of its 2 layers match no layer.*double_blocks.*FLUX"):
        _bind(tiny_model, _write(tmp_path, "flux.safetensors", flux))
    sdxl = {"lora_unet_input_blocks_1_1_proj_in.lora_down.weight": torch.zeros(2, 8)}
    sdxl["lora_unet_input_blocks_1_1_proj_in.lora_up.weight"] = torch.zeros(8, 2)
    with pytest.raises(CheckpointError, match="Stable Diffusion"):
        _bind(tiny_model, _write(tmp_path, "sdxl.safetensors", sdxl))

    shapes = tiny_loras.linear_shapes("LTX-2")
    for_ltx2 = {m: _pair(*shapes[m]) for m in ("caption_projection.linear_1", "transformer_blocks.0.attn1.to_q")}
    with pytest.raises(CheckpointError, match=r"LTX-2.3 transformer.*made for LTX-2 \(only LTX-2 has 'caption_"):
        _bind(tiny_model, _write(tmp_path, "x.safetensors", _official(for_ltx2)))
    shapes = tiny_loras.linear_shapes("LTX-2.3")
    for_ltx23 = {m: _pair(*shapes[m]) for m in ("transformer_blocks.1.attn1.to_gate_logits", "patchify_proj")}
    with pytest.raises(CheckpointError, match=r"made for LTX-2.3 \(only LTX-2.3 has 'to_gate_logits'"):
        _bind(tiny_model, _write(tmp_path, "y.safetensors", _official(for_ltx23)), "LTX-2")

    bigger = _official({"transformer_blocks.47.audio_attn1.to_q": _pair(32, 32)})
    with pytest.raises(CheckpointError, match="blocks up to 47, but this model has 2 blocks"):
        _bind(tiny_model, _write(tmp_path, "big.safetensors", bigger))


def test_shape_mismatches_name_the_layer_and_both_shapes(tmp_path, tiny_model):
    video_only = _official({"transformer_blocks.0.attn1.to_q": _pair(2048, 2048)})  # LTX-Video 0.9's width
    with pytest.raises(CheckpointError, match=r"attn1.to_q' is 2048x2048 in this LoRA.*but 64x64.*no audio layers"):
        _bind(tiny_model, _write(tmp_path, "ltxv.safetensors", video_only))
    down, up = _pair(64, 64, rank=4)
    ranks = {"diffusion_model.m.lora_A.weight": down, "diffusion_model.m.lora_B.weight": up[:, :3]}
    with pytest.raises(CheckpointError, match=r"layer 'm' has down \[4, 64\] and up \[64, 3\], whose ranks differ"):
        read_lora(_write(tmp_path, "ranks.safetensors", ranks))
    lonely = {"diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": down}
    with pytest.raises(CheckpointError, match="but no up factor"):
        read_lora(_write(tmp_path, "lonely.safetensors", lonely))
    vector = {"x.lora_A.weight": torch.zeros(4), "x.lora_B.weight": torch.zeros(4, 4)}
    with pytest.raises(CheckpointError, match=r"shape \[4\]; LoRA factors of a linear layer are matrices"):
        read_lora(_write(tmp_path, "vector.safetensors", vector))


def test_other_adapter_kinds_strays_and_damaged_values_are_refused(tmp_path, tiny_model):
    good = _official({"transformer_blocks.0.attn1.to_q": _pair(64, 64)})
    with pytest.raises(CheckpointError, match="DoRA adapter"):
        read_lora(_write(tmp_path, "dora.safetensors", {**good, "diffusion_model.x.dora_scale": torch.ones(1, 64)}))
    stray = {**good, "diffusion_model.transformer_blocks.0.attn1.to_q.bias": torch.zeros(64)}
    with pytest.raises(CheckpointError, match="1 tensors that are not LoRA factors.*to_q.bias"):
        read_lora(_write(tmp_path, "stray.safetensors", stray))
    twice = {**good, "transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 64)}
    with pytest.raises(CheckpointError, match="two down tensors for layer"):
        read_lora(_write(tmp_path, "twice.safetensors", twice))
    nan = dict(good)
    nan["diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight"] = torch.full((64, 2), float("nan"))
    with pytest.raises(CheckpointError, match="lora_B.weight' contains NaN"):
        _bind(tiny_model, _write(tmp_path, "nan.safetensors", nan))
    bad_alpha = {**good, "diffusion_model.transformer_blocks.0.attn1.to_q.alpha": torch.ones(3)}
    with pytest.raises(CheckpointError, match="an alpha is one number"):
        read_lora(_write(tmp_path, "alpha.safetensors", bad_alpha))
    unknown = {**good, **_official({"transformer_blocks.0.attn9.to_q": _pair(64, 64)})}
    with pytest.raises(CheckpointError, match=r"1 of its 2 layers match no layer of the model \('.*attn9"):
        _bind(tiny_model, _write(tmp_path, "unknown.safetensors", unknown))


def test_partial_loras_load_and_say_what_they_change(tmp_path, tiny_model, caplog):
    path = _lora(tmp_path, "voice.safetensors", "LTX-2.3", kind="audio")
    with caplog.at_level(logging.INFO, logger="ltx_av.lora"):
        applied = _bind(tiny_model, path)
    assert len(applied.factors) == 18
    assert "changes 18 layers in 2 of 2 blocks (audio 18) and 0 outside the blocks" in caplog.text
    shapes = tiny_loras.linear_shapes("LTX-2.3")
    connector = {
        "video_embeddings_connector.transformer_1d_blocks.0.attn1.to_q": _pair(64, 64),
        "transformer_blocks.1.ff.net.2": _pair(*shapes["transformer_blocks.1.ff.net.2"]),
    }
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ltx_av.lora"):
        applied = _bind(tiny_model, _write(tmp_path, "conn.safetensors", _official(connector)))
    assert list(applied.factors) == ["transformer_blocks.1.ff.net.2.weight"] and len(applied.left_out) == 1
    assert "1 layers of the text connectors were left out" in caplog.text


def test_metadata_is_kept_and_a_variant_in_the_name_is_checked(tmp_path, tiny_model, caplog):
    path = _lora(
        tmp_path, "ltx-2-19b-ic-lora-canny.safetensors", "LTX-2.3", metadata={"reference_downscale_factor": "2"}
    )
    lora = read_lora(path)
    assert lora.metadata == {"reference_downscale_factor": "2"} and lora.ranks == [4]
    with caplog.at_level(logging.WARNING, logger="ltx_av.lora"):
        _bind(tiny_model, path)
    assert "seems to be made for LTX-2 (from its name or metadata) but the model is LTX-2.3" in caplog.text


# -- the node ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def models_dir(tmp_path, monkeypatch, checkpoints):
    for kind in ("checkpoints", "loras"):
        (tmp_path / kind).mkdir()
    os.symlink(checkpoints["LTX-2.3", "bf16"], tmp_path / "checkpoints" / "tiny.safetensors")
    tiny_loras.write_lora(str(tmp_path / "loras" / "style.safetensors"), "LTX-2.3", seed=10)
    (tmp_path / "loras" / "sub").mkdir()
    tiny_loras.write_lora(str(tmp_path / "loras" / "sub" / "motion.safetensors"), "LTX-2.3", "video", seed=11)
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_node_is_registered_with_tooltips_and_bounds(models_dir):
    assert NODE_CLASS_MAPPINGS["LTXLoraLoader"] is LTXLoraLoader
    assert LTXLoraLoader.CATEGORY == "LTX-AV/loaders" and LTXLoraLoader.DISPLAY_NAME == "Load LoRA (stackable)"
    required = LTXLoraLoader.INPUT_TYPES()["required"]
    assert list(required) == ["model", "lora_name", "strength"]
    assert required["lora_name"][0] == ["style.safetensors", "sub/motion.safetensors"]
    options = required["strength"][1]
    assert options["default"] == 1.0 and options["min"] < 0 < options["max"]
    assert "alpha/rank" in options["tooltip"] and "stage 2" in required["lora_name"][1]["tooltip"]
    assert all(spec[1]["tooltip"] for spec in required.values())


def test_node_chains_loras_and_matches_the_library(models_dir, checkpoints):
    from ltx_av.nodes.model import LTXModelLoader

    (base,) = LTXModelLoader().load("tiny.safetensors", "fp32", "none")
    (one,) = LTXLoraLoader().load(base, "style.safetensors", 0.8)
    (two,) = LTXLoraLoader().load(one, "sub/motion.safetensors", -1.5)
    assert [(a.name, a.strength) for a in two.loras] == [("style.safetensors", 0.8), ("motion.safetensors", -1.5)]
    assert one.loras == two.loras[:1] and base.loras == ()
    assert "LoRA 'motion.safetensors' at -1.5" in repr(two)
    by_hand = base.with_lora(read_lora(str(models_dir / "loras" / "style.safetensors")), 0.8)
    by_hand = by_hand.with_lora(read_lora(str(models_dir / "loras" / "sub" / "motion.safetensors")), -1.5)
    case = make_case(base.config)
    for a, b in zip(_outputs(two, case), _outputs(by_hand, case), strict=True):
        assert torch.equal(a, b)


def test_node_errors_name_the_node_and_the_file(models_dir):
    from ltx_av.nodes.model import LTXModelLoader

    (base,) = LTXModelLoader().load("tiny.safetensors", "fp32", "none")
    tiny_loras.write_lora(str(models_dir / "loras" / "for-ltx-2.safetensors"), "LTX-2", "outside")
    shapes = tiny_loras.linear_shapes("LTX-2")
    _write(
        models_dir / "loras",
        "caption.safetensors",
        _official({"caption_projection.linear_1": _pair(*shapes["caption_projection.linear_1"])}),
    )
    with pytest.raises(CheckpointError, match=r"^LTXLoraLoader: 'caption.safetensors' does not fit this LTX-2.3"):
        LTXLoraLoader().load(base, "caption.safetensors", 1.0)
    # same layer names in both variants, but LTX-2's timestep AdaLN has 6 rows per width where LTX-2.3's has 9
    expected = r"adaln_single.linear' is 384x64 in this LoRA.*but 576x64.*made for LTX-2 \(its 'adaln_single.linear'"
    with pytest.raises(CheckpointError, match=expected):
        LTXLoraLoader().load(base, "for-ltx-2.safetensors", 1.0)
    with pytest.raises(InputError, match="LTXLoraLoader: lora_name 'gone.safetensors' was not found"):
        LTXLoraLoader().load(base, "gone.safetensors", 1.0)
    with pytest.raises(InputError, match="LTXLoraLoader: strength must be between -10 and 10; got 12"):
        LTXLoraLoader().load(base, "style.safetensors", 12.0)
