"""Video VAE: parity with ltx-core 1.0.0 (float32, tiny LTX-2 / LTX-2.3 monoliths read by our loader), key layout,
decoder-only loading, chunked encoding, input checks and the config-driven block kinds."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from ltx_av.ltx_core.checkpoint import open_checkpoint
from ltx_av.ltx_core.config import VideoVAEConfig
from ltx_av.ltx_core.errors import CheckpointError, ConfigError, InputError
from ltx_av.ltx_core.video_vae import VideoVAE, load_video_vae

import tiny_models  # noqa: F401  (imports the reference safely, before anything named ltx_core)
from reference import video_cfg

TOL = 1e-4


def _video(batch: int = 1, frames: int = 9, height: int = 64, width: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, height, width, generator=g) * 2 - 1


def _latent(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.fixture
def vae(tiny_checkpoint) -> VideoVAE:
    return load_video_vae(tiny_checkpoint)


def test_module_keys_equal_checkpoint_keys(tiny_checkpoint):
    ckpt = open_checkpoint(tiny_checkpoint)
    config = ckpt.component_config("video_vae")
    with torch.device("meta"):
        module = VideoVAE(config)
    assert set(module.state_dict()) == set(ckpt.keys("video_vae"))
    assert {"per_channel_statistics.mean-of-means", "per_channel_statistics.std-of-means"} <= set(module.state_dict())


def test_decoder_only_loads_without_encoder_weights(tiny_checkpoint):
    decoder_only = load_video_vae(tiny_checkpoint, parts=("decoder",))
    assert decoder_only.encoder is None and decoder_only.parts == ("decoder",)
    assert not any(k.startswith("encoder.") for k in decoder_only.state_dict())
    with pytest.raises(InputError, match="without its encoder"):
        decoder_only.encode(_video())
    assert decoder_only.decode(_latent((1, 128, 1, 2, 2)), noise_scale=0.0).shape == (1, 3, 1, 64, 64)


def test_encode_matches_reference(tiny_checkpoint, vae):
    reference = tiny_models.load_reference(tiny_checkpoint, "video_encoder")
    video = _video(batch=2, frames=9, height=64, width=64)
    with torch.inference_mode():
        expected = reference(video)
        ours = vae.encode(video)
    assert ours.shape == (2, 128, 2, 2, 2)
    assert _max_err(ours, expected) <= TOL


def test_decode_without_noise_matches_reference(tiny_checkpoint, vae):
    reference = tiny_models.load_reference(tiny_checkpoint, "video_decoder")
    reference.decode_noise_scale = 0.0  # LTX-2's timestep-conditioned decoder: no noise, timestep 0
    latent = _latent((2, 128, 2, 2, 3))
    with torch.inference_mode():
        expected = reference(latent, timestep=torch.zeros(2) if vae.decoder.timestep_conditioning else None)
        ours = vae.decode(latent, timestep=0.0, noise_scale=0.0)
    assert ours.shape == (2, 3, 9, 64, 96)
    assert _max_err(ours, expected) <= TOL


def test_decode_with_identical_noise_matches_reference(tiny_checkpoint, vae):
    reference = tiny_models.load_reference(tiny_checkpoint, "video_decoder")
    latent = _latent((1, 128, 2, 2, 2))
    with torch.inference_mode():
        expected = reference(latent, generator=torch.Generator().manual_seed(7))
        from_generator = vae.decode(latent, noise=torch.Generator().manual_seed(7))
        noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(7))
        from_tensor = vae.decode(latent, noise=noise)
    assert _max_err(from_generator, expected) <= TOL
    assert _max_err(from_tensor, expected) <= TOL
    if vae.decoder.timestep_conditioning:  # the noise matters: a different draw gives a different video
        with torch.inference_mode():
            other = vae.decode(latent, noise=torch.Generator().manual_seed(8))
        assert _max_err(other, expected) > 1e-3


def test_chunked_encode_equals_single_call(vae):
    video = _video(frames=17, height=32, width=64)
    with torch.inference_mode():
        whole = vae.encode(video)
        chunked = vae.encode(video, chunk_frames=8)
    assert vae.encoder.can_stream
    assert _max_err(chunked, whole) <= 1e-5


def test_single_frame_roundtrip_shapes(vae):
    with torch.inference_mode():
        latent = vae.encode(_video(frames=1, height=64, width=64))
        assert latent.shape == (1, 128, 1, 2, 2)
        assert vae.decode(latent, noise_scale=0.0).shape == (1, 3, 1, 64, 64)


def test_bfloat16_decode_is_close_to_float32(tiny_checkpoint, vae):
    half = load_video_vae(tiny_checkpoint, parts=("decoder",), dtype=torch.bfloat16)
    latent = _latent((1, 128, 2, 2, 2))
    with torch.inference_mode():
        full = vae.decode(latent, noise_scale=0.0)
        low = half.decode(latent, noise_scale=0.0)
    assert low.dtype == torch.bfloat16
    relative = (low.float() - full).abs().mean() / full.abs().mean()
    assert relative < 0.05, relative


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 4, 9, 64, 64), "must be \\[batch, 3"),
        ((1, 3, 10, 64, 64), "10 frames.*nearest valid: 9 or 17"),
        ((1, 3, 9, 70, 64), "height is 70.*nearest valid: 64 or 96"),
        ((0, 3, 9, 64, 64), "empty"),
    ],
)
def test_encode_refuses_bad_video(vae, shape, message):
    with pytest.raises(InputError, match=message):
        vae.encode(torch.zeros(shape))


def test_decode_refuses_wrong_latent_channels(vae):
    with pytest.raises(InputError, match="must be \\[batch, 128"):
        vae.decode(torch.zeros(1, 16, 2, 2, 2))


# -- the block list drives the architecture ------------------------------------------------------------------------


def _unusual_config() -> dict:
    """Block kinds and options no released model uses but the official implementation supports."""
    return {
        "dims": 3,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 32,
        "patch_size": 4,
        "norm_layer": "group_norm",
        "latent_log_var": "per_channel",
        "spatial_padding_mode": "replicate",
        "timestep_conditioning": False,
        "causal_decoder": True,
        "decoder_base_channels": 32,
        "encoder_blocks": [
            ["res_x_y", {"multiplier": 2}],
            ["compress_space", 1],
            ["compress_all_x_y", {"multiplier": 1}],
            ["compress_time", 1],
            ["compress_all", 1],
            ["res_x", 1],
        ],
        "decoder_blocks": [
            ["res_x", 1],
            ["compress_space", {"multiplier": 2}],
            ["res_x_y", {"multiplier": 2}],
            ["compress_time", {"multiplier": 1}],
            ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", 1],
        ],
    }


def test_unusual_block_kinds_match_reference(tmp_path):
    config = {"vae": _unusual_config()}
    encoder = video_cfg.VideoEncoderConfigurator.from_config(config).float()
    decoder = video_cfg.VideoDecoderConfigurator.from_config(config).float()
    tiny_models.fill_deterministically(encoder, seed=5)
    tiny_models.fill_deterministically(decoder, seed=6)
    decoder.per_channel_statistics.load_state_dict(encoder.per_channel_statistics.state_dict())
    tensors = {}
    for half, module in (("encoder", encoder), ("decoder", decoder)):
        for k, t in module.state_dict().items():
            key = f"vae.{k}" if k.startswith("per_channel_statistics.") else f"vae.{half}.{k}"
            tensors[key] = t.contiguous()
    path = str(tmp_path / "unusual.safetensors")
    save_file(tensors, path, metadata={"config": json.dumps(config)})
    ours = load_video_vae(path)
    video = _video(frames=9, height=64, width=64)
    latent = _latent((1, 32, 2, 2, 2))
    with torch.inference_mode():
        assert _max_err(ours.encode(video), encoder.eval()(video)) <= TOL
        assert _max_err(ours.decode(latent), decoder.eval()(latent)) <= TOL
    assert not ours.encoder.can_stream  # group norm pools statistics over frames


def _config_with(**changes) -> VideoVAEConfig:
    values = tiny_models.tiny_config("LTX-2.3")["vae"]
    values.update(changes)
    return VideoVAEConfig.from_dict(values)


def test_unknown_block_names_are_refused():
    blocks = tiny_models.tiny_config("LTX-2.3")["vae"]["decoder_blocks"] + [["attn_res_x", {"num_layers": 1}]]
    with pytest.raises(ConfigError, match="unknown block 'attn_res_x'"):
        VideoVAE(_config_with(decoder_blocks=blocks), parts=("decoder",))
    with pytest.raises(ConfigError, match="unknown block 'compress_sideways'"):
        VideoVAE(_config_with(encoder_blocks=[["compress_sideways", 1]]), parts=("encoder",))
    with pytest.raises(ConfigError, match="inject_noise"):
        VideoVAE(_config_with(decoder_blocks=[["res_x", {"num_layers": 1, "inject_noise": True}]]))


def test_wrong_shapes_in_file_are_reported(tmp_path, tiny_checkpoint):
    from safetensors import safe_open

    with safe_open(tiny_checkpoint, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith("vae.")}
        metadata = f.metadata()
    tensors["vae.decoder.conv_in.conv.bias"] = torch.zeros(7)
    path = str(tmp_path / "broken.safetensors")
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(CheckpointError, match="decoder.conv_in.conv.bias expected"):
        load_video_vae(path)
