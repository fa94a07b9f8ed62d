"""LTXUpsamplerLoader and LTXLatentUpsample outside ComfyUI: shapes, what a latent carries across, the reference."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import tiny_upsamplers
import torch
from ltx_core.model.upsampler import upsample_video
from ltx_core.model.video_vae.ops import PerChannelStatistics

from ltx_av.nodes import NODE_CLASS_MAPPINGS
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXImageCondition, LTXSampler
from ltx_av.nodes.upsample import LTXLatentUpsample, LTXUpsamplerLoader
from ltx_av.nodes.video import LTXLoadVideoVAE

FILES = {
    "spatial-x2": "tiny-spatial-upscaler-x2.safetensors",
    "spatial-x1.5": "tiny-spatial-upscaler-x1.5.safetensors",
    "temporal-x2": "tiny-temporal-upscaler-x2.safetensors",
}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, tiny_checkpoints):
    root = tmp_path_factory.mktemp("upsample")
    (root / "checkpoints").mkdir()
    (root / "latent_upscale_models").mkdir()
    os.symlink(tiny_checkpoints["LTX-2.3"], root / "checkpoints" / "tiny.safetensors")
    for kind, name in FILES.items():
        tiny_upsamplers.write_upsampler(str(root / "latent_upscale_models" / name), kind)
    return root


@pytest.fixture
def env(models_dir, monkeypatch):
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(models_dir))
    vae = LTXLoadVideoVAE().load("checkpoints/tiny.safetensors", "fp32")[0]
    return models_dir, vae


def _upsampler(kind: str):
    return LTXUpsamplerLoader().load(FILES[kind], "fp32")[0]


def test_nodes_are_registered_and_list_the_folder(env):
    for cls in (LTXUpsamplerLoader, LTXLatentUpsample):
        assert (
            NODE_CLASS_MAPPINGS[cls.__name__] is cls and cls.DISPLAY_NAME and not cls.DISPLAY_NAME.startswith("LTX-AV")
        )
    assert LTXUpsamplerLoader.INPUT_TYPES()["required"]["upsampler_name"][0] == sorted(FILES.values())


@pytest.mark.parametrize("kind", list(FILES))
def test_upsample_equals_the_reference_and_keeps_the_latent_dict(env, kind):
    models_dir, vae = env
    upsampler = _upsampler(kind)
    samples = torch.randn(1, 128, 3, 3, 5, generator=torch.Generator().manual_seed(3))
    latent = {"samples": samples, "type": "video", "frame_rate": 24.0, "custom": "kept"}
    kept = samples.clone()
    out, audio = LTXLatentUpsample().upsample(latent, upsampler, vae)
    assert audio is None and torch.equal(samples, kept)
    reference = tiny_upsamplers.load_reference_upsampler(str(models_dir / "latent_upscale_models" / FILES[kind]))
    statistics = PerChannelStatistics(128)  # the reference's, holding the same file's buffers as ours
    statistics.load_state_dict(vae.vae.per_channel_statistics.state_dict())
    with torch.no_grad():
        expected = upsample_video(samples, SimpleNamespace(per_channel_statistics=statistics), reference)
    assert out["samples"].shape == expected.shape
    assert (out["samples"] - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert out["custom"] == "kept" and out["type"] == "video"
    assert out["frame_rate"] == (48.0 if kind == "temporal-x2" else 24.0)


def test_conditions_and_masks_are_dropped_and_padding_scales(env, caplog):
    _, vae = env
    video, audio = LTXEmptyLatent().make(80, 64, 9, 24.0)  # padded to 96x64
    (video,) = LTXImageCondition().condition(vae, torch.rand(1, 64, 80, 3), video, 0, 1.0, 0)
    video["noise_mask"] = torch.ones(1, 1, 2, 1, 1)
    caplog.set_level("INFO", logger="ltx_av.nodes.upsample")
    out, out_audio = LTXLatentUpsample().upsample(video, _upsampler("spatial-x2"), vae, audio)
    assert "ltx_conditions" not in out and "noise_mask" not in out
    assert "apply Image Condition (keyframe) again" in caplog.text and "dropped the noise_mask" in caplog.text
    fit = out["ltx_video_fit"]
    assert (fit["width"], fit["fitted_width"], fit["left"]) == (160, 192, 16) and fit["fitted_height"] == 128
    assert out_audio["samples"] is audio["samples"] and out_audio["frame_rate"] == 24.0


def test_temporal_x2_doubles_the_frame_rate_of_both_latents_and_the_sampler_pairs_them(env, tiny_checkpoints):
    from ltx_av.nodes.model import load_transformer

    _, vae = env
    video, audio = LTXEmptyLatent().make(64, 64, 17, 24.0)
    video["samples"] = torch.randn(video["samples"].shape)
    out, out_audio = LTXLatentUpsample().upsample(video, _upsampler("temporal-x2"), vae, audio)
    assert out["samples"].shape[2] == 5 and out["frame_rate"] == 48.0 and out_audio["frame_rate"] == 48.0
    model = load_transformer(tiny_checkpoints["LTX-2.3"], device="cpu", offload_device="cpu")
    c = model.config
    context = [[torch.randn(1, 4, c.video_dim), {"ltx_audio_context": torch.randn(1, 4, c.audio_dim)}]]
    v, a = LTXSampler().run(model, context, out, 0, schedule="stage2", audio_latent=out_audio, audio_mode="keep")
    assert v["samples"].shape == out["samples"].shape and torch.equal(a["samples"], out_audio["samples"])
