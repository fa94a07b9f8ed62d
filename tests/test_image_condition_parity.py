"""Image-to-video through our nodes against the reference's conditioned loop, end to end.

EmptyLatent -> ImageCondition (first frame, replaced) -> ImageCondition (last frame, keyframe) -> Sampler, with the
automatic encode tiling the node always uses, against ltx-pipelines 1.0.0's own pieces on the same tiny file: its
image loader (crf 0), its video encoder, ``combined_image_conditionings`` (replace at frame 0, keyframe elsewhere),
its noiser, guiders and Euler loop. The frame is 192x160 px: above 128 px on the long side, where automatic
tiling used to encode in spatial tiles while the reference encodes the whole frame.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
from ltx_core.components.noisers import GaussianNoiser
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.model.transformer import X0Model
from ltx_core.types import VideoPixelShape
from ltx_pipelines.utils.args import ImageConditioningInput
from ltx_pipelines.utils.helpers import (
    combined_image_conditionings,
    denoise_audio_video,
    multi_modal_guider_denoising_func,
)
from ltx_pipelines.utils.samplers import euler_denoising_loop
from ltx_pipelines.utils.types import PipelineComponents
from PIL import Image

from ltx_av.ltx_core import tiling
from ltx_av.ltx_core.conditioning import condition_pixels
from ltx_av.nodes.model import load_transformer
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXImageCondition, LTXSampler
from ltx_av.nodes.video import load_video

import tiny_models

log = logging.getLogger("ltx_av.tests.image_condition_parity")

TOLERANCE = 1e-4
HEIGHT, WIDTH, FRAMES, FPS = 160, 192, 9, 24.0  # latent [1, 128, 2, 5, 6]
STEPS, SEED = 2, 11
FIRST_STRENGTH, LAST_STRENGTH = 0.95, 0.8
VIDEO_GUIDANCE = MultiModalGuiderParams(
    cfg_scale=3.0, stg_scale=1.0, stg_blocks=[1], rescale_scale=0.7, modality_scale=3.0
)
AUDIO_GUIDANCE = MultiModalGuiderParams(
    cfg_scale=7.0, stg_scale=1.0, stg_blocks=[1], rescale_scale=0.7, modality_scale=3.0
)


def _write_image(path, height: int, width: int, seed: int) -> torch.Tensor:
    """A PNG with smooth structure and some noise; returns it as a ComfyUI IMAGE [1, H, W, 3] in 0..1."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([np.sin(x / 9.0 + seed), np.cos(y / 7.0 - seed), np.sin((x + y) / 13.0)], -1)
    pixels = np.clip(127.5 + 90 * rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).float().div(255)[None]


def _conditioning(model, seed: int) -> list:
    """A CONDITIONING as LTX-AV Text Encode makes it for ``model``'s text path (random contexts)."""
    c = model.config
    v1 = c.text_path_version == 1
    dv = c.caption_channels if v1 else c.cross_attention_dim
    da = c.caption_channels if v1 else c.audio_cross_attention_dim
    g = torch.Generator().manual_seed(seed)
    video, audio = torch.randn(1, 6, dv, generator=g), torch.randn(1, 6, da, generator=g)
    signature = {"variant": model.variant, "video_dim": dv, "audio_dim": da, "checkpoint": model.checkpoint}
    return [[video, {"ltx_audio_context": audio, "ltx_text_path": signature}]]


def _record_encode_tilings(monkeypatch) -> list:
    """The tilings the nodes' encodes run with (``None``: the whole video in one piece)."""
    seen, real = [], tiling.encode

    def spy(vae, video, setting=None, *args, **kwargs):
        seen.append(setting)
        return real(vae, video, setting, *args, **kwargs)

    monkeypatch.setattr(tiling, "encode", spy)
    return seen


def test_image_to_video_through_the_nodes_equals_the_reference_loop(
    tiny_checkpoint, tmp_path, monkeypatch, record_property
):
    first_path, last_path = str(tmp_path / "first.png"), str(tmp_path / "last.png")
    first = _write_image(first_path, 120, 170, seed=1)  # wider than the video: scaled to cover, cropped
    last = _write_image(last_path, 200, 150, seed=2)  # taller than the video

    # -- ours: the nodes as a workflow wires them (crf 0: no H.264 round trip on either side) --
    model = load_transformer(tiny_checkpoint, device="cpu", offload_device="cpu")
    vae = load_video(tiny_checkpoint, device="cpu", offload_device="cpu", parts=("encoder", "decoder"))
    assert max(condition_pixels(first, HEIGHT, WIDTH, 0).shape[3:]) > 128
    encodes = _record_encode_tilings(monkeypatch)
    video, audio = LTXEmptyLatent().make(WIDTH, HEIGHT, FRAMES, FPS)
    (video,) = LTXImageCondition().condition(vae, first, video, 0, FIRST_STRENGTH, 0)
    (video,) = LTXImageCondition().condition(vae, last, video, -1, LAST_STRENGTH, 0)
    assert encodes == [None, None]  # automatic tiling: whole frames (it picked 128 px tiles before)
    positive, negative = _conditioning(model, 1), _conditioning(model, 2)
    out_video, out_audio = LTXSampler().run(
        model,
        positive,
        video,
        SEED,
        schedule="ltx2",
        steps=STEPS,
        cfg_video=VIDEO_GUIDANCE.cfg_scale,
        cfg_audio=AUDIO_GUIDANCE.cfg_scale,
        stg_video=VIDEO_GUIDANCE.stg_scale,
        stg_audio=AUDIO_GUIDANCE.stg_scale,
        stg_blocks="1",
        modality_video=VIDEO_GUIDANCE.modality_scale,
        modality_audio=AUDIO_GUIDANCE.modality_scale,
        rescale_video=VIDEO_GUIDANCE.rescale_scale,
        rescale_audio=AUDIO_GUIDANCE.rescale_scale,
        negative=negative,
        audio_latent=audio,
    )

    # -- the reference: ltx-pipelines' conditioned two-stream loop from the same file --
    encoder = tiny_models.load_reference(tiny_checkpoint, "video_encoder")
    transformer = X0Model(tiny_models.load_reference(tiny_checkpoint, "transformer"))
    pos_v, pos_a = positive[0][0], positive[0][1]["ltx_audio_context"]
    neg_v, neg_a = negative[0][0], negative[0][1]["ltx_audio_context"]
    sigmas = LTX2Scheduler().execute(steps=STEPS).float()

    def loop(s, video_state, audio_state, stepper):
        guiders = MultiModalGuider(VIDEO_GUIDANCE, neg_v), MultiModalGuider(AUDIO_GUIDANCE, neg_a)
        step = multi_modal_guider_denoising_func(*guiders, pos_v, pos_a, transformer)
        return euler_denoising_loop(s, video_state, audio_state, stepper, step)

    with torch.no_grad():
        items = combined_image_conditionings(
            [
                ImageConditioningInput(first_path, 0, FIRST_STRENGTH, crf=0),
                ImageConditioningInput(last_path, FRAMES - 1, LAST_STRENGTH, crf=0),
            ],
            HEIGHT,
            WIDTH,
            encoder,
            torch.float32,
            torch.device("cpu"),
        )
        expected_video, expected_audio = denoise_audio_video(
            VideoPixelShape(1, FRAMES, HEIGHT, WIDTH, FPS),
            items,
            GaussianNoiser(torch.Generator().manual_seed(SEED)),
            sigmas,
            EulerDiffusionStep(),
            loop,
            PipelineComponents(torch.float32, torch.device("cpu")),
            torch.float32,
            torch.device("cpu"),
            noise_scale=float(sigmas[0]),
        )

    ours_encoded = [c["latent"] for c in video["ltx_conditions"]]
    ref_encoded = [items[0].latent, items[1].keyframes]
    assert [c["kind"] for c in video["ltx_conditions"]] == ["replace", "keyframe"]
    assert video["ltx_conditions"][1]["index"] == FRAMES - 1 == items[1].frame_idx
    encode_error = max((a - b).abs().max().item() for a, b in zip(ours_encoded, ref_encoded, strict=True))
    scale = max(b.abs().max().item() for b in ref_encoded)
    assert out_video["samples"].shape == expected_video.latent.shape == (1, 128, 2, 5, 6)
    assert out_audio["samples"].shape == expected_audio.latent.shape
    video_error = (out_video["samples"] - expected_video.latent).abs().max().item()
    audio_error = (out_audio["samples"] - expected_audio.latent).abs().max().item()
    record_property("encode_max_abs", encode_error)
    record_property("video_max_abs", video_error)
    record_property("audio_max_abs", audio_error)
    log.info(
        "encoded conditions %.3g (latent scale %.3g), sampled video %.3g, audio %.3g",
        encode_error,
        scale,
        video_error,
        audio_error,
    )
    assert encode_error <= TOLERANCE, encode_error
    assert video_error <= TOLERANCE and audio_error <= TOLERANCE, (video_error, audio_error)


@pytest.mark.parametrize("frames", [1, 9])
def test_the_node_encode_equals_the_reference_encoder_on_a_wide_frame(tiny_checkpoint, monkeypatch, frames):
    """LoadedVideoVAE.encode_pixels with automatic tiling (the path LTXImageCondition and LTXVAEEncode take) on a
    192x96 image and 9-frame clip equals the reference's whole-video encode."""
    vae = load_video(tiny_checkpoint, device="cpu", offload_device="cpu", parts=("encoder",))
    encoder = tiny_models.load_reference(tiny_checkpoint, "video_encoder")
    pixels = torch.rand(1, 3, frames, 96, 192, generator=torch.Generator().manual_seed(frames)) * 2 - 1
    with torch.no_grad():
        expected = encoder(pixels)
    encodes = _record_encode_tilings(monkeypatch)
    got = vae.encode_pixels(pixels, "auto")
    assert encodes == [None]
    error = (got - expected).abs().max().item()
    log.info("auto-tiled node encode vs reference, %d frame(s): max abs %.3g", frames, error)
    assert got.shape == expected.shape and error <= TOLERANCE, error
