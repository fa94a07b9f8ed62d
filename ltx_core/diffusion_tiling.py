"""Decoding latents with the LTX-2.5 diffusion decoder: the official decode's padding, tiles and noise, streamed.

The decode follows ltx-core 1.2.0 step by step, so both give the same frames for the same tiles and generator:

1. A latent smaller than the stage windows is padded (time: copies of the last frame; height and width: copies of
   the edges, split before/after) and the output is cropped back. The last latent frame is repeated
   ``trailing_latent_frames`` times through stages 1-3 (and the frames it makes are cut before stage 5).
2. Stages 1-3 run once on the whole latent; stages 4-5 run per tile of the stage-4 grid. Tiles come from the
   same interval split as the reference's (:func:`split_stage4`), mapped through the last upsampler (a time
   stride of 2 drops the first frame of the tile at the origin only) and blended with linear ramps across their
   overlaps, which must cover the reach of stages 4 and 5's attention (:attr:`DiffusionDecoderConfig.min_overlaps`).
3. Stage 5 starts from noise drawn from the caller's generator: for a single x0 step, fresh noise per tile in tile
   order (time slowest, then rows, then columns); otherwise one noise video for the whole (padded) output, sliced
   per tile.

Tiles are visited chunk by chunk in time and :func:`iter_decode` hands out each run of frames as soon as no later
tile touches it, like the convolutional decoder's tiled decode (``tiling.iter_decode``), with the same
:class:`~.tiling.DecodeTiling` settings (pixel sizes along the longer side, frames), progress callback and
retry with smaller tiles when the device runs out of memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .diffusion_decoder import SPACE_SCALE, TIME_SCALE, DiffusionDecoder, DiffusionDecoderConfig
from .errors import InputError
from .tiling import DecodeTiling, blend_ramp

log = logging.getLogger("ltx_av.diffusion_tiling")

ProgressCallback = Callable[[int, int], None]
WIDTH_BORDERS = ("replicate", "shift")


# -- tile geometry ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """``[start, end)`` on one axis with blend ramps of ``left`` / ``right`` samples."""

    start: int
    end: int
    left: int
    right: int


def split_stage4(length: int, size: int, overlap: int, min_size: int) -> list[Interval]:
    """Overlapping tiles of ``size`` cells with ``overlap``, the last one ending at ``length`` and grown back to
    ``min_size`` when shorter (the tile before then overlaps it more). One tile when ``length <= size`` or
    ``length < min_size``."""
    if length < min_size or length <= size:
        return [Interval(0, length, 0, 0)]
    stride = size - overlap
    count = (length + size - 2 * overlap - 1) // stride
    tiles = [Interval(i * stride, i * stride + size, overlap if i else 0, overlap) for i in range(count - 1)]
    tiles.append(Interval((count - 1) * stride, length, overlap, 0))
    last = tiles[-1]
    if len(tiles) > 1 and last.end - last.start < min_size:
        start = last.end - min_size
        grown = tiles[-2].end - start
        tiles[-2] = Interval(tiles[-2].start, tiles[-2].end, tiles[-2].left, grown)
        tiles[-1] = Interval(start, last.end, grown, 0)
    for i, tile in enumerate(tiles):
        n = tile.end - tile.start
        shared = tiles[i - 1].end - tile.start if i else 0
        if n < min_size or tile.left > n or tile.right > n or shared < 0 or (i and tiles[i - 1].right != shared):
            raise InputError(
                f"tiles of {size} cells with {overlap} overlap cannot cover {length} stage-4 cells with tiles of at "
                f"least {min_size}; choose larger tiles"
            )
    return tiles


@dataclass(frozen=True)
class AxisTiles:
    """Tiles of one axis: stage-4 intervals, their output slices, blend weights and the weights' sum."""

    stage4: tuple[Interval, ...]
    output: tuple[slice, ...]
    weights: tuple[torch.Tensor, ...]
    total: torch.Tensor


def _axis(intervals: list[Interval], scale: int, causal: bool, length_out: int) -> AxisTiles:
    output, weights = [], []
    total = torch.zeros(length_out)
    for iv in intervals:
        # Through the upsampler: x scale; with time stride 2 the tile at the origin loses its first frame, and
        # every tile its last (the causal frame mapping n -> 2n - 1).
        start, end = iv.start * scale, iv.end * scale
        if causal and scale == 2:
            start, end = start - (1 if iv.start else 0), end - 1
        w = blend_ramp(end - start, iv.left * scale, iv.right * scale)
        output.append(slice(start, end))
        weights.append(w)
        total[start:end] += w
    return AxisTiles(tuple(intervals), tuple(output), tuple(weights), total.clamp_(min=1e-8))


@dataclass(frozen=True)
class DiffusionDecodePlan:
    """Where every tile of a diffusion decode comes from and goes (output units of the padded volume)."""

    latent: tuple[int, int, int]  # the latent given (frames, height, width)
    padded: tuple[int, int, int]  # after padding to the stage windows
    pad_before: tuple[int, int]  # latent cells added above / to the left
    stage4: tuple[int, int, int]  # the stage-4 grid of the padded latent
    time: AxisTiles
    rows: AxisTiles
    cols: AxisTiles

    @property
    def frames(self) -> int:
        return TIME_SCALE * (self.latent[0] - 1) + 1

    @property
    def height(self) -> int:
        return SPACE_SCALE * self.latent[1]

    @property
    def width(self) -> int:
        return SPACE_SCALE * self.latent[2]

    @property
    def padded_pixels(self) -> tuple[int, int, int]:
        t, h, w = self.padded
        return TIME_SCALE * (t - 1) + 1, SPACE_SCALE * h, SPACE_SCALE * w

    @property
    def tile_count(self) -> int:
        return len(self.time.output) * len(self.rows.output) * len(self.cols.output)

    @property
    def work(self) -> int:
        """Output samples the tiles compute per channel (overlaps counted twice)."""
        return math.prod(sum(s.stop - s.start for s in axis.output) for axis in (self.time, self.rows, self.cols))


def tile_sizes(latent_shape: tuple[int, ...], tiling: DecodeTiling | None) -> tuple[tuple[int, int] | None, ...]:
    """(tile, overlap) in frames / pixels for time, height and width; ``None`` leaves an axis whole. The spatial
    tile is along the longer side, the shorter side's proportional (as ``tiling.plan_decode`` sizes them)."""
    if tiling is None:
        return None, None, None
    _, _, _, h, w = latent_shape
    time = (tiling.temporal_tile, tiling.temporal_overlap) if tiling.temporal_tile is not None else None
    if tiling.spatial_tile is None:
        return time, None, None
    size, overlap = tiling.spatial_tile // SPACE_SCALE, tiling.spatial_overlap // SPACE_SCALE
    long_side = max(h, w)
    sides = [max(2, overlap + 1, round(size * n / long_side)) * SPACE_SCALE for n in (h, w)]
    return time, (sides[0], tiling.spatial_overlap), (sides[1], tiling.spatial_overlap)


def check_tiling(config: DiffusionDecoderConfig, tiling: DecodeTiling | None) -> None:
    """Raise :class:`InputError` when ``tiling``'s overlaps are below what the decoder's attention reaches."""
    if tiling is None:
        return
    frames, pixels = config.min_overlaps
    if tiling.temporal_tile is not None and tiling.temporal_overlap < frames:
        raise InputError(
            f"temporal_overlap is {tiling.temporal_overlap} frames; the LTX-2.5 diffusion decoder needs at least "
            f"{frames} (the reach of its attention), so tiles must also be longer than that"
        )
    if tiling.spatial_tile is not None and tiling.spatial_overlap < pixels:
        raise InputError(
            f"spatial_overlap is {tiling.spatial_overlap} pixels; the LTX-2.5 diffusion decoder needs at least "
            f"{pixels} (the reach of its attention), so tiles must also be larger than that"
        )


def plan_decode(
    config: DiffusionDecoderConfig, latent_shape: tuple[int, ...] | torch.Size, tiling: DecodeTiling | None
) -> DiffusionDecodePlan:
    """Tile geometry of the official decode for a latent ``[B, C, F', H', W']``; ``None`` gives one tile."""
    check_tiling(config, tiling)
    _, _, t, h, w = latent_shape
    mt, mh, mw = config.min_latent
    padded = (max(t, mt), max(h, mh), max(w, mw))
    pad_before = ((padded[1] - h) // 2, (padded[2] - w) // 2)
    t4, h4, w4 = padded
    for (st, sh, sw), _ in config.upsamples[:3]:
        t4, h4, w4 = t4 * st - (1 if st == 2 else 0), h4 * sh, w4 * sw
    scale = config.pixel_scale
    out = (TIME_SCALE * (padded[0] - 1) + 1, SPACE_SCALE * padded[1], SPACE_SCALE * padded[2])
    axes = []
    for axis, (length, size) in enumerate(zip((t4, h4, w4), tile_sizes(latent_shape, tiling), strict=True)):
        if size is None:
            intervals = [Interval(0, length, 0, 0)]
        else:
            cells, overlap = size[0] // scale[axis], size[1] // scale[axis]
            cells = max(2, overlap + 1, cells)
            intervals = split_stage4(length, cells, overlap, config.tile_min[axis])
        axes.append(_axis(intervals, scale[axis], axis == 0, out[axis]))
    return DiffusionDecodePlan((t, h, w), padded, pad_before, (t4, h4, w4), *axes)


def _resize(x: torch.Tensor, dim: int, size: int, edges: str) -> torch.Tensor:
    """Crop or pad ``x`` along ``dim`` to ``size``: ``end`` keeps the start and repeats the last sample; ``both``
    takes or adds the difference half before (rounded down), half after, padding with edge copies."""
    n = x.shape[dim]
    if n == size:
        return x
    before = 0 if edges == "end" else abs(size - n) // 2
    if n > size:
        return x.narrow(dim, before, size)
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    pieces = [first.expand(*x.shape[:dim], before, *x.shape[dim + 1 :])] if before else []
    after = size - n - before
    return torch.cat([*pieces, x, last.expand(*x.shape[:dim], after, *x.shape[dim + 1 :])], dim=dim)


def pad_latent(latent: torch.Tensor, plan: DiffusionDecodePlan) -> torch.Tensor:
    """The latent grown to the plan's padded size (edges copied, as the reference pads)."""
    x = _resize(latent, 2, plan.padded[0], "end")
    x = _resize(x, 3, plan.padded[1], "both")
    return _resize(x, 4, plan.padded[2], "both")


# -- decoding -----------------------------------------------------------------------------------------------------


def _generator_state(generator: torch.Generator | None) -> torch.Tensor | None:
    return generator.get_state() if generator is not None else None


def iter_decode_plan(
    decoder: DiffusionDecoder,
    latent: torch.Tensor,
    plan: DiffusionDecodePlan,
    *,
    generator: torch.Generator | None = None,
    progress: ProgressCallback | None = None,
    width_border: str = "replicate",
) -> Iterator[tuple[int, torch.Tensor]]:
    """Decode an un-normalised latent tile by tile; yields ``(first_frame, frames [B, C, n, H, W] float32)`` runs
    in order, each as soon as no later tile touches it. ``progress(done, total)`` is called after every tile."""
    if width_border not in WIDTH_BORDERS:
        raise InputError(f"width_border is {width_border!r}; expected one of {', '.join(WIDTH_BORDERS)}")
    config = decoder.config
    batch, device, dtype = latent.shape[0], latent.device, latent.dtype
    channels = config.out_channels
    work = pad_latent(latent, plan)
    trailing = config.trailing_latent_frames
    if trailing:
        work = torch.cat([work, work[:, :, -1:].expand(-1, -1, trailing, -1, -1)], dim=2)
    features = decoder.stage_features(work)
    del work
    noise_device = generator.device if generator is not None else device
    whole_noise = None
    if not (config.steps == 1 and config.prediction == "x0"):
        whole_noise = torch.randn(
            (batch, channels, *plan.padded_pixels), generator=generator, dtype=dtype, device=noise_device
        )
    stride, patch = config.upsamples[3][0], config.patch_size
    t4, ghost_end = plan.stage4[0], features.shape[1]
    top, left = plan.pad_before[0] * SPACE_SCALE, plan.pad_before[1] * SPACE_SCALE
    rows_total = plan.rows.total.to(device).view(1, 1, 1, -1, 1)
    cols_total = plan.cols.total.to(device).view(1, 1, 1, 1, -1)
    height, width = plan.padded_pixels[1:]
    single = plan.tile_count == 1
    done = 0
    carry: torch.Tensor | None = None
    carry_start = 0
    chunks = list(zip(plan.time.stage4, plan.time.output, plan.time.weights, strict=True))
    for index, (t_iv, t_out, t_weight) in enumerate(chunks):
        acc = torch.zeros((batch, channels, t_out.stop - t_out.start, height, width), device=device)
        if carry is not None:
            acc[:, :, carry_start - t_out.start : carry_start - t_out.start + carry.shape[2]] += carry
            carry = None
        origin, last = t_iv.start == 0, t_iv.end == t4
        t_w = t_weight.to(device).view(1, 1, -1, 1, 1)
        for r_iv, r_out, r_weight in zip(plan.rows.stage4, plan.rows.output, plan.rows.weights, strict=True):
            for c_iv, c_out, c_weight in zip(plan.cols.stage4, plan.cols.output, plan.cols.weights, strict=True):
                if single:  # the only tile: stage 4 may update the features in place
                    tile, features = features, None
                else:
                    stop = ghost_end if last else t_iv.end
                    tile = features[:, t_iv.start : stop, r_iv.start : r_iv.end, c_iv.start : c_iv.end].clone()
                frames = (t_iv.end - t_iv.start) * stride[0] - (1 if origin and stride[0] == 2 else 0)
                if last:
                    frames = max(frames, config.stage5_kernel[0])
                shape = (
                    batch,
                    channels,
                    frames,
                    (r_iv.end - r_iv.start) * stride[1] * patch,
                    (c_iv.end - c_iv.start) * stride[2] * patch,
                )
                if whole_noise is None:
                    noise = torch.randn(shape, generator=generator, dtype=dtype, device=noise_device)
                else:
                    noise = _resize(whole_noise[:, :, t_out, r_out, c_out], 2, frames, "end")
                    noise = _resize(_resize(noise, 3, shape[3], "both"), 4, shape[4], "both")
                pixels = decoder.decode_tile(
                    tile, noise.to(device), origin=origin, trailing=last, width_pad=width_border == "replicate"
                )
                del tile, noise
                pixels = pixels[:, :, : t_out.stop - t_out.start].float()
                weight = t_w * r_weight.to(device).view(1, 1, 1, -1, 1) * c_weight.to(device).view(1, 1, 1, 1, -1)
                acc[:, :, :, r_out, c_out].addcmul_(pixels, weight)
                del pixels, weight
                done += 1
                if progress is not None:
                    progress(done, plan.tile_count)
        final_stop = chunks[index + 1][1].start if index + 1 < len(chunks) else t_out.stop
        ready = final_stop - t_out.start
        if ready < acc.shape[2]:
            carry, carry_start = acc[:, :, ready:].clone(), final_stop
        keep = min(final_stop, plan.frames) - t_out.start
        if keep > 0:
            time_total = plan.time.total[t_out.start : t_out.start + keep].to(device).view(1, 1, -1, 1, 1)
            out = acc[:, :, :keep].div_(time_total).div_(rows_total).div_(cols_total)
            out = out[:, :, :, top : top + plan.height, left : left + plan.width]
            del acc
            yield t_out.start, out
            del out
        else:
            del acc


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError)


def iter_decode(
    decoder: DiffusionDecoder,
    latent: torch.Tensor,
    tiling: DecodeTiling | None = None,
    *,
    generator: torch.Generator | None = None,
    progress: ProgressCallback | None = None,
    width_border: str = "replicate",
    retry_on_oom: bool = True,
    is_oom: Callable[[BaseException], bool] = _is_oom,
    on_retry: Callable[[DecodeTiling], None] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Tiled decode of an un-normalised latent (``tiling=None``: one tile) yielding ``(first_frame, frames)`` runs.

    On an out-of-memory error (``is_oom``) the decode restarts from the first frame with the next smaller tiling
    and the generator rewound, so a consumer must write runs by position (runs may be sent again).
    """
    state = _generator_state(generator)
    while True:
        try:
            plan = plan_decode(decoder.config, latent.shape, tiling)
            yield from iter_decode_plan(
                decoder, latent, plan, generator=generator, progress=progress, width_border=width_border
            )
            return
        except Exception as error:
            if not (retry_on_oom and is_oom(error)):
                raise
            smaller = smaller_tiling(decoder.config, latent.shape, tiling, latent.dtype)
            if smaller is None:
                raise
            del error
            if latent.device.type == "cuda":
                torch.cuda.empty_cache()
            log.warning(
                "diffusion decode ran out of memory with %s; retrying with %s", _describe(tiling), smaller.describe()
            )
            if on_retry is not None:
                on_retry(smaller)
            if generator is not None:
                generator.set_state(state)
            tiling = smaller


def decode(
    decoder: DiffusionDecoder,
    latent: torch.Tensor,
    tiling: DecodeTiling | None = None,
    *,
    out: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor:
    """:func:`iter_decode` collected into ``out`` (``[B, C, F, H, W]`` float32, allocated if None)."""
    for start, frames in iter_decode(decoder, latent, tiling, **kwargs):
        if out is None:
            b, c, _, h, w = frames.shape
            out = torch.empty((b, c, TIME_SCALE * (latent.shape[2] - 1) + 1, h, w), device=frames.device)
        out[:, :, start : start + frames.shape[2]] = frames
    return out


def _describe(tiling: DecodeTiling | None) -> str:
    return "no tiling" if tiling is None else tiling.describe()


# -- memory estimate and automatic tiles --------------------------------------------------------------------------


def _stage_bytes(tokens: int, channels: int, size: int) -> int:
    """Working memory of one transformer stage over ``tokens``: the activation, an attention slab (its keys,
    values, queries and output take about four normalised slabs) and a feed-forward chunk."""
    activation = tokens * channels * size
    slab = 4 * min(activation, 192 * 2**20 + channels * size * 4096)
    feed_forward = 3 * min(tokens, 16384) * 4 * channels * size
    return activation + max(slab, feed_forward)


def estimate_decode_bytes(
    config: DiffusionDecoderConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    tiling: DecodeTiling | None,
    dtype: torch.dtype = torch.float32,
) -> int:
    """Approximate peak working memory of decoding ``latent_shape`` with ``tiling`` (weights not included): the
    stage 1-3 features of the whole latent, the largest tile's stages 4-5 and the float32 frame accumulators."""
    size = torch.empty((), dtype=dtype).element_size()
    plan = plan_decode(config, latent_shape, tiling)
    b = latent_shape[0]
    t, h, w = plan.padded
    t += config.trailing_latent_frames
    peak_13, resident = 0, 0
    for stage in range(3):
        tokens = b * t * h * w
        peak_13 = max(peak_13, _stage_bytes(tokens, config.stage_channels[stage], size))
        (st, sh, sw), _ = config.upsamples[stage]
        t, h, w = t * st - (1 if st == 2 else 0), h * sh, w * sw
        resident = b * t * h * w * config.stage_channels[stage + 1] * size
        peak_13 = max(peak_13, resident + tokens * config.stage_channels[stage] * size)
    extra4 = config.trailing_latent_frames * TIME_SCALE // config.pixel_scale[0]
    t4 = max(s.end - s.start for s in plan.time.stage4) + extra4
    h4 = max(s.end - s.start for s in plan.rows.stage4)
    w4 = max(s.end - s.start for s in plan.cols.stage4)
    stage4 = _stage_bytes(b * t4 * h4 * w4, config.stage_channels[3], size)
    st, sh, sw = config.upsamples[3][0]
    tokens5 = b * t4 * st * h4 * sh * w4 * sw
    pixels = tokens5 * config.out_channels * config.patch_size**2 * size
    stage5 = _stage_bytes(tokens5, config.stage5_channels, size) + 4 * pixels
    stage5 += b * t4 * h4 * w4 * config.stage_channels[3] * size  # the tile's stage-4 features stay
    frames = max(s.stop - s.start for s in plan.time.output)
    _, height, width = plan.padded_pixels
    accumulators = 2 * b * config.out_channels * frames * height * width * 4
    tiles = resident + max(stage4, stage5) + accumulators if plan.tile_count > 1 else max(stage4, stage5)
    return int(max(peak_13, resident + tiles))


def tiling_candidates(
    config: DiffusionDecoderConfig, latent_shape: tuple[int, ...] | torch.Size
) -> list[DecodeTiling | None]:
    """Tilings worth considering: whole, then time chunks, spatial tiles and both, all with the least overlaps the
    decoder accepts."""
    _, _, f, h, w = latent_shape
    _, min_h, min_w = config.min_latent
    frames = TIME_SCALE * (f - 1) + 1
    long_side = SPACE_SCALE * max(h, w, min_h, min_w)  # a latent padded to the stage windows is decoded padded
    overlap_t, overlap_px = config.min_overlaps
    # The smallest tiles are twice the overlap (so the ramps fit), on the grid DecodeTiling accepts.
    least_t = max(16, -(-2 * overlap_t // TIME_SCALE) * TIME_SCALE)
    least_px = max(64, -(-2 * overlap_px // SPACE_SCALE) * SPACE_SCALE)
    times = {c for c in (256, 192, 128, 96, 80, 64, 48, 32) if c > least_t} | {least_t, 2 * least_t}
    sides = {s for s in (1536, 1024, 768, 640, 512, 384, 256) if s > least_px} | {least_px, 2 * least_px}
    times = [None] + sorted((c for c in times if overlap_t < c < frames), reverse=True)
    sides = [None] + sorted((s for s in sides if overlap_px < s < long_side), reverse=True)
    out: list[DecodeTiling | None] = []
    for side in sides:
        for time in times:
            if side is None and time is None:
                out.append(None)
                continue
            out.append(
                DecodeTiling(
                    spatial_tile=side,
                    spatial_overlap=overlap_px if side else 64,
                    temporal_tile=time,
                    temporal_overlap=overlap_t if time else 24,
                )
            )
    return out


def choose_decode_tiling(
    config: DiffusionDecoderConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    budget_bytes: int,
    dtype: torch.dtype = torch.float32,
) -> DecodeTiling | None:
    """The tiling with the least work whose estimated memory fits ``budget_bytes`` (``None``: whole); if none
    fits, the one needing the least memory."""
    scored = []
    for i, t in enumerate(tiling_candidates(config, latent_shape)):
        plan = plan_decode(config, latent_shape, t)
        scored.append((estimate_decode_bytes(config, latent_shape, t, dtype), plan.work, i, t))
    fitting = [s for s in scored if s[0] <= budget_bytes]
    if fitting:
        return min(fitting, key=lambda s: (s[1], s[0], s[2]))[3]
    return min(scored, key=lambda s: (s[0], s[1], s[2]))[3]


def smaller_tiling(
    config: DiffusionDecoderConfig,
    latent_shape: tuple[int, ...] | torch.Size,
    tiling: DecodeTiling | None,
    dtype: torch.dtype = torch.float32,
) -> DecodeTiling | None:
    """A tiling needing at most 70% of the memory of ``tiling`` (the largest such, then the least work) for a retry
    after running out of memory; ``None`` when there is none."""
    current = estimate_decode_bytes(config, latent_shape, tiling, dtype)
    scored = []
    for i, t in enumerate(tiling_candidates(config, latent_shape)):
        need = estimate_decode_bytes(config, latent_shape, t, dtype)
        if need <= 0.7 * current:
            scored.append((need, plan_decode(config, latent_shape, t).work, i, t))
    if not scored:
        return None
    top = max(s[0] for s in scored)
    return min((s for s in scored if s[0] >= 0.8 * top), key=lambda s: (s[1], -s[0], s[2]))[3]


__all__ = [
    "WIDTH_BORDERS",
    "AxisTiles",
    "DiffusionDecodePlan",
    "Interval",
    "check_tiling",
    "choose_decode_tiling",
    "decode",
    "estimate_decode_bytes",
    "iter_decode",
    "iter_decode_plan",
    "pad_latent",
    "plan_decode",
    "smaller_tiling",
    "split_stage4",
    "tile_sizes",
    "tiling_candidates",
]
