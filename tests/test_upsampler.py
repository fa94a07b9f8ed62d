"""The latent upsampler against ltx-core 1.0.0's ``LatentUpsampler`` on tiny official-layout files of every kind."""

from __future__ import annotations

import json

import pytest
import tiny_upsamplers
import torch
from ltx_core.model.upsampler import upsample_video
from safetensors.torch import save_file
from tiny_upsamplers import KINDS

from ltx_av.ltx_core import tiling
from ltx_av.ltx_core.checkpoint import open_checkpoint
from ltx_av.ltx_core.config import VideoVAEConfig
from ltx_av.ltx_core.errors import CheckpointError, ConfigError, InputError, TooLargeError
from ltx_av.ltx_core.tiny import fill_deterministically
from ltx_av.ltx_core.upsampler import (
    LatentUpsampler,
    UpsamplerConfig,
    choose_frame_chunk,
    estimate_upsample_bytes,
    load_upsampler,
    upsample_latent,
)
from ltx_av.ltx_core.video_vae import load_video_vae

import tiny_models

# The released files' configs (docs/ltx2-beyond-base.md §1.1): full width, for shapes and memory.
RELEASED = {
    "spatial-x2": {
        **tiny_upsamplers.tiny_upsampler_config("spatial-x2"),
        "mid_channels": 1024,
        "num_blocks_per_stage": 4,
    },
    "temporal-x2": {
        **tiny_upsamplers.tiny_upsampler_config("temporal-x2"),
        "mid_channels": 512,
        "num_blocks_per_stage": 4,
    },
}


@pytest.fixture(scope="module")
def tiny_upsampler_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tiny_upsamplers")
    paths = {}
    for i, kind in enumerate(KINDS):
        paths[kind] = str(folder / f"tiny-{kind}.safetensors")
        tiny_upsamplers.write_upsampler(paths[kind], kind, seed=10 + i)
    return paths


def _latent(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _relative(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("kind", KINDS)
def test_key_layout_is_the_official_files(tiny_upsampler_files, kind):
    config = tiny_upsamplers.tiny_upsampler_config(kind)
    ours = LatentUpsampler(UpsamplerConfig.from_dict(config)).state_dict()
    ref = tiny_upsamplers.reference_upsampler(config).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    assert open_checkpoint(tiny_upsampler_files[kind]).components == ("upsampler",)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("frames,height,width", [(2, 3, 5), (3, 3, 5), (1, 4, 2), (4, 2, 3)])
def test_matches_reference(tiny_upsampler_files, kind, frames, height, width):
    path = tiny_upsampler_files[kind]
    ours = load_upsampler(path, dtype=torch.float32)
    ref = tiny_upsamplers.load_reference_upsampler(path)
    x = _latent((2 if frames == 2 else 1, 128, frames, height, width), seed=frames * 100 + width)
    with torch.no_grad():
        expected = ref(x)
    got = ours(x)
    assert got.shape == expected.shape == ours.config.output_shape(x.shape)
    assert _relative(got, expected) <= 1e-4


def test_output_shapes_of_each_kind():
    shape = (1, 128, 16, 17, 30)
    shapes = {k: UpsamplerConfig.from_dict(tiny_upsamplers.tiny_upsampler_config(k)).output_shape(shape) for k in KINDS}
    assert shapes == {
        "spatial-x2": (1, 128, 16, 34, 60),
        "spatial-x2-rational": (1, 128, 16, 34, 60),
        "spatial-x1.5": (1, 128, 16, 26, 45),
        "temporal-x2": (1, 128, 31, 17, 30),
    }


def test_normalised_entry_matches_the_reference_helper(tiny_upsampler_files, tiny_checkpoints):
    vae_path = tiny_checkpoints["LTX-2.3"]
    statistics = load_video_vae(vae_path, parts=("encoder",), dtype=torch.float32).per_channel_statistics
    ref_encoder = tiny_models.load_reference(vae_path, "video_encoder")
    for kind in ("spatial-x1.5", "temporal-x2"):
        path = tiny_upsampler_files[kind]
        latent = _latent((1, 128, 3, 3, 5), seed=7)
        with torch.no_grad():
            expected = upsample_video(latent, ref_encoder, tiny_upsamplers.load_reference_upsampler(path))
        got = upsample_latent(load_upsampler(path), latent, statistics)
        assert got.dtype == latent.dtype and got.shape == expected.shape
        assert _relative(got, expected) <= 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_chunked_convolutions_equal_one_pass(tiny_upsampler_files, kind):
    model = load_upsampler(tiny_upsampler_files[kind])
    x = _latent((1, 128, 5, 3, 4), seed=3)
    whole = model(x)
    for chunk in (2, 4):  # float rounding only, to the output's scale (see below)
        assert _relative(model(x, frame_chunk=chunk), whole) <= 1e-5


def test_budget_picks_a_chunk_and_gives_the_same_latent(tiny_upsampler_files, tiny_checkpoints):
    statistics = load_video_vae(tiny_checkpoints["LTX-2"], parts=("encoder",)).per_channel_statistics
    model = load_upsampler(tiny_upsampler_files["spatial-x2"])
    latent = _latent((1, 128, 6, 3, 4), seed=5)
    whole_bytes = estimate_upsample_bytes(model.config, latent.shape, model.dtype)
    budget = estimate_upsample_bytes(model.config, latent.shape, model.dtype, frame_chunk=2) + 1
    assert budget < whole_bytes
    assert choose_frame_chunk(model.config, latent.shape, budget, model.dtype) == 2
    assert choose_frame_chunk(model.config, latent.shape, whole_bytes, model.dtype) is None
    chunked = upsample_latent(model, latent, statistics, budget_bytes=budget)
    whole = upsample_latent(model, latent, statistics)
    # the same up to float rounding (the 2-D convolutions see other batch sizes, so other kernels): measured to the
    # output's scale, as an absolute 1e-5 failed once at 1.2e-5 on a loaded 2-core machine
    assert _relative(chunked, whole) <= 1e-5
    with pytest.raises(TooLargeError, match=r"needs about .* even two frames at a time"):
        upsample_latent(model, latent, statistics, budget_bytes=1000)


def test_weights_keep_their_values_when_arranged_for_speed(tiny_upsampler_files):
    path = tiny_upsampler_files["temporal-x2"]
    model = load_upsampler(path)
    plain = LatentUpsampler(model.config)
    plain.load_state_dict(model.state_dict())
    x = _latent((1, 128, 3, 2, 3))
    assert not model.res_blocks[0].conv1.weight.is_contiguous()
    torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-6)


def test_stage1_upsample_of_768x512x121_fits_in_what_its_decode_needs():
    latent, decoded = (1, 128, 16, 8, 12), (1, 128, 16, 16, 24)
    decoder = VideoVAEConfig.from_dict(tiny_models.tiny_config("LTX-2")["vae"] | _FULL_DECODER)
    assert tiling.estimate_decode_bytes(decoder, decoded, torch.bfloat16) == 2394 * 2**20  # bench/video_vae.py's
    # even the decode's smallest tiling needs more than the whole upsample
    decode = min(
        tiling.estimate_tiled_decode_bytes(decoder, decoded, t, torch.bfloat16)
        for t in tiling.tiling_candidates(decoded)
    )
    for kind, config in RELEASED.items():
        need = estimate_upsample_bytes(UpsamplerConfig.from_dict(config), latent, torch.bfloat16)
        assert need < decode / 3, kind


# The LTX-2 decoder's block list (bench/video_vae.py, docs/ltx2-architecture.md §2.1)
_FULL_DECODER = {
    "decoder_base_channels": 128,
    "decoder_blocks": [
        ["res_x", {"num_layers": 5}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5}],
    ],
}


# -- configs and files -------------------------------------------------------------------------------------------


def test_absent_config_keys_mean_what_they_mean_in_ltx_core():
    config = UpsamplerConfig.from_dict({})
    assert (config.in_channels, config.mid_channels, config.num_blocks_per_stage) == (128, 512, 4)
    assert config.kind == "spatial x2" and config.spatial_ratio == (2, 1)
    assert UpsamplerConfig.from_dict(tiny_upsamplers.tiny_upsampler_config("spatial-x1.5")).kind == (
        "spatial x1.5 (rational)"
    )


@pytest.mark.parametrize(
    "change,message",
    [
        ({"spatial_scale": 1.25}, r"'config.spatial_scale' is 1.25; the rational resampler supports 0.75, 1.5"),
        ({"rational_resampler": False}, r"'config.spatial_scale' is 1.5 .* only upsamples by 2"),
        ({"dims": 2}, r"'config.dims' is 2; every LTX-2 latent upsampler has 3"),
        ({"mid_channels": 48}, r"'config.mid_channels' is 48; expected a multiple of 32"),
        ({"temporal_upsample": True}, r"both True; a released upsampler does exactly one"),
        ({"_class_name": "CausalVideoAutoencoder"}, r"'config._class_name' is 'CausalVideoAutoencoder'"),
        ({"num_blocks_per_stage": -1}, r"'config.num_blocks_per_stage' is -1"),
    ],
)
def test_unsupported_configs_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        UpsamplerConfig.from_dict(tiny_upsamplers.tiny_upsampler_config("spatial-x1.5", **change))


def _write(path, tensors, config) -> str:
    save_file(tensors, str(path), metadata=None if config is None else {"config": json.dumps(config)})
    return str(path)


def test_a_file_of_another_kind_than_its_config_is_refused(tmp_path):
    tensors = tiny_upsamplers.write_upsampler(str(tmp_path / "x15.safetensors"), "spatial-x1.5")
    path = _write(tmp_path / "mixed.safetensors", tensors, tiny_upsamplers.tiny_upsampler_config("spatial-x2"))
    with pytest.raises(CheckpointError, match=r"latent upsampler from 'mixed.safetensors' does not match") as info:
        load_upsampler(path)
    assert "upsampler.conv.weight" in str(info.value) and "upsampler.0.weight" in str(info.value)


def test_a_temporal_file_under_a_spatial_config_is_refused(tmp_path):
    tensors = tiny_upsamplers.write_upsampler(str(tmp_path / "t.safetensors"), "temporal-x2")
    path = _write(tmp_path / "t-as-s.safetensors", tensors, tiny_upsamplers.tiny_upsampler_config("spatial-x2"))
    with pytest.raises(CheckpointError, match=r"'t-as-s.safetensors'.*wrong shape: upsampler.0.weight"):
        load_upsampler(path)


def test_model_checkpoints_are_not_upsamplers(tiny_checkpoints):
    with pytest.raises(CheckpointError, match=r"has no latent upsampler; it holds: transformer"):
        load_upsampler(tiny_checkpoints["LTX-2"])


def test_an_upsampler_is_not_a_video_vae(tiny_upsampler_files):
    # build_component reads the config before it routes the keys, so the config's missing section is what it names
    with pytest.raises(CheckpointError, match=r"'tiny-spatial-x2.safetensors'"):
        load_video_vae(tiny_upsampler_files["spatial-x2"])


def test_missing_config_missing_blur_and_wrong_block_count(tmp_path):
    tensors = tiny_upsamplers.write_upsampler(str(tmp_path / "r.safetensors"), "spatial-x1.5")
    config = tiny_upsamplers.tiny_upsampler_config("spatial-x1.5")
    with pytest.raises(CheckpointError, match=r"'bare.safetensors' has no architecture config"):
        load_upsampler(_write(tmp_path / "bare.safetensors", tensors, None))
    no_blur = {k: v for k, v in tensors.items() if not k.endswith("blur_down.kernel")}
    with pytest.raises(CheckpointError, match=r"1 missing .* missing: upsampler.blur_down.kernel"):
        load_upsampler(_write(tmp_path / "no-blur.safetensors", no_blur, config))
    path = _write(tmp_path / "blocks.safetensors", tensors, {**config, "num_blocks_per_stage": 3})
    with pytest.raises(CheckpointError, match=r"'config.num_blocks_per_stage' says 3 but the file holds 2"):
        load_upsampler(path)
    path = _write(tmp_path / "scale.safetensors", tensors, {**config, "spatial_scale": 3.0})
    with pytest.raises(CheckpointError, match=r"'scale.safetensors'.*'config.spatial_scale' is 3"):
        load_upsampler(path)


# -- inputs --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spatial_and_statistics(tiny_upsampler_files, tiny_checkpoints):
    statistics = load_video_vae(tiny_checkpoints["LTX-2"], parts=("encoder",)).per_channel_statistics
    return load_upsampler(tiny_upsampler_files["spatial-x2"]), statistics


@pytest.mark.parametrize(
    "latent,message",
    [
        (torch.full((1, 128, 2, 3, 3), float("nan")), r"samples contains 2304 NaN or infinite value\(s\)"),
        (torch.zeros(1, 64, 2, 3, 3), r"samples must be a video latent \[batch, 128, frames, height, width\]"),
        (torch.zeros(1, 128, 3, 3), r"samples must be a video latent .* got shape \[1, 128, 3, 3\]"),
        (torch.zeros(1, 128, 0, 3, 3), r"samples is empty \(shape \[1, 128, 0, 3, 3\]\)"),
        (torch.zeros(1, 128, 2, 3, 3, dtype=torch.int64), r"samples must be a floating-point .* torch.int64"),
        ([1.0, 2.0], r"samples must be a floating-point video latent tensor; got list"),
    ],
)
def test_bad_latents_are_refused_by_name(spatial_and_statistics, latent, message):
    model, statistics = spatial_and_statistics
    with pytest.raises(InputError, match=message):
        upsample_latent(model, latent, statistics, name="samples")


def test_statistics_of_another_width_are_refused(spatial_and_statistics):
    from ltx_av.ltx_core.video_vae import LatentStatistics

    model, _ = spatial_and_statistics
    with pytest.raises(InputError, match=r"statistics have 64 channels but the spatial x2 upsampler works on 128"):
        upsample_latent(model, torch.zeros(1, 128, 1, 2, 2), LatentStatistics(64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_group_norm_over_frames_matches_torch(monkeypatch, dtype):
    import ltx_av.ltx_core.upsampler as upsampler

    # statistics of a low-precision map are gathered a few frames at a time: make that several pieces here
    monkeypatch.setattr(upsampler, "_STATS_CHUNK_BYTES", 2 * 64 * 6 * 4)
    norm = torch.nn.GroupNorm(32, 64, eps=1e-5).requires_grad_(False)
    fill_deterministically(norm, 3)
    x = (3.0 + 2.0 * _latent((2, 5, 64, 2, 3))).to(dtype)  # frame-major [B, F, C, H, W]
    expected = torch.nn.functional.silu(norm.float()(x.float().transpose(1, 2))).transpose(1, 2)
    got = upsampler.norm_silu_(x.clone(), norm.to(dtype))
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(got.float(), expected, rtol=tolerance, atol=tolerance)
