"""The log-mel front end and the resampler, against reference formulas written here in numpy (float64).

The official pipeline uses torchaudio (``MelSpectrogram(16000, n_fft=1024, hop=160, f_max=8000, 64 mels, Hann,
center/reflect, power 1, Slaney scale and norm)`` then ``log(clamp(1e-5))``; ``functional.resample`` with its
default Hann-windowed sinc). torchaudio is not installable next to torch 2.13, so the references below restate
those definitions directly: a per-frame DFT, triangle filters built bin by bin, and sinc interpolation summed
over every input sample.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.mel import log_mel_spectrogram, mel_filterbank, resample

SR, N_FFT, HOP, N_MELS = 16000, 1024, 160, 64


# -- reference formulas ------------------------------------------------------------------------------------------


def slaney_hz_to_mel(f: float) -> float:
    return 3 * f / 200 if f < 1000 else 15 + 27 * math.log(f / 1000) / math.log(6.4)


def slaney_mel_to_hz(m: float) -> float:
    return 200 * m / 3 if m < 15 else 1000 * 6.4 ** ((m - 15) / 27)


def reference_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney triangles on the linear-frequency bins, each scaled to unit area (2 / bandwidth)."""
    top = slaney_hz_to_mel(sr / 2)
    edges = [slaney_mel_to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * (sr / 2) / (n_fft // 2)
            if lo <= f <= mid:
                fb[m, k] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                fb[m, k] = (hi - f) / (hi - mid)
        fb[m] *= 2 / (hi - lo)
    return fb


def reference_log_mel(x: np.ndarray) -> np.ndarray:
    """x [N] at 16 kHz -> [frames, 64]."""
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = 1 + len(x) // HOP
    mags = np.stack([np.abs(np.fft.rfft(padded[i * HOP : i * HOP + N_FFT] * window)) for i in range(frames)])
    mel = mags @ reference_filterbank(SR, N_FFT, N_MELS).T
    return np.log(np.maximum(mel, 1e-5))


def reference_resample(x: np.ndarray, orig: int, new: int, width: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Sinc interpolation at t_j = j * orig / new, low-passed at rolloff * the lower Nyquist, Hann window over
    `width` zero crossings, summed over every input sample (zeros beyond the ends)."""
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    scale = min(1.0, new / orig) * rolloff
    out = np.zeros(-(-len(x) * new // orig))
    k = np.arange(len(x))
    for j in range(len(out)):
        t = (k - j * orig / new) * scale
        window = np.where(np.abs(t) <= width, np.cos(np.pi * t / (2 * width)) ** 2, 0.0)
        out[j] = np.sum(x * np.sinc(t) * window) * scale
    return out


def tone(freq: float, seconds: float, sr: int, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(round(seconds * sr), dtype=torch.float64) / sr
    return amplitude * torch.sin(2 * math.pi * freq * t)


# -- tests -------------------------------------------------------------------------------------------------------


def test_filterbank_matches_slaney_definition():
    ours = mel_filterbank(SR, N_FFT, N_MELS).numpy()
    ref = reference_filterbank(SR, N_FFT, N_MELS)
    assert ours.shape == (64, 513)
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_log_mel_matches_reference_formula():
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(2, 2, 3001, generator=g) + tone(440, 3001 / SR, SR).float()
    ours = log_mel_spectrogram(x, sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    assert ours.shape == (2, 2, 1 + 3001 // HOP, 64) and ours.dtype == torch.float32
    for b in range(2):
        for c in range(2):
            ref = reference_log_mel(x[b, c].double().numpy())
            # log of float32 magnitudes: relative error ~1e-6 of the mel value
            np.testing.assert_allclose(ours[b, c].numpy(), ref, atol=2e-4)


def test_log_mel_floors_silence_at_log_1e5():
    mel = log_mel_spectrogram(torch.zeros(1, 2, 1600), sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    assert torch.allclose(mel, torch.full_like(mel, math.log(1e-5)))


def test_440hz_stereo_tone_lands_in_its_mel_bins():
    """Left 440 Hz, right 2 kHz: each channel's energy sits in the filters around its own frequency."""
    wave = torch.stack([tone(440, 1.0, SR), tone(2000, 1.0, SR)]).float()[None]
    mel = log_mel_spectrogram(wave, sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    fb = reference_filterbank(SR, N_FFT, N_MELS)
    for side, freq in ((0, 440), (1, 2000)):
        spectrum = mel[0, side, 10:-10].mean(0)  # steady-state frames
        peak = int(spectrum.argmax())
        # the filters whose passband contains the tone, from the reference triangles
        bin_index = round(freq / (SR / N_FFT))
        expected = set(np.nonzero(fb[:, bin_index])[0].tolist())
        assert peak in expected, (freq, peak, expected)
        centre_hz = slaney_mel_to_hz(slaney_hz_to_mel(SR / 2) * (peak + 1) / (N_MELS + 1))
        assert abs(centre_hz - freq) < 0.1 * freq
        # and it stands out: 40 dB (4.6 nepers) above the median filter of that channel
        assert spectrum.max() - spectrum.median() > 4.6
    assert int(mel[0, 0, 50].argmax()) != int(mel[0, 1, 50].argmax())


def test_log_mel_refuses_audio_shorter_than_half_a_window():
    with pytest.raises(InputError, match="too short"):
        log_mel_spectrogram(torch.zeros(1, 2, 512), sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)


@pytest.mark.parametrize("orig,new", [(44100, 16000), (48000, 16000), (8000, 16000), (22050, 16000), (16000, 48000)])
def test_resample_matches_reference_formula(orig, new):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(757, generator=g, dtype=torch.float64)
    ours = resample(x[None].float(), orig, new)[0]
    ref = reference_resample(x.numpy(), orig, new)
    assert ours.shape[-1] == len(ref) == math.ceil(757 * new / orig)
    np.testing.assert_allclose(ours.numpy(), ref, atol=2e-5)


def test_resample_keeps_in_band_tones_and_removes_aliases():
    # 1 kHz survives 44.1 kHz -> 16 kHz unchanged; 11 kHz (above the new Nyquist) is filtered out
    kept = resample(tone(1000, 0.5, 44100).float()[None], 44100, 16000)[0]
    expected = tone(1000, 0.5, 16000).float()
    inner = slice(200, -200)
    assert (kept[inner] - expected[inner]).abs().max() < 2e-3
    removed = resample(tone(11000, 0.5, 44100).float()[None], 44100, 16000)[0]
    assert removed[inner].abs().max() < 5e-3 * 0.5


def test_resample_keeps_shape_and_identity():
    x = torch.randn(2, 3, 1000)
    assert resample(x, 16000, 16000) is x
    assert resample(x, 32000, 16000).shape == (2, 3, 500)
    assert resample(x, 16000, 48000, edge="replicate").shape == (2, 3, 3000)
    with pytest.raises(InputError):
        resample(x, 0, 16000)
    with pytest.raises(InputError):
        resample(x, 44100.5, 16000)
