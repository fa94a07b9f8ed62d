"""The pack's own tiny stand-in files (make-tiny-models, the CLI default) are in the official layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from ltx_av.ltx_core import open_checkpoint, tiny

import tiny_models


@pytest.fixture(scope="module")
def our_tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ours")
    return {v: tiny.write_tiny_checkpoint(str(folder / f"{v}.safetensors"), v, seed=3) for v in tiny.VARIANTS}


def _header(path):
    with safe_open(path, "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, f.metadata()


def test_our_tiny_file_has_the_reference_key_layout(our_tiny_files, tiny_checkpoints, variant):
    ours, meta = _header(our_tiny_files[variant])
    theirs, their_meta = _header(tiny_checkpoints[variant])
    assert ours == theirs
    assert json.loads(meta["config"]) == json.loads(their_meta["config"])
    assert meta["model_version"] == tiny.MODEL_VERSIONS[variant]


def test_the_reference_builds_every_part_from_our_tiny_file(our_tiny_files, variant):
    for part in ("transformer", "video_decoder", "audio_decoder", "vocoder"):
        module = tiny_models.load_reference(our_tiny_files[variant], part)
        assert all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point())
    assert open_checkpoint(our_tiny_files[variant]).variant == variant


def test_tiny_gemma_folder_loads_and_tokenizes_bytes(tmp_path):
    from ltx_av.ltx_core.gemma import load_gemma

    folder = tiny.write_tiny_gemma(str(tmp_path / "gemma"))
    gemma = load_gemma(folder, dtype=torch.float32)
    assert (gemma.hidden_size, gemma.num_hidden_states) == (tiny.GEMMA_HIDDEN, tiny.GEMMA_STATES)
    ids = gemma.token_ids("a cat")
    assert ids[0] == 2 and len(ids) == 1 + len(b"a cat")


def test_a_gemma_stand_in_without_context_gives_each_word_its_own_states(tmp_path):
    """The demo's stand-in (contextual=False): a word's hidden states at every layer are the same whatever words
    come before it; the default stand-in's are not."""
    from ltx_av.ltx_core.gemma import load_gemma

    words = ("red", "green", "square")
    for contextual in (False, True):
        folder = tiny.write_tiny_gemma(str(tmp_path / f"g{contextual}"), words=words, contextual=contextual)
        gemma = load_gemma(folder, dtype=torch.float32)
        red, green = (gemma.encode([f"a {c} square"]).states[0, -1] for c in ("red", "green"))
        assert red.shape[-1] == tiny.GEMMA_STATES
        assert torch.equal(red, green) != contextual


@pytest.fixture(scope="module")
def our_tiny_upsamplers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("upsamplers")
    return {
        kind: tiny.write_tiny_upsampler(str(folder / f"{kind}.safetensors"), kind, seed=5, stand_in=True)
        for kind in tiny.UPSAMPLER_KINDS
    }


@pytest.mark.parametrize(
    ("kind", "named", "shape"),
    [
        ("spatial-x2", "spatial x2", (1, 128, 3, 8, 10)),
        ("spatial-x2-rational", "spatial x2 (rational)", (1, 128, 3, 8, 10)),
        ("spatial-x1.5", "spatial x1.5 (rational)", (1, 128, 3, 6, 8)),
        ("temporal-x2", "temporal x2", (1, 128, 5, 4, 5)),
    ],
)
def test_our_tiny_upsampler_is_an_official_layout_file(our_tiny_upsamplers, kind, named, shape):
    """Flat keys with the config in the metadata, loaded strictly by our loader as the right kind and by ltx-core's
    own builder, both networks giving the same output."""
    import tiny_upsamplers

    from ltx_av.ltx_core.upsampler import load_upsampler

    path = our_tiny_upsamplers[kind]
    shapes, meta = _header(path)
    assert json.loads(meta["config"]) == tiny_upsamplers.tiny_upsampler_config(kind)  # the tests' official-layout one
    assert tiny.STAND_IN_KEY in meta
    ours = load_upsampler(path)
    assert ours.config.kind == named
    reference = tiny_upsamplers.load_reference_upsampler(path)
    assert shapes == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if "rational" in named:  # the blur is the real binomial kernel, not random
        with safe_open(path, "pt") as f:
            kernel = f.get_tensor("upsampler.blur_down.kernel")
        taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        assert torch.equal(kernel, (torch.outer(taps, taps) / 256).view(1, 1, 5, 5))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(x)
    got = ours(x)
    assert got.shape == expected.shape == ours.config.output_shape(shape)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_the_make_tiny_models_upsamplers_are_the_kinds_their_names_say():
    kinds = {path.split("/")[-1]: kind for path, kind in tiny.TINY_MODEL_FILES.items() if kind in tiny.UPSAMPLER_KINDS}
    assert kinds == {
        "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": "spatial-x2",  # LTX-2.3's x2: pixel shuffle, not rational
        "ltx-2.3-temporal-upscaler-x2-1.0.safetensors": "temporal-x2",
        "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": "spatial-x2",  # 2.5's x2: 2.3's architecture
    }
    assert all(p.startswith("latent_upscale_models/") for p, k in tiny.TINY_MODEL_FILES.items() if k in kinds.values())
