"""Video VAE nodes without ComfyUI: loading from the model folders, IMAGE <-> LATENT round trips with the documented
fit rule, tiling options, progress and interrupts, bad inputs, and the LTX_VAE Python API."""

from __future__ import annotations

import logging
import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from ltx_av.ltx_core import tiling
from ltx_av.ltx_core.errors import InputError
from ltx_av.nodes import host
from ltx_av.nodes.video import NODES, LoadedVideoVAE, LTXLoadVideoVAE, LTXVAEDecode, LTXVAEEncode


@pytest.fixture
def models_dir(tmp_path, tiny_checkpoints, monkeypatch):
    for folder in ("checkpoints", "vae"):
        os.makedirs(tmp_path / folder)
    for variant, path in tiny_checkpoints.items():
        os.symlink(path, tmp_path / "checkpoints" / f"tiny-{variant}.safetensors")
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def vae23(models_dir) -> LoadedVideoVAE:
    return LTXLoadVideoVAE().load("checkpoints/tiny-LTX-2.3.safetensors", "fp32")[0]


@pytest.fixture
def progress_log():
    seen: list[tuple[int, int]] = []
    host.set_progress_listener(lambda value, total, preview: seen.append((value, total)))
    yield seen
    host.set_progress_listener(None)


def _nan_latent() -> torch.Tensor:
    latent = torch.zeros(1, 128, 2, 2, 2)
    latent[0, 5, 1, 0, 1] = float("nan")
    return latent


def _images(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(frames, height, width, 3, generator=g)


# Names core ComfyUI (which wins silently) or widely used packs already register.
TAKEN = {
    "LTXVAudioVAELoader",
    "LTXVAudioVAEEncode",
    "LTXVAudioVAEDecode",
    "LTXVImgToVideo",
    "LTXVAddGuide",
    "LTXVLatentUpsampler",
    "LTXVTiledVAEDecode",
    "LTXVAELoader",
    "VAELoader",
    "VAEEncode",
    "VAEDecode",
}


def test_nodes_follow_the_pack_conventions():
    for cls in NODES:
        assert cls.__name__.startswith("LTX") and cls.__name__ not in TAKEN
        assert cls.CATEGORY.startswith("LTX-AV/") and cls.DISPLAY_NAME and cls.DESCRIPTION
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, (_, options) in spec.get(section, {}).items():
                assert options.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"


def test_loader_lists_both_folders_and_loads_the_decoder_first(models_dir):
    # plain names, as ComfyUI's frontend matches them against a workflow's models (a missing file listed once);
    # a vae/ file named like a checkpoint keeps its folder in front
    os.symlink(models_dir / "checkpoints" / "tiny-LTX-2.safetensors", models_dir / "vae" / "own-vae.safetensors")
    shutil.copy(models_dir / "checkpoints" / "tiny-LTX-2.safetensors", models_dir / "vae" / "tiny-LTX-2.3.safetensors")
    choices = LTXLoadVideoVAE.INPUT_TYPES()["required"]["vae_name"][0]
    assert choices == [
        "tiny-LTX-2.3.safetensors",
        "tiny-LTX-2.safetensors",
        "own-vae.safetensors",
        "vae/tiny-LTX-2.3.safetensors",
    ]
    vae = LTXLoadVideoVAE().load("tiny-LTX-2.3.safetensors")[0]
    assert vae.vae.parts == ("decoder",) and vae.variant == "LTX-2.3" and vae.dtype == torch.float32
    assert LTXLoadVideoVAE().load("vae/tiny-LTX-2.3.safetensors")[0].variant == "LTX-2"  # the vae/ one
    assert LTXLoadVideoVAE().load("own-vae.safetensors")[0].variant == "LTX-2"
    # the form workflows saved before: '<folder>/<file>' (ComfyUI lets it through: VALIDATE_INPUTS)
    assert LTXLoadVideoVAE().load("checkpoints/tiny-LTX-2.3.safetensors")[0].variant == "LTX-2.3"
    assert LTXLoadVideoVAE.VALIDATE_INPUTS("checkpoints/tiny-LTX-2.3.safetensors") is True
    with pytest.raises(InputError, match="not found"):
        LTXLoadVideoVAE().load("vae/missing.safetensors")


def test_encode_decode_round_trip_pads_and_crops_back(vae23, caplog, progress_log):
    images = _images(10, 40, 70)
    with caplog.at_level(logging.INFO, logger="ltx_av"):
        latent = LTXVAEEncode().encode(vae23, images, fit="pad", frame_rate=25.0)[0]
    assert latent["samples"].shape == (1, 128, 3, 2, 3)  # 10 -> 17 frames, 40 x 70 -> 64 x 96
    assert latent["type"] == "video" and latent["frame_rate"] == 25.0
    assert latent["samples"].dtype == torch.float32 and latent["samples"].device.type == "cpu"
    assert "padded 10 frames of 70x40 to 17 frames of 96x64" in caplog.text
    assert vae23.vae.parts == ("encoder", "decoder")  # the encoder loaded on first use
    decoded = LTXVAEDecode().decode(vae23, latent, tiling="off")[0]
    assert decoded.shape == (10, 40, 70, 3)
    assert 0.0 <= decoded.min() and decoded.max() <= 1.0
    assert progress_log and progress_log[-1][0] == progress_log[-1][1]


def test_encode_node_runs_the_plain_encoder(vae23):
    images = _images(9, 32, 64)
    latent = LTXVAEEncode().encode(vae23, images, fit="error", tiling="off")[0]["samples"]
    pixels = images.permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1
    with torch.inference_mode():
        assert (latent - vae23.vae.encode(pixels)).abs().max() <= 1e-6
    # the API the image-conditioning node calls: one frame in [-1, 1]
    assert vae23.encode_pixels(pixels[:, :, :1]).shape == (1, 128, 1, 1, 2)


def test_crop_and_error_fit_modes(vae23):
    images = _images(12, 40, 70)
    latent = LTXVAEEncode().encode(vae23, images, fit="crop")[0]
    assert latent["samples"].shape == (1, 128, 2, 1, 2)  # 9 frames of 64 x 32, centred
    assert "ltx_video_fit" not in latent
    assert LTXVAEDecode().decode(vae23, latent)[0].shape == (9, 32, 64, 3)
    with pytest.raises(InputError, match="12 frames of 70x40.*frames 9 or 17, width 64 or 96, height 32 or 64"):
        LTXVAEEncode().encode(vae23, images, fit="error")


def test_manual_tiling_matches_ltx_core_and_reports_each_tile(vae23, progress_log):
    latent = {"samples": torch.randn(1, 128, 3, 2, 4, generator=torch.Generator().manual_seed(1)), "type": "video"}
    node = LTXVAEDecode().decode(
        vae23, latent, tiling="manual", spatial_tile=96, spatial_overlap=32, temporal_tile=16, temporal_overlap=8
    )[0]
    setting = tiling.DecodeTiling(96, 32, 16, 8)
    with torch.inference_mode():
        direct = tiling.decode(vae23.vae, latent["samples"], setting).clamp(-1, 1)
    expected = ((direct + 1) / 2)[0].permute(1, 2, 3, 0)
    assert (node - expected).abs().max() <= 1e-6
    assert [v for v, _ in progress_log] == [1, 2, 3, 4] and progress_log[-1][1] == 4


def test_auto_tiling_follows_free_memory(vae23, monkeypatch, progress_log):
    latent = {"samples": torch.randn(1, 128, 5, 2, 2), "type": "video"}
    monkeypatch.setattr(host, "available_memory", lambda device: 10 * 2**30)
    LTXVAEDecode().decode(vae23, latent)
    assert progress_log[-1][1] == 1  # plenty of memory: one piece
    progress_log.clear()
    monkeypatch.setattr(host, "available_memory", lambda device: 2 * 2**20)
    LTXVAEDecode().decode(vae23, latent)
    assert progress_log[-1][1] > 1  # little memory: tiles


def test_decode_retries_with_smaller_tiles_when_memory_runs_out(vae23, monkeypatch):
    latent = {"samples": torch.randn(1, 128, 5, 2, 2), "type": "video"}
    real = vae23.vae.decoder.forward

    def tight(z, t=None):
        if z.shape[2] > 3:
            raise torch.OutOfMemoryError("pretend")
        return real(z, t)

    monkeypatch.setattr(vae23.vae.decoder, "forward", tight)
    assert LTXVAEDecode().decode(vae23, latent, tiling="off")[0].shape == (33, 64, 64, 3)


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.rand(9, 64, 64, 4), "4 channels.*RGBA"),
        (torch.rand(9, 64, 64, 1), "1 channels"),
        (torch.rand(0, 64, 64, 3), "empty"),
        (torch.rand(64, 64, 3), "IMAGE batch"),
    ],
)
def test_encode_refuses_bad_images(vae23, images, message):
    with pytest.raises(InputError, match=f"LTXVAEEncode: images.*{message}"):
        LTXVAEEncode().encode(vae23, images)


@pytest.mark.parametrize(
    "samples, message",
    [
        ({"samples": _nan_latent(), "type": "video"}, "1 NaN or infinite"),
        ({"samples": torch.zeros(1, 4, 2, 8, 8)}, "4 channels"),
        ({"samples": torch.zeros(1, 16, 8, 8)}, "image latent"),
        ({"samples": torch.zeros(1, 8, 20, 16), "type": "audio"}, "is an audio latent.*Audio Decode"),
        ({"noise": torch.zeros(1)}, "must be a LATENT"),
    ],
)
def test_decode_refuses_bad_latents(vae23, samples, message):
    with pytest.raises(InputError, match=f"LTXVAEDecode: samples.*{message}"):
        LTXVAEDecode().decode(vae23, samples)


def test_failed_or_interrupted_decode_leaves_the_latent_untouched(vae23, monkeypatch):
    samples = {"samples": torch.randn(1, 128, 3, 2, 2), "type": "video", "frame_rate": 24.0}
    before = samples["samples"].clone()

    def stop_at_first_tile(value, total, preview):
        host.request_interrupt()

    host.set_progress_listener(stop_at_first_tile)
    try:
        with pytest.raises(host.Interrupted):
            LTXVAEDecode().decode(vae23, samples, tiling="manual", spatial_tile=0, temporal_tile=16, temporal_overlap=8)
    finally:
        host.set_progress_listener(None)
    assert torch.equal(samples["samples"], before) and set(samples) == {"samples", "type", "frame_rate"}

    def broken(z, t=None):
        raise RuntimeError("decoder failure")

    monkeypatch.setattr(vae23.vae.decoder, "forward", broken)
    with pytest.raises(RuntimeError, match="decoder failure"):
        LTXVAEDecode().decode(vae23, samples)
    assert torch.equal(samples["samples"], before)


def test_core_latent_nodes_in_between(vae23, caplog):
    """What LatentBatch / LatentUpscaleBy do to the dict: concatenate, or resize the samples and keep the keys."""
    latent = LTXVAEEncode().encode(vae23, _images(9, 30, 64), fit="pad")[0]
    batched = dict(latent, samples=torch.cat([latent["samples"], latent["samples"]]))
    assert LTXVAEDecode().decode(vae23, batched)[0].shape == (18, 30, 64, 3)
    upscaled = dict(latent, samples=F.interpolate(latent["samples"], scale_factor=(1, 2, 2)))
    with caplog.at_level(logging.INFO, logger="ltx_av"):
        frames = LTXVAEDecode().decode(vae23, upscaled)[0]
    assert frames.shape == (9, 64, 128, 3) and "no longer has the size" in caplog.text


def test_timestep_conditioned_decoder_uses_the_seed(models_dir):
    vae = LTXLoadVideoVAE().load("checkpoints/tiny-LTX-2.safetensors", "fp32")[0]
    assert vae.timestep_conditioning
    latent = {"samples": torch.randn(1, 128, 2, 2, 2), "type": "video"}
    a = LTXVAEDecode().decode(vae, latent, seed=1)[0]
    b = LTXVAEDecode().decode(vae, latent, seed=1)[0]
    c = LTXVAEDecode().decode(vae, latent, seed=2)[0]
    quiet = LTXVAEDecode().decode(vae, latent, decode_noise_scale=0.0, seed=1)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    with torch.inference_mode():
        expected = vae.vae.decode(latent["samples"], timestep=0.05, noise_scale=0.0).clamp(-1, 1)
    assert (quiet - ((expected + 1) / 2)[0].permute(1, 2, 3, 0)).abs().max() <= 1e-6
