"""Vocoders: stereo log-mel ``[B, 2, T, 64]`` (100 frames per second) -> waveform ``[B, 2, N]``.

LTX-2 uses a HiFi-GAN generator (leaky-ReLU residual blocks, 24 kHz). LTX-2.3 uses a BigVGAN-v2 generator at
16 kHz (residual blocks with snake-beta activations applied at twice the sample rate between Kaiser-sinc low-pass
filters, to keep the periodic non-linearity from aliasing) followed by bandwidth extension to 48 kHz: a second
BigVGAN predicts the high band from a causal log-mel of the 16 kHz signal and adds it to a sinc-upsampled copy.
Which one is built, and every size, comes from :class:`VocoderConfig`; module paths follow the checkpoint keys.

Vocoders always run in float32 (they are small and their output is sensitive to rounding).
"""

from __future__ import annotations

import functools
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import Checkpoint, build_component
from .config import GeneratorConfig, VocoderConfig
from .errors import ConfigError
from .mel import LOG_FLOOR, resample
from .overlap_save import overlap_save_conv1d

LEAKY_SLOPE = 0.1
# Both generators read a stereo pair of 64-bin mel spectrograms as 128 channels (the official layout fixes it).
STEREO_MEL_CHANNELS = 2 * 64
SNAKE_EPS = 1e-9
# The anti-aliased activation resamples by 2 with 12-tap Kaiser-windowed sinc filters (stored in the checkpoint).
AA_RATIO = 2
AA_TAPS = 12
# Samples per block when the anti-aliasing filters run as banded matrix products (see AntiAliasedSnake).
AA_BLOCK = 64
# The anti-aliased activation runs over groups of channels of about this many samples each, so its up-sampled
# temporaries (2x the input) stay small and get reused instead of being fresh page-faulting buffers of hundreds of
# MB per layer; on a 5 s 48 kHz clip this made the BigVGAN 10-15 % faster than one pass over all channels.
AA_CHUNK_SAMPLES = 1 << 20
# HiFi-GAN stages this narrow run time-major (see conv_time_major). Measured per convolution on a 5 s clip
# (oneDNN, AVX-512): time-major took 0.55-0.9x the time at 32-256 channels but 1.1-1.5x at 512.
TIME_MAJOR_MAX_CHANNELS = 256
# On the CPU, residual-block convolutions at least this wide and this long run through the frequency domain (see
# overlap_save): a 5 s clip's 7- and 11-tap convolutions at 256-512 channels took 0.25-0.75x the direct time, and
# HiFi-GAN as a whole 0.76x. Narrower or shorter ones lose to the direct kernels; GPUs keep their own convolutions.
OVERLAP_SAVE_MIN_CHANNELS = 256
OVERLAP_SAVE_MIN_TAPS = 7


def kaiser_sinc_taps(cutoff: float, half_width: float, size: int) -> torch.Tensor:
    """A Kaiser-windowed sinc low-pass of ``size`` taps (cutoff and transition half-width as fractions of the
    sample rate), normalised to unit DC gain; the window's beta follows Kaiser's attenuation rule."""
    attenuation = 2.285 * (size // 2 - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    else:
        beta = 0.0
    centre = (size - 1) / 2  # taps sit at half-integer offsets for even sizes
    offsets = torch.arange(size, dtype=torch.float64) - centre
    taps = torch.kaiser_window(size, periodic=False, beta=beta, dtype=torch.float64) * torch.sinc(2 * cutoff * offsets)
    return (taps / taps.sum()).float()


@functools.lru_cache(maxsize=8)
def _anti_alias_taps(size: int) -> torch.Tensor:
    # Computed once on the CPU: a model built under a meta-device context would otherwise dispatch these few
    # float64 ops through the meta machinery for each of its hundreds of filters (most of a vocoder's build time).
    with torch.device("cpu"):
        return kaiser_sinc_taps(0.5 / AA_RATIO, 0.6 / AA_RATIO, size).view(1, 1, size)


class FilterTaps(nn.Module):
    """Holds one FIR filter as the checkpoint stores it: buffer ``filter`` of shape ``[1, 1, taps]``."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("filter", _anti_alias_taps(size).clone())


class LowPassDecimator(nn.Module):
    """Key layout of the 2x downsampler: its low-pass filter lives at ``lowpass.filter``."""

    def __init__(self, size: int):
        super().__init__()
        self.lowpass = FilterTaps(size)


class SnakeBeta(nn.Module):
    """``x + sin^2(a x) / b`` with per-channel ``a = exp(alpha)``, ``b = exp(beta)`` (parameters in log scale)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (1.0 / (self.beta.exp() + SNAKE_EPS))[:, None] * torch.sin(x * self.alpha.exp()[:, None]) ** 2


def _weights_key(*tensors: torch.Tensor) -> tuple:
    """Identifies the current values of some weights: storage, device, dtype and (outside inference mode, where
    tensors have one) the in-place version counter."""
    return tuple((t.data_ptr(), 0 if t.is_inference() else t._version, t.device, t.dtype) for t in tensors)


@functools.lru_cache(maxsize=8)
def _band_index(rows: int, cols: int, offset: int, row_step: int, col_step: int) -> torch.Tensor:
    """``offset + row_step * i + col_step * j`` for a ``rows x cols`` grid (tap index of a banded FIR matrix)."""
    return offset + row_step * torch.arange(rows)[:, None] + col_step * torch.arange(cols)[None, :]


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a [M, K] @ b [K, N]`` as a 1x1 convolution over channels-last data: oneDNN runs these skinny products
    2-3x faster than the BLAS ``mm`` on the CPUs we measured, and on GPUs it is an ordinary GEMM either way."""
    m, k = a.shape
    image = a.view(1, m, 1, k).permute(0, 3, 1, 2)  # [1, K, M, 1], channels innermost = a's rows
    out = F.conv2d(image, b.t().contiguous().view(b.shape[1], k, 1, 1))  # channels-last [1, N, M, 1]
    return out.permute(0, 2, 3, 1).reshape(m, b.shape[1])


def _banded(taps: torch.Tensor, index: torch.Tensor, gain: float) -> torch.Tensor:
    k = taps.numel()
    index = index.to(taps.device)
    return torch.where((index >= 0) & (index < k), gain * taps.view(-1)[index.clamp(0, k - 1)], 0.0)


class AntiAliasedSnake(nn.Module):
    """BigVGAN's anti-aliased activation ``down2(snake(up2(x)))`` on ``[B, C, T]``: 2x upsampling (zero
    stuffing + low-pass, replicate-padded ends), snake-beta at the doubled rate, low-pass + 2x decimation.

    Both FIR filters are per-sample linear maps with a short reach, so over blocks of ``AA_BLOCK`` samples each
    is one dense matrix product on overlapping windows of the padded signal. That replaces two depthwise (and one
    transposed) convolutions, which CPUs run far below their matrix-multiply speed, with two GEMMs; the snake
    writes straight into the decimator's padded input.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = FilterTaps(AA_TAPS)
        self.downsample = LowPassDecimator(AA_TAPS)
        self._matrices: tuple[tuple, tuple] | None = None  # (key, matrices) of the last block size used

    def _apply(self, fn, recurse=True):
        self._matrices = None  # derived from the weights; never keep a copy on the device they are leaving
        return super()._apply(fn, recurse)

    def _constants(self, block: int) -> tuple:
        """(upsampling matrix, left pad, right pad, decimation matrix, decimation pad, exp(alpha), sqrt(1 / b)),
        rebuilt whenever a filter or snake parameter is replaced or modified (new storage or version counter)."""
        tensors = (self.upsample.filter, self.downsample.lowpass.filter, self.act.alpha, self.act.beta)
        key = (block, _weights_key(*tensors))
        if self._matrices is None or self._matrices[0] != key:
            alpha = self.act.alpha.detach().exp()[:, None]
            root_inv_beta = (1.0 / (self.act.beta.detach().exp() + SNAKE_EPS)).sqrt()[:, None]
            values = (*self._upsampler(block), *self._decimator(block), alpha, root_inv_beta)
            self._matrices = (key, values)
        return self._matrices[1]

    def _upsampler(self, block: int) -> tuple[torch.Tensor, int, int]:
        # Zero-stuffed x2 with the stored taps f (K of them): u[m] = 2 * sum_s x[s] f[m + c - 2s], c = (K-2)//2,
        # for the stored layout of the official upsampler. A block of 2*block outputs starting at m = 2qP needs
        # inputs s in [qP - left, qP + P - 1 + right].
        taps = self.upsample.filter
        k = taps.numel()
        c = (k - 2) // 2
        left, right = (k - 1 - c) // 2, (c + 1) // 2
        index = _band_index(block + left + right, 2 * block, c + 2 * left, -2, 1)
        return _banded(taps, index, float(AA_RATIO)), left, right

    def _decimator(self, block: int) -> tuple[torch.Tensor, int]:
        # z[n] = sum_k g[k] v[2n + k - pad], pad = K//2 - 1: a block of outputs from n = qP reads v from 2qP - pad.
        taps = self.downsample.lowpass.filter
        k = taps.numel()
        index = _band_index(2 * block + k - 2, block, 0, 1, -2)
        return _banded(taps, index, 1.0), k // 2 - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        block = min(AA_BLOCK, t)
        constants = self._constants(block)
        if torch.is_grad_enabled() and (x.requires_grad or self.act.alpha.requires_grad):
            # training: the snake's parameters enter with their gradients, every step out of place
            alpha = self.act.alpha.exp()[:, None]
            root_inv_beta = (1.0 / (self.act.beta.exp() + SNAKE_EPS)).sqrt()[:, None]
            return self._activate_differentiable(x, block, *constants[:-2], alpha, root_inv_beta)
        group = max(1, AA_CHUNK_SAMPLES // (b * t))
        if group >= c:
            return self._activate(x, block, *constants)
        out = x.new_empty(b, c, t)
        alpha, root_inv_beta = constants[-2:]
        for start in range(0, c, group):
            part = slice(start, start + group)
            out[:, part] = self._activate(x[:, part], block, *constants[:-2], alpha[part], root_inv_beta[part])
        return out

    @staticmethod
    def _activate(x, block, up, left, right, down, pad, alpha, root_inv_beta) -> torch.Tensor:
        b, c, t = x.shape
        blocks = -(-t // block)
        padded = F.pad(x, (left, blocks * block - t + right), mode="replicate")
        # one GEMM over every window: [B * C * blocks, window] @ [window, 2 * block]
        u = _matmul(padded.unfold(2, up.shape[0], block).reshape(-1, up.shape[0]), up)
        u = u.reshape(b, c, -1)[:, :, : 2 * t]

        # snake at the doubled rate, u + (sin(a u) / sqrt(b))^2, written into the decimator's input with `pad`
        # samples of margin on the left
        v = x.new_empty(b, c, 2 * blocks * block + down.shape[0] - 2 * block)
        inner = v[:, :, pad : pad + 2 * t]
        torch.mul(u, alpha, out=inner)
        inner.sin_().mul_(root_inv_beta)
        torch.addcmul(u, inner, inner, out=inner)
        del u
        v[:, :, :pad] = inner[:, :, :1]  # replicate the ends
        v[:, :, pad + 2 * t :] = inner[:, :, -1:]

        z = _matmul(v.unfold(2, down.shape[0], 2 * block).reshape(-1, down.shape[0]), down)
        return z.reshape(b, c, -1)[:, :, :t]

    @staticmethod
    def _activate_differentiable(x, block, up, left, right, down, pad, alpha, root_inv_beta) -> torch.Tensor:
        """What :meth:`_activate` computes, in steps autograd can follow."""
        b, c, t = x.shape
        blocks = -(-t // block)
        padded = F.pad(x, (left, blocks * block - t + right), mode="replicate")
        u = (padded.unfold(2, up.shape[0], block).reshape(-1, up.shape[0]) @ up).reshape(b, c, -1)[:, :, : 2 * t]
        snake = torch.sin(u * alpha) * root_inv_beta
        inner = u + snake * snake
        v = F.pad(inner, (pad, 2 * blocks * block + down.shape[0] - 2 * block - pad - 2 * t), mode="replicate")
        z = v.unfold(2, down.shape[0], 2 * block).reshape(-1, down.shape[0]) @ down
        return z.reshape(b, c, -1)[:, :, :t]


def _time_major_image(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``[B, rows * cols, C]`` viewed as a channels-last image ``[B, C, rows, cols]`` (no copy)."""
    return x.view(x.shape[0], rows, cols, x.shape[2]).permute(0, 3, 1, 2)


def _from_image(y: torch.Tensor) -> torch.Tensor:
    """Channels-last ``[B, C, H, W]`` -> time-major ``[B, H * W, C]`` (a view when the layout is as expected)."""
    return y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, y.shape[1])


def conv_time_major(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """A length-preserving ("same"-padded, odd-kernel) :class:`~torch.nn.Conv1d` applied to time-major
    ``x [B, T, C_in]``, returning ``[B, T, C_out]``.

    oneDNN's channels-last 2-D convolution keeps its speed across HiFi-GAN's shapes, where the channels-first 1-D
    one drops to a third of it for the narrow late stages. A dilation ``d`` is folded away rather than handed to
    the kernel (whose dilated channels-last path is slow): viewed as ``[T / d, d]``, time step ``d`` is one row,
    so the dilated convolution is an ordinary ``k x 1`` one over the rows, each column being one phase.
    """
    (d,), (k,), (pad,) = conv.dilation, conv.kernel_size, conv.padding
    if k % 2 == 0 or pad != d * (k - 1) // 2 or conv.stride != (1,) or conv.groups != 1:
        raise ValueError(f"conv_time_major: expects a stride-1 'same' convolution, got {conv}")
    b, t, _ = x.shape
    extra = -t % d  # the phases need whole rows: zeros past the end are what the padding would supply anyway
    x = F.pad(x, (0, 0, 0, extra)) if extra else x.contiguous()
    image = _time_major_image(x, (t + extra) // d, d)
    y = _from_image(F.conv2d(image, conv.weight.unsqueeze(-1), conv.bias, padding=((k - 1) // 2, 0)))
    return y[:, :t] if extra else y


@functools.lru_cache(maxsize=16)
def _phase_taps(rate: int, kernel: int, padding: int) -> tuple[torch.Tensor, int]:
    """Tap table of a transposed convolution (stride ``rate``) split into its ``rate`` output phases.

    Output sample ``rate * m + phase`` is ``sum_j x[m - j] w[rate * j + phase + padding]`` over the taps that
    exist. As a plain correlation ``sum_t x[m + t] v[t]`` (``t = -j``) every phase spans the same offsets
    ``[-reach, reach]``; entry ``[phase, t + reach]`` is the tap index, or -1 where the phase has no tap.
    """
    j = torch.arange(-kernel, kernel + 1)
    taps = rate * j[None, :] + torch.arange(rate)[:, None] + padding  # [rate, offsets]
    valid = (taps >= 0) & (taps < kernel)
    reach = int(j[valid.any(0)].abs().max())
    taps = taps[:, kernel - reach : kernel + reach + 1].flip(1)  # column t + reach holds j = -t
    return torch.where((taps >= 0) & (taps < kernel), taps, -1), reach


def upsample_time_major(x: torch.Tensor, up: nn.ConvTranspose1d) -> torch.Tensor:
    """A :class:`~torch.nn.ConvTranspose1d` on time-major ``x [B, T, C_in]`` -> ``[B, T * rate, C_out]``.

    Run as one ordinary convolution whose ``rate * C_out`` outputs are the phases of the upsampled signal: in
    time-major memory ``[B, T, rate, C_out]`` already is ``[B, T * rate, C_out]``, so the interleaving is free
    (oneDNN's channels-last transposed convolution, by contrast, takes a slow path).
    """
    (rate,), (kernel,), (padding,) = up.stride, up.kernel_size, up.padding
    if kernel - 2 * padding != rate or up.output_padding != (0,) or up.dilation != (1,) or up.groups != 1:
        raise ValueError(f"upsample_time_major: expects kernel - 2 * padding == stride, got {up}")
    taps, reach = _phase_taps(rate, kernel, padding)
    taps = taps.to(up.weight.device)
    w = up.weight.detach().permute(1, 0, 2)  # [C_out, C_in, K]
    phases = torch.where(taps >= 0, w[:, :, taps.clamp(min=0)], 0.0)  # [C_out, C_in, rate, offsets]
    weight = phases.permute(2, 0, 1, 3).reshape(rate * w.shape[0], w.shape[1], -1, 1)
    bias = up.bias.detach().repeat(rate) if up.bias is not None else None
    b, t, _ = x.shape
    image = _time_major_image(x.contiguous(), t, 1)
    y = F.conv2d(image, weight, bias, padding=(reach, 0))  # [B, rate * C_out, T, 1], channels-last
    return _from_image(y).view(b, t * rate, w.shape[0])


def _same_conv(x: torch.Tensor, conv: nn.Conv1d, time_major: bool) -> torch.Tensor:
    """A residual block's length-preserving convolution on ``[B, C, T]`` or, with ``time_major``, ``[B, T, C]``."""
    if (
        x.device.type == "cpu"
        and conv.in_channels >= OVERLAP_SAVE_MIN_CHANNELS
        and conv.kernel_size[0] >= OVERLAP_SAVE_MIN_TAPS
        and conv.kernel_size[0] % 2
        # it fills preallocated buffers, which autograd cannot follow: training keeps the direct convolution
        and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
    ):
        y = overlap_save_conv1d(x.transpose(1, 2) if time_major else x, conv.weight, conv.bias, conv.dilation[0])
        return y.transpose(1, 2) if time_major else y
    return conv_time_major(x, conv) if time_major else conv(x)


def _residual_convs(channels: int, kernel_size: int, dilations: tuple[int, ...]) -> tuple[nn.ModuleList, nn.ModuleList]:
    """A residual block's "same"-padded convolutions: the dilated first of each pair, the undilated second."""
    first = nn.ModuleList(
        nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2) for d in dilations
    )
    second = nn.ModuleList(
        nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations
    )
    return first, second


class LeakyResBlock(nn.Module):
    """HiFi-GAN residual block ("resblock 1"): for each dilation d, ``x += conv2(lrelu(conv1_d(lrelu(x))))``,
    on ``[B, C, T]`` or, with ``time_major``, ``[B, T, C]`` activations (see :func:`conv_time_major`)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1, self.convs2 = _residual_convs(channels, kernel_size, dilations)

    def forward(self, x: torch.Tensor, activated: torch.Tensor | None = None, time_major: bool = False) -> torch.Tensor:
        """``activated``: ``lrelu(x)`` if the caller already has it (the blocks of one stage share their input)."""
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            h = activated if i == 0 and activated is not None else F.leaky_relu(x, LEAKY_SLOPE)
            h = F.leaky_relu(_same_conv(h, conv1, time_major), LEAKY_SLOPE, inplace=True)
            x = _same_conv(h, conv2, time_major).add_(x)
        return x


class SnakeResBlock(nn.Module):
    """BigVGAN-v2 "AMP" residual block: for each dilation d, ``x += conv2(act2(conv1_d(act1(x))))`` with
    anti-aliased snake-beta activations."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1, self.convs2 = _residual_convs(channels, kernel_size, dilations)
        self.acts1 = nn.ModuleList(AntiAliasedSnake(channels) for _ in dilations)
        self.acts2 = nn.ModuleList(AntiAliasedSnake(channels) for _ in dilations)

    def forward(self, x: torch.Tensor, activated: None = None, time_major: bool = False) -> torch.Tensor:
        for conv1, conv2, act1, act2 in zip(self.convs1, self.convs2, self.acts1, self.acts2, strict=True):
            x = _same_conv(act2(_same_conv(act1(x), conv1, False)), conv2, False).add_(x)
        return x


class WaveGenerator(nn.Module):
    """Mel ``[B, 2, T, bins]`` -> waveform ``[B, 2, T * hop]``: ``conv_pre``, then per stage a transposed-conv
    upsampling (``ups``) and the mean of several residual blocks, then ``conv_post``.

    ``final_activation``: squash the output (tanh, or a clamp to [-1, 1] when ``use_tanh_at_final`` is false);
    the bandwidth-extension generator predicts a raw residual instead.
    """

    def __init__(self, config: GeneratorConfig, *, in_channels: int = STEREO_MEL_CHANNELS, final_activation: bool):
        super().__init__()
        self.config = config
        self.snake = config.resblock == "AMP1"
        self.final_activation = final_activation
        width = config.upsample_initial_channel
        self.conv_pre = nn.Conv1d(in_channels, width, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = SnakeResBlock if self.snake else LeakyResBlock
        for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True)):
            if (kernel - rate) % 2:
                raise ConfigError(
                    f"vocoder upsample stage {i}: kernel {kernel} and rate {rate} must differ by an even number"
                )
            self.ups.append(
                nn.ConvTranspose1d(width >> i, width >> (i + 1), kernel, rate, padding=(kernel - rate) // 2)
            )
            for size, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(width >> (i + 1), size, dilations))
        final = width >> len(config.upsample_rates)
        if self.snake:
            self.act_post = AntiAliasedSnake(final)
        self.conv_post = nn.Conv1d(final, 2, 7, padding=3, bias=config.use_bias_at_final)

    @property
    def hop_length(self) -> int:
        """Output samples per input mel frame."""
        return self.config.hop_length

    @property
    def sample_rate(self) -> int:
        return self.config.output_sampling_rate

    def _time_major(self, stage: int) -> bool:
        width = self.config.upsample_initial_channel >> (stage + 1)
        return not self.snake and width <= TIME_MAJOR_MAX_CHANNELS

    def _stage(self, i: int, x: torch.Tensor, time_major: bool) -> torch.Tensor:
        """Mean of stage ``i``'s residual blocks on its (upsampled) input."""
        per_stage = len(self.config.resblock_kernel_sizes)
        blocks = self.resblocks[i * per_stage : (i + 1) * per_stage]
        activated = None if self.snake else F.leaky_relu(x, LEAKY_SLOPE)  # the leaky blocks share lrelu(x)
        total = blocks[0](x, activated, time_major)
        for blk in blocks[1:]:
            total.add_(blk(x, activated, time_major))
        return total.div_(per_stage)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        b, s, t, bins = mel.shape
        x = self.conv_pre(mel.transpose(2, 3).reshape(b, s * bins, t))  # channel = stereo side * bins + bin
        time_major = False  # [B, C, T] until the first narrow stage, [B, T, C] from there on
        for i, up in enumerate(self.ups):
            if not self.snake:
                x = F.leaky_relu(x, LEAKY_SLOPE, inplace=True)
            if self._time_major(i) and not time_major:
                x, time_major = x.transpose(1, 2), True
            x = self._stage(i, upsample_time_major(x, up) if time_major else up(x), time_major)
        x = self.act_post(x) if self.snake else F.leaky_relu(x, 0.01, inplace=True)
        x = conv_time_major(x, self.conv_post).transpose(1, 2).contiguous() if time_major else self.conv_post(x)
        if self.final_activation:
            x = torch.tanh(x) if self.config.use_tanh_at_final else x.clamp_(-1.0, 1.0)
        return x


class STFTBases(nn.Module):
    """The checkpoint's STFT bases (``forward_basis``: windowed DFT rows, real parts then imaginary; the inverse
    basis is stored but unused here)."""

    def __init__(self, n_fft: int):
        super().__init__()
        self.register_buffer("forward_basis", torch.zeros(2 * (n_fft // 2 + 1), 1, n_fft))
        self.register_buffer("inverse_basis", torch.zeros(2 * (n_fft // 2 + 1), 1, n_fft))


class CausalLogMel(nn.Module):
    """Causal log-mel of the 16 kHz waveform for the bandwidth extension, from the stored bases:
    ``[B, C, L]`` (L a multiple of the hop) -> ``[B, C, L / hop, n_mels]``. Each frame ends at its hop (left
    padding only), so no frame looks ahead."""

    def __init__(self, n_fft: int, hop_length: int, n_mels: int):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.stft_fn = STFTBases(n_fft)
        self.register_buffer("mel_basis", torch.zeros(n_mels, n_fft // 2 + 1))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        b, c, n = waveform.shape
        flat = F.pad(waveform.reshape(b * c, 1, n), (self.n_fft - self.hop_length, 0))
        spectrum = F.conv1d(flat, self.stft_fn.forward_basis, stride=self.hop_length)
        real, imag = spectrum.chunk(2, dim=1)
        magnitude = torch.sqrt(real**2 + imag**2)
        mel = torch.matmul(self.mel_basis, magnitude).clamp_(min=LOG_FLOOR).log_()  # [B*C, n_mels, frames]
        return mel.view(b, c, *mel.shape[1:]).transpose(2, 3)


class BandwidthExtendedVocoder(nn.Module):
    """LTX-2.3's vocoder: ``vocoder`` (mel -> 16 kHz), then ``bwe_generator`` adds the band above 8 kHz to a
    sinc-upsampled copy; output clamped to [-1, 1] at the higher rate."""

    def __init__(self, config: VocoderConfig):
        super().__init__()
        if config.bwe is None or config.bwe_n_fft is None or config.bwe_hop_length is None or not config.bwe_num_mels:
            raise ConfigError("vocoder: the bandwidth-extension section is incomplete")
        self.config = config
        low_rate, high_rate = config.generator.output_sampling_rate, config.bwe.output_sampling_rate
        if high_rate % low_rate:
            raise ConfigError(
                f"vocoder.bwe: output_sampling_rate {high_rate} is not a whole multiple of input_sampling_rate "
                f"{low_rate}"
            )
        if config.bwe.hop_length != config.bwe_hop_length * (high_rate // low_rate):
            raise ConfigError(
                f"vocoder.bwe: upsample_rates multiply to {config.bwe.hop_length}, but each mel frame of hop "
                f"{config.bwe_hop_length} at {low_rate} Hz spans {config.bwe_hop_length * high_rate // low_rate} "
                f"samples at {high_rate} Hz"
            )
        self.vocoder = WaveGenerator(config.generator, final_activation=True)
        self.bwe_generator = WaveGenerator(config.bwe, in_channels=2 * config.bwe_num_mels, final_activation=False)
        self.mel_stft = CausalLogMel(config.bwe_n_fft, config.bwe_hop_length, config.bwe_num_mels)

    @property
    def hop_length(self) -> int:
        """Output samples per input mel frame."""
        return self.vocoder.hop_length * self.sample_rate // self.vocoder.sample_rate

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        low = self.vocoder(mel)  # [B, 2, L] at the low rate
        low_rate, high_rate = self.config.generator.output_sampling_rate, self.config.sample_rate
        length = low.shape[-1] * high_rate // low_rate
        low = F.pad(low, (0, -low.shape[-1] % self.mel_stft.hop_length))  # whole mel frames
        residual = self.bwe_generator(self.mel_stft(low))
        # The skip path is band-limited interpolation (Hann-windowed sinc), computed, not stored in the file.
        skip = resample(low, low_rate, high_rate, edge="replicate")
        return residual.add_(skip).clamp_(-1.0, 1.0)[..., :length]


def build_vocoder(config: VocoderConfig) -> nn.Module:
    """The vocoder a config describes: a :class:`WaveGenerator` (flat keys) or a
    :class:`BandwidthExtendedVocoder`. Either maps mel ``[B, 2, T, 64]`` to ``[B, 2, T * hop_length]`` at
    ``sample_rate`` Hz."""
    if config.bwe is None:
        return WaveGenerator(config.generator, final_activation=True)
    return BandwidthExtendedVocoder(config)


def load_vocoder(checkpoint: Checkpoint | str | os.PathLike, *, device: torch.device | str = "cpu") -> nn.Module:
    """The vocoder of an official checkpoint, strictly loaded, float32, eval mode."""
    return build_component(checkpoint, "vocoder", build_vocoder, dtype=torch.float32, device=device)
