"""The audio VAE: stereo log-mel spectrograms <-> latents ``[B, 8, T, 16]`` at 25 latent frames per second.

A 2-D convolutional autoencoder over (time, mel) with convolutions that are causal along time: every output frame
sees only the current and earlier frames. Two stride-2 stages compress 4x in time and frequency (mel frames
``4k + 1`` -> ``k + 1`` latents; 64 mel bins -> 16), and the latents are normalised per (channel, bin) with
dataset statistics. Module paths follow the official checkpoint keys (``encoder.*``, ``decoder.*``,
``per_channel_statistics.*``); the architecture comes from :class:`AudioVAEConfig`.

Decoding is the hot path (every generated clip goes through it), so the decoder avoids the padding copies of a
literal implementation: normalised activations are written straight into zero-bordered buffers, and the
"nearest x2 then 3x3 conv" upsampler runs as four 2x2 convolutions on the coarse grid (same result, 4/9 of the
work). Activations and kernels are kept channels-last: oneDNN runs these convolutions about 10 % faster that way
on the CPUs we measured (a 5 s clip: 1.5 s instead of 1.7 s), and cuDNN takes the layout natively.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import Checkpoint, build_component
from .config import AudioVAEConfig
from .errors import ConfigError
from .mel import log_mel_spectrogram, resample

log = logging.getLogger("ltx_av.audio_vae")

PIXEL_NORM_EPS = 1e-6


def _check_supported(config: AudioVAEConfig) -> None:
    if config.norm_type != "pixel":
        raise ConfigError(f"audio_vae ddconfig.norm_type {config.norm_type!r} is not supported (LTX-2 uses 'pixel')")
    if config.causality_axis != "height":
        raise ConfigError(
            f"audio_vae ddconfig.causality_axis {config.causality_axis!r} is not supported (LTX-2 uses 'height': "
            "causal along time)"
        )


def _inverse_rms(x: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(mean over channels of x^2 + eps)``, shape ``[B, 1, T, F]``."""
    # a norm reduction instead of mean(x^2): no full-size temporary
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return norm.square_().div_(x.shape[1]).add_(PIXEL_NORM_EPS).rsqrt_()


def _weights_key(*tensors: torch.Tensor) -> tuple:
    """Identifies the current values of some weights: storage, device, dtype and (outside inference mode, where
    tensors have one) the in-place version counter."""
    return tuple((t.data_ptr(), 0 if t.is_inference() else t._version, t.device, t.dtype) for t in tensors)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _empty(like: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)


def norm_silu_padded(x: torch.Tensor, top: int, left: int, right: int) -> torch.Tensor:
    """``silu(pixel_norm(x))`` written into a buffer with ``top`` zero rows (past time) and ``left``/``right``
    zero columns (frequency edges), ready for an unpadded convolution."""
    if torch.is_grad_enabled() and x.requires_grad:  # training: steps autograd can follow
        rms = torch.rsqrt(x.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS)
        return F.pad(F.silu(x * rms), (left, right, top, 0))
    b, c, t, f = x.shape
    out = _empty(x, b, c, t + top, f + left + right)
    out[:, :, :top].zero_()
    out[:, :, top:, :left].zero_()
    out[:, :, top:, f + left :].zero_()
    inner = out[:, :, top:, left : left + f]
    torch.mul(x, _inverse_rms(x), out=inner)
    F.silu(inner, inplace=True)
    return out


class CausalConv2d(nn.Module):
    """Conv2d over (time, frequency), causal in time: ``kernel_time - 1`` frames of past padding, none of future;
    frequency padded symmetrically (the extra column on the right for even kernels)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        k = kernel_size - 1
        self.top, self.left, self.right = k, k // 2, k - k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, self.right, self.top, 0)))

    def after_norm_silu(self, x: torch.Tensor) -> torch.Tensor:
        """``self(silu(pixel_norm(x)))`` without a separate padding copy."""
        return self.conv(norm_silu_padded(x, self.top, self.left, self.right))


class ResnetBlock(nn.Module):
    """``x + conv2(silu(norm(conv1(silu(norm(x))))))``; a 1x1 ``nin_shortcut`` when the width changes."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = CausalConv2d(in_channels, out_channels, 3)
        self.conv2 = CausalConv2d(out_channels, out_channels, 3)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1.after_norm_silu(x)
        h = self.conv2.after_norm_silu(h)
        shortcut = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return h.add_(shortcut)


class AttentionBlock(nn.Module):
    """Single-head self-attention over all (time, frequency) positions, with a residual. Released LTX-2 audio VAEs
    have none (``attn_resolutions`` empty, ``mid_block_add_attention`` false); kept for configs that ask."""

    def __init__(self, channels: int):
        super().__init__()
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        h = x * _inverse_rms(x)
        q, k, v = (conv(h).flatten(2) for conv in (self.q, self.k, self.v))  # [B, C, T*F]
        weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) * c**-0.5, dim=-1)  # [B, TF(query), TF(key)]
        attended = torch.bmm(v, weights.transpose(1, 2)).view(b, c, t, f)
        return x + self.proj_out(attended)


class Downsample(nn.Module):
    """Stride-2 3x3 conv halving time and frequency; two past frames and one right column of zero padding."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 2, 0)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 on both axes, a causal 3x3 conv, then the first frame dropped: ``[B,C,T,F] ->
    [B,C,2T-1,2F]`` (``2T - 1`` keeps the 4k+1 frame rhythm of the encoder)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = CausalConv2d(channels, channels, 3)
        self._phases: tuple[tuple, tuple[torch.Tensor, torch.Tensor]] | None = None

    def _apply(self, fn, recurse=True):
        self._phases = None  # derived from the weights; never keep a copy on the device they are leaving
        return super()._apply(fn, recurse)

    def _phase_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The four 2x2 phase kernels stacked on the output axis, and the bias repeated to match; rebuilt when
        the conv's weight or bias is replaced or modified."""
        w, bias = self.conv.conv.weight, self.conv.conv.bias
        key = _weights_key(w, bias)
        if self._phases is None or self._phases[0] != key:
            w = w.detach()
            rows = (
                torch.stack((w[:, :, 0] + w[:, :, 1], w[:, :, 2]), 2),
                torch.stack((w[:, :, 0], w[:, :, 1] + w[:, :, 2]), 2),
            )
            kernels = []
            for wt in rows:  # [Co, Ci, 2 (time), 3 (freq)]
                kernels.append(torch.stack((wt[..., 0], wt[..., 1] + wt[..., 2]), -1))
                kernels.append(torch.stack((wt[..., 0] + wt[..., 1], wt[..., 2]), -1))
            # phases (a, b) = (0,0), (0,1), (1,0), (1,1)
            self._phases = (key, (torch.cat(kernels, 0), bias.detach().repeat(4)))
        return self._phases[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # On the fine grid every output sees 3x3 fine cells that cover only 2x2 coarse cells, so each of the four
        # (time parity a, frequency parity b) phases is a 2x2 conv of x with summed taps:
        #   time  a=0: rows (t-1, t) weigh (w0+w1, w2);   a=1: (w0, w1+w2)
        #   freq  b=0: cols (f-1, f) weigh (w0, w1+w2);   b=1: cols (f, f+1) weigh (w0+w1, w2)
        # All four phases read coarse columns inside (f-1 .. f+1), so one conv with padding 1 serves them: output
        # column c of a 2x2 kernel sees (c-1, c); phase b=0 takes c = f, phase b=1 takes c = f+1.
        if torch.is_grad_enabled() and (x.requires_grad or self.conv.conv.weight.requires_grad):
            # training: the definition itself, which autograd follows into the conv's weights
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))[:, :, 1:]
        weight, bias = self._phase_weights()
        b, c, t, f = x.shape
        co = weight.shape[0] // 4
        out = _empty(x, b, co, 2 * t - 1, 2 * f)
        for a in (0, 1):  # one conv per time phase bounds the temporary to half the output's size
            # Time padding 1 on both sides: output row r sees coarse rows (r-1, r); the last row is surplus.
            rows = slice(2 * a * co, (2 * a + 2) * co)
            y = F.conv2d(x, weight[rows], bias[rows], padding=1)[:, :, :t]  # [B, 2Co, T, F+1]
            for p in (0, 1):
                phase = y[:, p * co : (p + 1) * co, :, p : p + f]
                # fine row 2t + a - 1 (the first, t = 0 with a = 0, is the dropped frame)
                if a == 0:
                    out[:, :, 1::2, p::2] = phase[:, :, 1:]
                else:
                    out[:, :, 0::2, p::2] = phase
            del y
        return out


def _level(blocks: list[ResnetBlock], attn: list[AttentionBlock]) -> nn.Module:
    level = nn.Module()
    level.block = nn.ModuleList(blocks)
    level.attn = nn.ModuleList(attn)
    return level


def _mid(channels: int, attention: bool) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels)
    mid.attn_1 = AttentionBlock(channels) if attention else nn.Identity()
    mid.block_2 = ResnetBlock(channels, channels)
    return mid


def _run_level(level: nn.Module, x: torch.Tensor) -> torch.Tensor:
    for i, block in enumerate(level.block):
        x = block(x)
        if len(level.attn):
            x = level.attn[i](x)
    return x


def _run_mid(mid: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(x)))


class AudioEncoder(nn.Module):
    """Log-mel ``[B, 2, T_mel, 64]`` -> un-normalised latent means ``[B, z, (T_mel - 1) // 4 + 1, 16]``."""

    def __init__(self, config: AudioVAEConfig):
        super().__init__()
        _check_supported(config)
        ch, mult = config.ch, config.ch_mult
        self.conv_in = CausalConv2d(config.in_channels, ch, 3)
        self.down = nn.ModuleList()
        width = ch
        resolution = config.resolution
        for i, m in enumerate(mult):
            blocks, attn = [], []
            for _ in range(config.num_res_blocks):
                blocks.append(ResnetBlock(width, ch * m))
                width = ch * m
                if resolution in config.attn_resolutions:
                    attn.append(AttentionBlock(width))
            level = _level(blocks, attn)
            if i != len(mult) - 1:
                level.downsample = Downsample(width)
                resolution //= 2
            self.down.append(level)
        self.mid = _mid(width, config.mid_block_add_attention)
        self.conv_out = CausalConv2d(width, 2 * config.z_channels if config.double_z else config.z_channels, 3)
        self.z_channels = config.z_channels

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(_channels_last(mel))
        for level in self.down:
            x = _run_level(level, x)
            if hasattr(level, "downsample"):
                x = level.downsample(x)
        x = _run_mid(self.mid, x)
        x = self.conv_out.after_norm_silu(x)
        return x[:, : self.z_channels].contiguous()  # the means; the log-variance half is unused


class AudioDecoder(nn.Module):
    """Un-normalised latent ``[B, z, T, 16]`` -> log-mel ``[B, out_ch, 4T - 3, 64]`` (before the final crop)."""

    def __init__(self, config: AudioVAEConfig):
        super().__init__()
        _check_supported(config)
        ch, mult = config.ch, config.ch_mult
        width = ch * mult[-1]
        self.conv_in = CausalConv2d(config.z_channels, width, 3)
        self.mid = _mid(width, config.mid_block_add_attention)
        resolution = config.resolution // 2 ** (len(mult) - 1)
        levels: list[nn.Module] = []
        for i in reversed(range(len(mult))):
            blocks, attn = [], []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResnetBlock(width, ch * mult[i]))
                width = ch * mult[i]
                if resolution in config.attn_resolutions:
                    attn.append(AttentionBlock(width))
            level = _level(blocks, attn)
            if i != 0:
                level.upsample = Upsample(width)
                resolution *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)  # indexed by level, run from the coarsest
        self.conv_out = CausalConv2d(width, config.out_ch, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(_channels_last(z))
        x = _run_mid(self.mid, x)
        for level in reversed(self.up):
            x = _run_level(level, x)
            if hasattr(level, "upsample"):
                x = level.upsample(x)
        return self.conv_out.after_norm_silu(x).contiguous()


class LatentStatistics(nn.Module):
    """Per-(channel, mel-bin) dataset statistics of the latent means; buffers named as in the checkpoint."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("mean-of-means", torch.zeros(size))
        self.register_buffer("std-of-means", torch.ones(size))

    def _view(self, name: str, like: torch.Tensor) -> torch.Tensor:
        # Stored flat in patchified order (channel-major: index c * bins + f), i.e. a [C, F] table.
        c, f = like.shape[1], like.shape[3]
        return self.get_buffer(name).to(like).view(1, c, 1, f)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._view("mean-of-means", x)) / self._view("std-of-means", x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._view("std-of-means", x) + self._view("mean-of-means", x)


class AudioVAE(nn.Module):
    """The checkpoint's ``audio_vae`` component. ``encode``: log-mel -> normalised latent; ``decode``: the
    inverse. Built without the encoder or decoder when only one direction is needed."""

    def __init__(self, config: AudioVAEConfig, *, encoder: bool = True, decoder: bool = True):
        super().__init__()
        _check_supported(config)
        self.config = config
        if encoder:
            self.encoder = AudioEncoder(config)
        if decoder:
            self.decoder = AudioDecoder(config)
        self.per_channel_statistics = LatentStatistics(config.ch)

    @property
    def compression(self) -> int:
        return 2 ** (len(self.config.ch_mult) - 1)

    @property
    def latent_mel_bins(self) -> int:
        return self.config.mel_bins // self.compression

    @property
    def latents_per_second(self) -> float:
        return self.config.latents_per_second

    def mel_frames(self, latent_frames: int) -> int:
        """Mel frames decoded from ``latent_frames`` latents: the first latent stands for one frame (causal)."""
        return max(self.compression * latent_frames - (self.compression - 1), 1)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, 2, T_mel, mel_bins]`` -> normalised latent ``[B, z, (T_mel - 1) // 4 + 1, mel_bins // 4]``."""
        if not hasattr(self, "encoder"):
            raise RuntimeError("this AudioVAE was built without its encoder")
        return self.per_channel_statistics.normalize(self.encoder(mel))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent ``[B, z, T, bins]`` -> log-mel ``[B, out_ch, 4T - 3, mel_bins]``."""
        if not hasattr(self, "decoder"):
            raise RuntimeError("this AudioVAE was built without its decoder")
        mel = self.decoder(self.per_channel_statistics.denormalize(latent))
        frames, bins = self.mel_frames(latent.shape[2]), self.config.mel_bins
        if mel.shape[2:] != (frames, bins):  # only for configs whose strides do not divide evenly
            mel = mel[:, :, :frames, :bins]
            mel = F.pad(mel, (0, bins - mel.shape[3], 0, frames - mel.shape[2]))
        return mel

    def waveform_to_mel(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Stereo ``[B, 2, N]`` at ``sample_rate`` -> the encoder's log-mel input ``[B, 2, T_mel, mel_bins]``."""
        cfg = self.config
        audio = resample(waveform, sample_rate, cfg.sampling_rate)
        return log_mel_spectrogram(
            audio, sample_rate=cfg.sampling_rate, n_fft=cfg.n_fft, hop_length=cfg.mel_hop_length, n_mels=cfg.mel_bins
        )


def load_audio_vae(
    checkpoint: Checkpoint | str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    encoder: bool = True,
    decoder: bool = True,
) -> AudioVAE:
    """The audio VAE of an official checkpoint (optionally only one half), strictly loaded, in eval mode."""
    if not (encoder or decoder):
        raise ValueError("load_audio_vae: ask for the encoder, the decoder or both")
    only = (("encoder.",) if encoder else ()) + (("decoder.",) if decoder else ()) + ("per_channel_statistics.",)
    vae = build_component(
        checkpoint,
        "audio_vae",
        lambda cfg: AudioVAE(cfg, encoder=encoder, decoder=decoder),
        dtype=dtype,
        device=device,
        only=only,
    )
    # Kernels stored channels-last like the activations, so no convolution reorders its weights on every call.
    return vae.to(memory_format=torch.channels_last)
