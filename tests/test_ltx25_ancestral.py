"""LTX-2.5's distilled stage 1: the ancestral (SDE) Euler sampler against ltx-pipelines 1.2.0, its step, and the
sampler's choice in the node.

ltx-pipelines 1.2.0 is not installable here; tests/fixtures/ltx25/make_ancestral_fixtures.py ran its
``euler_ancestral_denoising_loop`` on the tiny LTX-2.5 transformer fixture and stored the results in
``ancestral_loop.safetensors``; LTX-AV's loop runs on the same file (float32) and must agree.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch
from safetensors.torch import load_file

from ltx_av.ltx_core import InputError
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.conditioning import FrameCondition, KeyframeCondition, ReferenceCondition, condition_to_dict
from ltx_av.ltx_core.config import LTX2, LTX23, LTX25
from ltx_av.ltx_core.sampling import (
    MAX_SEED,
    ancestral_euler_step,
    ancestral_seed,
    default_sampler,
    euler_step,
    sample,
)
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.nodes.model import load_transformer
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXSampler, LTXTimeWindowMask

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ltx25")
TINY = os.path.join(FIXTURES, "transformer_tiny_ltx25.safetensors")
TOLERANCE = 1e-4  # house rule: relative to the reference's largest magnitude
FPS = 24.0
GRID = (3, 2, 3)


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    return ((got.float() - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module")
def ref():
    return load_file(os.path.join(FIXTURES, "ancestral_loop.safetensors"))


@pytest.fixture(scope="module")
def model():
    return build_component(TINY, "transformer", AudioVideoTransformer, dtype=torch.float32)


def _run(model, x, case: str, video_in: torch.Tensor, conditions, sampler="euler_ancestral", **kwargs):
    return sample(
        model,
        video_in,
        frame_rate=FPS,
        positive=TextContexts(x[f"{case}.video_context"], x[f"{case}.audio_context"]),
        negative=None,
        sigmas=x[f"{case}.sigmas"],
        seed=int(x[f"{case}.seed"]),
        audio_latent=x[f"{case}.audio_in"],
        conditions=conditions,
        noise_scale=float(x[f"{case}.noise_scale"]),
        sampler=sampler,
        **kwargs,
    )


# -- the loop against 1.2.0 ----------------------------------------------------------------------------------------


def test_image_to_video_distilled_stage_1_matches_reference(model, ref):
    """The 8 distilled sigmas from pure noise with the first frame kept: the result matches 1.2.0's ancestral loop,
    the kept frame comes out exactly as given, and plain Euler from the same seed gives another video."""
    x = ref
    conditions = [FrameCondition(x["first_frame"], 1.0, 0)]
    video, audio = _run(model, x, "i2v", torch.zeros(1, 128, *GRID), conditions)
    errors = (_relative_error(video, x["i2v.video_out"]), _relative_error(audio, x["i2v.audio_out"]))
    assert max(errors) <= TOLERANCE, errors
    assert torch.equal(video[:, :, :1], x["first_frame"])
    euler, _ = _run(model, x, "i2v", torch.zeros(1, 128, *GRID), conditions, sampler="euler")
    assert _relative_error(euler, x["i2v.video_out"]) > 0.05


def test_partly_kept_tokens_and_an_appended_keyframe_match_reference(model, ref):
    """First frame at strength 0.6 (partly kept: the noise's share is blended back like the prediction's), an image
    keyframe appended at pixel frame 9 (its tokens draw noise too), 3 steps that stop at sigma 0.421875, so the
    injected noise is still in the result."""
    x = ref
    conditions = [FrameCondition(x["first_frame"], 0.6, 0), KeyframeCondition(x["keyframe"], 9, 0.7)]
    video, audio = _run(model, x, "partial", x["partial.video_in"], conditions)
    errors = (_relative_error(video, x["partial.video_out"]), _relative_error(audio, x["partial.audio_out"]))
    assert max(errors) <= TOLERANCE, errors


def test_kept_audio_draws_its_noise_and_stays_as_given(model, ref):
    """Audio kept (mask 0): the loop draws its noise anyway, like 1.2.0 (the video's later draws depend on it), then
    puts the audio back exactly."""
    x = ref
    kept = torch.zeros(1, x["a2v.audio_in"].shape[2])
    video, audio = _run(
        model, x, "a2v", torch.zeros(1, 128, *GRID), [FrameCondition(x["first_frame"], 1.0, 0)], audio_mask=kept
    )
    assert _relative_error(video, x["a2v.video_out"]) <= TOLERANCE
    assert torch.equal(audio, x["a2v.audio_in"]) and torch.equal(x["a2v.audio_out"], x["a2v.audio_in"])


# -- the step ------------------------------------------------------------------------------------------------------


def test_step_matches_reference_at_every_eta(ref):
    x = ref
    s = x["step.sigmas"]
    for eta in (1.0, 0.5):
        got = ancestral_euler_step(x["step.x"], x["step.x0"], s[0], s[1], x["step.noise"], eta=eta)
        assert _relative_error(got, x[f"step.eta{eta:g}"]) <= 1e-6
    assert torch.equal(ancestral_euler_step(x["step.x"], x["step.x0"], s[1], s[2], x["step.noise"]), x["step.x0"])
    assert torch.equal(x["step.to_zero"], x["step.x0"])


def test_eta_zero_is_the_euler_step_and_the_last_step_lands_on_x0():
    g = torch.Generator().manual_seed(3)
    x, x0, noise = (torch.randn(1, 10, 128, generator=g) for _ in range(3))
    sigma, sigma_next = torch.tensor(0.725), torch.tensor(0.421875)
    assert torch.equal(
        ancestral_euler_step(x, x0, sigma, sigma_next, None, eta=0.0), euler_step(x, x0, sigma, sigma_next)
    )
    assert torch.equal(ancestral_euler_step(x, x0, sigma, torch.tensor(0.0), noise), x0)
    # A repeated sigma (allowed in schedules) changes nothing, even at 1 where the rescale would be 0 / 0.
    one = torch.tensor(1.0)
    assert torch.equal(ancestral_euler_step(x, x0, one, one, noise), x)
    with pytest.raises(InputError, match="needs noise"):
        ancestral_euler_step(x, x0, sigma, sigma_next, None)


def test_the_step_lands_exactly_at_the_next_noise_level():
    """From a sample at sigma with the true x0, the result is (1 - sigma_next) x0 plus noise of standard deviation
    sigma_next, whatever eta: what the model expects at the next step."""
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(200_000, generator=g)
    sigma, sigma_next = torch.tensor(0.909375), torch.tensor(0.421875)
    x = (1 - sigma) * x0 + sigma * torch.randn(200_000, generator=g)
    for eta in (1.0, 0.5):
        out = ancestral_euler_step(x, x0, sigma, sigma_next, torch.randn(200_000, generator=g), eta=eta)
        assert (out - (1 - sigma_next) * x0).std().item() == pytest.approx(float(sigma_next), rel=0.01)


def test_sampler_option_and_its_seed():
    assert ancestral_seed(5) == 10005 and ancestral_seed(MAX_SEED) == 9999
    with pytest.raises(InputError, match="sampler is 'heun'"):
        sample(lambda *a: None, torch.zeros(1, 128, 1, 1, 1), frame_rate=FPS, positive=None, negative=None,
               sigmas=[1.0, 0.0], sampler="heun")  # fmt: skip


# -- which sampler ------------------------------------------------------------------------------------------------


def test_default_sampler_follows_the_official_pipelines():
    assert default_sampler(LTX25, "distilled") == "euler_ancestral"
    assert {default_sampler(LTX25, s) for s in ("ltx2", "stage2", "sigmas")} == {"euler"}
    assert {default_sampler(v, "distilled") for v in (LTX2, LTX23, None)} == {"euler"}


def _conditioning(model):
    c = model.config
    g = torch.Generator().manual_seed(0)
    signature = {"variant": model.variant, "video_dim": c.video_dim, "audio_dim": c.audio_dim, "checkpoint": "tiny"}
    extra = {"ltx_audio_context": torch.randn(1, 5, c.audio_dim, generator=g), "ltx_text_path": signature}
    return [[torch.randn(1, 5, c.video_dim, generator=g), extra]]


def test_the_node_samples_ltx25_distilled_with_the_ancestral_step(tiny_checkpoints, monkeypatch, caplog):
    """LTX Sampler: the distilled schedule on an LTX-2.5 model runs the ancestral step (and says so); stage2, a SIGMAS
    input and LTX-2.3 run Euler."""
    import ltx_av.nodes.sampling as sampling_nodes

    video, audio = LTXEmptyLatent().make(64, 64, 9, FPS)
    run = LTXSampler().run
    ltx25 = load_transformer(TINY, device="cpu", offload_device="cpu")
    with caplog.at_level(logging.INFO, logger="ltx_av"):
        out, _ = run(ltx25, _conditioning(ltx25), video, 3, schedule="distilled", audio_latent=audio)
    assert "8 euler_ancestral (LTX-2.5 distilled; step noise from seed + 10000) steps" in caplog.text
    text = _conditioning(ltx25)[0]
    direct, _ = sample(
        ltx25,
        video["samples"],
        frame_rate=FPS,
        positive=TextContexts(text[0], text[1]["ltx_audio_context"]),
        negative=None,
        sigmas=sampling_nodes.DISTILLED_SIGMAS,
        seed=3,
        audio_latent=audio["samples"],
        sampler="euler_ancestral",
    )
    assert torch.equal(out["samples"], direct)

    used = []

    def recording_sample(model, video, **kwargs):  # records the sampler without running it
        used.append(kwargs["sampler"])
        return video, kwargs["audio_latent"]

    monkeypatch.setattr(sampling_nodes, "sample", recording_sample)
    run(ltx25, _conditioning(ltx25), video, 3, schedule="distilled", audio_latent=audio)
    run(ltx25, _conditioning(ltx25), video, 3, schedule="stage2", audio_latent=audio)
    unguided = dict(cfg_video=1.0, cfg_audio=1.0, stg_video=0.0, stg_audio=0.0, modality_video=1.0, modality_audio=1.0)
    run(ltx25, _conditioning(ltx25), video, 3, schedule="distilled", sigmas=torch.tensor([1.0, 0.5, 0.0]), **unguided)
    ltx23 = load_transformer(tiny_checkpoints[LTX23], device="cpu", offload_device="cpu")
    run(ltx23, _conditioning(ltx23), video, 3, schedule="distilled", audio_latent=audio)
    # 1.2.0's retake and IC-LoRA pipelines run the distilled sigmas with Euler: a video noise_mask, a reference video
    retake = LTXTimeWindowMask().mask(video, 0.0, 0.1)[0]
    run(ltx25, _conditioning(ltx25), retake, 3, schedule="distilled", audio_latent=audio)
    reference = ReferenceCondition(torch.zeros(1, 128, 1, 2, 2), scale=1, strength=1.0)
    with_reference = {**video, "ltx_conditions": [condition_to_dict(reference)]}
    run(ltx25, _conditioning(ltx25), with_reference, 3, schedule="distilled", audio_latent=audio)
    assert used == ["euler_ancestral", "euler", "euler", "euler", "euler", "euler"]
