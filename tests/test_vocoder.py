"""Vocoders (HiFi-GAN for LTX-2, BigVGAN + bandwidth extension for LTX-2.3) against ltx-core 1.0.0.

The shared tiny LTX-2.3 vocoder has random weights whose activations grow to ~100 through the twelve generator
stages; 97% of its output samples sit on the final +-1 clamp and float32 rounding is amplified ~1000x, so even
the reference in float32 differs from itself in float64 by ~4e-4. On that file we therefore check parity in
float64 (the arithmetic is the same) and that our float32 error is no larger than the reference's own. Float32
parity at 1e-4 is checked on a copy whose vocoder conv weights are halved (every key, shape and config value
unchanged), where activations stay O(1) like a trained model's.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from ltx_core.model.audio_vae.vocoder import Activation1d, SnakeBeta
from safetensors.torch import save_file

from ltx_av.ltx_core import vocoder as vocoder_module
from ltx_av.ltx_core.checkpoint import open_checkpoint
from ltx_av.ltx_core.mel import log_mel_spectrogram, resample
from ltx_av.ltx_core.vocoder import (
    AntiAliasedSnake,
    BandwidthExtendedVocoder,
    WaveGenerator,
    build_vocoder,
    conv_time_major,
    load_vocoder,
    upsample_time_major,
)

import tiny_models

TOL = 1e-4


def tone_mel(frames: int) -> torch.Tensor:
    """A realistic vocoder input: the log-mel of a stereo tone pair (what the audio VAE decodes to)."""
    n = (frames - 1) * 160
    t = torch.arange(max(n, 1024)) / 16000
    wave = torch.stack([0.5 * torch.sin(2 * math.pi * 440 * t), 0.3 * torch.sin(2 * math.pi * 1250 * t)])[None]
    mel = log_mel_spectrogram(wave, sample_rate=16000, n_fft=1024, hop_length=160, n_mels=64)
    return mel[:, :, :frames]


@pytest.fixture(scope="module")
def well_conditioned_bwe(tmp_path_factory):
    """The tiny LTX-2.3 monolith with its vocoder's conv weights halved (see the module docstring)."""
    parts = tiny_models.build_reference_parts("LTX-2.3")
    with torch.no_grad():
        for p in parts["vocoder"].parameters():
            if p.ndim == 3:
                p.mul_(0.5)
    path = str(tmp_path_factory.mktemp("vocoder") / "tiny-ltx-2.3-calm.safetensors")
    metadata = {"config": json.dumps(tiny_models.tiny_config("LTX-2.3")), "model_version": "2.3.0"}
    save_file(tiny_models.file_state_dict(parts), path, metadata=metadata)
    return path


def test_module_keys_are_the_checkpoint_keys(tiny_checkpoint, variant):
    ckpt = open_checkpoint(tiny_checkpoint)
    with torch.device("meta"):
        vocoder = build_vocoder(ckpt.component_config("vocoder"))
    assert isinstance(vocoder, BandwidthExtendedVocoder if variant == "LTX-2.3" else WaveGenerator)
    ours = {k: tuple(v.shape) for k, v in vocoder.state_dict().items()}
    assert ours == {k: tuple(v) for k, v in ckpt.shapes("vocoder").items()}


# The tiny HiFi-GAN's stages are 32, 16, 8, 4, 2 channels wide: 0 keeps every stage channels-first, 8 switches
# to time-major in the middle, 1024 runs all of them time-major. Overlap-save (the released model's wide stages on
# the CPU) is off at the tiny width unless its threshold is lowered to 8 (the 32-, 16- and 8-channel stages).
@pytest.mark.parametrize("time_major_max_channels", [0, 8, 1024])
@pytest.mark.parametrize("overlap_save_min_channels", [256, 8])
def test_hifigan_matches_reference(tiny_checkpoints, monkeypatch, time_major_max_channels, overlap_save_min_channels):
    monkeypatch.setattr(vocoder_module, "TIME_MAJOR_MAX_CHANNELS", time_major_max_channels)
    monkeypatch.setattr(vocoder_module, "OVERLAP_SAVE_MIN_CHANNELS", overlap_save_min_channels)
    calls = []
    direct = vocoder_module.overlap_save_conv1d
    monkeypatch.setattr(vocoder_module, "overlap_save_conv1d", lambda *a: calls.append(a[1].shape) or direct(*a))
    path = tiny_checkpoints["LTX-2"]
    ours, ref = load_vocoder(path), tiny_models.load_reference(path, "vocoder")
    assert ours.sample_rate == 24000 and ours.hop_length == 240
    for mel in (tone_mel(1), tone_mel(23), torch.randn(2, 2, 7, 64) - 4):
        with torch.no_grad():
            a, b = ours(mel), ref(mel)
        assert a.shape == b.shape == (mel.shape[0], 2, 240 * mel.shape[2])
        assert (a - b).abs().max() <= TOL
    # per input: the 7- and 11-tap blocks' 12 convolutions in each of the three stages of >= 8 channels
    assert len(calls) == (3 * 3 * 12 if overlap_save_min_channels == 8 else 0)


@pytest.mark.parametrize("overlap_save_min_channels", [256, 8])
def test_bigvgan_bwe_matches_reference_float32(well_conditioned_bwe, monkeypatch, overlap_save_min_channels):
    monkeypatch.setattr(vocoder_module, "OVERLAP_SAVE_MIN_CHANNELS", overlap_save_min_channels)
    ours, ref = load_vocoder(well_conditioned_bwe), tiny_models.load_reference(well_conditioned_bwe, "vocoder")
    assert ours.sample_rate == 48000 and ours.hop_length == 480
    for mel in (tone_mel(6), torch.randn(2, 2, 2, 64) - 4):
        with torch.no_grad():
            a, b = ours(mel), ref(mel)
        assert a.shape == b.shape == (mel.shape[0], 2, 480 * mel.shape[2])
        assert b.abs().max() < 0.99  # not saturated: the comparison means something
        assert (a - b).abs().max() <= TOL


def test_bigvgan_bwe_matches_reference_on_the_shared_tiny_file(tiny_checkpoints):
    path = tiny_checkpoints["LTX-2.3"]
    ours, ref = load_vocoder(path), tiny_models.load_reference(path, "vocoder")
    mel = tone_mel(4)
    with torch.no_grad():
        ours32, ref32 = ours(mel), ref(mel)
        exact = ref.double()(mel.double())
        ours64 = ours.double()(mel.double())
    # same arithmetic: float64 agreement is limited only by the reference's float32 resampler kernel
    assert (ours64 - exact).abs().max() <= 1e-5
    # in float32 we are no further from the exact answer than the reference itself is
    assert (ours32.double() - exact).abs().max() <= 1.5 * (ref32.double() - exact).abs().max() + 1e-6


@pytest.mark.parametrize("length", [1, 2, 7, 15, 31])
def test_time_major_convolutions_match_torch(length):
    torch.manual_seed(length)
    x = torch.randn(2, 6, length)
    for kernel in (1, 3, 7):
        for dilation in (1, 2, 3, 5):
            conv = torch.nn.Conv1d(6, 4, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
            with torch.no_grad():
                out = conv_time_major(x.transpose(1, 2), conv)
                assert out.shape == (2, length, 4)
                assert (out.transpose(1, 2) - conv(x)).abs().max() <= 1e-5, (kernel, dilation)
    for rate, kernel in ((6, 16), (5, 15), (2, 8), (2, 4), (5, 11), (6, 12), (3, 3)):
        up = torch.nn.ConvTranspose1d(6, 4, kernel, rate, padding=(kernel - rate) // 2)
        with torch.no_grad():
            out = upsample_time_major(x.transpose(1, 2), up)
            assert (out.transpose(1, 2) - up(x)).abs().max() <= 1e-5, (rate, kernel)


def test_time_major_convolutions_refuse_other_geometries():
    with pytest.raises(ValueError, match="'same' convolution"):
        conv_time_major(torch.zeros(1, 5, 2), torch.nn.Conv1d(2, 2, 3, padding=0))
    with pytest.raises(ValueError, match="kernel - 2 \\* padding == stride"):
        upsample_time_major(torch.zeros(1, 5, 2), torch.nn.ConvTranspose1d(2, 2, 4, 2, padding=0))


@pytest.mark.parametrize("chunk_samples", [1, 700, 1 << 20])  # one channel at a time, uneven groups, all at once
@pytest.mark.parametrize("length", [1, 5, 63, 64, 65, 300])
def test_anti_aliased_snake_matches_reference(length, chunk_samples, monkeypatch):
    monkeypatch.setattr(vocoder_module, "AA_CHUNK_SAMPLES", chunk_samples)
    torch.manual_seed(length)
    ref = Activation1d(SnakeBeta(6))
    with torch.no_grad():
        ref.act.alpha.normal_(0, 0.5)
        ref.act.beta.normal_(0, 0.5)
    ours = AntiAliasedSnake(6)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, length)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5


def test_bwe_stages_match_reference(well_conditioned_bwe):
    """The causal log-mel from the stored bases and the computed 3x sinc skip path, on their own."""
    ours, ref = load_vocoder(well_conditioned_bwe), tiny_models.load_reference(well_conditioned_bwe, "vocoder")
    x = 0.5 * torch.randn(1, 2, 80 * 13)
    with torch.no_grad():
        assert (ours.mel_stft(x) - ref._compute_mel(x).transpose(2, 3)).abs().max() <= TOL
        assert (resample(x, 16000, 48000, edge="replicate") - ref.resampler(x)).abs().max() <= 1e-5
        # and the vocoder's length rule: the 16 kHz signal is padded to whole hops, the output cut to 3x its length
        mel = tone_mel(3)
        assert ours(mel).shape[-1] == 3 * ours.vocoder(mel).shape[-1]


def test_vocoder_output_is_float32_and_bounded(tiny_checkpoint):
    vocoder = load_vocoder(tiny_checkpoint)
    assert all(p.dtype == torch.float32 for p in vocoder.parameters())
    with torch.no_grad():
        out = vocoder(tone_mel(2))
    assert out.dtype == torch.float32 and out.shape[1] == 2 and out.abs().max() <= 1.0


def test_a_vocoder_with_trainable_weights_still_backpropagates(tiny_checkpoints, monkeypatch):
    """Overlap-save (inference only) steps aside when autograd is recording; the results agree either way."""
    monkeypatch.setattr(vocoder_module, "OVERLAP_SAVE_MIN_CHANNELS", 8)
    vocoder = load_vocoder(tiny_checkpoints["LTX-2"]).requires_grad_(True)
    mel = tone_mel(3)
    out = vocoder(mel)
    out.square().sum().backward()
    assert vocoder.resblocks[2].convs1[0].weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert (vocoder(mel) - out).abs().max() <= 1e-5
