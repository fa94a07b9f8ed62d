"""The audio VAE's input representation: band-limited resampling and the stereo log-mel spectrogram.

Both are plain torch (no torchaudio): the official pipeline resamples with a Hann-windowed sinc (6 zero crossings,
roll-off 0.99) and computes a magnitude STFT (centred frames, reflect padding, periodic Hann window) projected on
a Slaney-scale, Slaney-normalised mel filterbank, then ``log(max(mel, 1e-5))``. We reproduce the same mathematics.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import InputError

# The resampler's low-pass filter: a sinc cut at ``ROLLOFF`` times the lower Nyquist frequency, truncated after
# ``ZERO_CROSSINGS`` zero crossings by a Hann window.
ZERO_CROSSINGS = 6
ROLLOFF = 0.99
LOG_FLOOR = 1e-5

# Output samples computed per gather in resample(); bounds its temporary memory to a few MB per channel.
_RESAMPLE_CHUNK = 1 << 15


def _check_rate(name: str, rate: float) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0 or int(rate) != rate:
        raise InputError(f"{name} must be a positive whole number of Hz; got {rate!r}")
    return int(rate)


def windowed_sinc(distance: torch.Tensor, scale: float) -> torch.Tensor:
    """Low-pass kernel at ``distance`` input samples from the output point: a sinc cut at ``scale`` times the
    input Nyquist frequency, Hann-windowed to ``ZERO_CROSSINGS`` zero crossings of that sinc."""
    t = distance * scale
    window = torch.cos(t.clamp(-ZERO_CROSSINGS, ZERO_CROSSINGS) * (math.pi / (2 * ZERO_CROSSINGS))) ** 2
    return torch.sinc(t) * window * scale


def resample(waveform: torch.Tensor, from_rate: int, to_rate: int, *, edge: str = "zeros") -> torch.Tensor:
    """Band-limited resampling along the last axis: ``[..., N]`` at ``from_rate`` Hz -> ``[..., ceil(N *
    to_rate / from_rate)]`` at ``to_rate`` Hz. Output sample j is the windowed-sinc interpolation of the input at
    time ``j / to_rate``; samples outside the input count as zero (``edge="zeros"``) or repeat the nearest end
    sample (``edge="replicate"``)."""
    if edge not in ("zeros", "replicate"):
        raise ValueError(f"edge must be 'zeros' or 'replicate'; got {edge!r}")
    from_rate = _check_rate("from_rate", from_rate)
    to_rate = _check_rate("to_rate", to_rate)
    if from_rate == to_rate:
        return waveform
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g  # output j sits at input position j * down / up
    scale = min(1.0, up / down) * ROLLOFF
    reach = math.ceil(ZERO_CROSSINGS / scale) + 1
    taps = 2 * reach
    n = waveform.shape[-1]
    out_len = -(-n * up // down)
    lead = waveform.shape[:-1]
    flat = waveform.reshape(-1, n)
    # The kernel depends only on the output's phase j mod up: tap m of phase p weighs input sample
    # floor(p * down / up) + m - reach + 1, at distance (m - reach + 1) - frac(p * down / up).
    phase = torch.arange(up, dtype=torch.float64)
    frac = (phase * down % up) / up
    offsets = torch.arange(taps, dtype=torch.float64) - reach + 1
    kernels = windowed_sinc(offsets[None, :] - frac[:, None], scale).to(waveform.dtype).to(waveform.device)
    # index k of the input is reach + k here
    padded = F.pad(flat[:, None], (reach, reach + 1), mode="constant" if edge == "zeros" else "replicate")[:, 0]
    out = torch.empty(flat.shape[0], out_len, dtype=waveform.dtype, device=waveform.device)
    tap_index = torch.arange(taps, device=waveform.device) + 1
    for start in range(0, out_len, _RESAMPLE_CHUNK):
        j = torch.arange(start, min(start + _RESAMPLE_CHUNK, out_len), device=waveform.device)
        index = (j * down // up)[:, None] + tap_index  # [chunk, taps] into `padded`
        window = padded[:, index]  # [rows, chunk, taps]
        out[:, start : start + len(j)] = torch.einsum("rct,ct->rc", window, kernels[j % up])
    return out.reshape(*lead, out_len)


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    linear = hz * (3.0 / 200.0)
    log_part = 15.0 + torch.log(hz.clamp(min=1e-10) / 1000.0) * (27.0 / math.log(6.4))
    return torch.where(hz < 1000.0, linear, log_part)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * (200.0 / 3.0)
    log_part = 1000.0 * torch.exp((mel - 15.0) * (math.log(6.4) / 27.0))
    return torch.where(mel < 15.0, linear, log_part)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular Slaney-scale filters with Slaney (constant area) normalisation: ``[n_mels, n_fft // 2 + 1]``
    (float64), applied to a magnitude spectrum."""
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(
        hz_to_mel(torch.tensor(f_min, dtype=torch.float64)).item(),
        hz_to_mel(torch.tensor(f_max, dtype=torch.float64)).item(),
        n_mels + 2,
        dtype=torch.float64,
    )
    edges = mel_to_hz(edges_mel)  # filter i rises from edges[i], peaks at edges[i+1], falls to edges[i+2]
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - low) / (centre - low)
    falling = (high - bins[None, :]) / (high - centre)
    filters = torch.minimum(rising, falling).clamp(min=0.0)
    return filters * (2.0 / (high - low))  # every filter integrates to the same area over frequency


def log_mel_spectrogram(
    waveform: torch.Tensor,
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:
    """``[..., N]`` samples -> ``[..., 1 + N // hop_length, n_mels]`` natural-log mel magnitudes, floored at
    1e-5. Frames are centred on ``k * hop_length`` (reflect-padded ends, periodic Hann window of ``n_fft``)."""
    n = waveform.shape[-1]
    if n <= n_fft // 2:
        raise InputError(
            f"audio is too short for the mel front end: {n} samples at {sample_rate} Hz; need more than "
            f"{n_fft // 2} ({1000 * (n_fft // 2 + 1) / sample_rate:.0f} ms)"
        )
    lead = waveform.shape[:-1]
    flat = waveform.reshape(-1, n)
    window = torch.hann_window(n_fft, periodic=True, dtype=waveform.dtype, device=waveform.device)
    spectrum = torch.stft(
        flat, n_fft, hop_length, n_fft, window, center=True, pad_mode="reflect", return_complex=True
    ).abs()  # [rows, n_fft // 2 + 1, frames]
    filters = mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max).to(spectrum)
    mel = torch.matmul(filters, spectrum)  # [rows, n_mels, frames]
    out = mel.clamp(min=LOG_FLOOR).log().transpose(1, 2)
    return out.reshape(*lead, out.shape[1], n_mels)
