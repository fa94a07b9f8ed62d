"""Waveform <-> latent helpers: input rules, bad input, length bookkeeping, and encode/decode end to end."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from ltx_av.ltx_core.audio import (
    check_audio_latent,
    decode_audio,
    decoded_seconds,
    encode_audio,
    latent_frames_for_samples,
    to_stereo,
    trim_to_duration,
)
from ltx_av.ltx_core.audio_vae import load_audio_vae
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.latents import audio_latent_length
from ltx_av.ltx_core.vocoder import load_vocoder


@pytest.fixture(scope="module")
def vae(tiny_checkpoints):
    return load_audio_vae(tiny_checkpoints["LTX-2"])


def sine(freq: float, seconds: float, rate: int, channels: int = 2) -> torch.Tensor:
    t = torch.arange(round(seconds * rate)) / rate
    return (0.5 * torch.sin(2 * math.pi * freq * t)).expand(1, channels, -1).clone()


def test_mono_is_duplicated_and_surround_keeps_the_front_pair(caplog):
    mono = torch.rand(2, 1, 100)
    stereo = to_stereo(mono, 44100)
    assert stereo.shape == (2, 2, 100) and torch.equal(stereo[:, 0], stereo[:, 1])
    surround = torch.rand(1, 6, 100)
    with caplog.at_level(logging.WARNING, logger="ltx_av.audio"):
        front = to_stereo(surround, 48000)
    assert torch.equal(front, surround[:, :2]) and "6 channels" in caplog.text


@pytest.mark.parametrize(
    "waveform,rate,message",
    [
        (torch.zeros(1, 2, 0), 16000, "empty"),
        (torch.zeros(0, 2, 100), 16000, "empty"),
        (torch.zeros(2, 100), 16000, r"\[batch, channels, samples\]"),
        (torch.full((1, 2, 100), float("nan")), 16000, "NaN"),
        (torch.tensor([[[0.0, float("inf")]]]), 16000, "NaN or infinite"),
        (torch.zeros(1, 2, 100, dtype=torch.int16), 16000, "floating point"),
        (torch.zeros(1, 2, 100), 0, "sample_rate"),
        (torch.zeros(1, 2, 100), 22050.5, "sample_rate"),
        ("not audio", 16000, "torch tensor"),
    ],
)
def test_bad_audio_is_refused_clearly(waveform, rate, message):
    with pytest.raises(InputError, match=message):
        to_stereo(waveform, rate)


def test_loud_and_silent_audio_are_encoded_as_they_are(vae, caplog):
    with caplog.at_level(logging.WARNING, logger="ltx_av.audio"):
        loud = encode_audio(vae, 3 * sine(440, 0.2, 16000), 16000)
    assert "above full scale" in caplog.text and torch.isfinite(loud).all()
    silent = encode_audio(vae, torch.zeros(1, 2, 3200), 16000)
    assert silent.shape == (1, 8, 6, 16) and torch.isfinite(silent).all()


def test_very_short_audio_is_padded_to_one_window(vae, caplog):
    with caplog.at_level(logging.WARNING, logger="ltx_av.audio"):
        latent = encode_audio(vae, sine(440, 0.001, 44100), 44100)  # 44 samples
    assert latent.shape == (1, 8, 1, 16) and "padding it with silence" in caplog.text


@pytest.mark.parametrize("seconds,rate", [(0.5, 16000), (1.0, 44100), (0.37, 48000), (0.25, 8000)])
def test_encoded_length_follows_the_rule(vae, seconds, rate):
    waveform = sine(300, seconds, rate, channels=1)
    latent = encode_audio(vae, waveform, rate)
    n16k = math.ceil(waveform.shape[-1] * 16000 / rate)
    assert latent.shape == (1, 8, n16k // 640 + 1, 16)
    assert latent.shape[2] == latent_frames_for_samples(waveform.shape[-1], rate, vae)


def test_latent_frames_for_a_video_crop_or_pad_with_silence(vae):
    frames = audio_latent_length(121, 24.0)
    assert frames == 126
    long = encode_audio(vae, sine(440, 7.0, 16000), 16000, latent_frames=frames)
    full = encode_audio(vae, sine(440, 7.0, 16000), 16000)
    assert long.shape[2] == frames
    assert torch.allclose(long, full[:, :, :frames], atol=1e-5)  # cropping the audio changed nothing (causal)
    short = encode_audio(vae, sine(440, 1.0, 16000), 16000, latent_frames=frames)
    padded = torch.cat([sine(440, 1.0, 16000), torch.zeros(1, 2, 16000 * 5)], dim=-1)
    assert short.shape[2] == frames
    assert torch.allclose(short, encode_audio(vae, padded, 16000)[:, :, :frames], atol=1e-5)
    with pytest.raises(InputError, match="latent_frames"):
        encode_audio(vae, sine(440, 1.0, 16000), 16000, latent_frames=0)


@pytest.mark.parametrize(
    "samples,message",
    [
        (torch.zeros(1, 128, 2, 4, 4), "video latent"),
        (torch.zeros(1, 5, 128), "unpatchified"),
        (torch.zeros(1, 8, 5, 32), r"\[batch, 8, frames, 16\]"),
        (torch.zeros(1, 8, 0, 16), "empty"),
        (torch.full((1, 8, 3, 16), float("nan")), "NaN"),
        ([1, 2, 3], "audio latent"),
    ],
)
def test_bad_latents_are_refused_clearly(vae, samples, message):
    with pytest.raises(InputError, match=message):
        check_audio_latent(samples, vae)


def test_decode_lengths_and_rates(tiny_checkpoints, variant):
    path = tiny_checkpoints[variant]
    vae, vocoder = load_audio_vae(path, encoder=False), load_vocoder(path)
    steps = []
    with torch.no_grad():
        waveform = decode_audio(vae, vocoder, torch.randn(2, 8, 3, 16), progress=lambda d, t: steps.append((d, t)))
    rate = 48000 if variant == "LTX-2.3" else 24000
    assert vocoder.sample_rate == rate and steps == [(1, 2), (2, 2)]
    assert waveform.shape == (2, 2, 9 * rate // 100) and waveform.dtype == torch.float32
    assert decoded_seconds(3, vae) == pytest.approx(0.09)
    assert decoded_seconds(126, vae) == pytest.approx(5.01)  # 121 frames at 24 fps: 5.04 s of video


def test_bfloat16_vae_still_runs_the_vocoder_in_float32(tiny_checkpoints):
    path = tiny_checkpoints["LTX-2"]
    vae = load_audio_vae(path, dtype=torch.bfloat16)
    vocoder = load_vocoder(path)
    with torch.no_grad():
        latent = encode_audio(vae, sine(440, 0.3, 22050), 22050)
        waveform = decode_audio(vae, vocoder, latent)
    assert latent.dtype == torch.bfloat16 and waveform.dtype == torch.float32


def test_trim_to_duration_never_pads():
    x = torch.zeros(1, 2, 1000)
    assert trim_to_duration(x, 1000, 0.5).shape[-1] == 500
    assert trim_to_duration(x, 1000, 2.0).shape[-1] == 1000
