"""The latent upsampler of LTX-2 / LTX-2.3: a video latent ``[B,128,F,H,W]`` -> a larger one, in latent space.

Two-stage generation samples at half size, upsamples the latent with this network and refines the result. One
class serves every released file; its ``config`` metadata (a flat JSON object) says which kind it is:

* spatial x2, pixel shuffle: a 2-D convolution to ``4 * mid`` channels per frame, then depth-to-space (key
  ``upsampler.0``); ``(F, H, W) -> (F, 2H, 2W)``.
* spatial rational (LTX-2.3's x1.5, LTX-2.0's x2): the same with ``num**2 * mid`` channels, depth-to-space by
  ``num`` and a fixed 5x5 binomial blur with stride ``den`` (keys ``upsampler.conv``, ``upsampler.blur_down.kernel``);
  ``(F, H, W) -> (F, ceil(num H / den), ceil(num W / den))``.
* temporal x2: a 3-D convolution to ``2 * mid`` channels, depth-to-time, then the first frame dropped (the first
  latent frame stands for a single video frame); ``(F, H, W) -> (2F - 1, H, W)``.

Around the resampler: a 3x3x3 convolution in, ``num_blocks_per_stage`` residual blocks before and after, a 3x3x3
convolution out; group norms of 32 groups with SiLU. The network works on *un-normalised* latents
(:func:`upsample_latent` handles the VAE's per-channel statistics).

Inside, a latent is frame-major ``[B, F, C, H, W]`` so a 3x3x3 convolution runs as 2-D convolutions over frames
taken as a batch. Its three time taps use Winograd's F(2,3): two output frames cost four 2-D convolutions instead
of six (exact arithmetic, a third less work). The network cannot be run on separate runs of frames: its group
norms take their statistics over all frames, and its 18 (temporal: 19) 3-D convolutions would need as many frames
of context on each side, more than the 16 latent frames of a 121-frame video. What ``frame_chunk`` bounds instead
is the working memory of each convolution, which reads one frame beyond each end of its chunk; the feature maps
stay whole, and the result is the same up to float rounding (the 2-D convolutions see other batch sizes).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import Checkpoint, build_component, open_checkpoint
from .checks import gib, integer, tensor_bytes
from .config import _Section
from .errors import ConfigError, InputError, TooLargeError

# spatial_scale -> (up by num with depth-to-space, down by den with the blur), as the rational resampler defines it
RATIONAL_SCALES: dict[float, tuple[int, int]] = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}
GROUPS = 32
GROUP_NORM_EPS = 1e-5  # torch's GroupNorm default, which the official network uses
BLUR_SIZE = 5

# Largest kernel slice one 2-D convolution gets (bytes): wider layers run in output-channel groups, because the
# convolution library copies each kernel into its own layout on every call (the x1.5 resampler's kernel is 340 MB
# in float32).
_KERNEL_BYTES = 20 * 2**20
# Frames whose float32 copy the group-norm statistics of a low-precision latent may hold at once.
_STATS_CHUNK_BYTES = 32 * 2**20


# -- config --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpsamplerConfig:
    """The upsampler's architecture, from the file's ``metadata["config"]`` (a flat object, no sections)."""

    in_channels: int
    mid_channels: int
    num_blocks_per_stage: int
    spatial_upsample: bool
    temporal_upsample: bool
    spatial_scale: float
    rational_resampler: bool

    @classmethod
    def from_dict(cls, values: Any) -> UpsamplerConfig:
        """Absent keys take the values ltx-core 1.0.0 gives them; anything it would build differently, or that no
        LTX-2 upsampler uses, raises :class:`ConfigError` naming the key."""
        s = _Section("config", values)
        name = values.get("_class_name", "LatentUpsampler")
        if name != "LatentUpsampler":
            raise ConfigError(f"config key 'config._class_name' is {name!r}; a latent upsampler says 'LatentUpsampler'")
        if s.int("dims", 3) != 3:
            raise ConfigError(
                f"config key 'config.dims' is {values.get('dims')!r}; every LTX-2 latent upsampler has 3 (3-D "
                "convolutions over frames); the 2-D kind belongs to LTX-Video 0.9"
            )
        mid = s.int("mid_channels", 512)
        if mid % GROUPS:
            raise ConfigError(
                f"config key 'config.mid_channels' is {mid}; expected a multiple of {GROUPS} (the group norms' groups)"
            )
        spatial = s.bool("spatial_upsample", True)
        temporal = s.bool("temporal_upsample", False)
        if spatial == temporal:
            raise ConfigError(
                f"config keys 'config.spatial_upsample' and 'config.temporal_upsample' are both {spatial}; a released "
                "upsampler does exactly one of the two"
            )
        scale = s.float("spatial_scale", 2.0)
        rational = s.bool("rational_resampler", False)
        # The temporal kind ignores both (its released file says 1.0 and true), as ltx-core does.
        if spatial and rational and scale not in RATIONAL_SCALES:
            raise ConfigError(
                f"config key 'config.spatial_scale' is {scale:g}; the rational resampler supports "
                + ", ".join(f"{k:g}" for k in RATIONAL_SCALES)
            )
        if spatial and not rational and scale != 2.0:
            raise ConfigError(
                f"config key 'config.spatial_scale' is {scale:g} with 'config.rational_resampler' false; that layout "
                "only upsamples by 2"
            )
        return cls(
            in_channels=s.int("in_channels", 128),
            mid_channels=mid,
            num_blocks_per_stage=s.int("num_blocks_per_stage", 4, minimum=0),
            spatial_upsample=spatial,
            temporal_upsample=temporal,
            spatial_scale=scale if spatial else 1.0,
            rational_resampler=rational and spatial,
        )

    @property
    def spatial_ratio(self) -> tuple[int, int]:
        """``(num, den)``: each side becomes ``ceil(num * side / den)``; ``(1, 1)`` for the temporal kind."""
        if not self.spatial_upsample:
            return 1, 1
        return RATIONAL_SCALES[self.spatial_scale] if self.rational_resampler else (2, 1)

    @property
    def kind(self) -> str:
        """How a person names it: ``spatial x2``, ``spatial x1.5 (rational)``, ``temporal x2``."""
        if self.temporal_upsample:
            return "temporal x2"
        return f"spatial x{self.spatial_scale:g}" + (" (rational)" if self.rational_resampler else "")

    def output_shape(self, shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int, int, int]:
        """``[B, C, F, H, W]`` -> the upsampled latent's shape."""
        b, c, f, h, w = (int(s) for s in shape)
        if self.temporal_upsample:
            return b, c, 2 * f - 1, h, w
        num, den = self.spatial_ratio
        return b, c, f, -(-num * h // den), -(-num * w // den)


# -- 3x3x3 convolutions over frame-major latents ---------------------------------------------------------------------


def _row_groups(rows: int, row_bytes: int, unit: int = 1) -> list[slice]:
    """Output-channel groups (multiples of ``unit`` rows) whose kernels stay under :data:`_KERNEL_BYTES`."""
    units = rows // unit
    count = max(1, math.ceil(rows * row_bytes / _KERNEL_BYTES))
    size = unit * math.ceil(units / count)
    return [slice(start, min(rows, start + size)) for start in range(0, rows, size)]


def _frame_sum(x: torch.Tensor, a: int, b: int, count: int, alpha: int) -> torch.Tensor:
    """``x[:, a + 2i] + alpha * x[:, b + 2i]`` for ``i < count`` as ``[B, count, C, H, W]``; frames outside ``x``
    are the zero padding."""
    n = x.shape[1]

    def inside(start: int) -> tuple[int, int]:  # the i with 0 <= start + 2i < n
        lo = max(0, -(start // 2))
        return lo, max(lo, min(count, (n - 1 - start) // 2 + 1))

    (lo_a, hi_a), (lo_b, hi_b) = inside(a), inside(b)
    lo, hi = max(lo_a, lo_b), min(hi_a, hi_b)
    u = x.new_empty((x.shape[0], count, *x.shape[2:]))
    if hi > lo:
        first = x[:, a + 2 * lo : a + 2 * hi - 1 : 2]
        torch.add(first, x[:, b + 2 * lo : b + 2 * hi - 1 : 2], alpha=alpha, out=u[:, lo:hi])
    for i in (*range(min(lo, count)), *range(max(hi, lo), count)):  # at least one term is padding
        target = u[:, i]
        if lo_a <= i < hi_a:
            target.copy_(x[:, a + 2 * i])
        elif lo_b <= i < hi_b:
            torch.mul(x[:, b + 2 * i], alpha, out=target)
        else:
            target.zero_()
    return u


def _conv2d(u: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``u [B,K,C,H,W]`` -> ``[B,K,O,H,W]``: a 3x3 convolution with zero padding over the frames as a batch."""
    b, k, c, h, w = u.shape
    return F.conv2d(u.reshape(b * k, c, h, w), kernel, bias, padding=1).view(b, k, -1, h, w)


def _conv3d_into(
    out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, frame_chunk: int | None
) -> None:
    """``out [B,F,O,H,W]`` = the 3x3x3 convolution of ``x [B,F,C,H,W]`` with ``weight [O,C,3,3,3]``, zero padded.

    Winograd F(2,3) over the time taps g0, g1, g2, for the output pair at frames (t, t+1) with inputs
    d = x[t-1 .. t+2]: y_t = m0 + m1 + m2, y_t+1 = m1 - m2 - m3 with the 2-D products m0 = (d0 - d2) * g0,
    m1 = (d1 + d2) * k1, m2 = (d2 - d1) * k2, m3 = (d1 - d3) * g2 and k1 = (g0 + g1 + g2) / 2, k2 = k1 - g1.
    """
    n = x.shape[1]
    g0, g1, g2 = weight.unbind(2)
    if n == 1:  # both neighbours are padding
        out.copy_(_conv2d(x, g1, bias))
        return
    pairs = (n + 1) // 2
    step = pairs if frame_chunk is None else max(1, frame_chunk // 2)
    kernel1 = weight.sum(dim=2).mul_(0.5)
    kernel2 = torch.sub(kernel1, g1)
    for j in range(0, pairs, step):
        count, t = min(step, pairs - j), 2 * j
        even = out[:, t : t + 2 * count : 2]
        odd = out[:, t + 1 : t + 2 * count : 2]  # one frame short of ``even`` when the video ends on an even frame
        k = odd.shape[1]
        m1 = _conv2d(_frame_sum(x, t, t + 1, count, 1), kernel1, bias)
        m2 = _conv2d(_frame_sum(x, t + 1, t, count, -1), kernel2)
        torch.add(m1, m2, out=even)
        if k:
            torch.sub(m1[:, :k], m2[:, :k], out=odd)
        del m1, m2
        even.add_(_conv2d(_frame_sum(x, t - 1, t + 1, count, -1), g0))
        if k:
            odd.sub_(_conv2d(_frame_sum(x, t, t + 2, k, -1), g2))


def conv3d_frames(x: torch.Tensor, conv: nn.Conv3d, frame_chunk: int | None = None) -> torch.Tensor:
    """A 3x3x3 convolution (padding 1) of a frame-major ``x [B,F,C,H,W]`` -> ``[B,F,O,H,W]``."""
    weight, bias = conv.weight, conv.bias
    b, f, c, h, w = x.shape
    out = x.new_empty((b, f, weight.shape[0], h, w))
    for rows in _row_groups(weight.shape[0], weight[0].numel() // 3 * weight.element_size()):
        _conv3d_into(out[:, :, rows], x, weight[rows], bias[rows], frame_chunk)
    return out


def tap_major(weight: torch.Tensor) -> torch.Tensor:
    """The same ``[O,C,3,3,3]`` kernel stored as ``[3,O,C,3,3]`` underneath, so each time tap (and each run of its
    output channels) is one contiguous 2-D kernel: the convolution library would copy strided ones per call."""
    return weight.permute(2, 0, 1, 3, 4).contiguous().permute(1, 2, 0, 3, 4)


# -- group norm ------------------------------------------------------------------------------------------------------


def _group_moments(x: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance ``[B, G]`` in float32 over frames, the channels of each group and pixels."""
    b, f, c, h, w = x.shape
    # Per frame a group's values are one contiguous run: reduce those, then merge the frames (equal counts, so the
    # variance is the mean of the per-frame variances plus the variance of the per-frame means).
    runs = x.view(b, f, groups, c // groups * h * w)
    step = f if x.dtype == torch.float32 else max(1, _STATS_CHUNK_BYTES // (b * c * h * w * 4))
    parts = [torch.var_mean(runs[:, s : s + step].float(), dim=3, correction=0) for s in range(0, f, step)]
    var_f = torch.cat([v for v, _ in parts], dim=1)
    mean_f = torch.cat([m for _, m in parts], dim=1)
    mean = mean_f.mean(dim=1)
    return mean, var_f.mean(dim=1) + (mean_f - mean[:, None]).square().mean(dim=1)


def norm_silu_(x: torch.Tensor, norm: nn.GroupNorm, residual: torch.Tensor | None = None) -> torch.Tensor:
    """In place: ``SiLU(group_norm(x) [+ residual])`` for a frame-major ``x [B,F,C,H,W]``."""
    b, _, c, _, _ = x.shape
    g = norm.num_groups
    mean, var = _group_moments(x, g)
    scale = norm.weight.float().view(1, g, c // g) * (var + norm.eps).rsqrt().view(b, g, 1)
    shift = norm.bias.float().view(1, g, c // g) - mean.view(b, g, 1) * scale
    torch.addcmul(shift.view(b, 1, c, 1, 1).to(x.dtype), x, scale.view(b, 1, c, 1, 1).to(x.dtype), out=x)
    if residual is not None:
        x.add_(residual)
    return F.silu(x, inplace=True)


# -- modules (attribute names are the checkpoint keys) -------------------------------------------------------------


class ResBlock(nn.Module):
    """``SiLU(x + GN(conv(SiLU(GN(conv(x))))))``: the activation comes after the residual sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(GROUPS, channels, eps=GROUP_NORM_EPS)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(GROUPS, channels, eps=GROUP_NORM_EPS)

    def forward(self, x: torch.Tensor, frame_chunk: int | None = None) -> torch.Tensor:
        h = norm_silu_(conv3d_frames(x, self.conv1, frame_chunk), self.norm1)
        h = conv3d_frames(h, self.conv2, frame_chunk)
        return norm_silu_(h, self.norm2, residual=x)


class BlurDown(nn.Module):
    """A fixed depthwise 5x5 binomial blur (``outer([1,4,6,4,1]) / 256``) with stride ``stride``, padding 2.

    The kernel is stored in the files (``kernel [1,1,5,5]``) and used as stored."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride
        taps = torch.tensor([math.comb(BLUR_SIZE - 1, i) for i in range(BLUR_SIZE)], dtype=torch.float64)
        self.register_buffer("kernel", (torch.outer(taps, taps) / taps.sum() ** 2).float().view(1, 1, 5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> ``[N, C, ceil(H / stride), ceil(W / stride)]``."""
        if self.stride == 1:
            return x
        c = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(c, 1, BLUR_SIZE, BLUR_SIZE)
        return F.conv2d(x, weight, stride=self.stride, padding=BLUR_SIZE // 2, groups=c)


class SpatialResampler(nn.Module):
    """Per frame: 3x3 convolution to ``num**2 * C`` channels, depth-to-space by ``num``, blur-down by ``den``.

    The pixel-shuffle x2 files name the convolution ``0`` (the first entry of a sequence in the official code);
    the rational files name it ``conv`` and store the blur as ``blur_down``."""

    def __init__(self, channels: int, num: int, den: int, rational: bool):
        super().__init__()
        self.num, self.den = num, den
        conv = nn.Conv2d(channels, num * num * channels, 3, padding=1)
        if rational:
            self.conv = conv
            self.blur_down = BlurDown(den)
        else:
            self.add_module("0", conv)
            self.blur_down = None

    @property
    def convolution(self) -> nn.Conv2d:
        return self.conv if self.blur_down is not None else self._modules["0"]

    def forward(self, x: torch.Tensor, frame_chunk: int | None = None) -> torch.Tensor:
        b, f, c, h, w = x.shape
        conv, units = self.convolution, self.num * self.num
        size = (-(-self.num * h // self.den), -(-self.num * w // self.den))
        out = x.new_empty((b, f, c, *size))
        frames_in, frames_out = x.view(b * f, c, h, w), out.view(b * f, c, *size)
        step = b * f if frame_chunk is None else max(1, frame_chunk)
        weight, bias = conv.weight, conv.bias
        for rows in _row_groups(weight.shape[0], weight[0].numel() * weight.element_size(), units):
            channels = slice(rows.start // units, rows.stop // units)
            for start in range(0, b * f, step):
                y = F.conv2d(frames_in[start : start + step], weight[rows], bias[rows], padding=1)
                y = F.pixel_shuffle(y, self.num)  # channel c*num*num + i*num + j -> pixel (num*h + i, num*w + j)
                if self.blur_down is not None:
                    y = self.blur_down(y)
                frames_out[start : start + step, channels] = y
                del y
        return out


class TemporalResampler(nn.Module):
    """3x3x3 convolution to ``2C`` channels, depth-to-time (channel ``2c + p`` -> frame ``2t + p``), first frame
    dropped: ``F -> 2F - 1`` frames. The files name the convolution ``0``."""

    def __init__(self, channels: int):
        super().__init__()
        self.add_module("0", nn.Conv3d(channels, 2 * channels, 3, padding=1))

    def forward(self, x: torch.Tensor, frame_chunk: int | None = None) -> torch.Tensor:
        b, f, c, h, w = x.shape
        conv = self._modules["0"]
        out = x.new_empty((b, 2 * f - 1, c, h, w))
        # Output frame 2t comes from the odd channels at t, frame 2t - 1 from the even channels at t >= 1.
        for parity, frames in ((1, slice(0, None, 2)), (0, slice(1, None, 2)))[: 1 if f == 1 else 2]:
            weight, bias = conv.weight[parity::2], conv.bias[parity::2]
            for rows in _row_groups(c, weight[0].numel() // 3 * weight.element_size()):
                if parity:
                    _conv3d_into(out[:, frames, rows], x, weight[rows], bias[rows], frame_chunk)
                    continue
                part = x.new_empty((b, f, rows.stop - rows.start, h, w))
                _conv3d_into(part, x, weight[rows], bias[rows], frame_chunk)
                out[:, frames, rows] = part[:, 1:]
                del part
        return out


class LatentUpsampler(nn.Module):
    """The whole network for one :class:`UpsamplerConfig`; :meth:`forward` maps un-normalised latents."""

    def __init__(self, config: UpsamplerConfig):
        super().__init__()
        self.config = config
        mid, blocks = config.mid_channels, config.num_blocks_per_stage
        self.initial_conv = nn.Conv3d(config.in_channels, mid, 3, padding=1)
        self.initial_norm = nn.GroupNorm(GROUPS, mid, eps=GROUP_NORM_EPS)
        self.res_blocks = nn.ModuleList(ResBlock(mid) for _ in range(blocks))
        if config.temporal_upsample:
            self.upsampler: nn.Module = TemporalResampler(mid)
        else:
            self.upsampler = SpatialResampler(mid, *config.spatial_ratio, rational=config.rational_resampler)
        self.post_upsample_res_blocks = nn.ModuleList(ResBlock(mid) for _ in range(blocks))
        self.final_conv = nn.Conv3d(mid, config.in_channels, 3, padding=1)

    @property
    def dtype(self) -> torch.dtype:
        return self.final_conv.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.final_conv.weight.device

    def arrange_weights(self) -> LatentUpsampler:
        """Store every 3-D kernel tap-major (:func:`tap_major`): same values and shapes, faster convolutions.
        :func:`load_upsampler` does this; a module built by hand works either way."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv3d):
                    module.weight.data = tap_major(module.weight.data)
        return self

    @torch.no_grad()
    def forward(self, latent: torch.Tensor, frame_chunk: int | None = None) -> torch.Tensor:
        """Un-normalised ``[B, C, F, H, W]`` -> un-normalised :meth:`UpsamplerConfig.output_shape`, in the model's
        dtype and device. ``frame_chunk`` (even, >= 2): frames each convolution works on at once (None: all)."""
        check_latent(latent, self.config)
        if frame_chunk is not None:
            frame_chunk = integer(frame_chunk, "frame_chunk", minimum=2)
        x = latent.to(device=self.device, dtype=self.dtype).transpose(1, 2).contiguous()
        x = norm_silu_(conv3d_frames(x, self.initial_conv, frame_chunk), self.initial_norm)
        for block in self.res_blocks:
            x = block(x, frame_chunk)
        x = self.upsampler(x, frame_chunk)
        for block in self.post_upsample_res_blocks:
            x = block(x, frame_chunk)
        x = conv3d_frames(x, self.final_conv, frame_chunk)
        return x.transpose(1, 2).contiguous()


# -- memory ----------------------------------------------------------------------------------------------------------


def _largest_group(rows: int, row_bytes: int, unit: int = 1) -> int:
    return max(g.stop - g.start for g in _row_groups(rows, row_bytes, unit))


def estimate_upsample_bytes(
    config: UpsamplerConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    dtype: torch.dtype = torch.bfloat16,
    frame_chunk: int | None = None,
) -> int:
    """Approximate peak working memory of one :meth:`LatentUpsampler.forward` (weights not included).

    A residual block holds three feature maps (its input, the first convolution's output, the second's); each
    convolution adds its two transformed kernels and the library's copy of one, one transformed input chunk and
    two products; the resampler holds its input and output maps and the products of one output-channel group.
    Peaks of the forward measured on the CPU (float32 and bfloat16, every kind, chunked or not) were 80-101 % of
    this; the rest covers :func:`upsample_latent`'s float32 copies of its input and output.
    """
    b, c, f, h, w = (int(s) for s in latent_shape)
    size = torch.empty((), dtype=dtype).element_size()
    mid = config.mid_channels
    _, _, f2, h2, w2 = config.output_shape(latent_shape)
    pixel = b * mid * size  # one latent cell of a feature map

    def convolution(frames: int, area: int) -> int:
        group = _largest_group(mid, mid * 9 * size)
        pairs = (frames + 1) // 2 if frame_chunk is None else min((frames + 1) // 2, max(1, frame_chunk // 2))
        u = pairs * area * pixel
        return 3 * group * mid * 9 * size + u + 2 * u * group // mid

    def blocks(frames: int, area: int) -> int:
        # a low-precision map's norm statistics read float32 copies of frames, once the convolution is done
        stats = 0 if dtype == torch.float32 else min(_STATS_CHUNK_BYTES, frames * area * pixel * 4 // size)
        return 3 * frames * area * pixel + max(convolution(frames, area), stats)

    before, after = f * h * w * pixel, f2 * h2 * w2 * pixel
    if config.temporal_upsample:
        resampler = before + after + f * h * w * pixel + convolution(f, h * w)
    else:
        num, _ = config.spatial_ratio
        rows = _largest_group(num * num * mid, mid * 9 * size, num * num)
        chunk = b * f if frame_chunk is None else min(b * f, frame_chunk)
        resampler = before + after + 2 * chunk * rows * h * w * size
    peak = max(blocks(f, h * w), blocks(f2, h2 * w2), resampler)
    # the float32 un-normalised input and normalised output of upsample_latent
    io = tensor_bytes(latent_shape, torch.float32) + tensor_bytes((b, c, f2, h2, w2), torch.float32)
    return int(peak + io)


def choose_frame_chunk(
    config: UpsamplerConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    budget_bytes: int,
    dtype: torch.dtype = torch.bfloat16,
) -> int | None:
    """``None`` (all frames at once) when that fits ``budget_bytes``, else the longest even chunk that fits.

    Raises :class:`TooLargeError` when not even two frames at a time fit: the feature maps themselves are whole."""
    frames = max(int(latent_shape[2]), config.output_shape(latent_shape)[2])
    if estimate_upsample_bytes(config, latent_shape, dtype) <= budget_bytes:
        return None
    for chunk in range(frames - frames % 2, 1, -2):
        if estimate_upsample_bytes(config, latent_shape, dtype, chunk) <= budget_bytes:
            return chunk
    least = estimate_upsample_bytes(config, latent_shape, dtype, 2)
    raise TooLargeError(
        f"upsampling a latent of shape {list(latent_shape)} with the {config.kind} upsampler needs about {gib(least)} "
        f"even two frames at a time, but the budget is {gib(budget_bytes)}; upsample a shorter or smaller latent"
    )


# -- the normalised-latent entry point -----------------------------------------------------------------------------


def check_latent(latent: Any, config: UpsamplerConfig, name: str = "latent") -> torch.Tensor:
    """Raise :class:`InputError` unless ``latent`` is a non-empty ``[B, C, F, H, W]`` float tensor with the
    upsampler's channel count (its values are checked separately, after any size check)."""
    channels = config.in_channels
    if not isinstance(latent, torch.Tensor) or not latent.is_floating_point():
        shown = f"a {latent.dtype} tensor" if isinstance(latent, torch.Tensor) else type(latent).__name__
        raise InputError(f"{name} must be a floating-point video latent tensor; got {shown}")
    if latent.ndim != 5 or latent.shape[1] != channels:
        raise InputError(
            f"{name} must be a video latent [batch, {channels}, frames, height, width] for this upsampler; got shape "
            f"{list(latent.shape)}"
        )
    if latent.numel() == 0:
        raise InputError(f"{name} is empty (shape {list(latent.shape)}); there is nothing to upsample")
    return latent


def upsample_latent(
    upsampler: LatentUpsampler,
    latent: torch.Tensor,
    statistics: nn.Module,
    *,
    budget_bytes: int | None = None,
    name: str = "latent",
) -> torch.Tensor:
    """A normalised video latent ``[B, C, F, H, W]`` -> the upsampled normalised latent, same dtype and device.

    ``statistics``: the video VAE's ``per_channel_statistics`` (:class:`~.video_vae.LatentStatistics`): the
    latent is un-normalised, upsampled and normalised again, as ltx-core's ``upsample_video`` does; the statistics
    are applied in float32. ``budget_bytes``: working memory the call may use (see :func:`choose_frame_chunk`).
    """
    config = upsampler.config
    check_latent(latent, config, name)
    means = statistics.get_buffer("mean-of-means")
    if means.numel() != config.in_channels:
        raise InputError(
            f"the video VAE's latent statistics have {means.numel()} channels but the {config.kind} upsampler works "
            f"on {config.in_channels}; use the VAE of the model the upsampler belongs to"
        )
    frame_chunk = None
    if budget_bytes is not None:
        frame_chunk = choose_frame_chunk(config, latent.shape, budget_bytes, upsampler.dtype)
    bad = int((~torch.isfinite(latent)).sum().item())
    if bad:
        raise InputError(
            f"{name} contains {bad} NaN or infinite value(s) out of {latent.numel()}; upsampling would spread them "
            "over the whole video (a diverged sampler or a broken latent file upstream?)"
        )
    raw = statistics.denormalize(latent.to(device=upsampler.device, dtype=torch.float32))
    up = upsampler(raw, frame_chunk)
    del raw
    return statistics.normalize(up.float()).to(device=latent.device, dtype=latent.dtype)


# -- loading -------------------------------------------------------------------------------------------------------


def load_upsampler(
    checkpoint: Checkpoint | str | os.PathLike,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LatentUpsampler:
    """Build the latent upsampler an official upsampler file describes, strictly (``dtype=None`` keeps the
    stored dtype). A file of another model, or whose tensors are not the kind its config names, raises
    :class:`~.errors.CheckpointError` naming the file."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint)
    ckpt.keys("upsampler")  # a model checkpoint: say what it holds rather than that its config has no section
    model = build_component(ckpt, "upsampler", LatentUpsampler, dtype=dtype, device=device, progress=progress)
    return model.arrange_weights()


__all__ = [
    "RATIONAL_SCALES",
    "LatentUpsampler",
    "UpsamplerConfig",
    "check_latent",
    "choose_frame_chunk",
    "estimate_upsample_bytes",
    "load_upsampler",
    "upsample_latent",
]
