"""The checkpoint loader: splitting, typed configs, strict loading, dtype policy and refusing bad files."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors.torch import save_file

from ltx_av.ltx_core import CheckpointError, open_checkpoint
from ltx_av.ltx_core.checkpoint import build_component, check_keys, load_strict
from ltx_av.ltx_core.config import TransformerConfig

import tiny_models

# our component -> (reference part, prefix of its keys in our module)
_OUR_KEYS_FROM_REFERENCE = {
    "transformer": (("transformer", ""),),
    "text_encoder": (
        ("feature_extractor", "text_embedding_projection."),
        ("video_connector", "video_embeddings_connector."),
        ("audio_connector", "audio_embeddings_connector."),
    ),
    "video_vae": (("video_encoder", "encoder."), ("video_decoder", "decoder.")),
    "audio_vae": (("audio_encoder", "encoder."), ("audio_decoder", "decoder.")),
    "vocoder": (("vocoder", ""),),
}


def _expected_shapes(variant: str) -> dict[str, dict[str, tuple[int, ...]]]:
    parts = tiny_models.build_reference_parts(variant)
    expected: dict[str, dict[str, tuple[int, ...]]] = {}
    for component, sources in _OUR_KEYS_FROM_REFERENCE.items():
        shapes = expected.setdefault(component, {})
        for part, prefix in sources:
            for k, t in parts[part].state_dict().items():
                # the VAE statistics are shared by both halves and stored once
                key = k if k.startswith("per_channel_statistics.") else prefix + k
                shapes[key] = tuple(t.shape)
    return expected


def test_monolith_splits_into_the_key_sets_the_reference_modules_expect(tiny_checkpoint, variant):
    ckpt = open_checkpoint(tiny_checkpoint)
    assert ckpt.variant == variant
    assert ckpt.components == ("transformer", "text_encoder", "video_vae", "audio_vae", "vocoder")
    expected = _expected_shapes(variant)
    for component, shapes in expected.items():
        ours = ckpt.shapes(component)
        assert sorted(set(shapes) - set(ours)) == [], f"{component}: missing"
        assert sorted(set(ours) - set(shapes)) == [], f"{component}: unexpected"
        assert ours == shapes, component
        sd = ckpt.state_dict(component)
        assert {k: tuple(v.shape) for k, v in sd.items()} == shapes


def test_state_dict_values_are_the_written_tensors(tiny_checkpoint, variant):
    written = tiny_models.file_state_dict(tiny_models.build_reference_parts(variant))
    ckpt = open_checkpoint(tiny_checkpoint)
    sd = ckpt.state_dict("vocoder")
    for key, tensor in sd.items():
        assert torch.equal(tensor, written["vocoder." + key])
    sd = ckpt.state_dict("text_encoder")
    assert torch.equal(
        sd["video_embeddings_connector.learnable_registers"],
        written["model.diffusion_model.video_embeddings_connector.learnable_registers"],
    )


def test_every_component_config_is_typed_and_matches_the_variant(tiny_checkpoint, variant):
    config = open_checkpoint(tiny_checkpoint).config
    assert config.variant == variant and config.model_version == tiny_models.MODEL_VERSIONS[variant]
    t = config.transformer
    assert (t.num_layers, t.video_dim, t.audio_dim) == (2, 64, 32)
    assert t.rope_type == "split" and t.rope_float64
    text = config.text_encoder
    assert (text.gemma_hidden_size, text.gemma_num_hidden_states) == (
        tiny_models.GEMMA_HIDDEN,
        tiny_models.GEMMA_STATES,
    )
    if variant == "LTX-2.3":
        assert t.apply_gated_attention and t.cross_attention_adaln and t.text_path_version == 2
        assert (text.video_dim, text.audio_dim) == (64, 32) and text.video_connector.apply_gated_attention
        assert config.vocoder.bwe is not None and config.vocoder.sample_rate == 48000
        assert config.video_vae.encoder_spatial_padding_mode == config.video_vae.decoder_spatial_padding_mode == "zeros"
        assert not config.video_vae.timestep_conditioning
    else:
        assert not t.apply_gated_attention and t.text_path_version == 1 and t.adaln_coefficients == 6
        assert (text.video_dim, text.audio_dim) == (32, 32)
        assert config.vocoder.bwe is None and config.vocoder.sample_rate == 24000
        assert (config.video_vae.encoder_spatial_padding_mode, config.video_vae.decoder_spatial_padding_mode) == (
            "zeros",
            "reflect",
        )
    assert config.audio_vae.latents_per_second == 25.0
    assert len(config.video_vae.decoder_blocks) in (7, 9)


def test_stored_dtype_load_is_zero_copy_and_touches_nothing_beside_the_file(tiny_checkpoint, tmp_path):
    folder = os.path.dirname(tiny_checkpoint)
    before = sorted(os.listdir(folder))
    ckpt = open_checkpoint(tiny_checkpoint)
    sd = ckpt.state_dict("transformer")
    again = ckpt.state_dict("transformer")
    key = next(iter(sd))
    assert sd[key].data_ptr() == again[key].data_ptr()  # both views of the same mapped bytes
    assert sorted(os.listdir(folder)) == before


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_cast_on_load(tiny_checkpoint, dtype):
    sd = open_checkpoint(tiny_checkpoint).state_dict("vocoder", dtype=dtype)
    assert {t.dtype for t in sd.values()} == {dtype}


def _write(path, tensors, arch=None, **metadata):
    if arch is not None:
        metadata["config"] = json.dumps(arch)
    save_file(tensors, str(path), metadata=metadata or None)
    return str(path)


def test_float8_weights_are_upcast_and_their_scales_folded(tmp_path):
    config = {"vocoder": tiny_models.tiny_config("LTX-2")["vocoder"]}
    w = torch.randn(4, 3)
    path = _write(
        tmp_path / "f8.safetensors",
        {
            "vocoder.conv_pre.weight": w.to(torch.float8_e4m3fn),
            "vocoder.conv_pre.weight_scale": torch.tensor(0.5),
            "vocoder.conv_post.weight": w.to(torch.float8_e4m3fn),
        },
        config,
    )
    ckpt = open_checkpoint(path)
    sd = ckpt.state_dict("vocoder")
    assert set(sd) == {"conv_pre.weight", "conv_post.weight"}
    assert sd["conv_post.weight"].dtype == torch.bfloat16
    expected = w.to(torch.float8_e4m3fn).float()
    torch.testing.assert_close(sd["conv_post.weight"].float(), expected.bfloat16().float())
    torch.testing.assert_close(sd["conv_pre.weight"].float(), (expected * 0.5).bfloat16().float())
    assert ckpt.state_dict("vocoder", dtype=torch.float32)["conv_post.weight"].dtype == torch.float32
    kept = ckpt.state_dict("vocoder", keep_float8=True)
    assert kept["conv_post.weight"].dtype == torch.float8_e4m3fn
    assert kept["conv_pre.weight"].dtype == torch.bfloat16  # a scaled weight cannot stay raw


# -- strict loading --------------------------------------------------------------------------------------------------


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 4)
        self.b = torch.nn.Linear(4, 2)


def test_strict_loading_names_missing_unexpected_and_wrong_shape_keys():
    with torch.device("meta"):
        module = _Tiny()
    sd = {
        "a.weight": torch.zeros(4, 3),
        "a.bias": torch.zeros(5),
        "b.weight": torch.zeros(2, 4),
        "c.weight": torch.zeros(1),
    }
    with pytest.raises(CheckpointError) as e:
        load_strict(module, sd, component="video_vae", source="/models/ltx-2.3.safetensors", variant="LTX-2.3")
    msg = str(e.value)
    assert "LTX-2.3 video VAE from 'ltx-2.3.safetensors'" in msg
    assert "1 missing" in msg and "b.bias" in msg
    assert "1 unexpected" in msg and "c.weight" in msg
    assert "1 with the wrong shape" in msg and "a.bias expected [4] found [5]" in msg
    assert "of 4 expected tensors" in msg


def test_strict_loading_lists_only_the_first_keys_of_long_lists():
    with torch.device("meta"):
        module = torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(8)])
    with pytest.raises(CheckpointError, match=r"16 missing.*\(and 11 more\)"):
        check_keys(module, {}, component="transformer", source="x.safetensors", variant="LTX-2")


def test_strict_loading_assigns_and_reports_never_filled_buffers():
    class WithComputed(_Tiny):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.empty(3), persistent=False)

    with torch.device("meta"):
        module = WithComputed()
    sd = {k: torch.ones(v.shape) for k, v in module.state_dict().items()}
    with pytest.raises(CheckpointError, match="1 tensors were never filled: table"):
        load_strict(module, sd, component="transformer", source="x.safetensors", variant="LTX-2")

    class Fills(WithComputed):
        def init_computed_buffers(self, device):
            self.table = torch.arange(3.0, device=device)

    with torch.device("meta"):
        module = Fills()
    loaded = load_strict(module, sd, component="transformer", source="x.safetensors", variant="LTX-2")
    assert loaded.a.weight.data_ptr() == sd["a.weight"].data_ptr()  # assigned, not copied
    assert not loaded.training and not loaded.a.weight.requires_grad
    assert loaded.table.tolist() == [0.0, 1.0, 2.0]


def test_build_component_checks_the_header_before_reading(tiny_checkpoints):
    ckpt = open_checkpoint(tiny_checkpoints["LTX-2"])
    with pytest.raises(CheckpointError, match="LTX-2 vocoder from 'tiny-ltx-2.safetensors'.*missing: extra.weight"):
        build_component(ckpt, "vocoder", lambda cfg: _WithExtra(), dtype=torch.float32)
    decoder_keys = ("decoder.", "per_channel_statistics.")
    shapes = {k: v for k, v in ckpt.shapes("video_vae").items() if k.startswith(decoder_keys)}
    module = build_component(ckpt, "video_vae", lambda cfg: _ShapeOnly(shapes), only=decoder_keys)
    assert all(not t.is_meta for t in module.state_dict().values())


class _WithExtra(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.extra = torch.nn.Linear(1, 1, bias=False)


class _ShapeOnly(torch.nn.Module):
    """A module with exactly the given parameter names and shapes."""

    def __init__(self, shapes):
        super().__init__()
        self.params = torch.nn.ParameterDict()
        self._names = {}
        for i, (k, shape) in enumerate(shapes.items()):
            self.params[str(i)] = torch.nn.Parameter(torch.empty(shape))
            self._names[k] = f"params.{i}"

    def state_dict(self, *args, **kwargs):
        inner = super().state_dict(*args, **kwargs)
        return {k: inner[v] for k, v in self._names.items()}

    def load_state_dict(self, sd, strict=True, assign=False):
        return super().load_state_dict({self._names[k]: v for k, v in sd.items()}, strict=strict, assign=assign)


# -- bad files --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickle_checkpoints_are_refused_by_name(tmp_path, suffix):
    path = tmp_path / f"ltx-2-19b-dev{suffix}"
    path.write_bytes(b"\x80\x04whatever")
    with pytest.raises(CheckpointError, match=rf"pickle checkpoint \({suffix}\).*only .safetensors.*arbitrary code"):
        open_checkpoint(path)


def test_pickle_content_under_a_safetensors_name_is_refused(tmp_path):
    path = tmp_path / "renamed.safetensors"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="'renamed.safetensors' is a pickle.*never unpickles"):
        open_checkpoint(path)


def test_truncated_file_is_reported_as_incomplete(tiny_checkpoints, tmp_path):
    data = open(tiny_checkpoints["LTX-2"], "rb").read()
    path = tmp_path / "partial.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="'partial.safetensors' is truncated: tensor .* incomplete download"):
        open_checkpoint(path)
    path.write_bytes(data[:20])
    with pytest.raises(CheckpointError, match="header claims .* bytes but the file has 20"):
        open_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        open_checkpoint(path)


def test_corrupt_header_is_reported(tmp_path):
    header = b"{not json"
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(CheckpointError, match="'corrupt.safetensors' has a corrupt safetensors header"):
        open_checkpoint(path)


def test_missing_or_malformed_config_metadata(tmp_path):
    tensors = {"vae.decoder.conv_in.conv.weight": torch.zeros(1)}
    path = _write(tmp_path / "noconfig.safetensors", tensors)
    with pytest.raises(CheckpointError, match="'noconfig.safetensors' has no architecture config.*'config' entry"):
        open_checkpoint(path)
    path = _write(tmp_path / "badjson.safetensors", tensors, None, config="{'vae': ")
    with pytest.raises(CheckpointError, match="'badjson.safetensors': metadata 'config' is not valid JSON"):
        open_checkpoint(path)
    path = _write(tmp_path / "nosection.safetensors", tensors, {"transformer": {"num_layers": 2}})
    with pytest.raises(CheckpointError, match="no 'vae' section in its metadata config"):
        open_checkpoint(path).component_config("video_vae")


def test_other_model_families_are_named(tmp_path):
    ltxv = _write(
        tmp_path / "ltxv-2b-0.9.8.safetensors",
        {
            "model.diffusion_model.patchify_proj.weight": torch.zeros(2, 2),
            "vae.decoder.conv_in.conv.weight": torch.zeros(1),
        },
        {"transformer": {}, "vae": {}},
    )
    with pytest.raises(CheckpointError, match="LTX-Video \\(0.9.x\\) checkpoint: its transformer has no audio stream"):
        open_checkpoint(ltxv)
    flux = _write(tmp_path / "flux1-dev.safetensors", {"double_blocks.0.img_attn.qkv.weight": torch.zeros(1)}, {})
    with pytest.raises(CheckpointError, match="does not look like an LTX-2 / LTX-2.3 checkpoint.*double_blocks"):
        open_checkpoint(flux)
    diffusers = _write(tmp_path / "diffusion_pytorch_model.safetensors", {"proj_in.weight": torch.zeros(1)}, {})
    with pytest.raises(CheckpointError, match="diffusers key layout"):
        open_checkpoint(diffusers)
    newer = _write(
        tmp_path / "ltx-2.6.safetensors",
        {"vae.decoder.conv_in.conv.weight": torch.zeros(1)},
        {"vae": {}},
        model_version="2.6.0",
    )
    with pytest.raises(CheckpointError, match="model version 2.6.0; LTX-AV supports LTX-2, LTX-2.3 and LTX-2.5"):
        open_checkpoint(newer)


def test_a_gguf_file_is_refused_as_a_model_checkpoint(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(CheckpointError, match="GGUF is accepted only for the Gemma text encoder"):
        open_checkpoint(path)


def test_unsupported_config_values_name_the_key_and_the_file(tmp_path):
    config = tiny_models.tiny_config("LTX-2.3")
    config["transformer"]["qk_norm"] = "layer_norm"
    path = _write(
        tmp_path / "odd.safetensors", {"model.diffusion_model.audio_patchify_proj.weight": torch.zeros(1)}, config
    )
    with pytest.raises(
        CheckpointError, match="'odd.safetensors' \\(LTX-2.3\\): config key 'transformer.qk_norm' is 'layer_norm'"
    ):
        open_checkpoint(path).component_config("transformer")


def test_partial_text_path_switch_is_refused():
    config = tiny_models.tiny_config("LTX-2.3")["transformer"]
    del config["caption_proj_input_norm"]
    with pytest.raises(Exception, match="sets .* but not caption_proj_input_norm"):
        TransformerConfig.from_dict(config)


def test_single_component_files_load_in_both_layouts(tiny_checkpoints, tmp_path):
    full = open_checkpoint(tiny_checkpoints["LTX-2.3"])
    vae = full.state_dict("video_vae")
    vae_config = tiny_models.tiny_config("LTX-2.3")["vae"]
    prefixed = _write(
        tmp_path / "vae-prefixed.safetensors", {"vae." + k: v for k, v in vae.items()}, {"vae": vae_config}
    )
    bare = _write(tmp_path / "vae-bare.safetensors", dict(vae), vae_config)
    for path in (prefixed, bare):
        ckpt = open_checkpoint(path)
        assert ckpt.components == ("video_vae",)
        assert ckpt.shapes("video_vae") == full.shapes("video_vae")
        assert ckpt.component_config("video_vae") == full.component_config("video_vae")
        with pytest.raises(CheckpointError, match="has no transformer|holds a video VAE, not a transformer"):
            ckpt.state_dict("transformer")


@pytest.mark.parametrize("header_len", [0x0380, 0x4B50])
def test_a_header_length_that_starts_like_a_pickle_or_zip_is_still_safetensors(tmp_path, header_len):
    # 0x0380 is written 80 03 ..., the start of a protocol-3 pickle; 0x4B50 is written 50 4B ("PK"), a zip.
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header = header.ljust(header_len)  # the format allows trailing spaces
    path = tmp_path / "lookalike.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.5, -2.0))
    from ltx_av.ltx_core.checkpoint import SafetensorsFile

    file = SafetensorsFile(str(path))
    assert file.read("w").tolist() == [1.5, -2.0] and file.tensor("w").tolist() == [1.5, -2.0]


def test_honest_configs_pass_the_inventory_checks_of_every_component(tiny_checkpoint):
    from ltx_av.ltx_core.audio_vae import AudioVAE
    from ltx_av.ltx_core.checkpoint import check_config_against_file
    from ltx_av.ltx_core.text_encoder import TextPath
    from ltx_av.ltx_core.transformer import AudioVideoTransformer
    from ltx_av.ltx_core.video_vae import VideoVAE
    from ltx_av.ltx_core.vocoder import build_vocoder

    ckpt = open_checkpoint(tiny_checkpoint)
    factories = {
        "transformer": AudioVideoTransformer,
        "text_encoder": TextPath,
        "video_vae": VideoVAE,
        "audio_vae": AudioVAE,
        "vocoder": build_vocoder,
    }
    for component, factory in factories.items():
        check_config_against_file(ckpt, component, ckpt.component_config(component))
        module = build_component(ckpt, component, factory, dtype=torch.float32)
        assert not any(t.is_meta for t in module.state_dict().values())
