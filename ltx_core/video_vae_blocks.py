"""Building blocks of the causal video VAE, working on videos stored frame-major.

Inside the VAE a video is a tensor ``[B, F, C, H, W]``: every frame is a contiguous ``[C, H, W]`` image, so a
3x3x3 convolution can run as 2-D convolutions over frames taken as a batch, and padding in time is a choice of
which frames to read rather than a copy of the video. The 3-tap temporal part uses Winograd's minimal filtering
F(2,3): two output frames cost four 2-D convolutions instead of six, which is exact arithmetic and a third less
work on the CPU, where these convolutions are nearly all of the time.

Module attribute names are the official checkpoint keys (``conv1.conv.weight``, ``res_blocks.0``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, InputError
from .layers import TimestepEmbedder

PIXEL_NORM_EPS = 1e-8
GROUP_NORM_EPS = 1e-6
GROUP_NORM_GROUPS = 32

# Bytes of temporaries one Winograd chunk may hold per input and output channel set; bounds the working memory of
# a convolution to a few frames whatever the video length.
_CHUNK_BYTES = 48 * 2**20

# Below this many output positions (frames x rows x columns) a convolution runs as one 3-D convolution: the
# kernels are then large next to the feature map and re-reading them four times costs more than Winograd saves.
_WINOGRAD_MIN_POSITIONS = 1536

# Largest kernel slice one convolution call gets (bytes); wider layers run in output-channel groups.
_KERNEL_BYTES = 64 * 2**20

# Per-module causal history for chunked (streaming) encoding: the last frames each causal convolution saw.
CausalCache = dict[int, Any]


# -- normalisation -----------------------------------------------------------------------------------------------


def _training(x: torch.Tensor) -> bool:
    """Whether autograd records work on ``x``: then every step must keep what the backward pass reads (the demo
    model's training; inference runs the in-place, Winograd paths)."""
    return torch.is_grad_enabled() and x.requires_grad


def pixel_norm_scale(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """``1 / sqrt(mean over channels of x^2 + eps)`` for ``x [B,F,C,H,W]`` -> ``[B,F,1,H,W]``."""
    if _training(x):
        return torch.rsqrt(x.float().square().mean(dim=2, keepdim=True) + eps).to(x.dtype)
    # vector_norm reduces in one pass without materialising x^2, which would be as large as x.
    sum_sq = torch.linalg.vector_norm(x, dim=2, keepdim=True, dtype=torch.float32).square_()
    return sum_sq.div_(x.shape[2]).add_(eps).rsqrt_().to(x.dtype)


class PixelNorm(nn.Module):
    """RMS over channels, no affine (the VAE's ``pixel_norm``)."""

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        scale = pixel_norm_scale(x)
        return x.mul_(scale) if inplace and not _training(x) else x * scale


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over channel groups of a frame-major video (statistics over groups x frames x pixels)."""

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        b, f, c, h, w = x.shape
        g = self.num_groups
        grouped = x.reshape(b, f, g, c // g, h, w)
        var, mean = torch.var_mean(grouped.float(), dim=(1, 3, 4, 5), keepdim=True, correction=0)
        inv = (var + self.eps).rsqrt_()
        scale = (inv * self.weight.float().view(1, 1, g, c // g, 1, 1)).view(1, 1, g, c // g, 1, 1)
        # per-sample scale and shift per channel: y = x * s + (beta - mean * s)
        scale = scale.expand(b, 1, g, c // g, 1, 1)
        shift = self.bias.float().view(1, 1, g, c // g, 1, 1) - mean * scale
        scale = scale.reshape(b, 1, c, 1, 1).to(x.dtype)
        shift = shift.reshape(b, 1, c, 1, 1).to(x.dtype)
        if inplace and not _training(x):
            return x.mul_(scale).add_(shift)
        return torch.addcmul(shift, x, scale)


def make_norm(kind: str, channels: int, groups: int = GROUP_NORM_GROUPS) -> nn.Module:
    if kind == "pixel_norm":
        return PixelNorm()
    if kind == "group_norm":
        return FrameGroupNorm(groups, channels, eps=GROUP_NORM_EPS)
    raise ConfigError(f"config key 'vae.norm_layer' is {kind!r}; supported: 'pixel_norm', 'group_norm'")


# -- 3x3x3 convolution with frame-replicating time padding --------------------------------------------------------


class _PaddedFrames:
    """The frames ``front + x + back`` without concatenating them: slices of ``x`` wherever possible."""

    def __init__(self, x: torch.Tensor, front: Sequence[torch.Tensor], back: Sequence[torch.Tensor]):
        self.x = x
        self.front = list(front)  # each [B, 1, C, H, W]
        self.back = list(back)
        self.length = len(self.front) + x.shape[1] + len(self.back)

    def frame(self, i: int) -> torch.Tensor:
        """Padded frame ``i`` as ``[B, 1, C, H, W]``; past the end, the last frame (read only for outputs that
        are dropped)."""
        i = min(i, self.length - 1)
        n_front, n_x = len(self.front), self.x.shape[1]
        if i < n_front:
            return self.front[i]
        if i < n_front + n_x:
            return self.x[:, i - n_front : i - n_front + 1]
        return self.back[i - n_front - n_x]

    def inside(self, first: int, last: int) -> bool:
        """True when padded frames ``first..last`` all lie in ``x``."""
        return first >= len(self.front) and last < len(self.front) + self.x.shape[1]

    def take(self, start: int, count: int, step: int = 1) -> torch.Tensor:
        """Frames ``start, start+step, ...`` (``count`` of them) as ``[B, count, C, H, W]``."""
        if count == 1:
            return self.frame(start)
        if self.inside(start, start + step * (count - 1)):
            a = start - len(self.front)
            return self.x[:, a : a + step * (count - 1) + 1 : step]
        return torch.cat([self.frame(start + step * k) for k in range(count)], dim=1)

    def materialise(self) -> torch.Tensor:
        return torch.cat([*self.front, self.x, *self.back], dim=1) if self.front or self.back else self.x


def _fill_border(buf: torch.Tensor, mode: str) -> None:
    """Fill the one-pixel border of ``buf [..., H+2, W+2]`` from its interior, like ``F.pad(mode)``."""
    if mode == "reflect":
        rows, cols = (2, -3), (2, -3)
    elif mode == "replicate":
        rows, cols = (1, -2), (1, -2)
    else:  # circular
        rows, cols = (-2, 1), (-2, 1)
    buf[..., 0, 1:-1] = buf[..., rows[0], 1:-1]
    buf[..., -1, 1:-1] = buf[..., rows[1], 1:-1]
    buf[..., :, 0] = buf[..., :, cols[0]]
    buf[..., :, -1] = buf[..., :, cols[1]]


class FramePaddedConv3d(nn.Module):
    """3x3x3 convolution (key ``conv``) whose time axis is padded by repeating edge frames.

    ``causal=True`` reads two copies of the first frame before the video (or the previous chunk's last frames when
    a :data:`CausalCache` is given); ``causal=False`` one copy of the first frame before and of the last after.
    Space is padded by one pixel with ``spatial_padding_mode``. Input and output are frame-major ``[B,F,C,H,W]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int, int] = (1, 1, 1),
        spatial_padding_mode: str = "zeros",
    ):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, stride=stride)
        self.stride = tuple(stride)
        self.spatial_padding_mode = spatial_padding_mode

    def forward(self, x: torch.Tensor, causal: bool, cache: CausalCache | None = None) -> torch.Tensor:
        history = cache.get(id(self)) if cache is not None and causal else None
        if not causal:
            frames = _PaddedFrames(x, [x[:, :1]], [x[:, -1:]])
        else:
            frames = _PaddedFrames(x, history if history is not None else [x[:, :1], x[:, :1]], [])
            if cache is not None:
                # The next chunk continues from the last two frames this one read; clone them so the cache does
                # not keep the whole chunk alive.
                cache[id(self)] = [frames.frame(i).clone() for i in (frames.length - 2, frames.length - 1)]
        if x.shape[1] == 1 and history is None and self.stride == (1, 1, 1):
            return self._single_frame(x)
        small = (frames.length - 2) * x.shape[3] * x.shape[4] < _WINOGRAD_MIN_POSITIONS
        training = torch.is_grad_enabled() and (x.requires_grad or self.conv.weight.requires_grad)
        if self.stride != (1, 1, 1) or small or training:  # Winograd fills buffers autograd cannot follow
            return self._direct(frames)
        return self._winograd(frames)

    def _out_groups(self) -> list[slice]:
        """Output-channel groups whose kernels stay under ``_KERNEL_BYTES``: the convolution library copies each
        kernel into its own layout per call, and for the widest layers that copy would otherwise be the largest
        allocation of the whole decode."""
        weight = self.conv.weight
        o = weight.shape[0]
        groups = max(1, math.ceil(weight.numel() * weight.element_size() / _KERNEL_BYTES))
        size = min(o, math.ceil(o / groups / 16) * 16)
        return [slice(start, min(o, start + size)) for start in range(0, o, size)]

    def _direct(self, frames: _PaddedFrames) -> torch.Tensor:
        # One 3-D convolution over the padded frames: for strided convolutions, and for small feature maps, where
        # reading the weights costs more than the arithmetic Winograd saves.
        video = frames.materialise().transpose(1, 2)  # [B, C, F+2, H, W]
        if self.spatial_padding_mode != "zeros":
            video = F.pad(video, (1, 1, 1, 1, 0, 0), mode=self.spatial_padding_mode)
            padding: int | tuple[int, int, int] = 0
        else:
            padding = (0, 1, 1)
        video = video.contiguous()
        weight, bias = self.conv.weight, self.conv.bias
        out = None
        for group in self._out_groups():
            y = F.conv3d(video, weight[group], bias[group], stride=self.stride, padding=padding)
            if out is None:
                b, _, f, h, w = y.shape
                out = y.new_empty((b, f, weight.shape[0], h, w))
            out[:, :, group] = y.transpose(1, 2)
        return out

    def _single_frame(self, x: torch.Tensor) -> torch.Tensor:
        # A lone frame padded with copies of itself meets all three taps: one convolution with the taps summed.
        frames = _PaddedFrames(x, [], [])
        u = x if self.spatial_padding_mode == "zeros" else self._transform(frames, 0, 0, 1, 0)
        return self._conv2d(u, self.conv.weight.sum(2), self.conv.bias)

    def _winograd(self, frames: _PaddedFrames) -> torch.Tensor:
        x = frames.x
        b, _, c, h, w = x.shape
        n_out = frames.length - 2
        o = self.conv.weight.shape[0]
        out = torch.empty((b, n_out, o, h, w), dtype=x.dtype, device=x.device)
        n_pairs = (n_out + 1) // 2
        for group in self._out_groups():
            weight, bias = self.conv.weight[group], self.conv.bias[group]
            # F(2,3): y0 = m0 + m1 + m2, y1 = m1 - m2 - m3 with m_k = u_k * k_k (2-D convolutions) and
            # u = (d0 - d2, d1 + d2, d2 - d1, d1 - d3) over four consecutive padded frames d0..d3.
            g0, g1, g2 = weight.unbind(2)
            half_sum = torch.add(g0, g2).mul_(0.5)
            k1 = torch.add(half_sum, g1, alpha=0.5)
            k2 = half_sum.sub_(g1, alpha=0.5)
            og = weight.shape[0]
            per_pair = (c + 2 * og) * h * w * x.element_size()
            chunk = max(1, min(n_pairs, _CHUNK_BYTES // per_pair))
            chunk = math.ceil(n_pairs / math.ceil(n_pairs / chunk))  # even chunks: fewer distinct kernel shapes
            for j0 in range(0, n_pairs, chunk):
                k = min(chunk, n_pairs - j0)
                p = 2 * j0  # first padded frame this chunk reads
                even = out[:, p : 2 * (j0 + k) : 2, group]
                odd = out[:, p + 1 : 2 * (j0 + k) : 2, group]
                m1 = self._conv2d(self._transform(frames, p + 1, p + 2, k, 1), k1, bias)
                m2 = self._conv2d(self._transform(frames, p + 2, p + 1, k, -1), k2)
                torch.add(m1, m2, out=even)
                m1.sub_(m2)
                del m2
                even.add_(self._conv2d(self._transform(frames, p, p + 2, k, -1), g0))
                if odd.shape[1]:
                    m1.sub_(self._conv2d(self._transform(frames, p + 1, p + 3, k, -1), g2))
                    odd.copy_(m1[:, : odd.shape[1]])
                del m1
        return out

    def _transform(self, frames: _PaddedFrames, a: int, b: int, count: int, alpha: int) -> torch.Tensor:
        """``frame[a + 2i] + alpha * frame[b + 2i]`` for ``i < count`` as ``[B,count,C,H,W]``, with a one-pixel
        border filled by the padding mode unless it is zeros (the convolution pads zeros itself)."""
        x = frames.x
        n, _, c, h, w = x.shape
        mode = self.spatial_padding_mode
        if mode == "zeros":
            u = x.new_empty((n, count, c, h, w))
            interior = u
        else:
            if h < 2 or w < 2:
                raise InputError(
                    f"'{mode}' padding needs frames of at least 2x2 latent pixels; got {h}x{w} "
                    "(the video is smaller than 64 pixels on a side)"
                )
            u = x.new_empty((n, count, c, h + 2, w + 2))
            interior = u[..., 1:-1, 1:-1]
        i = 0
        while i < count:
            # A run of outputs whose inputs are all video frames reads strided slices; padding frames one by one.
            run = 0
            while (
                i + run < count
                and frames.inside(a + 2 * (i + run), a + 2 * (i + run))
                and frames.inside(b + 2 * (i + run), b + 2 * (i + run))
            ):
                run += 1
            step = max(run, 1)
            first, second = frames.take(a + 2 * i, step, 2), frames.take(b + 2 * i, step, 2)
            if alpha:
                torch.add(first, second, alpha=alpha, out=interior[:, i : i + step])
            else:
                interior[:, i : i + step] = first
            i += step
        if mode != "zeros":
            _fill_border(u, mode)
        return u

    def _conv2d(self, u: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``u [B,K,C,H,W]`` (already padded unless the mode is zeros) -> ``[B,K,O,H,W]``: one 3x3 2-D convolution
        over all frames as a batch."""
        b, k, c, h, w = u.shape
        if self.spatial_padding_mode == "zeros":
            y = F.conv2d(u.reshape(b * k, c, h, w), kernel, bias, padding=1)
            return y.view(b, k, -1, h, w)
        y = F.conv2d(u.reshape(b * k, c, h, w), kernel, bias)
        return y.view(b, k, -1, h - 2, w - 2)


# -- residual blocks ---------------------------------------------------------------------------------------------


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """In place ``x * (1 + scale) + shift`` with per-sample, per-channel ``[B, C]`` parameters."""
    b, c = shift.shape
    return x.mul_(1 + scale.view(b, 1, c, 1, 1)).add_(shift.view(b, 1, c, 1, 1))


class ResBlock(nn.Module):
    """Pre-activation residual block: norm, [timestep modulation], SiLU, conv, twice; plus a shortcut.

    When the width changes the shortcut is a whole-sample LayerNorm (``norm3``) and a 1x1x1 conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm_layer: str,
        spatial_padding_mode: str,
        timestep_conditioning: bool = False,
    ):
        super().__init__()
        self.norm1 = make_norm(norm_layer, in_channels)
        self.conv1 = FramePaddedConv3d(in_channels, out_channels, spatial_padding_mode=spatial_padding_mode)
        self.norm2 = make_norm(norm_layer, out_channels)
        self.conv2 = FramePaddedConv3d(out_channels, out_channels, spatial_padding_mode=spatial_padding_mode)
        if in_channels != out_channels:
            self.norm3 = FrameGroupNorm(1, in_channels, eps=GROUP_NORM_EPS)
            self.conv_shortcut = nn.Conv3d(in_channels, out_channels, 1)
        else:
            self.norm3 = None
            self.conv_shortcut = None
        if timestep_conditioning:
            self.scale_shift_table = nn.Parameter(torch.zeros(4, in_channels))
        else:
            self.scale_shift_table = None

    def forward(
        self,
        x: torch.Tensor,
        causal: bool,
        time_embedding: torch.Tensor | None = None,
        cache: CausalCache | None = None,
    ) -> torch.Tensor:
        """``x [B,F,C,H,W]``; ``time_embedding [B, 4C]`` when the block is timestep-conditioned."""
        modulation = None
        if self.scale_shift_table is not None:
            if time_embedding is None:
                raise ValueError("this block is timestep-conditioned: pass the decoder timestep")
            table = self.scale_shift_table.to(x.dtype)
            modulation = (table[None] + time_embedding.view(x.shape[0], 4, -1)).unbind(1)
        h = self.norm1(x)
        if modulation is not None:
            _modulate(h, modulation[0], modulation[1])
        inplace = not _training(h)
        h = self.conv1(F.silu(h, inplace=inplace), causal, cache)
        h = self.norm2(h, inplace=True)
        if modulation is not None:
            _modulate(h, modulation[2], modulation[3])
        h = self.conv2(F.silu(h, inplace=inplace), causal, cache)
        if self.conv_shortcut is None:
            return h.add_(x)
        shortcut = self.norm3(x)
        b, f, c, hh, ww = shortcut.shape
        weight = self.conv_shortcut.weight.view(self.conv_shortcut.out_channels, c, 1, 1)
        shortcut = F.conv2d(shortcut.view(b * f, c, hh, ww), weight, self.conv_shortcut.bias)
        return h.add_(shortcut.view(b, f, -1, hh, ww))


class ResStage(nn.Module):
    """``res_x``: ``num_layers`` residual blocks of one width, sharing one timestep embedding (``time_embedder``)."""

    def __init__(
        self,
        channels: int,
        num_layers: int,
        norm_layer: str,
        spatial_padding_mode: str,
        timestep_conditioning: bool = False,
    ):
        super().__init__()
        self.time_embedder = TimestepEmbedder(4 * channels) if timestep_conditioning else None
        self.res_blocks = nn.ModuleList(
            ResBlock(channels, channels, norm_layer, spatial_padding_mode, timestep_conditioning)
            for _ in range(num_layers)
        )

    def forward(
        self,
        x: torch.Tensor,
        causal: bool,
        timestep: torch.Tensor | None = None,
        cache: CausalCache | None = None,
    ) -> torch.Tensor:
        """``timestep [B]``: the decoder timestep already multiplied by ``timestep_scale_multiplier``."""
        embedding = None
        if self.time_embedder is not None:
            if timestep is None:
                raise ValueError("this stage is timestep-conditioned: pass the decoder timestep")
            embedding = self.time_embedder(timestep.flatten(), x.dtype)
        for block in self.res_blocks:
            x = block(x, causal, embedding, cache)
        return x


# -- changing resolution -----------------------------------------------------------------------------------------


def _check_divisible(x: torch.Tensor, stride: tuple[int, int, int], what: str) -> None:
    _, f, _, h, w = x.shape
    if f % stride[0] or h % stride[1] or w % stride[2]:
        raise InputError(
            f"{what}: a {f}x{h}x{w} (frames x height x width) feature map cannot be split by {stride}; "
            "the video frame count must be 8k+1 and its sides multiples of 32"
        )


def space_to_depth_view(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """``[B, F*st, C, H*sh, W*sw]`` -> view ``[B, F, C, st, sh, sw, H, W]`` (channels ordered ``c, t, h, w``)."""
    b, f, c, h, w = x.shape
    st, sh, sw = stride
    return x.view(b, f // st, st, c, h // sh, sh, w // sw, sw).permute(0, 1, 3, 2, 5, 7, 4, 6)


class SpaceToDepthDown(nn.Module):
    """``compress_*_res`` encoder block: a conv to ``C_out/|s|`` channels then space-to-depth, plus a skip that
    space-to-depths the input and averages consecutive groups of channels. Time stride 2 first repeats frame 0."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int], spatial_padding_mode: str):
        super().__init__()
        self.stride = stride
        volume = math.prod(stride)
        if out_channels % volume or (in_channels * volume) % out_channels:
            raise ConfigError(f"encoder block with stride {stride} cannot map {in_channels} to {out_channels} channels")
        self.conv = FramePaddedConv3d(in_channels, out_channels // volume, spatial_padding_mode=spatial_padding_mode)
        # Channels (c, t, h, w) averaged in groups of g consecutive ones = a mean over the trailing sub-pixel axes
        # whose sizes multiply to g; reducing the strided view directly avoids materialising the rearrangement.
        group = in_channels * volume // out_channels
        self.mean_dims: tuple[int, ...] = ()
        for axis in (5, 4, 3):
            if group == 1:
                break
            factor = stride[axis - 3]
            if group % factor:
                raise ConfigError(f"encoder block with stride {stride} cannot average groups of {group} channels")
            if factor > 1:
                self.mean_dims += (axis,)
                group //= factor
        if group != 1:
            raise ConfigError(f"encoder block with stride {stride} maps {in_channels} to {out_channels} channels")

    def forward(self, x: torch.Tensor, causal: bool = True, cache: CausalCache | None = None) -> torch.Tensor:
        if self.stride[0] == 2 and (cache is None or id(self) not in cache):
            # The first frame stands alone in time; pair it with a copy of itself.
            x = torch.cat([x[:, :1], x], dim=1)
            if cache is not None:
                cache[id(self)] = True
        _check_divisible(x, self.stride, "space-to-depth downsampling")
        b, f, _, h, w = x.shape
        st, sh, sw = self.stride
        view = space_to_depth_view(x, self.stride)
        out = view.mean(self.mean_dims) if self.mean_dims else view.clone(memory_format=torch.contiguous_format)
        out = out.view(b, f // st, -1, h // sh, w // sw)
        y = self.conv(x, causal, cache)
        out.view(b, f // st, -1, st, sh, sw, h // sh, w // sw).add_(space_to_depth_view(y, self.stride))
        return out


def _depth_to_space_view(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """``[B, F, C*|s|, H, W]`` -> view ``[B, F, st, C, H, sh, W, sw]`` (channels read as ``c, t, h, w``)."""
    b, f, cs, h, w = x.shape
    st, sh, sw = stride
    return x.view(b, f, cs // (st * sh * sw), st, sh, sw, h, w).permute(0, 1, 3, 2, 6, 4, 7, 5)


def _depth_to_space_into(out: torch.Tensor, source: torch.Tensor, stride: tuple[int, int, int], add: bool) -> None:
    """Write (or add) the depth-to-space of ``source`` into ``out [B, F*st - drop, C_out, H*sh, W*sw]``, where
    ``drop`` = 1 output frame when time is upsampled and ``C_out`` is a multiple of the source's ``C``."""
    view = _depth_to_space_view(source, stride)  # [B, F, st, C, H, sh, W, sw]
    b, f, st, c, h, sh, w, sw = view.shape
    repeats = out.shape[2] // c

    def target(frames: torch.Tensor, n: int, per: int) -> torch.Tensor:
        return frames.view(b, n, per, repeats, c, h, sh, w, sw)

    if st == 1:
        parts = [(target(out, f, 1), view)]
    else:  # the first output frame is dropped: source frame 0 contributes only its later sub-frames
        parts = [
            (target(out[:, : st - 1], 1, st - 1), view[:, :1, 1:]),
            (target(out[:, st - 1 :], f - 1, st), view[:, 1:]),
        ]
    for dst, src in parts:
        src = src.unsqueeze(3)
        if add:
            dst.add_(src)
        else:
            dst.copy_(src)


def _depth_to_space(source: torch.Tensor, stride: tuple[int, int, int], channels: int) -> torch.Tensor:
    """What :func:`_depth_to_space_into` writes, as a new tensor autograd can follow (training)."""
    view = _depth_to_space_view(source, stride)  # [B, F, st, C, H, sh, W, sw]
    b, f, st, c, h, sh, w, sw = view.shape
    out = view.reshape(b, f * st, c, h * sh, w * sw)[:, st - 1 :]
    return out.repeat(1, 1, channels // c, 1, 1)


class DepthToSpaceUp(nn.Module):
    """``compress_*`` decoder block: a conv to ``|s|*C/r`` channels, depth-to-space, and the first frame dropped when
    time is upsampled; ``residual`` adds the input depth-to-spaced and tiled over channels."""

    def __init__(
        self,
        in_channels: int,
        stride: tuple[int, int, int],
        reduction: int,
        residual: bool,
        spatial_padding_mode: str,
    ):
        super().__init__()
        self.stride = stride
        self.residual = residual
        volume = math.prod(stride)
        if in_channels % reduction or (residual and (in_channels % volume or volume % reduction)):
            raise ConfigError(f"decoder block with stride {stride} cannot divide {in_channels} channels by {reduction}")
        self.out_channels = in_channels // reduction
        self.conv = FramePaddedConv3d(
            in_channels, volume * self.out_channels, spatial_padding_mode=spatial_padding_mode
        )

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        b, f, _, h, w = x.shape
        st, sh, sw = self.stride
        y = self.conv(x, causal)
        if _training(y):
            out = _depth_to_space(y, self.stride, self.out_channels)
            return out + _depth_to_space(x, self.stride, self.out_channels) if self.residual else out
        out = x.new_empty((b, f * st - (st - 1), self.out_channels, h * sh, w * sw))
        _depth_to_space_into(out, y, self.stride, add=False)
        del y
        if self.residual:
            _depth_to_space_into(out, x, self.stride, add=True)
        return out
