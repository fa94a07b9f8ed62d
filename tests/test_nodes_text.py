"""LTXTextEncoderLoader and LTXTextEncode outside ComfyUI (the host adapter falls back to plain folders)."""

from __future__ import annotations

import os

import pytest
import tiny_gemma
import torch

from ltx_av.ltx_core import InputError
from ltx_av.ltx_core.gemma import load_gemma
from ltx_av.ltx_core.text_encoder import encode_prompts, load_text_path
from ltx_av.nodes import NODE_CLASS_MAPPINGS, host
from ltx_av.nodes import text as text_nodes
from ltx_av.nodes.text import LTXTextEncode, LTXTextEncoderHolder, LTXTextEncoderLoader


@pytest.fixture(scope="module")
def gemma_folder(tmp_path_factory) -> str:
    return tiny_gemma.write_gemma_folder(str(tmp_path_factory.mktemp("gemma") / "tiny-gemma-3"))


@pytest.fixture
def models_dir(tmp_path, monkeypatch, tiny_checkpoints, gemma_folder):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "text_encoders" / "loose").mkdir(parents=True)
    for path in tiny_checkpoints.values():
        os.symlink(path, tmp_path / "checkpoints" / os.path.basename(path))
    os.symlink(gemma_folder, tmp_path / "text_encoders" / "tiny-gemma-3")
    (tmp_path / "text_encoders" / "loose" / "other.gguf").write_bytes(b"GGUF")
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    text_nodes._CONTEXT_CACHE.clear()
    return tmp_path


def _load(variant="LTX-2.3", **options):
    name = f"tiny-{variant.lower()}.safetensors"
    return LTXTextEncoderLoader().load("tiny-gemma-3/", name, dtype="float32", **options)[0]


def test_nodes_are_registered_with_tooltips_and_choices(models_dir):
    for cls in (LTXTextEncoderLoader, LTXTextEncode):
        assert NODE_CLASS_MAPPINGS[cls.__name__] is cls
        assert cls.CATEGORY.startswith("LTX-AV/") and cls.DISPLAY_NAME and cls.DESCRIPTION
        for name, spec in cls.INPUT_TYPES()["required"].items():
            assert spec[1]["tooltip"], name
    required = LTXTextEncoderLoader.INPUT_TYPES()["required"]
    # A model folder is one choice (its shards are not), single files anywhere below are choices too.
    assert required["gemma"][0] == ["loose/other.gguf", "tiny-gemma-3/"]
    assert required["tokenizer"][0] == ["auto", "tiny-gemma-3"]
    assert required["ckpt_name"][0] == ["tiny-ltx-2.3.safetensors", "tiny-ltx-2.safetensors"]
    assert required["gemma_device"][1]["default"] == "default" and required["dtype"][1]["default"] == "bfloat16"
    assert LTXTextEncoderLoader.RETURN_TYPES == ("LTX_TEXT_ENCODER",) and LTXTextEncode.RETURN_TYPES == (
        "CONDITIONING",
    )


def test_encode_gives_conditioning_with_both_contexts_and_the_signature(models_dir, gemma_folder, variant):
    holder = _load(variant)
    assert holder.gemma is None  # nothing is read before the first encode
    (conditioning,) = LTXTextEncode().encode(holder, "a red cat on the street", "keep loaded")
    assert isinstance(conditioning, list) and len(conditioning) == 1
    video, extras = conditioning[0]
    expected = encode_prompts(
        load_gemma(gemma_folder, dtype=torch.float32),
        load_text_path(models_dir / "checkpoints" / f"tiny-{variant.lower()}.safetensors", dtype=torch.float32),
        ["a red cat on the street"],
    )
    dims = {"LTX-2": (32, 32), "LTX-2.3": (64, 32)}[variant]
    assert video.shape == (1, 1024, dims[0]) and video.dtype == torch.float32 and video.device.type == "cpu"
    assert extras["ltx_audio_context"].shape == (1, 1024, dims[1])
    assert extras["ltx_text_path"] == {
        "variant": variant,
        "video_dim": dims[0],
        "audio_dim": dims[1],
        "checkpoint": f"tiny-{variant.lower()}.safetensors",
    }
    torch.testing.assert_close(video, expected.video)
    torch.testing.assert_close(extras["ltx_audio_context"], expected.audio)


def test_same_prompt_is_not_encoded_again(models_dir, monkeypatch):
    holder = _load()
    positive = LTXTextEncode().encode(holder, "a dog runs", "free")[0]
    negative = LTXTextEncode().encode(holder, "", "free")[0]
    assert holder.gemma is None and holder.text_path is None  # freed after encoding
    assert not torch.equal(positive[0][0], negative[0][0])

    def must_not_run(*args, **kwargs):
        raise AssertionError("re-encoded a cached prompt")

    monkeypatch.setattr(text_nodes, "encode_prompts", must_not_run)
    again = LTXTextEncode().encode(_load(), "  a dog runs ", "free")[0]  # a new holder for the same files
    assert holder.gemma is None
    assert torch.equal(again[0][0], positive[0][0])
    assert torch.equal(again[0][1]["ltx_audio_context"], positive[0][1]["ltx_audio_context"])


def test_models_are_offloaded_or_kept(models_dir):
    holder = _load()
    LTXTextEncode().encode(holder, "a bird flies", "offload to CPU")
    assert holder.gemma.device == host.offload_device() and holder.text_path is not None
    gemma = holder.gemma
    LTXTextEncode().encode(holder, "a bird sings", "keep loaded")
    assert holder.gemma is gemma  # not reloaded


def test_progress_is_reported_per_gemma_layer(models_dir):
    seen = []
    host.set_progress_listener(lambda value, total, preview: seen.append((value, total)))
    try:
        LTXTextEncode().encode(_load(), "a slow camera pans", "free")
    finally:
        host.set_progress_listener(None)
    assert (4, 4) in seen and (1, 4) in seen


def test_mismatched_gemma_is_refused_by_the_loader(models_dir, tmp_path):
    tiny_gemma.write_gemma_folder(str(models_dir / "text_encoders" / "wide-gemma"), hidden=48, layers=2)
    with pytest.raises(InputError, match=r"hidden size 48 and 3 hidden states.*expects hidden size 32 and 5"):
        LTXTextEncoderLoader().load("wide-gemma/", "tiny-ltx-2.safetensors", dtype="float32")


def test_bad_inputs_are_named(models_dir):
    with pytest.raises(InputError, match="not found in the 'text_encoders' folders"):
        LTXTextEncoderLoader().load("missing/", "tiny-ltx-2.safetensors")
    with pytest.raises(InputError, match="dtype is 'float16'"):
        LTXTextEncoderLoader().load("tiny-gemma-3/", "tiny-ltx-2.safetensors", dtype="float16")
    with pytest.raises(InputError, match=r"text_encoder must be the text encoder from Load Text Encoder \(Gemma\)"):
        LTXTextEncode().encode(object(), "a cat")
    assert isinstance(_load(), LTXTextEncoderHolder)
