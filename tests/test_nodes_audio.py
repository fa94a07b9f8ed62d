"""Audio nodes outside ComfyUI (the host falls back to plain folders): loader, decode, encode, bad input."""

from __future__ import annotations

import math
import os

import pytest
import torch

from ltx_av.ltx_core import InputError
from ltx_av.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from ltx_av.nodes.audio import LoadedAudioVAE, LTXAudioDecode, LTXAudioEncode, LTXAudioVAELoader


@pytest.fixture
def models_dir(tmp_path, monkeypatch, tiny_checkpoints):
    (tmp_path / "checkpoints").mkdir()
    for path in tiny_checkpoints.values():
        os.symlink(path, tmp_path / "checkpoints" / os.path.basename(path))
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints):
    """variant -> LTX_AUDIO_VAE, built once for the module."""
    from ltx_av.nodes.audio import load_audio

    return {v: load_audio(p) for v, p in tiny_checkpoints.items()}


def sine_audio(seconds: float, rate: int, channels: int = 2) -> dict:
    t = torch.arange(round(seconds * rate)) / rate
    waveform = torch.stack([0.4 * torch.sin(2 * math.pi * (330 + 110 * c) * t) for c in range(channels)])[None]
    return {"waveform": waveform, "sample_rate": rate}


def test_nodes_are_registered_with_tooltips(models_dir):
    for cls in (LTXAudioVAELoader, LTXAudioDecode, LTXAudioEncode):
        assert NODE_CLASS_MAPPINGS[cls.__name__] is cls
        assert NODE_DISPLAY_NAME_MAPPINGS[cls.__name__] == cls.DISPLAY_NAME
        assert cls.CATEGORY.startswith("LTX-AV/") and cls.DESCRIPTION
        inputs = cls.INPUT_TYPES()
        for section in inputs.values():
            for name, (_, options) in section.items():
                assert options.get("tooltip"), (cls.__name__, name)
        assert not cls.__name__.startswith("LTXV")
    names = LTXAudioVAELoader.INPUT_TYPES()["required"]["ckpt_name"][0]
    assert names == ["tiny-ltx-2.3.safetensors", "tiny-ltx-2.safetensors"]


def test_loader_builds_the_holder(models_dir, variant):
    (audio_vae,) = LTXAudioVAELoader().load(f"tiny-{variant.lower()}.safetensors", "auto")
    assert isinstance(audio_vae, LoadedAudioVAE)
    assert audio_vae.sample_rate == (48000 if variant == "LTX-2.3" else 24000)
    assert audio_vae.latents_per_second == 25.0
    assert (audio_vae.latent_channels, audio_vae.latent_mel_bins) == (8, 16)
    assert audio_vae.variant == variant and audio_vae.dtype == torch.float32
    assert audio_vae.latent_length(121, 24.0) == 126
    with pytest.raises(InputError, match="was not found"):
        LTXAudioVAELoader().load("missing.safetensors", "auto")


def test_decode_is_the_library_decode(loaded, variant):
    audio_vae = loaded[variant]
    latent = torch.randn(1, 8, 4, 16)
    (audio,) = LTXAudioDecode().decode(audio_vae, {"samples": latent, "type": "audio"})
    with torch.no_grad():
        expected = audio_vae.vocoder(audio_vae.vae.decode(latent))
    assert audio["sample_rate"] == audio_vae.vocoder.sample_rate
    assert audio["waveform"].shape == (1, 2, 13 * audio_vae.vocoder.sample_rate // 100)
    assert torch.equal(audio["waveform"], expected)


@pytest.mark.parametrize("variant,channels,rate", [("LTX-2", 1, 44100), ("LTX-2", 2, 22050), ("LTX-2.3", 6, 48000)])
def test_encode_any_rate_and_channel_count_then_decode(loaded, variant, channels, rate):
    audio_vae = loaded[variant]
    audio = sine_audio(0.25, rate, channels)
    (latent,) = LTXAudioEncode().encode(audio_vae, audio)
    assert latent["type"] == "audio" and latent["samples"].shape == (1, 8, 4000 // 640 + 1, 16)
    duration = audio["waveform"].shape[-1] / rate
    assert latent["samples"].dtype == torch.float32 and latent["duration"] == pytest.approx(duration)
    (decoded,) = LTXAudioDecode().decode(audio_vae, latent)
    # 7 latents decode to 0.25 s, trimmed to the input's duration where that is (a fraction of a sample) shorter
    assert decoded["waveform"].shape == (1, 2, round(duration * decoded["sample_rate"]))


def test_decoded_audio_is_trimmed_to_the_recorded_duration(loaded):
    audio_vae = loaded["LTX-2"]
    (latent,) = LTXAudioEncode().encode(audio_vae, sine_audio(0.405, 16000))  # 6480 samples -> 11 latents
    assert latent["samples"].shape[2] == 11  # decodes to 0.41 s, 5 ms more than the input
    (decoded,) = LTXAudioDecode().decode(audio_vae, latent)
    assert decoded["waveform"].shape[-1] == round(0.405 * 24000)
    stale = dict(latent, duration=0.2)  # lengthened since: the duration no longer describes it
    (decoded,) = LTXAudioDecode().decode(audio_vae, stale)
    assert decoded["waveform"].shape[-1] == round(0.41 * 24000)


def test_encode_for_a_video_length(loaded):
    (latent,) = LTXAudioEncode().encode(loaded["LTX-2"], sine_audio(0.3, 16000), video_frames=25, frame_rate=24.0)
    assert latent["samples"].shape[2] == round(25 / 24 * 25) and latent["frame_rate"] == 24.0
    assert latent["duration"] == pytest.approx(25 / 24)


def test_batched_audio_round_trip(loaded):
    audio = sine_audio(0.1, 16000)
    audio["waveform"] = torch.cat([audio["waveform"], 0.5 * audio["waveform"]])
    (latent,) = LTXAudioEncode().encode(loaded["LTX-2.3"], audio)
    (decoded,) = LTXAudioDecode().decode(loaded["LTX-2.3"], latent)
    assert latent["samples"].shape[0] == 2 and decoded["waveform"].shape[:2] == (2, 2)


def test_newer_comfyui_nested_av_latent_decodes_its_audio_part(loaded):
    class Nested:  # stands in for comfy.nested_tensor.NestedTensor (video, audio)
        is_nested = True

        def __init__(self, *parts):
            self.parts = parts

        def unbind(self):
            return list(self.parts)

    audio_latent = torch.randn(1, 8, 3, 16)
    (nested,) = LTXAudioDecode().decode(
        loaded["LTX-2"], {"samples": Nested(torch.zeros(1, 128, 2, 2, 2), audio_latent)}
    )
    (plain,) = LTXAudioDecode().decode(loaded["LTX-2"], {"samples": audio_latent})
    assert torch.equal(nested["waveform"], plain["waveform"])


@pytest.mark.parametrize(
    "latent,message",
    [
        ({"samples": torch.zeros(1, 128, 2, 4, 4)}, "video latent"),
        ({"samples": torch.zeros(1, 128, 2, 4, 4), "type": "video"}, "is a video latent.*Video Decode"),
        ({"samples": torch.zeros(1, 8, 0, 16), "type": "audio"}, "empty"),
        ({"samples": torch.zeros(1, 4, 3, 16), "type": "audio"}, r"\[batch, 8, frames, 16\]"),
        ({"samples": torch.full((1, 8, 3, 16), float("nan"))}, "NaN"),
        (torch.zeros(1, 8, 3, 16), "must be a LATENT"),
    ],
)
def test_decode_refuses_bad_latents_clearly(loaded, latent, message):
    with pytest.raises(InputError, match=message):
        LTXAudioDecode().decode(loaded["LTX-2"], latent)


@pytest.mark.parametrize(
    "audio,message",
    [
        ({"waveform": torch.zeros(1, 2, 0), "sample_rate": 44100}, "empty"),
        ({"waveform": torch.full((1, 2, 100), float("nan")), "sample_rate": 44100}, "NaN"),
        ({"waveform": torch.zeros(1, 2, 100), "sample_rate": -1}, "sample_rate"),
        ({"waveform": torch.zeros(100), "sample_rate": 44100}, r"\[batch, channels, samples\]"),
        ({"sample_rate": 44100}, "must be an AUDIO"),
    ],
)
def test_encode_refuses_bad_audio_clearly(loaded, audio, message):
    with pytest.raises(InputError, match=message):
        LTXAudioEncode().encode(loaded["LTX-2"], audio)


def test_very_short_and_silent_audio_encode(loaded):
    (latent,) = LTXAudioEncode().encode(loaded["LTX-2"], {"waveform": torch.zeros(1, 1, 10), "sample_rate": 8000})
    assert latent["samples"].shape == (1, 8, 1, 16) and torch.isfinite(latent["samples"]).all()


def test_nodes_run_under_inference_mode_like_comfyui(models_dir):
    """ComfyUI loads and runs nodes inside torch.inference_mode: weights are inference tensors there."""
    with torch.inference_mode():
        (audio_vae,) = LTXAudioVAELoader().load("tiny-ltx-2.3.safetensors", "auto")
        (latent,) = LTXAudioEncode().encode(audio_vae, sine_audio(0.1, 44100, channels=1))
        (audio,) = LTXAudioDecode().decode(audio_vae, latent)
    assert audio["sample_rate"] == 48000 and torch.isfinite(audio["waveform"]).all()
    with torch.no_grad():  # and the same holder keeps working outside it
        (again,) = LTXAudioDecode().decode(audio_vae, latent)
    assert torch.equal(again["waveform"], audio["waveform"])
