"""Tiled, streamed video VAE decoding and encoding with bounded memory.

Decoding splits the latent into overlapping tiles: spatial tiles of the frame and temporal chunks of the video.
Each tile is decoded on its own and blended into the output with linear ramps across the overlaps, so seams do not
show. Tiles are visited chunk by chunk in time and :func:`iter_decode` hands out each run of frames as soon as no
later tile touches it, so peak memory is set by the tile size, not the video length. The tile geometry and blend
weights follow the official implementation's tiled decoder, so both give the same frames for the same settings.

Blend weights are separable: every tile is a product of a time, a row and a column ramp, and tiles form a grid, so
the sum of weights at a pixel is a product of three 1-D sums. Only the weighted sum of the current chunk is kept.

Encoding runs the causal encoder chunk by chunk in time (exact: each causal convolution carries its last frames
over) and, when asked, over overlapping spatial tiles blended in latent space.

:func:`choose_decode_tiling` picks tiles for a memory budget and :func:`decode` / :func:`iter_decode` retry with
smaller tiles when the device runs out of memory. The plain path (``VideoVAE.decode``) stays the default.
:func:`choose_encode_tiling` encodes the whole video whenever it fits the budget (as the reference does), else in
time chunks (exact), and falls back to spatial tiles (blended, so slightly different) only when no whole-frame
encode fits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch

from .config import VideoVAEConfig
from .diffusion_decoder import DiffusionDecoderConfig
from .errors import InputError
from .latents import SPACE_COMPRESSION, TIME_COMPRESSION, video_frame_count
from .video_vae import NoiseSource, VideoVAE

log = logging.getLogger("ltx_av.tiling")

ProgressCallback = Callable[[int, int], None]


# -- settings ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodeTiling:
    """Tile sizes in output units; ``None`` leaves that axis whole.

    ``spatial_tile`` / ``spatial_overlap``: pixels along the longer side, multiples of 32 (tile >= 64); the shorter
    side gets proportionally sized tiles. ``temporal_tile`` / ``temporal_overlap``: frames, multiples of 8
    (tile >= 16). The official defaults are 512/64 px and 64/24 frames.
    """

    spatial_tile: int | None = 512
    spatial_overlap: int = 64
    temporal_tile: int | None = 64
    temporal_overlap: int = 24

    def __post_init__(self) -> None:
        if self.spatial_tile is not None:
            _check_tile("spatial_tile", self.spatial_tile, "spatial_overlap", self.spatial_overlap, 32, 64, "pixels")
        if self.temporal_tile is not None:
            _check_tile("temporal_tile", self.temporal_tile, "temporal_overlap", self.temporal_overlap, 8, 16, "frames")

    def describe(self) -> str:
        space = (
            f"{self.spatial_tile}px tiles ({self.spatial_overlap}px overlap)" if self.spatial_tile else "whole frames"
        )
        time = (
            f"{self.temporal_tile}-frame chunks ({self.temporal_overlap} overlap)"
            if self.temporal_tile
            else "all frames"
        )
        return f"{space}, {time}"


@dataclass(frozen=True)
class EncodeTiling:
    """``temporal_chunk``: frames per chunk after the first frame (multiple of 8; exact). ``spatial_tile`` /
    ``spatial_overlap``: pixels, multiples of 32 (tile >= 64, overlap >= 64); tiles are blended in latent space."""

    spatial_tile: int | None = None
    spatial_overlap: int = 64
    temporal_chunk: int | None = 32

    def __post_init__(self) -> None:
        if self.spatial_tile is not None:
            _check_tile("spatial_tile", self.spatial_tile, "spatial_overlap", self.spatial_overlap, 32, 64, "pixels")
            if self.spatial_overlap < 64:
                raise InputError(f"spatial_overlap must be at least 64 pixels for encoding; got {self.spatial_overlap}")
        if self.temporal_chunk is not None and (self.temporal_chunk < 8 or self.temporal_chunk % 8):
            raise InputError(f"temporal_chunk must be a positive multiple of 8 frames; got {self.temporal_chunk}")


def _check_tile(name: str, tile: int, overlap_name: str, overlap: int, step: int, minimum: int, unit: str) -> None:
    if tile < minimum or tile % step:
        raise InputError(f"{name} must be a multiple of {step} {unit}, at least {minimum}; got {tile}")
    if overlap < 0 or overlap % step or overlap >= tile:
        raise InputError(
            f"{overlap_name} must be a multiple of {step} {unit} and smaller than {name} ({tile}); got {overlap}"
        )


# -- 1-D geometry ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisTiles:
    """Overlapping intervals covering one axis: ``[starts[i], ends[i])`` with blend ramps at each end."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    left_ramps: tuple[int, ...]
    right_ramps: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.starts)


def split_axis(length: int, size: int, overlap: int) -> AxisTiles:
    """Tiles of ``size`` with ``overlap`` and stride ``size - overlap``; the last one ends at ``length``."""
    if length <= size:
        return AxisTiles((0,), (length,), (0,), (0,))
    stride = size - overlap
    count = math.ceil((length - overlap) / stride)
    starts = tuple(i * stride for i in range(count))
    ends = tuple(min(s + size, length) for s in starts[:-1]) + (length,)
    return AxisTiles(starts, ends, (0,) + (overlap,) * (count - 1), (overlap,) * (count - 1) + (0,))


def split_latent_time(length: int, size: int, overlap: int) -> AxisTiles:
    """Like :func:`split_axis`, but every chunk after the first starts one latent frame earlier (its first latent
    decodes to a single, causally incomplete frame) and ramps in over that frame too."""
    tiles = split_axis(length, size, overlap)
    if len(tiles) == 1:
        return tiles
    starts = (tiles.starts[0],) + tuple(s - 1 for s in tiles.starts[1:])
    left = (tiles.left_ramps[0],) + tuple(r + 1 for r in tiles.left_ramps[1:])
    return replace(tiles, starts=starts, left_ramps=left)


def blend_ramp(length: int, left: int, right: int, left_from_zero: bool = False) -> torch.Tensor:
    """1-D weights: linear fade-in over ``left`` samples, fade-out over ``right``, ones between. Fades exclude the
    end points (0 and 1), except that ``left_from_zero`` starts the fade-in at exactly 0."""
    mask = torch.ones(length)
    left, right = max(0, min(left, length)), max(0, min(right, length))
    if left:
        ramp = torch.linspace(0.0, 1.0, left + 1)[:-1] if left_from_zero else torch.linspace(0.0, 1.0, left + 2)[1:-1]
        mask[:left] *= ramp
    if right:
        mask[-right:] *= torch.linspace(1.0, 0.0, right + 2)[1:-1]
    return mask.clamp_(0.0, 1.0)


# -- decode plan -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisPlan:
    """One axis of a decode plan: latent intervals, their output slices and blend weights, and the weight sum."""

    latent: tuple[slice, ...]
    output: tuple[slice, ...]
    weights: tuple[torch.Tensor, ...]
    total: torch.Tensor  # sum of the weights over tiles, per output sample


def _plan_axis(tiles: AxisTiles, scale: int, length_out: int, temporal: bool) -> AxisPlan:
    latent, output, weights = [], [], []
    total = torch.zeros(length_out)
    for a, b, left, right in zip(tiles.starts, tiles.ends, tiles.left_ramps, tiles.right_ramps, strict=True):
        latent.append(slice(a, b))
        if temporal:
            # n latent frames decode to 1 + 8(n - 1) frames, the first of them at 8a.
            out = slice(a * scale, 1 + (b - 1) * scale)
            ramp_in = 1 + (left - 1) * scale if left else 0
            w = blend_ramp(out.stop - out.start, ramp_in, right * scale, left_from_zero=True)
        else:
            out = slice(a * scale, b * scale)
            w = blend_ramp(out.stop - out.start, left * scale, right * scale)
        output.append(out)
        weights.append(w)
        total[out] += w
    return AxisPlan(tuple(latent), tuple(output), tuple(weights), total.clamp_(min=1e-8))


@dataclass(frozen=True)
class DecodePlan:
    """Where every tile of a tiled decode comes from and goes: time chunks, each a grid of row x column tiles."""

    time: AxisPlan
    rows: AxisPlan
    cols: AxisPlan
    frames: int
    height: int
    width: int

    @property
    def tile_count(self) -> int:
        return len(self.time.latent) * len(self.rows.latent) * len(self.cols.latent)

    @property
    def largest_tile(self) -> tuple[int, int, int]:
        """(latent frames, rows, columns) of the largest tile."""
        return tuple(max(s.stop - s.start for s in axis.latent) for axis in (self.time, self.rows, self.cols))


def plan_decode(latent_shape: tuple[int, ...] | torch.Size, tiling: DecodeTiling | None) -> DecodePlan:
    """Tile geometry for a latent ``[B, C, F', H', W']``; ``None`` gives one tile."""
    _, _, f, h, w = latent_shape
    frames = video_frame_count(f)
    height, width = h * SPACE_COMPRESSION, w * SPACE_COMPRESSION
    rows, cols = split_axis(h, h, 0), split_axis(w, w, 0)
    time = split_axis(f, f, 0)
    if tiling is not None and tiling.spatial_tile is not None:
        size = tiling.spatial_tile // SPACE_COMPRESSION
        overlap = tiling.spatial_overlap // SPACE_COMPRESSION
        long_side = max(h, w)
        # The shorter side gets tiles in proportion, so both sides split into about as many tiles.
        rows = split_axis(h, max(2, overlap + 1, round(size * h / long_side)), overlap)
        cols = split_axis(w, max(2, overlap + 1, round(size * w / long_side)), overlap)
    if tiling is not None and tiling.temporal_tile is not None:
        time = split_latent_time(
            f, tiling.temporal_tile // TIME_COMPRESSION, tiling.temporal_overlap // TIME_COMPRESSION
        )
    return DecodePlan(
        time=_plan_axis(time, TIME_COMPRESSION, frames, temporal=True),
        rows=_plan_axis(rows, SPACE_COMPRESSION, height, temporal=False),
        cols=_plan_axis(cols, SPACE_COMPRESSION, width, temporal=False),
        frames=frames,
        height=height,
        width=width,
    )


# -- tiled decode ----------------------------------------------------------------------------------------------------


def iter_decode_plan(
    vae: VideoVAE,
    latent: torch.Tensor,
    plan: DecodePlan,
    timestep: float | torch.Tensor | None = None,
    noise: NoiseSource = None,
    noise_scale: float | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Decode tile by tile; yields ``(first_frame, frames [B,3,n,H,W] float32)`` runs in order, each as soon as it
    is final. ``progress(done, total)`` is called after every tile (raise from it to stop between tiles)."""
    decoder = vae._require("decoder")
    z, t = vae.prepare_latent(latent, timestep, noise, noise_scale)  # whole latent: noise drawn once, not per tile
    batch, device = z.shape[0], z.device
    channels = vae.config.out_channels
    rows_total = plan.rows.total.to(device).view(1, 1, 1, -1, 1)
    cols_total = plan.cols.total.to(device).view(1, 1, 1, 1, -1)
    done, total = 0, plan.tile_count
    carry: torch.Tensor | None = None  # weighted sum of frames from `carry_start` on, shared with the next chunk
    carry_start = 0
    chunks = list(zip(plan.time.latent, plan.time.output, plan.time.weights, strict=True))
    for index, (t_latent, t_out, t_weight) in enumerate(chunks):
        acc = torch.zeros((batch, channels, t_out.stop - t_out.start, plan.height, plan.width), device=device)
        if carry is not None:
            acc[:, :, carry_start - t_out.start : carry_start - t_out.start + carry.shape[2]] += carry
            carry = None
        t_w = t_weight.to(device).view(1, 1, -1, 1, 1)
        for r_latent, r_out, r_weight in zip(plan.rows.latent, plan.rows.output, plan.rows.weights, strict=True):
            for c_latent, c_out, c_weight in zip(plan.cols.latent, plan.cols.output, plan.cols.weights, strict=True):
                tile = decoder(z[:, :, t_latent, r_latent, c_latent], t)
                weight = t_w * r_weight.to(device).view(1, 1, 1, -1, 1) * c_weight.to(device).view(1, 1, 1, 1, -1)
                acc[:, :, :, r_out, c_out].addcmul_(tile.float(), weight)
                del tile, weight
                done += 1
                if progress is not None:
                    progress(done, total)
        final_stop = chunks[index + 1][1].start if index + 1 < len(chunks) else t_out.stop
        ready = final_stop - t_out.start
        if ready < acc.shape[2]:
            carry, carry_start = acc[:, :, ready:].clone(), final_stop
        if ready == 0:  # degenerate tiles: the next chunk starts where this one does
            continue
        time_total = plan.time.total[t_out.start : final_stop].to(device).view(1, 1, -1, 1, 1)
        out = acc[:, :, :ready]
        del acc
        yield t_out.start, out.div_(time_total).div_(rows_total).div_(cols_total)
        del out


def decode_with_plan(
    vae: VideoVAE,
    latent: torch.Tensor,
    plan: DecodePlan,
    out: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor:
    """All frames of :func:`iter_decode_plan` written into ``out`` (allocated ``[B,3,F,H,W]`` float32 if None)."""
    for start, frames in iter_decode_plan(vae, latent, plan, **kwargs):
        if out is None:
            shape = (frames.shape[0], frames.shape[1], plan.frames, plan.height, plan.width)
            out = torch.empty(shape, dtype=torch.float32, device=frames.device)
        out[:, :, start : start + frames.shape[2]] = frames
    return out


# -- memory estimate and automatic tiles -----------------------------------------------------------------------------


def estimate_decode_bytes(
    config: VideoVAEConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    dtype: torch.dtype = torch.float32,
    weights: bool = True,
) -> int:
    """Approximate peak working memory of decoding one tile of ``latent_shape`` (weights not included).

    Walks the decoder's blocks: a residual block holds about three feature maps at once (input, normalised copy,
    output), an upsampler its input, the widened convolution output and the result. Convolutions add their
    transformed kernels. Checked against measured peaks in the VAE benchmark.
    """
    b, _, f, h, w = latent_shape
    size = torch.empty((), dtype=dtype).element_size()
    channels = config.decoder_base_channels * 8
    peak = 3 * b * channels * f * h * w * size
    weight_peak = 27 * config.latent_channels * channels * size
    for name, params in reversed(config.decoder_blocks):
        multiplier = params.get("multiplier")
        if name == "res_x":
            peak = max(peak, 3 * b * channels * f * h * w * size)
            weight_peak = max(weight_peak, 27 * channels * channels * size)
        elif name == "res_x_y":
            out = channels // (multiplier or 2)
            peak = max(peak, b * (2 * channels + 2 * out) * f * h * w * size)
            channels = out
        else:
            st, sh, sw = {"compress_time": (2, 1, 1), "compress_space": (1, 2, 2)}.get(name, (2, 2, 2))
            wide = st * sh * sw * channels // (multiplier or 1)
            weight_peak = max(weight_peak, 27 * channels * wide * size)
            before = b * (channels + wide) * f * h * w * size
            f, h, w = f * st - (st - 1), h * sh, w * sw
            channels = channels // (multiplier or 1)
            peak = max(peak, before + b * channels * f * h * w * size)
    # The last feature map, its conv output and the frames in output order.
    pixels = b * f * h * w * size
    peak = max(peak, 2 * channels * pixels + 2 * config.out_channels * config.patch_size**2 * pixels)
    return int(peak + (weight_peak if weights else 0))


def estimate_tiled_decode_bytes(
    config: VideoVAEConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    tiling: DecodeTiling | None,
    dtype: torch.dtype = torch.float32,
    weights: bool = True,
) -> int:
    """Peak working memory of a tiled decode: the largest tile plus the float32 blend buffers of one chunk."""
    if isinstance(config, DiffusionDecoderConfig):
        from . import diffusion_tiling

        return diffusion_tiling.estimate_decode_bytes(config, latent_shape, tiling, dtype)
    plan = plan_decode(latent_shape, tiling)
    f, h, w = plan.largest_tile
    tile = estimate_decode_bytes(config, (latent_shape[0], latent_shape[1], f, h, w), dtype, weights)
    chunk_frames = max(s.stop - s.start for s in plan.time.output)
    blend = 2 * latent_shape[0] * config.out_channels * chunk_frames * plan.height * plan.width * 4
    return tile + blend


def tiling_candidates(latent_shape: tuple[int, ...] | torch.Size) -> list[DecodeTiling | None]:
    """Tilings worth considering for a latent, from none to 128 px tiles and 16-frame chunks."""
    _, _, f, h, w = latent_shape
    long_side = max(h, w) * SPACE_COMPRESSION
    frames = video_frame_count(f)
    temporal: list[int | None] = [None] + [t for t in (64, 32, 16) if t < frames]
    spatial: list[int | None] = [None] + [s for s in (768, 512, 384, 256, 192, 128) if s < long_side]
    candidates: list[DecodeTiling | None] = []
    for s in spatial:
        for t in temporal:
            if s is None and t is None:
                candidates.append(None)
                continue
            candidates.append(
                DecodeTiling(
                    spatial_tile=s,
                    spatial_overlap=64 if s is None or s >= 256 else 32,
                    temporal_tile=t,
                    temporal_overlap=24 if t is None else min(24, t // 2),
                )
            )
    return candidates


def decode_work(latent_shape: tuple[int, ...] | torch.Size, tiling: DecodeTiling | None) -> int:
    """Latent cells decoded in total (overlaps count twice); compute grows with it."""
    plan = plan_decode(latent_shape, tiling)

    def lengths(axis: AxisPlan) -> int:
        return sum(s.stop - s.start for s in axis.latent)

    return lengths(plan.time) * lengths(plan.rows) * lengths(plan.cols)


def choose_decode_tiling(
    config: VideoVAEConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    budget_bytes: int,
    dtype: torch.dtype = torch.float32,
) -> DecodeTiling | None:
    """The tiling (``None`` = none) with the least decoding work whose estimated working memory fits
    ``budget_bytes``; if none fits, the one needing the least memory. A diffusion decoder's config goes to
    ``diffusion_tiling.choose_decode_tiling``."""
    if isinstance(config, DiffusionDecoderConfig):
        from . import diffusion_tiling

        return diffusion_tiling.choose_decode_tiling(config, latent_shape, budget_bytes, dtype)
    scored = [
        (estimate_tiled_decode_bytes(config, latent_shape, t, dtype), decode_work(latent_shape, t), i, t)
        for i, t in enumerate(tiling_candidates(latent_shape))
    ]
    fitting = [s for s in scored if s[0] <= budget_bytes]
    if fitting:
        return min(fitting, key=lambda s: (s[1], -s[0], s[2]))[3]
    return min(scored, key=lambda s: (s[0], s[1], s[2]))[3]


def smaller_tiling(
    config: VideoVAEConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    tiling: DecodeTiling | None,
    dtype: torch.dtype = torch.float32,
) -> DecodeTiling | None:
    """A tiling whose tiles need clearly less memory than those of ``tiling`` (at most 70%, not counting the
    convolution kernels, which do not shrink with tiles), least work first; ``None`` when no candidate does."""
    if isinstance(config, DiffusionDecoderConfig):
        from . import diffusion_tiling

        return diffusion_tiling.smaller_tiling(config, latent_shape, tiling, dtype)
    current = estimate_tiled_decode_bytes(config, latent_shape, tiling, dtype, weights=False)
    scored = [
        (estimate_tiled_decode_bytes(config, latent_shape, t, dtype, False), decode_work(latent_shape, t), i, t)
        for i, t in enumerate(tiling_candidates(latent_shape))
    ]
    smaller = [s for s in scored if s[0] <= 0.7 * current]
    if not smaller:
        return None
    # The largest of the clearly smaller ones keeps the most context; among similar sizes, the least work.
    top = max(s[0] for s in smaller)
    near = [s for s in smaller if s[0] >= 0.8 * top]
    return min(near, key=lambda s: (s[1], -s[0], s[2]))[3]


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError)


def iter_decode(
    vae: VideoVAE,
    latent: torch.Tensor,
    tiling: DecodeTiling | None = None,
    *,
    timestep: float | torch.Tensor | None = None,
    noise: NoiseSource = None,
    noise_scale: float | None = None,
    progress: ProgressCallback | None = None,
    retry_on_oom: bool = True,
    is_oom: Callable[[BaseException], bool] = _is_oom,
    on_retry: Callable[[DecodeTiling], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Tiled decode (``tiling=None``: one tile) yielding ``(first_frame, frames)`` runs as they become final.

    On an out-of-memory error (``is_oom``) the decode restarts from the first frame with the next smaller tiling,
    so a consumer must write runs by position (runs may be sent again). A generator is drawn from once, so the
    noise is the same after a retry.

    A VAE with LTX-2.5's diffusion decoder runs ``diffusion_tiling.iter_decode`` (``noise``: its generator; no
    timestep or noise scale).
    """
    if vae.is_diffusion:
        yield from _iter_decode_diffusion(
            vae, latent, tiling, timestep, noise, noise_scale, progress, retry_on_oom, is_oom, on_retry
        )
        return
    if isinstance(noise, torch.Generator):
        decoder = vae._require("decoder")
        if decoder.timestep_conditioning:
            noise = torch.randn(latent.shape, generator=noise, dtype=vae.dtype, device=noise.device)
    while True:
        try:
            plan = plan_decode(latent.shape, tiling)
            yield from iter_decode_plan(vae, latent, plan, timestep, noise, noise_scale, progress)
            return
        except Exception as error:
            if not (retry_on_oom and is_oom(error)):
                raise
            smaller = smaller_tiling(vae.config, latent.shape, tiling, vae.dtype)
            if smaller is None:
                raise
            del error
            _empty_cache(vae.device)
            log.warning(
                "video decode ran out of memory with %s; retrying with %s", _describe(tiling), smaller.describe()
            )
            if on_retry is not None:
                on_retry(smaller)
            tiling = smaller


def _iter_decode_diffusion(
    vae: VideoVAE,
    latent: torch.Tensor,
    tiling: DecodeTiling | None,
    timestep: float | torch.Tensor | None,
    noise: NoiseSource,
    noise_scale: float | None,
    progress: ProgressCallback | None,
    retry: bool,
    is_oom: Callable[[BaseException], bool],
    on_retry: Callable[[DecodeTiling], None] | None,
) -> Iterator[tuple[int, torch.Tensor]]:
    from . import diffusion_tiling  # it imports this module

    if noise is not None and not isinstance(noise, torch.Generator):
        raise InputError("the LTX-2.5 diffusion decoder draws its own noise: pass a torch.Generator (or None)")
    yield from diffusion_tiling.iter_decode(
        vae._require("decoder"),
        vae.diffusion_input(latent, timestep, noise_scale),
        tiling,
        generator=noise,
        progress=progress,
        retry_on_oom=retry,
        is_oom=is_oom,
        on_retry=on_retry,
    )


def decode(
    vae: VideoVAE,
    latent: torch.Tensor,
    tiling: DecodeTiling | None = None,
    *,
    out: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor:
    """:func:`iter_decode` collected into ``out`` (``[B,3,F,H,W]`` float32, allocated on the model device if None)."""
    for start, frames in iter_decode(vae, latent, tiling, **kwargs):
        if out is None:
            b, c, _, h, w = frames.shape
            out = torch.empty((b, c, video_frame_count(latent.shape[2]), h, w), device=frames.device)
        out[:, :, start : start + frames.shape[2]] = frames
    return out


def _describe(tiling: DecodeTiling | None) -> str:
    return "no tiling" if tiling is None else tiling.describe()


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- tiled encode ----------------------------------------------------------------------------------------------------


def encode(
    vae: VideoVAE,
    video: torch.Tensor,
    tiling: EncodeTiling | None = None,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    """``[B,3,8k+1,H,W]`` in [-1, 1] -> normalised latent, in temporal chunks and spatial tiles per ``tiling``.

    Temporal chunking is exact; spatial tiles are blended with linear ramps across their overlap in latent space.
    """
    encoder = vae._require("encoder")
    vae.check_video(video)
    if tiling is None:
        return vae.encode(video)
    b, _, frames, height, width = video.shape
    h, w = height // SPACE_COMPRESSION, width // SPACE_COMPRESSION
    if tiling.spatial_tile is not None:
        size = tiling.spatial_tile // SPACE_COMPRESSION
        overlap = tiling.spatial_overlap // SPACE_COMPRESSION
        rows, cols = split_axis(h, size, overlap), split_axis(w, size, overlap)
    else:
        rows, cols = split_axis(h, h, 0), split_axis(w, w, 0)
    chunk = tiling.temporal_chunk if encoder.can_stream else None
    chunk_count = 1 if chunk is None else 1 + max(0, math.ceil((frames - 1 - chunk) / chunk))
    total = len(rows) * len(cols) * chunk_count
    latent_frames = 1 + (frames - 1) // TIME_COMPRESSION
    out = torch.zeros((b, vae.config.latent_channels, latent_frames, h, w), device=vae.device)
    row_total = _ramp_total(rows, h).to(vae.device)
    col_total = _ramp_total(cols, w).to(vae.device)
    done = 0
    for r0, r1, rl, rr in zip(rows.starts, rows.ends, rows.left_ramps, rows.right_ramps, strict=True):
        r_w = _latent_ramp(r1 - r0, rl, rr).to(vae.device).view(1, 1, 1, -1, 1)
        for c0, c1, cl, cr in zip(cols.starts, cols.ends, cols.left_ramps, cols.right_ramps, strict=True):
            c_w = _latent_ramp(c1 - c0, cl, cr).to(vae.device).view(1, 1, 1, 1, -1)
            tile = video[
                :,
                :,
                :,
                r0 * SPACE_COMPRESSION : r1 * SPACE_COMPRESSION,
                c0 * SPACE_COMPRESSION : c1 * SPACE_COMPRESSION,
            ]
            pieces = [encoder(tile.to(vae.device, vae.dtype))] if chunk is None else vae.encode_chunks(tile, chunk)
            start = 0
            for piece in pieces:
                n = piece.shape[2]
                out[:, :, start : start + n, r0:r1, c0:c1].addcmul_(piece.float(), r_w * c_w)
                start += n
                done += 1
                if progress is not None:
                    progress(done, total)
    out.div_(row_total.view(1, 1, 1, -1, 1)).div_(col_total.view(1, 1, 1, 1, -1))
    return vae.per_channel_statistics.normalize(out.to(vae.dtype))


def estimate_encode_bytes(
    config: VideoVAEConfig,
    video_shape: tuple[int, ...] | torch.Size,
    dtype: torch.dtype = torch.float32,
    weights: bool = True,
) -> int:
    """Approximate peak working memory of encoding one piece of ``video_shape`` ``[B,3,F,H,W]`` at once (weights
    not included): the pixels, their patchified copy and about three feature maps of the widest stage."""
    b, c_in, f, h, w = video_shape
    size = torch.empty((), dtype=dtype).element_size()
    p = config.patch_size
    h, w = h // p, w // p
    channels = config.latent_channels
    peak = b * (2 * c_in * p * p + 2 * channels) * f * h * w * size
    weight_peak = 27 * c_in * p * p * channels * size
    for name, params in config.encoder_blocks:
        multiplier = params.get("multiplier") or 2
        if name == "res_x":
            peak = max(peak, 3 * b * channels * f * h * w * size)
            weight_peak = max(weight_peak, 27 * channels * channels * size)
            continue
        out = channels * multiplier if name.endswith(("_res", "_x_y")) else channels
        st, sh, sw = (
            (1, 1, 1)
            if name == "res_x_y"
            else {"time": (2, 1, 1), "space": (1, 2, 2)}.get(name.split("_")[1], (2, 2, 2))
        )
        f2, h2, w2 = (f + st - 1) // st, h // sh, w // sw
        # input (+ a copy when frame 0 is repeated), the conv output at full size and the result
        before = b * channels * f * h * w * size * (2 if st == 2 else 1)
        peak = max(peak, before + b * (out // (st * sh * sw)) * f * h * w * size + b * out * f2 * h2 * w2 * size)
        weight_peak = max(weight_peak, 27 * channels * out * size)
        channels, f, h, w = out, f2, h2, w2
    return int(peak + (weight_peak if weights else 0))


def estimate_tiled_encode_bytes(
    config: VideoVAEConfig,
    video_shape: tuple[int, ...] | torch.Size,
    tiling: EncodeTiling | None,
    dtype: torch.dtype = torch.float32,
    weights: bool = True,
) -> int:
    """Peak working memory of :func:`encode` with ``tiling``: one piece plus the float32 latent accumulator."""
    b, c, f, h, w = video_shape
    if tiling is not None:
        if tiling.temporal_chunk is not None:
            f = min(f, tiling.temporal_chunk + 1)
        if tiling.spatial_tile is not None:
            h, w = min(h, tiling.spatial_tile), min(w, tiling.spatial_tile)
    latent = (
        b * config.latent_channels * (1 + (video_shape[2] - 1) // TIME_COMPRESSION) * video_shape[3] * video_shape[4]
    )
    return estimate_encode_bytes(config, (b, c, f, h, w), dtype, weights) + latent * 4 // SPACE_COMPRESSION**2


def encode_tiling_candidates(video_shape: tuple[int, ...] | torch.Size) -> list[EncodeTiling | None]:
    """Encode tilings worth considering: the whole video, time chunks (exact, no extra work), then spatial tiles."""
    _, _, f, h, w = video_shape
    long_side = max(h, w)
    chunks: list[int | None] = [None] + [c for c in (64, 32, 16, 8) if c + 1 < f]
    out: list[EncodeTiling | None] = [None]
    out += [EncodeTiling(temporal_chunk=c) for c in chunks if c is not None]
    for s in (768, 512, 384, 256, 128):
        if s < long_side:
            out += [EncodeTiling(spatial_tile=s, spatial_overlap=64, temporal_chunk=c) for c in chunks]
    return out


def _splits_frames(tiling: EncodeTiling | None) -> bool:
    """Whether ``tiling`` encodes the frame in spatial tiles (blended, so not equal to a whole-frame encode)."""
    return tiling is not None and tiling.spatial_tile is not None


def encode_work(video_shape: tuple[int, ...] | torch.Size, tiling: EncodeTiling | None) -> int:
    """Latent cells per latent frame that the encoder computes with ``tiling``, overlaps counted twice (compute
    grows with it). The same unit for every tiling: time chunks add nothing (the frame is encoded once either
    way); spatial tiles add their overlaps."""
    _, _, _, height, width = video_shape
    h, w = height // SPACE_COMPRESSION, width // SPACE_COMPRESSION
    if not _splits_frames(tiling):
        return h * w
    size, overlap = tiling.spatial_tile // SPACE_COMPRESSION, tiling.spatial_overlap // SPACE_COMPRESSION
    rows, cols = split_axis(h, size, overlap), split_axis(w, size, overlap)
    return sum(b - a for a, b in zip(rows.starts, rows.ends, strict=True)) * sum(
        b - a for a, b in zip(cols.starts, cols.ends, strict=True)
    )


def _encode_preference(scored: tuple[int, int, int, EncodeTiling | None]) -> tuple[bool, int, int]:
    """Sort key over ``(bytes, work, index, tiling)``: whole frames before spatial tiles (tiles are blended, so
    they change the latent; time chunks are exact), then the least work, then the candidate order (the whole
    video, then the longest time chunk, then the largest tile)."""
    return _splits_frames(scored[3]), scored[1], scored[2]


def choose_encode_tiling(
    config: VideoVAEConfig,
    video_shape: tuple[int, ...] | torch.Size,
    budget_bytes: int,
    dtype: torch.dtype = torch.float32,
) -> EncodeTiling | None:
    """The encode tiling for a memory budget: the whole video (``None``, what the reference does) when its
    estimated working memory fits ``budget_bytes``, else the longest time chunk that fits (exact), and spatial
    tiles (the least work, then the longest chunk) only when no whole-frame encode fits. If nothing fits, the
    tiling needing the least memory."""
    scored = [
        (estimate_tiled_encode_bytes(config, video_shape, t, dtype), encode_work(video_shape, t), i, t)
        for i, t in enumerate(encode_tiling_candidates(video_shape))
    ]
    fitting = [s for s in scored if s[0] <= budget_bytes]
    if fitting:
        return min(fitting, key=_encode_preference)[3]
    return min(scored, key=lambda s: (s[0], s[1], s[2]))[3]


def smaller_encode_tiling(
    config: VideoVAEConfig,
    video_shape: tuple[int, ...] | torch.Size,
    tiling: EncodeTiling | None,
    dtype: torch.dtype = torch.float32,
) -> EncodeTiling | None:
    """An encode tiling whose pieces need at most 70% of the memory of those of ``tiling`` (kernels not counted)
    for a retry after running out of memory; ``None`` when there is none. Whole frames in time chunks come before
    spatial tiles; among those of a kind, the largest pieces (within 80% of the largest), then the least work."""
    current = estimate_tiled_encode_bytes(config, video_shape, tiling, dtype, weights=False)
    scored = [
        (estimate_tiled_encode_bytes(config, video_shape, t, dtype, False), encode_work(video_shape, t), i, t)
        for i, t in enumerate(encode_tiling_candidates(video_shape))
    ]
    smaller = [s for s in scored if s[0] <= 0.7 * current]
    whole_frames = [s for s in smaller if not _splits_frames(s[3])]
    smaller = whole_frames or smaller
    if not smaller:
        return None
    top = max(s[0] for s in smaller)
    return min((s for s in smaller if s[0] >= 0.8 * top), key=_encode_preference)[3]


def _latent_ramp(length: int, left: int, right: int) -> torch.Tensor:
    return blend_ramp(length, left, right)


def _ramp_total(tiles: AxisTiles, length: int) -> torch.Tensor:
    total = torch.zeros(length)
    for a, b, left, right in zip(tiles.starts, tiles.ends, tiles.left_ramps, tiles.right_ramps, strict=True):
        total[a:b] += _latent_ramp(b - a, left, right)
    return total.clamp_(min=1e-8)


__all__ = [
    "AxisTiles",
    "DecodePlan",
    "DecodeTiling",
    "EncodeTiling",
    "blend_ramp",
    "choose_decode_tiling",
    "choose_encode_tiling",
    "decode",
    "decode_work",
    "decode_with_plan",
    "encode",
    "encode_tiling_candidates",
    "encode_work",
    "estimate_decode_bytes",
    "estimate_encode_bytes",
    "estimate_tiled_decode_bytes",
    "estimate_tiled_encode_bytes",
    "iter_decode",
    "iter_decode_plan",
    "plan_decode",
    "smaller_encode_tiling",
    "smaller_tiling",
    "split_axis",
    "split_latent_time",
    "tiling_candidates",
]
