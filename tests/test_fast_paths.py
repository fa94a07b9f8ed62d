"""The GPU fast paths, proven on the CPU: attention calls without materialised masks where none is needed, float8
compute through ``torch._scaled_mm``, and a block that ``torch.compile`` traces without graph breaks."""

from __future__ import annotations

import copy
import dataclasses
import os

import pytest
import torch
import torch.nn.functional as F
from transformer_cases import make_case

from ltx_av.ltx_core import transformer as transformer_module
from ltx_av.ltx_core import transformer_block
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.layers import FLOAT8_MAX, Workspace, float8_linear
from ltx_av.ltx_core.offload import float8_compute_problem, place_weights, quantize_float8
from ltx_av.ltx_core.perturbations import Perturbations, isolate_modalities, stg
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.ltx_core.transformer_block import run_block


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


# -- float8 compute --------------------------------------------------------------------------------------------


def _spy_scaled_mm(monkeypatch) -> list:
    calls = []
    real = torch._scaled_mm

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "_scaled_mm", spy)
    return calls


def test_float8_linear_is_the_product_of_the_dequantised_operands(one_thread):
    """``float8_linear`` = (x quantised per token) @ (weight codes x row scales).T + bias, to bfloat16 rounding: the
    matmul adds no error of its own, all of it is the two quantisations (stated: below 4% RMS of the output here)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 19, 64, generator=g).to(torch.bfloat16)
    w = torch.randn(48, 64, generator=g) / 8
    bias = torch.randn(48, generator=g).to(torch.bfloat16)
    codes, scales = quantize_float8(w)
    got = float8_linear(x, codes, scales, bias)
    assert got.shape == (2, 19, 48) and got.dtype == torch.bfloat16
    rows = x.reshape(-1, 64)
    x_scale = rows.float().abs().amax(1, keepdim=True) / FLOAT8_MAX
    x_codes = (rows / x_scale.to(torch.bfloat16)).to(torch.float8_e4m3fn).float() * x_scale  # divided in bf16
    expected = (x_codes @ (codes.float() * scales).t() + bias.float()).view(2, 19, 48)
    assert (got.float() - expected).abs().max() <= 0.01 * expected.abs().max()
    exact = x.float() @ w.t() + bias.float()
    assert ((got.float() - exact).square().mean().sqrt() / exact.std()) < 0.04
    out = torch.empty(2, 19, 48, dtype=torch.bfloat16)
    assert float8_linear(x, codes, scales, bias, out) is out and torch.equal(out, got)


@pytest.mark.parametrize("variant", ["LTX-2", "LTX-2.3"])
def test_float8_compute_against_bfloat16(models, variant, monkeypatch, one_thread):
    """The tiny model with float8 compute: every block matrix whose sides are multiples of 16 goes through
    ``torch._scaled_mm`` (the rest are upcast), and the velocity stays within 5% RMS / 25% max of its spread of the
    bfloat16 model's, its error against float32 at most 1.6x float8 storage's (measured: 2.0-3.6% RMS, 8-14% max;
    storage 1.5-2.8% RMS)."""
    base = models[variant]
    case = make_case(base.config, batch=2, sigmas=(0.9, 0.5), condition_first_frame=True)
    out = {}
    for mode in ("bf16", "storage", "compute"):
        model = copy.deepcopy(base)
        place_weights(model, "cpu", torch.bfloat16, float8=mode != "bf16", float8_compute=mode == "compute")
        with monkeypatch.context() as patch:
            calls = _spy_scaled_mm(patch)
            with torch.no_grad():
                out[mode] = model(case.video, case.audio)
        if mode == "compute":
            assert model.placement.float8_compute
            computed = model.block_weights.float8_compute
            assert len(calls) == len(computed) > 0
            assert all(model.get_submodule(n.rpartition(".")[0]).weight_scale.dtype == torch.float32 for n in computed)
        else:
            assert not calls
    with torch.no_grad():
        exact = base(case.video, case.audio)
    for c, b, s, e in zip(out["compute"], out["bf16"], out["storage"], exact, strict=True):
        spread = b.std()
        assert (c - b).square().mean().sqrt() < 0.05 * spread
        assert (c - b).abs().max() < 0.25 * spread
        assert (c - e).square().mean().sqrt() <= 1.6 * (s - e).square().mean().sqrt()


def test_float8_compute_is_undone_by_placing_without_it(models, one_thread):
    model = copy.deepcopy(models["LTX-2.3"])
    place_weights(model, "cpu", torch.bfloat16, float8_compute=True)
    place_weights(model, "cpu", torch.bfloat16, float8=True)
    assert not any(name.endswith("weight_scale") for name, _ in model.named_buffers())
    assert not model.block_weights.float8_compute and not model.placement.float8_compute
    assert "weight_scale" not in "".join(model.state_dict())


def test_float8_compute_is_refused_where_it_cannot_run(models, monkeypatch):
    model = copy.deepcopy(models["LTX-2.3"])
    with pytest.raises(InputError, match="float8 compute produces bfloat16; the compute dtype is torch.float32"):
        place_weights(model, "cpu", torch.float32, float8_compute=True)
    monkeypatch.delattr(torch, "_scaled_mm")
    assert "has no torch._scaled_mm" in float8_compute_problem("cpu")
    with pytest.raises(InputError, match="float8 compute is not available: torch .* has no torch._scaled_mm"):
        place_weights(model, "cpu", torch.bfloat16, float8_compute=True)
    assert model.placement is None  # refused before anything moved


# -- torch.compile ---------------------------------------------------------------------------------------------


def _block_inputs(model, case, perturbations=None):
    """What the model hands each block: (block, its arguments) per block, from a hooked forward."""
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, args: seen.append(args)) for b in model.transformer_blocks]
    try:
        with torch.no_grad():
            model(case.video, case.audio, perturbations)
    finally:
        for h in hooks:
            h.remove()
    return list(zip(model.transformer_blocks, seen, strict=True))


def _fresh(state):
    return None if state is None else dataclasses.replace(state, x=state.x.clone())


def test_block_traces_without_graph_breaks(models, variant, one_thread):
    """The whole block (conditioned tokens, a padded prompt, STG and modality-isolated items in one batch) is one
    graph for dynamo, with the workspace the compiled blocks use (fresh tensors: the reusing one writes into
    strided views with ``out=``, which dynamo does not trace)."""
    model = models[variant]
    case = make_case(model.config, batch=3, sigmas=(0.9, 0.4, 0.6), condition_first_frame=True, mask_context=True)
    perturbations = Perturbations.of([(), stg([0]), isolate_modalities()])
    block, (video, audio, skips, _) = _block_inputs(model, case, perturbations)[0]
    with torch.no_grad():
        explained = torch._dynamo.explain(run_block)(
            block, None, _fresh(video), _fresh(audio), skips, Workspace(reuse=False)
        )
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons


def test_compiled_blocks_equal_eager(models, variant, one_thread):
    """``compile_blocks`` on the model: one graph per skip pattern shared by every block (fullgraph, no
    recompilation per block), with weights handed in (float8 storage) or not, and the eager result to float32
    rounding. Fast variant: the graphs run as traced (a counting backend); the inductor one is below."""
    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    case = make_case(model_config := models[variant].config, batch=2, sigmas=(0.9, 0.4), condition_first_frame=True)
    assert model_config.num_layers >= 2
    perturbations = Perturbations.of([(), stg([0])])  # block 0 differs from the others for the second item
    compiled = transformer_block.compiled_run_block(counting, True)
    for float8 in (False, True):
        model = copy.deepcopy(models[variant])
        if float8:
            place_weights(model, "cpu", torch.float32, float8=True)
        with torch.no_grad():
            eager = model(case.video, case.audio, perturbations)
            model.compile_blocks = True
            before = len(graphs)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(transformer_module, "compiled_run_block", lambda backend: compiled)
                got = model(case.video, case.audio, perturbations)
        assert len(graphs) - before == 2
        for g, e in zip(got, eager, strict=True):
            assert (g - e).abs().max() <= 1e-5 * e.abs().max()


@pytest.mark.skipif(
    not os.environ.get("LTX_AV_SLOW_TESTS"),
    reason="set LTX_AV_SLOW_TESTS=1: inductor's C++ compile of one tiny block takes minutes on 2 CPU cores",
)
def test_inductor_compiled_model_equals_eager(models, one_thread):
    model = copy.deepcopy(models["LTX-2.3"])
    case = make_case(model.config, condition_first_frame=True)
    with torch.no_grad():
        eager = model(case.video, case.audio)
        model.compile_blocks = True
        got = model(case.video, case.audio)
    for g, e in zip(got, eager, strict=True):
        assert (g - e).abs().max() <= 1e-5 * e.abs().max()


# -- the model loader ------------------------------------------------------------------------------------------


def test_loader_float8_compute_and_compile_options(tiny_checkpoints, monkeypatch, one_thread):
    """``dtype="float8-compute"`` on the loader (node choice and Python API): float8 storage whose block matmuls go
    through ``torch._scaled_mm``, bfloat16 out; ``compile=True`` switches the model's blocks to the compiled runner
    (an optional node widget, off by default)."""
    from ltx_av.nodes import model as model_node

    assert "float8-compute" in model_node.DTYPES
    assert model_node.LTXModelLoader.INPUT_TYPES()["optional"]["compile"][1]["default"] is False
    cpu = torch.device("cpu")
    holder = model_node.load_transformer(
        tiny_checkpoints["LTX-2.3"], dtype="float8-compute", device=cpu, offload_device=cpu, compile=True
    )
    assert holder.float8 and holder.float8_compute and holder.dtype == torch.bfloat16
    assert holder.model.compile_blocks is True and "float8 matmuls" in repr(holder)
    holder.model.compile_blocks = False  # (the compiled run itself is tested above)
    case = make_case(holder.config)
    calls = _spy_scaled_mm(monkeypatch)
    video, audio = holder(case.video, case.audio)
    assert calls and torch.isfinite(video).all() and torch.isfinite(audio).all()
    assert holder.model.placement.float8_compute
    monkeypatch.setattr(model_node, "float8_compute_problem", lambda device: "this card has no float8 matmul")
    with pytest.raises(InputError, match="dtype float8-compute is not available: this card has no float8 matmul"):
        model_node.load_transformer(tiny_checkpoints["LTX-2.3"], dtype="float8-compute", device=cpu)


def test_generate_compile_flag_runs_the_compiled_blocks(tmp_path, monkeypatch, one_thread):
    """``generate --compile`` (the tiny model): every block call goes through the compiled runner (here a stand-in
    that counts and runs the block eagerly; compiling for real is the slow test above) and the video is written."""
    import ltx_av.__main__ as cli

    runs = []

    def stand_in(backend):
        def run(*args):
            runs.append(backend)
            return run_block(*args)

        return run

    monkeypatch.setattr(transformer_module, "compiled_run_block", stand_in)
    out = tmp_path / "clip.mp4"
    cli.main(["generate", "--compile", "--width", "64", "--height", "64", "--steps", "2", "-q", "--output", str(out)])
    assert out.stat().st_size > 0
    assert runs and set(runs) == {"inductor"}
