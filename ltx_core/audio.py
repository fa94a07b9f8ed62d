"""Waveforms <-> audio latents: input checks, channel and rate handling, and length bookkeeping.

The audio VAE sees stereo log-mel at 16 kHz (100 frames/s) and produces 25 latents/s; the vocoder turns decoded
mel back into 24 kHz (LTX-2) or 48 kHz (LTX-2.3) stereo. These functions are what nodes and scripts call.

Input rules (documented behaviour, not silent changes):
- ``waveform`` is ``[batch, channels, samples]``, floating point, nominally in [-1, 1], at any positive whole sample
  rate; it is resampled to the VAE's rate with a windowed sinc.
- 1 channel is duplicated to stereo; more than 2 channels: the first two are used as left/right (the front pair in
  WAV/FLAC/AAC channel order) and the rest dropped, with a warning -- downmix first if the others matter.
- NaN/infinite samples, empty or non-float audio raise :class:`InputError`. Silence and peaks above 1 are encoded
  as they are (a warning is logged for peaks above 1). Audio shorter than one STFT window after resampling (about
  33 ms) is padded with silence at the end, with a warning.
- Latent length: ``n`` samples at 16 kHz encode to ``n // 640 + 1`` latents; latent frames ``T`` decode to
  ``4T - 3`` mel frames, i.e. ``(4T - 3) * 10`` ms of audio.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from .audio_vae import AudioVAE
from .config import GeneratorConfig
from .errors import InputError
from .mel import resample

log = logging.getLogger("ltx_av.audio")


def describe(t: torch.Tensor) -> str:
    return f"a {t.dtype} tensor of shape {list(t.shape)}"


# Sample rates audio is stored at: from below telephone quality (8 kHz) to 768 kHz studio formats. A rate outside
# is a mistake (a rate in kHz, a frame rate), and resampling from it would multiply the clip's length.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000


def check_sample_rate(sample_rate: object, name: str = "sample_rate") -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
        raise InputError(f"{name} must be a positive whole number of Hz; got {sample_rate!r}")
    if not math.isfinite(sample_rate) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise InputError(f"{name} must be a positive whole number of Hz; got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(
            f"{name} is {int(sample_rate)} Hz; audio rates are {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz (48 kHz is "
            "48000; was a rate in kHz given?)"
        )
    return int(sample_rate)


def check_waveform(waveform: object, sample_rate: object, name: str = "audio") -> torch.Tensor:
    """The checks of :func:`to_stereo` that do not read the samples: type, shape, dtype, rate."""
    check_sample_rate(sample_rate, f"{name} sample_rate")
    if not isinstance(waveform, torch.Tensor):
        got = "nothing (None)" if waveform is None else f"a {type(waveform).__name__}"
        raise InputError(f"{name} waveform must be a torch tensor [batch, channels, samples]; got {got}")
    if waveform.ndim != 3:
        raise InputError(f"{name} waveform must be [batch, channels, samples]; got {describe(waveform)}")
    if not waveform.is_floating_point():
        raise InputError(
            f"{name} waveform must be floating point samples in [-1, 1]; got {waveform.dtype} "
            "(scale integer PCM first, e.g. int16 / 32768)"
        )
    b, c, n = waveform.shape
    if b == 0 or c == 0 or n == 0:
        raise InputError(f"{name} is empty: waveform of shape {list(waveform.shape)} (batch, channels, samples)")
    return waveform


def to_stereo(waveform: torch.Tensor, sample_rate: object, name: str = "audio") -> torch.Tensor:
    """Validated float32 stereo ``[B, 2, N]`` from ``[B, C, N]`` (see the module rules)."""
    waveform = check_waveform(waveform, sample_rate, name)
    b, c, n = waveform.shape
    bad = (~torch.isfinite(waveform)).sum().item()
    if bad:
        raise InputError(f"{name} contains {bad} NaN or infinite samples out of {waveform.numel()}; fix the source")
    waveform = waveform.float()
    if c == 1:
        waveform = waveform.expand(b, 2, n)
    elif c > 2:
        log.warning(
            "%s has %d channels; using the first two as left/right and dropping %d (downmix first if they matter)",
            name,
            c,
            c - 2,
        )
        waveform = waveform[:, :2]
    peak = waveform.abs().max().item()
    if peak > 1.0:
        log.warning("%s peaks at %.3f, above full scale (1.0); encoding it as it is", name, peak)
    elif peak == 0.0:
        log.info("%s is digital silence", name)
    return waveform


def encode_audio(
    vae: AudioVAE,
    waveform: torch.Tensor,
    sample_rate: int,
    *,
    latent_frames: int | None = None,
    name: str = "audio",
) -> torch.Tensor:
    """Waveform ``[B, C, N]`` at ``sample_rate`` -> normalised latent ``[B, 8, N' // 640 + 1, 16]`` (``N'`` the
    length at the VAE's 16 kHz), on the VAE's device and dtype.

    ``latent_frames``: return exactly this many latents (e.g. ``latents.audio_latent_length`` of a video), cropping
    longer audio and padding shorter audio with silence before encoding.
    """
    param = next(vae.parameters())
    rate = check_sample_rate(sample_rate, f"{name} sample_rate")
    cfg = vae.config
    waveform = check_waveform(waveform, rate, name)
    if latent_frames is not None:
        if isinstance(latent_frames, bool) or not isinstance(latent_frames, int) or latent_frames < 1:
            raise InputError(f"latent_frames must be a positive integer; got {latent_frames!r}")
        # Only the start of a long clip is encoded: cut it at the source rate (with a margin for the resampler's
        # and the STFT's look-ahead) so a long file is never read or resampled whole.
        keep = ((latent_frames + 1) * cfg.mel_hop_length * vae.compression + 2 * cfg.n_fft) * rate
        waveform = waveform[..., : -(-keep // cfg.sampling_rate) + 64]
    audio = resample(to_stereo(waveform, rate, name).to(param.device), rate, cfg.sampling_rate)
    if latent_frames is not None:
        # n samples give n // (hop * 4) + 1 latents
        needed = (latent_frames - 1) * cfg.mel_hop_length * vae.compression
        if audio.shape[-1] < needed:
            log.info(
                "audio is %.2f s; padding it with silence to %.2f s for %d latent frames",
                audio.shape[-1] / cfg.sampling_rate,
                needed / cfg.sampling_rate,
                latent_frames,
            )
            audio = torch.nn.functional.pad(audio, (0, needed - audio.shape[-1]))
        # The encoder is causal and a mel frame reads n_fft // 2 samples ahead, so this much audio gives the
        # same latents as the whole clip would.
        audio = audio[..., : needed + cfg.mel_hop_length * vae.compression + cfg.n_fft]
    shortest = cfg.n_fft // 2 + 1  # the centred STFT reflects half a window at each end
    if audio.shape[-1] < shortest:
        log.warning(
            "audio is %.1f ms long; padding it with silence to %.1f ms, the shortest the mel front end takes",
            1000 * audio.shape[-1] / cfg.sampling_rate,
            1000 * shortest / cfg.sampling_rate,
        )
        audio = torch.nn.functional.pad(audio, (0, shortest - audio.shape[-1]))
    mel = vae.waveform_to_mel(audio, cfg.sampling_rate)
    latent = vae.encode(mel.to(param.dtype))
    return latent if latent_frames is None else latent[:, :, :latent_frames]


def encode_bytes(vae: AudioVAE, batch: int, samples: int, sample_rate: int) -> int:
    """Rough peak working memory of :func:`encode_audio` for ``samples`` samples per channel at ``sample_rate``: the
    stereo copy, the resampled audio, its STFT and the encoder's full-resolution feature maps (float32)."""
    cfg = vae.config
    at_vae_rate = -(-samples * cfg.sampling_rate // max(sample_rate, 1))
    mel_frames = at_vae_rate // cfg.mel_hop_length + 1
    waves = batch * 2 * (samples + 2 * at_vae_rate) * 4
    spectrum = batch * 2 * mel_frames * (cfg.n_fft // 2 + 1) * 4 * 2
    features = 3 * batch * cfg.ch * cfg.ch_mult[0] * mel_frames * cfg.mel_bins * 4
    return waves + spectrum + features


def decode_bytes(vae: AudioVAE, vocoder: nn.Module, batch: int, latent_frames: int) -> int:
    """Rough peak working memory of :func:`decode_audio` for ``latent_frames`` latents (float32): the decoder's
    full-resolution feature maps, then the vocoder's widest stage (a few maps of channels x samples at that stage)
    and the waveform."""
    cfg = vae.config
    mel = vae.mel_frames(latent_frames)
    peak = 3 * batch * cfg.ch * cfg.ch_mult[0] * mel * cfg.mel_bins * 4
    config = vocoder.config
    stages = [(config, mel)] if isinstance(config, GeneratorConfig) else [(config.generator, mel)]
    if not isinstance(config, GeneratorConfig) and config.bwe is not None and config.bwe_hop_length:
        low_samples = mel * config.generator.hop_length
        stages.append((config.bwe, -(-low_samples // config.bwe_hop_length)))
    for generator, length in stages:
        channels = generator.upsample_initial_channel
        for rate in generator.upsample_rates:
            length *= rate
            channels //= 2
            peak = max(peak, 4 * batch * 2 * channels * length * 4)
    return int(peak + batch * 2 * mel * vocoder.hop_length * 4)


def check_audio_latent(samples: object, vae: AudioVAE, name: str = "samples", scan: bool = True) -> torch.Tensor:
    """The latent as ``[B, z_channels, T, latent_mel_bins]``; :class:`InputError` naming what was given
    otherwise. ``scan=False`` skips the NaN/inf check, which reads every value (callers that first check the size
    scan afterwards)."""
    z, bins = vae.config.z_channels, vae.latent_mel_bins
    expected = f"an audio latent [batch, {z}, frames, {bins}]"
    if not isinstance(samples, torch.Tensor):
        raise InputError(f"{name} must be {expected}; got {type(samples).__name__}")
    if samples.ndim == 5:
        raise InputError(f"{name} is {describe(samples)}, a video latent; expected {expected}")
    if samples.ndim != 4 or samples.shape[1] != z or samples.shape[3] != bins:
        hint = ""
        if samples.ndim == 3 and samples.shape[-1] == z * bins:
            hint = f" (patchified tokens [B, T, {z * bins}] must be unpatchified to [B, {z}, T, {bins}] first)"
        raise InputError(f"{name} is {describe(samples)}; expected {expected}{hint}")
    if samples.shape[0] == 0 or samples.shape[2] == 0:
        raise InputError(f"{name} is empty: {describe(samples)}")
    if not samples.is_floating_point():
        raise InputError(f"{name} must be floating point; got {describe(samples)}")
    if scan:
        bad = (~torch.isfinite(samples)).sum().item()
        if bad:
            raise InputError(f"{name} contains {bad} NaN or infinite values (did sampling diverge?)")
    return samples


def decode_audio(
    vae: AudioVAE,
    vocoder: nn.Module,
    latent: torch.Tensor,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Normalised latent ``[B, 8, T, 16]`` -> float32 stereo waveform ``[B, 2, (4T - 3) * vocoder.hop_length]`` at
    ``vocoder.sample_rate``, on the vocoder's device. The vocoder always runs in float32. ``progress(done, 2)`` is
    called after the VAE and after the vocoder."""
    latent = check_audio_latent(latent, vae)
    param = next(vae.parameters())
    mel = vae.decode(latent.to(device=param.device, dtype=param.dtype))
    if progress is not None:
        progress(1, 2)
    voc_device = next(vocoder.parameters()).device
    waveform = vocoder(mel.to(device=voc_device, dtype=torch.float32))
    if progress is not None:
        progress(2, 2)
    return waveform


def latent_frames_for_samples(samples: int, sample_rate: int, vae: AudioVAE) -> int:
    """Latent frames the encoder produces for ``samples`` samples at ``sample_rate``."""
    cfg = vae.config
    at_vae_rate = max(-(-samples * cfg.sampling_rate // check_sample_rate(sample_rate)), cfg.n_fft // 2 + 1)
    mel_frames = at_vae_rate // cfg.mel_hop_length + 1
    for _ in range(len(cfg.ch_mult) - 1):
        mel_frames = (mel_frames - 1) // 2 + 1
    return mel_frames


def decoded_seconds(latent_frames: int, vae: AudioVAE) -> float:
    """Duration of the audio decoded from ``latent_frames`` latents."""
    return vae.mel_frames(latent_frames) * vae.config.mel_hop_length / vae.config.sampling_rate


def trim_to_duration(waveform: torch.Tensor, sample_rate: int, seconds: float) -> torch.Tensor:
    """Drop samples beyond ``seconds`` (never pads)."""
    keep = round(seconds * sample_rate)
    return waveform[..., :keep] if 0 < keep < waveform.shape[-1] else waveform


# What a written clip's audio may peak at: a dB of headroom keeps AAC's overshoot below full scale.
PEAK_DBFS = -1.0


def limit_peak(waveform: torch.Tensor, peak_dbfs: float = PEAK_DBFS) -> tuple[torch.Tensor, float]:
    """``waveform`` scaled down so its peak is at most ``peak_dbfs``, and the gain applied in dB (0.0: unchanged).
    A new tensor when scaled; the input is never modified. Used where a clip is written to a file."""
    peak = float(waveform.abs().max()) if waveform.numel() else 0.0
    ceiling = 10.0 ** (peak_dbfs / 20.0)
    if not math.isfinite(peak) or peak <= ceiling:
        return waveform, 0.0
    return waveform * (ceiling / peak), 20.0 * math.log10(ceiling / peak)
