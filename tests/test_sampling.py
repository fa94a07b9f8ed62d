"""The denoising loop: parity of the whole loop with ltx-core 1.0.0 / ltx-pipelines 1.0.0, and its behaviour."""

from __future__ import annotations

import pytest
import torch
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
from ltx_core.components.noisers import GaussianNoiser
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.conditioning import VideoConditionByKeyframeIndex, VideoConditionByLatentIndex
from ltx_core.model.transformer import X0Model
from ltx_core.types import VideoPixelShape
from ltx_pipelines.utils.helpers import (
    denoise_audio_video,
    denoise_video_only,
    multi_modal_guider_denoising_func,
)
from ltx_pipelines.utils.samplers import euler_denoising_loop
from ltx_pipelines.utils.types import PipelineComponents

from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.conditioning import FrameCondition, KeyframeCondition, time_window_mask, video_denoise_mask
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.guidance import GuidanceParams
from ltx_av.ltx_core.perturbations import Skip
from ltx_av.ltx_core.sampling import draw_noise, preview_image, sample
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.transformer import AudioVideoTransformer

import tiny_models

TOLERANCE = 1e-4  # house rule; measured ~7e-6 after 3 guided steps
FPS = 24.0
FRAMES, HEIGHT, WIDTH = 17, 64, 96  # latent [1, 128, 3, 2, 3], 18 audio latents
AUDIO_T = round(FRAMES / FPS * 25)


def _contexts(config, seed=1):
    g = torch.Generator().manual_seed(seed)
    v1 = config.text_path_version == 1
    dv = config.caption_channels if v1 else config.video_dim
    da = config.caption_channels if v1 else config.audio_dim
    return TextContexts(torch.randn(1, 6, dv, generator=g), torch.randn(1, 6, da, generator=g))


def _params(p: MultiModalGuiderParams) -> GuidanceParams:
    return GuidanceParams(p.cfg_scale, p.stg_scale, tuple(p.stg_blocks), p.modality_scale, p.rescale_scale)


def test_guided_loop_with_first_frame_and_keyframe_matches_the_reference(tiny_checkpoint):
    """3 LTX-2 scheduler steps, CFG + STG + modality + rescale on both streams, frame 0 replaced (strength 0.95)
    and a keyframe appended at frame 9 (strength 0.8); the reference draws its noise with a seeded CPU generator
    (video then audio), ours from the same seed."""
    ours = build_component(tiny_checkpoint, "transformer", AudioVideoTransformer)
    ref = X0Model(tiny_models.load_reference(tiny_checkpoint, "transformer"))
    positive, negative = _contexts(ours.config, 1), _contexts(ours.config, 2)
    g = torch.Generator().manual_seed(3)
    first, key = torch.randn(1, 128, 1, 2, 3, generator=g), torch.randn(1, 128, 1, 2, 3, generator=g)
    sigmas = LTX2Scheduler().execute(steps=3).float()
    video_params = MultiModalGuiderParams(3.0, 1.0, [1], 0.7, 3.0)
    audio_params = MultiModalGuiderParams(7.0, 1.0, [0], 0.7, 3.0)

    def loop(s, video, audio, stepper):
        guiders = (MultiModalGuider(video_params, negative.video), MultiModalGuider(audio_params, negative.audio))
        step = multi_modal_guider_denoising_func(*guiders, positive.video, positive.audio, ref)
        return euler_denoising_loop(s, video, audio, stepper, step)

    with torch.no_grad():
        expected_video, expected_audio = denoise_audio_video(
            VideoPixelShape(1, FRAMES, HEIGHT, WIDTH, FPS),
            [VideoConditionByLatentIndex(first, 0.95, 0), VideoConditionByKeyframeIndex(key, 9, 0.8)],
            GaussianNoiser(torch.Generator().manual_seed(7)),
            sigmas,
            EulerDiffusionStep(),
            loop,
            PipelineComponents(torch.float32, torch.device("cpu")),
            torch.float32,
            torch.device("cpu"),
            noise_scale=float(sigmas[0]),
        )
    video, audio = sample(
        ours,
        torch.zeros(1, 128, 3, 2, 3),
        frame_rate=FPS,
        positive=positive,
        negative=negative,
        sigmas=sigmas,
        seed=7,
        video_guidance=_params(video_params),
        audio_guidance=_params(audio_params),
        audio_latent=torch.zeros(1, 8, AUDIO_T, 16),
        conditions=[FrameCondition(first, 0.95, 0), KeyframeCondition(key, 9, 0.8)],
    )
    video_error = (video - expected_video.latent).abs().max().item()
    audio_error = (audio - expected_audio.latent).abs().max().item()
    assert video.shape == (1, 128, 3, 2, 3) and audio.shape == (1, 8, AUDIO_T, 16)
    assert video_error <= TOLERANCE and audio_error <= TOLERANCE, (video_error, audio_error)


def test_audio_to_video_loop_matches_the_reference_pipeline(tiny_checkpoints):
    """The reference's audio-to-video stage 1: encoded audio frozen (mask 0, positive prompt in every pass, no
    audio guidance), video guided with CFG + STG + modality; 2 steps, LTX-2."""
    path = tiny_checkpoints["LTX-2"]
    ours = build_component(path, "transformer", AudioVideoTransformer)
    ref = X0Model(tiny_models.load_reference(path, "transformer"))
    positive, negative = _contexts(ours.config, 1), _contexts(ours.config, 2)
    audio = torch.randn(1, 8, AUDIO_T, 16, generator=torch.Generator().manual_seed(4))
    sigmas = LTX2Scheduler().execute(steps=2).float()
    video_params = MultiModalGuiderParams(3.0, 1.0, [1], 0.7, 3.0)

    def loop(s, video, audio_state, stepper):
        guiders = (MultiModalGuider(video_params, negative.video), MultiModalGuider(MultiModalGuiderParams()))
        step = multi_modal_guider_denoising_func(*guiders, positive.video, positive.audio, ref)
        return euler_denoising_loop(s, video, audio_state, stepper, step)

    with torch.no_grad():
        expected = denoise_video_only(
            VideoPixelShape(1, FRAMES, HEIGHT, WIDTH, FPS),
            [],
            GaussianNoiser(torch.Generator().manual_seed(7)),
            sigmas,
            EulerDiffusionStep(),
            loop,
            PipelineComponents(torch.float32, torch.device("cpu")),
            torch.float32,
            torch.device("cpu"),
            noise_scale=float(sigmas[0]),
            initial_audio_latent=audio,
        )
    video, kept = sample(
        ours,
        torch.zeros(1, 128, 3, 2, 3),
        frame_rate=FPS,
        positive=positive,
        negative=negative,
        sigmas=sigmas,
        seed=7,
        video_guidance=_params(video_params),
        audio_guidance=GuidanceParams(cfg=7.0, stg=1.0, stg_blocks=(0,)),  # ignored: the audio is kept
        audio_latent=audio,
        audio_mask=torch.zeros(1, AUDIO_T),
    )
    assert torch.equal(kept, audio)
    error = (video - expected.latent).abs().max().item()
    assert error <= TOLERANCE, error


# -- behaviour on the tiny LTX-2 model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoints):
    return build_component(tiny_checkpoints["LTX-2"], "transformer", AudioVideoTransformer)


def _run(model, video, audio=None, **kwargs):
    positive = _contexts(model.config)
    kwargs.setdefault("sigmas", [1.0, 0.6, 0.0])
    return sample(model, video, frame_rate=FPS, positive=positive, negative=None, audio_latent=audio, **kwargs)


def test_audio_to_video_keeps_the_audio_and_the_video_follows_it(tiny_model):
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(1, 8, AUDIO_T, 16, generator=g)
    keep = torch.zeros(1, AUDIO_T)
    video, kept = _run(tiny_model, torch.zeros(1, 128, 3, 2, 3), audio, audio_mask=keep, seed=1)
    assert torch.equal(kept, audio)
    other_video, _ = _run(tiny_model, torch.zeros(1, 128, 3, 2, 3), audio.flip(2), audio_mask=keep, seed=1)
    assert (video - other_video).abs().max() > 1e-3  # same seed, different sound -> different video


def test_retake_changes_only_the_masked_time_window(tiny_model):
    g = torch.Generator().manual_seed(0)
    source_video = torch.randn(1, 128, 3, 2, 3, generator=g)
    source_audio = torch.randn(1, 8, AUDIO_T, 16, generator=g)
    shape = tuple(source_video.shape)
    video_mask = video_denoise_mask(time_window_mask(shape, 0.1, 0.3, FPS), shape)  # latent frame 1 only
    audio_mask = time_window_mask(tuple(source_audio.shape), 0.1, 0.3).view(1, -1)
    video, audio = _run(tiny_model, source_video, source_audio, video_mask=video_mask, audio_mask=audio_mask, seed=3)
    changed_frames = (video != source_video).flatten(3).any(-1).any(1)[0].tolist()
    assert changed_frames == [False, True, False]
    changed_audio = (audio != source_audio).any(-1).any(1)[0]
    assert torch.equal(changed_audio, audio_mask[0].bool()) and 0 < int(audio_mask.sum()) < AUDIO_T


def test_video_only_never_computes_the_audio_stream(tiny_model):
    audio_calls = []
    hooks = [
        m.register_forward_hook(lambda *_: audio_calls.append(1))
        for name, m in tiny_model.named_modules()
        if name.startswith("audio_") or name.endswith(("audio_attn1", "audio_attn2", "audio_ff"))
    ]
    try:
        video, audio = _run(
            tiny_model,
            torch.zeros(1, 128, 3, 2, 3),
            video_guidance=GuidanceParams(cfg=1.0, stg=1.0, stg_blocks=(0,), modality=3.0),
            seed=0,
        )
    finally:
        for h in hooks:
            h.remove()
    assert len(hooks) > 4 and audio_calls == [] and audio is None and torch.isfinite(video).all()


# -- pass planning and the loop contract with a stub model ---------------------------------------------------------


class StubModel:
    """Velocity = latent / 2 (both streams); records every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, video, audio, perturbations):
        self.calls.append((video, audio, perturbations))
        return video.latent / 2, None if audio is None else audio.latent / 2


V, A = GuidanceParams, GuidanceParams
FULL = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), modality=3.0, rescale=0.7)
NONE = GuidanceParams()


@pytest.mark.parametrize(
    "video_guidance,audio_guidance,with_audio,audio_kept,per_step",
    [
        (NONE, NONE, True, False, 1),
        (V(cfg=3.0), NONE, True, False, 2),
        (NONE, A(cfg=7.0), True, False, 2),
        (V(stg=1.0, stg_blocks=(0,)), NONE, True, False, 2),
        (V(stg=1.0), NONE, True, False, 1),  # STG without blocks perturbs nothing
        (V(modality=3.0), NONE, True, False, 2),
        (FULL, FULL, True, False, 4),
        (FULL, FULL, False, False, 3),  # video only: nothing to isolate from
        (V(cfg=3.0), A(cfg=7.0, stg=1.0, stg_blocks=(0,)), True, True, 2),  # kept audio is not guided
    ],
)
def test_forward_passes_per_step_follow_the_guidance(video_guidance, audio_guidance, with_audio, audio_kept, per_step):
    model = StubModel()
    audio = torch.randn(1, 8, 5, 16) if with_audio else None
    events = []
    sample(
        model,
        torch.zeros(1, 128, 2, 1, 2),
        frame_rate=FPS,
        positive=TextContexts(torch.zeros(1, 3, 32), torch.zeros(1, 3, 32)),
        negative=TextContexts(torch.ones(1, 3, 32), torch.ones(1, 3, 32)),
        sigmas=[1.0, 0.5, 0.2, 0.0],
        video_guidance=video_guidance,
        audio_guidance=audio_guidance,
        audio_latent=audio,
        audio_mask=torch.zeros(1, 5) if audio_kept else None,
        callback=events.append,
    )
    assert len(model.calls) == 3 * per_step
    assert [e.forwards for e in events] == list(range(1, 3 * per_step + 1))
    assert [e.step for e in events if e.video_x0 is not None] == [1, 2, 3]
    assert all((a is None) != with_audio for _, a, _ in model.calls)
    for video_in, audio_in, perturbations in model.calls:
        negative = bool(video_in.context.sum() > 0)
        if audio_in is not None:
            # a kept stream has no guidance, so it hears the positive prompt in the unconditional pass too
            assert bool(audio_in.context.sum() > 0) == (negative and not audio_kept)
        if perturbations is not None:
            skips = {p.skip for p in perturbations.per_item[0]}
            assert skips in (
                {Skip.VIDEO_SELF_ATTENTION},
                {Skip.AUDIO_SELF_ATTENTION},
                {Skip.VIDEO_SELF_ATTENTION, Skip.AUDIO_SELF_ATTENTION},
                {Skip.AUDIO_TO_VIDEO, Skip.VIDEO_TO_AUDIO},
            )
            assert not (audio_kept and Skip.AUDIO_SELF_ATTENTION in skips)


def test_an_interrupt_from_the_callback_stops_between_forwards():
    model = StubModel()

    def stop(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample(
            model,
            torch.zeros(1, 128, 1, 1, 1),
            frame_rate=FPS,
            positive=TextContexts(torch.zeros(1, 3, 32), torch.zeros(1, 3, 32)),
            negative=TextContexts(torch.ones(1, 3, 32), torch.ones(1, 3, 32)),
            sigmas=[1.0, 0.0],
            video_guidance=GuidanceParams(cfg=3.0),
            callback=stop,
        )
    assert len(model.calls) == 1


def test_noise_comes_from_the_seed_video_first_then_audio():
    video, audio = draw_noise(5, (1, 12, 128), (1, 7, 128))
    g = torch.Generator().manual_seed(5)
    assert torch.equal(video, torch.randn(1, 12, 128, generator=g))
    assert torch.equal(audio, torch.randn(1, 7, 128, generator=g))
    model = StubModel()
    args = dict(frame_rate=FPS, positive=TextContexts(torch.zeros(1, 3, 32), torch.zeros(1, 3, 32)), negative=None)
    a = sample(model, torch.zeros(1, 128, 2, 1, 2), sigmas=[1.0, 0.0], seed=1, **args)[0]
    b = sample(model, torch.zeros(1, 128, 2, 1, 2), sigmas=[1.0, 0.0], seed=1, **args)[0]
    c = sample(model, torch.zeros(1, 128, 2, 1, 2), sigmas=[1.0, 0.0], seed=2, **args)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_loop_inputs_raise_clear_errors():
    model = StubModel()
    args = dict(frame_rate=FPS, positive=TextContexts(torch.zeros(1, 3, 32), torch.zeros(1, 3, 32)), negative=None)
    with pytest.raises(InputError, match="must decrease from start to end"):
        sample(model, torch.zeros(1, 128, 1, 1, 1), sigmas=[1.0, 0.2, 0.4, 0.0], **args)
    with pytest.raises(InputError, match="needs a negative prompt"):
        sample(model, torch.zeros(1, 128, 1, 1, 1), sigmas=[1.0, 0.0], video_guidance=V(cfg=2.0), **args)
    with pytest.raises(InputError, match="positive video context has batch 2 but the latent has batch 3"):
        sample(
            model,
            torch.zeros(3, 128, 1, 1, 1),
            sigmas=[1.0, 0.0],
            frame_rate=FPS,
            positive=TextContexts(torch.zeros(2, 3, 32), torch.zeros(2, 3, 32)),
            negative=None,
        )


def test_preview_is_a_small_rgb_image():
    x0 = torch.randn(1, 3 * 4 * 6, 128)
    image = preview_image(x0, (3, 4, 6), size=64)
    assert image.dtype == torch.uint8 and image.shape == (40, 60, 3)
    assert torch.equal(image, preview_image(x0, (3, 4, 6), size=64))
