"""Tiled and chunked video VAE: the frame-padded convolution against a plain 3-D convolution, tiled decode against
ltx-core's tiled decode, tiled vs untiled, seams, streaming order, out-of-memory retries and tile choice."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from ltx_core.model.video_vae.tiling import SpatialTilingConfig, TemporalTilingConfig, TilingConfig

from ltx_av.ltx_core import tiling, video_vae_blocks
from ltx_av.ltx_core.config import VideoVAEConfig
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.tiny import tiny_config
from ltx_av.ltx_core.video_vae import VideoVAE, load_video_vae

import tiny_models  # noqa: F401  (imports the reference safely)

log = logging.getLogger("ltx_av.tests.tiling")
TOL = 1e-4


def _latent(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def vae(tiny_checkpoint) -> VideoVAE:
    return load_video_vae(tiny_checkpoint)


@pytest.fixture
def vae2(tiny_checkpoints) -> VideoVAE:
    """The LTX-2 variant only (timestep-conditioned, reflect padding), for mechanics that do not vary by variant."""
    return load_video_vae(tiny_checkpoints["LTX-2"])


# -- the convolution -----------------------------------------------------------------------------------------------


def _plain_conv(x: torch.Tensor, conv: torch.nn.Conv3d, causal: bool, mode: str) -> torch.Tensor:
    """Frame-major ``x`` through the padding rule spelled out and one ``F.conv3d``."""
    video = x.transpose(1, 2)  # [B, C, F, H, W]
    first, last = video[:, :, :1], video[:, :, -1:]
    video = torch.cat([first, first, video] if causal else [first, video, last], dim=2)
    if mode == "zeros":
        out = F.conv3d(video, conv.weight, conv.bias, padding=(0, 1, 1))
    else:
        out = F.conv3d(F.pad(video, (1, 1, 1, 1, 0, 0), mode=mode), conv.weight, conv.bias)
    return out.transpose(1, 2)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("frames", [1, 2, 5])
@pytest.mark.parametrize("algorithm", ["winograd", "direct"])
def test_frame_padded_conv_equals_plain_conv(monkeypatch, mode, causal, frames, algorithm):
    monkeypatch.setattr(video_vae_blocks, "_WINOGRAD_MIN_POSITIONS", 0 if algorithm == "winograd" else 10**9)
    monkeypatch.setattr(video_vae_blocks, "_CHUNK_BYTES", 1)  # one frame pair per chunk: exercises the chunking
    monkeypatch.setattr(video_vae_blocks, "_KERNEL_BYTES", 1)  # output channels in groups of 16: 16 + 16 + 8
    torch.manual_seed(0)
    conv = video_vae_blocks.FramePaddedConv3d(6, 40, spatial_padding_mode=mode)
    x = torch.randn(2, frames, 6, 4, 5)
    with torch.inference_mode():
        assert (conv(x, causal) - _plain_conv(x, conv.conv, causal, mode)).abs().max() < 1e-5


def test_causal_conv_in_chunks_equals_whole(monkeypatch):
    monkeypatch.setattr(video_vae_blocks, "_WINOGRAD_MIN_POSITIONS", 0)
    torch.manual_seed(0)
    conv = video_vae_blocks.FramePaddedConv3d(4, 3)
    x = torch.randn(1, 9, 4, 5, 5)
    cache: dict = {}
    with torch.inference_mode():
        pieces = [conv(x[:, a:b], True, cache) for a, b in ((0, 1), (1, 5), (5, 6), (6, 9))]
        assert (torch.cat(pieces, dim=1) - conv(x, True)).abs().max() < 1e-5


# -- tiled decode ---------------------------------------------------------------------------------------------------

# 2 x 4 latent cells, 4 latent frames -> 2 column tiles x 2 temporal chunks, none degenerate.
LATENT = (1, 128, 4, 2, 4)
OURS = tiling.DecodeTiling(spatial_tile=96, spatial_overlap=32, temporal_tile=24, temporal_overlap=8)
THEIRS = TilingConfig(SpatialTilingConfig(96, 32), TemporalTilingConfig(24, 8))


def test_tiled_decode_matches_reference(tiny_checkpoint, vae):
    reference = tiny_models.load_reference(tiny_checkpoint, "video_decoder")
    reference.decode_noise_scale = 0.0  # the reference draws noise per tile; compare the noiseless decode
    latent = _latent(LATENT)
    with torch.inference_mode():
        expected = torch.cat(list(reference.tiled_decode(latent, THEIRS)), dim=2)
        ours = tiling.decode(vae, latent, OURS, noise_scale=0.0)
    assert tiling.plan_decode(LATENT, OURS).tile_count == 4
    assert ours.shape == expected.shape == (1, 3, 25, 64, 128)
    err = (ours - expected).abs().max().item()
    log.info("tiled decode vs reference: max abs %.3g", err)
    assert err <= TOL


def test_one_tile_equals_untiled_and_tiles_report_their_difference(vae, record_property):
    latent = _latent(LATENT)
    with torch.inference_mode():
        whole = vae.decode(latent, noise_scale=0.0)
        one_tile = tiling.decode(vae, latent, tiling.DecodeTiling(512, 64, 64, 24), noise_scale=0.0)
        assert tiling.plan_decode(latent.shape, tiling.DecodeTiling(512, 64, 64, 24)).tile_count == 1
        tiled = tiling.decode(vae, latent, OURS, noise_scale=0.0)
    assert (one_tile - whole).abs().max() <= 1e-5
    diff = (tiled - whole).abs()
    # Tiles see less context than the whole latent, so they differ; these random tiny decoders have a receptive
    # field far wider than a 3-cell tile, which makes this a worst case, not what real weights give.
    record_property("tiled_vs_untiled_max_abs", diff.max().item())
    record_property("tiled_vs_untiled_mean_abs", diff.mean().item())
    log.info("tiled vs untiled: max abs %.3g, mean abs %.3g", diff.max().item(), diff.mean().item())
    assert torch.isfinite(tiled).all()
    assert diff.mean() < whole.abs().mean()


def _column_steps(video: torch.Tensor) -> torch.Tensor:
    """Mean absolute step between neighbouring columns, per column boundary."""
    return video.diff(dim=-1).abs().mean(dim=(0, 1, 2, 3))


SEAM_SETTING = tiling.DecodeTiling(spatial_tile=128, spatial_overlap=64, temporal_tile=None)


def _naive_stitch(vae: VideoVAE, latent: torch.Tensor, plan: tiling.DecodePlan) -> torch.Tensor:
    """The same tiles pasted one over the other without blending."""
    z, t = vae.prepare_latent(latent, noise_scale=0.0)
    out = None
    for rows in plan.rows.latent:
        for cols in plan.cols.latent:
            tile = vae.decoder(z[..., rows, cols], t)
            if out is None:
                out = torch.zeros((*tile.shape[:3], plan.height, plan.width))
            out[..., rows.start * 32 : rows.stop * 32, cols.start * 32 : cols.stop * 32] = tile
    return out


def test_blending_leaves_no_step_at_tile_borders(vae2, monkeypatch):
    """With a stand-in decoder that paints each tile a different flat value (an exaggerated tile-edge effect),
    pasting tiles gives a step of the full difference at each border; blending spreads it over the overlap."""
    latent = torch.zeros(1, 128, 2, 4, 8)
    latent[:, 0] = torch.arange(8.0)  # channel 0 holds the column index: a tile's value is where it starts

    def flat_tiles(z, t=None):
        b, _, f, h, w = z.shape
        return z[:, :1, :1, :1, :1].expand(b, 3, 1 + 8 * (f - 1), 32 * h, 32 * w).clone()

    monkeypatch.setattr(vae2.decoder, "forward", flat_tiles)
    monkeypatch.setattr(vae2.per_channel_statistics, "denormalize", lambda z: z)
    plan = tiling.plan_decode(latent.shape, SEAM_SETTING)
    with torch.inference_mode():
        blended = tiling.decode(vae2, latent, SEAM_SETTING, noise_scale=0.0)
        naive = _naive_stitch(vae2, latent, plan)
    starts = [c.start for c in plan.cols.latent]
    difference = max(b - a for a, b in zip(starts, starts[1:], strict=False))  # value step between tiles
    ramp = SEAM_SETTING.spatial_overlap
    assert _column_steps(naive).max() == pytest.approx(difference)
    # Each overlap ramps linearly in (overlap + 1) steps; where two ramps of one tile meet, two steps add up.
    assert _column_steps(blended).max() <= 2 * difference / (ramp + 1) * 1.001


def test_no_visible_seams(vae):
    """With the real decoder: how much the tiled result departs from the untiled one changes no faster across
    tile borders than inside tiles, whereas pasting the tiles without blending jumps at the borders."""
    coarse = _latent((1, 128, 3, 2, 2), seed=3)
    latent = F.interpolate(coarse, size=(3, 6, 8), mode="trilinear", align_corners=True)  # smooth content
    plan = tiling.plan_decode(latent.shape, SEAM_SETTING)
    with torch.inference_mode():
        whole = vae.decode(latent, noise_scale=0.0)
        blended = tiling.decode(vae, latent, SEAM_SETTING, noise_scale=0.0) - whole
        naive = _naive_stitch(vae, latent, plan) - whole
    starts = [c.start * 32 - 1 for c in plan.cols.latent[1:]]
    ends = [c.stop * 32 - 1 for c in plan.cols.latent[:-1]]
    inside = [i for i in range(whole.shape[-1] - 1) if all(abs(i - b) > 2 for b in starts + ends)]

    def seam_ratio(error: torch.Tensor, borders: list[int]) -> float:
        steps = _column_steps(error)
        return (steps[borders].mean() / steps[inside].mean()).item()

    ours, pasted = seam_ratio(blended, starts + ends), seam_ratio(naive, starts)
    log.info("step across tile borders / step inside tiles: blended %.2f, pasted %.2f", ours, pasted)
    assert ours < 1.25
    assert pasted > ours


def test_iter_decode_streams_runs_in_order(vae2):
    latent = _latent((1, 128, 7, 2, 2))
    setting = tiling.DecodeTiling(spatial_tile=None, temporal_tile=24, temporal_overlap=8)
    with torch.inference_mode():
        runs = [(start, frames.shape[2]) for start, frames in tiling.iter_decode(vae2, latent, setting, noise_scale=0)]
    assert len(runs) == 3
    assert runs[0][0] == 0 and sum(n for _, n in runs) == 49
    assert all(a + n == b for (a, n), (b, _) in zip(runs, runs[1:], strict=False))
    assert max(n for _, n in runs) <= 25  # never more than one chunk's frames: memory is bounded by the tile


def test_decode_retries_with_smaller_tiles_after_out_of_memory(vae2, monkeypatch):
    latent = _latent((1, 128, 5, 2, 2))
    real_forward = vae2.decoder.forward

    def small_tiles_only(z, t=None):
        if z.shape[2] > 3:  # pretend anything over 3 latent frames does not fit
            raise torch.OutOfMemoryError("pretend")
        return real_forward(z, t)

    monkeypatch.setattr(vae2.decoder, "forward", small_tiles_only)
    retries = []
    with torch.inference_mode():
        out = tiling.decode(vae2, latent, None, noise_scale=0.0, on_retry=retries.append)
        assert retries and retries[-1].temporal_tile is not None
        expected = tiling.decode(vae2, latent, retries[-1], noise_scale=0.0)
        assert (out - expected).abs().max() == 0
        with pytest.raises(torch.OutOfMemoryError):
            tiling.decode(vae2, latent, None, noise_scale=0.0, retry_on_oom=False)


def test_noise_from_a_generator_is_drawn_once_for_all_tiles(vae2):
    latent = _latent((1, 128, 3, 2, 2))
    setting = tiling.DecodeTiling(spatial_tile=None, temporal_tile=16, temporal_overlap=8)
    with torch.inference_mode():
        drawn = torch.randn(latent.shape, generator=torch.Generator().manual_seed(4))
        a = tiling.decode(vae2, latent, setting, noise=torch.Generator().manual_seed(4))
        b = tiling.decode(vae2, latent, setting, noise=drawn)
    assert (a - b).abs().max() == 0


def test_tile_choice_follows_the_memory_budget(vae2):
    config, shape = vae2.config, (1, 128, 16, 16, 24)
    need = tiling.estimate_tiled_decode_bytes(config, shape, None)
    assert tiling.choose_decode_tiling(config, shape, need) is None
    chosen = tiling.choose_decode_tiling(config, shape, need // 3)
    assert chosen is not None
    assert tiling.estimate_tiled_decode_bytes(config, shape, chosen) <= need // 3
    smallest = tiling.choose_decode_tiling(config, shape, 1)
    assert smallest.spatial_tile == 128 and smallest.temporal_tile == 16
    smaller = tiling.smaller_tiling(config, shape, chosen)
    assert tiling.estimate_tiled_decode_bytes(config, shape, smaller) <= 0.7 * tiling.estimate_tiled_decode_bytes(
        config, shape, chosen
    )
    assert tiling.smaller_tiling(config, shape, smallest) is None


def test_estimate_grows_with_the_tile_not_the_video(vae2):
    config = vae2.config
    setting = tiling.DecodeTiling(spatial_tile=256, spatial_overlap=64, temporal_tile=32, temporal_overlap=8)
    short = tiling.estimate_tiled_decode_bytes(config, (1, 128, 4, 8, 12), setting)
    long = tiling.estimate_tiled_decode_bytes(config, (1, 128, 13, 8, 12), setting)
    assert long <= 1.3 * short
    assert tiling.estimate_tiled_decode_bytes(config, (1, 128, 13, 8, 12), None) > 2 * short


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spatial_tile": 100}, "spatial_tile must be a multiple of 32"),
        ({"spatial_tile": 32}, "at least 64"),
        ({"spatial_tile": 128, "spatial_overlap": 128}, "smaller than spatial_tile"),
        ({"temporal_tile": 20}, "temporal_tile must be a multiple of 8"),
        ({"temporal_tile": 16, "temporal_overlap": 16}, "smaller than temporal_tile"),
    ],
)
def test_tiling_settings_are_validated(kwargs, message):
    with pytest.raises(InputError, match=message):
        tiling.DecodeTiling(**kwargs)


# -- tiled encode ---------------------------------------------------------------------------------------------------


def test_tiled_encode(vae2):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 17, 32, 128, generator=g) * 2 - 1
    with torch.inference_mode():
        whole = vae2.encode(video)
        chunked = tiling.encode(vae2, video, tiling.EncodeTiling(temporal_chunk=8))
        tiled = tiling.encode(vae2, video, tiling.EncodeTiling(spatial_tile=96, spatial_overlap=64, temporal_chunk=8))
    assert (chunked - whole).abs().max() <= 1e-5  # chunking in time is exact
    assert tiled.shape == whole.shape
    log.info("spatially tiled encode vs whole: max abs %.3g", (tiled - whole).abs().max().item())
    assert torch.isfinite(tiled).all()


# -- automatic encode tiling ------------------------------------------------------------------------------------------


def _released_size_config() -> VideoVAEConfig:
    """The tiny LTX-2 VAE config with the released LTX-2 encoder's blocks (128 base channels, widening to 2048),
    so memory estimates are those of a real 768x512 encode."""
    vae = dict(tiny_config("LTX-2")["vae"])
    vae["decoder_base_channels"] = 128
    vae["encoder_blocks"] = [
        ["res_x", {"num_layers": 4}],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
    ]
    return VideoVAEConfig.from_dict(vae)


def _config(kind: str) -> VideoVAEConfig:
    return _released_size_config() if kind == "released" else VideoVAEConfig.from_dict(tiny_config("LTX-2")["vae"])


IMAGE_768 = (1, 3, 1, 512, 768)
CLIP_768 = (1, 3, 121, 512, 768)
HUGE = 2**40  # a terabyte


@pytest.mark.parametrize("config_kind", ["tiny", "released"])
@pytest.mark.parametrize("shape", [IMAGE_768, CLIP_768, (1, 3, 1, 160, 192), (2, 3, 17, 256, 160)])
def test_automatic_encode_tiling_encodes_the_whole_video_when_it_fits(config_kind, shape):
    config = _config(config_kind)
    assert max(shape[3:]) > 128  # where the old work estimate (pixels vs latent cells) picked spatial tiles
    assert tiling.choose_encode_tiling(config, shape, HUGE) is None
    assert tiling.choose_encode_tiling(config, shape, HUGE, torch.bfloat16) is None
    need = tiling.estimate_tiled_encode_bytes(config, shape, None)
    assert tiling.choose_encode_tiling(config, shape, need) is None  # exactly enough is enough
    # the decode side counts latent cells for every tiling already: a whole-latent decode when it fits
    latent = (shape[0], 128, 1 + (shape[2] - 1) // 8, shape[3] // 32, shape[4] // 32)
    assert tiling.choose_decode_tiling(config, latent, HUGE) is None


@pytest.mark.parametrize("config_kind", ["tiny", "released"])
def test_automatic_encode_tiling_takes_time_chunks_before_spatial_tiles(config_kind):
    config = _config(config_kind)

    def need(t):
        return tiling.estimate_tiled_encode_bytes(config, CLIP_768, t)

    chunks = {c: tiling.EncodeTiling(temporal_chunk=c) for c in (64, 32, 16, 8)}
    assert need(None) > need(chunks[64]) > need(chunks[32]) > need(chunks[16]) > need(chunks[8])
    # a spatial tile that would fit too, with a whole-frame chunk that fits: the chunk wins (it is exact)
    tile = tiling.EncodeTiling(spatial_tile=512, spatial_overlap=64, temporal_chunk=None)
    assert need(tile) < need(None)
    assert tiling.choose_encode_tiling(config, CLIP_768, need(None) - 1) == chunks[64]
    for c in (64, 32, 16, 8):  # the longest chunk that fits
        assert tiling.choose_encode_tiling(config, CLIP_768, need(chunks[c])) == chunks[c]
    # spatial tiles only when no whole-frame encode fits; then the least work, then the longest chunk
    below = need(chunks[8]) - 1
    chosen = tiling.choose_encode_tiling(config, CLIP_768, below)
    assert chosen is not None and chosen.spatial_tile is not None and need(chosen) <= below
    fitting = [
        t
        for t in tiling.encode_tiling_candidates(CLIP_768)
        if t is not None and t.spatial_tile is not None and need(t) <= below
    ]
    assert tiling.encode_work(CLIP_768, chosen) == min(tiling.encode_work(CLIP_768, t) for t in fitting)
    # nothing fits: the least memory
    assert tiling.choose_encode_tiling(config, CLIP_768, 1) == tiling.EncodeTiling(128, 64, 8)
    # a single image has no time to chunk: spatial tiles as soon as the whole frame does not fit
    image_need = tiling.estimate_tiled_encode_bytes(config, IMAGE_768, None)
    assert tiling.choose_encode_tiling(config, IMAGE_768, image_need - 1).spatial_tile is not None


def test_encode_work_counts_latent_cells_for_every_tiling():
    # 768x512 -> 24x16 latent cells; 512 px tiles with 64 px overlap -> 16 + 10 columns, one row of 16
    assert tiling.encode_work(IMAGE_768, None) == 24 * 16
    assert tiling.encode_work(CLIP_768, tiling.EncodeTiling(temporal_chunk=8)) == 24 * 16
    assert tiling.encode_work(IMAGE_768, tiling.EncodeTiling(512, 64, None)) == (16 + 10) * 16
    for t in tiling.encode_tiling_candidates(CLIP_768):
        if t is not None and t.spatial_tile is not None:
            assert tiling.encode_work(CLIP_768, t) > 24 * 16  # overlaps add work; tiles never look cheaper


@pytest.mark.parametrize("config_kind", ["tiny", "released"])
def test_encode_retry_after_out_of_memory_takes_time_chunks_first(config_kind):
    config = _config(config_kind)
    setting, seen = None, []
    while True:
        smaller = tiling.smaller_encode_tiling(config, CLIP_768, setting)
        if smaller is None:
            break
        current = tiling.estimate_tiled_encode_bytes(config, CLIP_768, setting, weights=False)
        assert tiling.estimate_tiled_encode_bytes(config, CLIP_768, smaller, weights=False) <= 0.7 * current
        seen.append(smaller)
        setting = smaller
    spatial = [t.spatial_tile is not None for t in seen]
    assert spatial[0] is False and spatial == sorted(spatial)  # every whole-frame chunk before any spatial tile
    assert seen[-1].spatial_tile is not None  # and tiles after that
