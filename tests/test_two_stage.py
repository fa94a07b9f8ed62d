"""The whole two-stage chain against ltx-pipelines 1.0.0's distilled pipeline, composed as it composes it.

Stage 1 denoises at half size with the distilled sigmas; the video latent is un-normalised, upsampled x2 and
normalised again with the video VAE's statistics; stage 2 re-noises it (and the stage-1 audio) at the first of the
stage-2 sigmas and denoises at full size. The reference draws all its noise from one generator across both stages;
ours takes the same noise, drawn in the same order, as input.
"""

from __future__ import annotations

import pytest
import tiny_upsamplers
import torch
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.noisers import GaussianNoiser
from ltx_core.model.transformer import X0Model
from ltx_core.model.upsampler import upsample_video
from ltx_core.types import VideoPixelShape
from ltx_pipelines.utils.helpers import denoise_audio_video, simple_denoising_func
from ltx_pipelines.utils.samplers import euler_denoising_loop
from ltx_pipelines.utils.types import PipelineComponents

from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.latents import audio_latent_length
from ltx_av.ltx_core.sampling import sample
from ltx_av.ltx_core.schedules import DISTILLED_SIGMAS, STAGE2_SIGMAS
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.ltx_core.upsampler import load_upsampler, upsample_latent
from ltx_av.ltx_core.video_vae import load_video_vae

import tiny_models

TOLERANCE = 1e-4
FPS = 24.0
FRAMES, HEIGHT, WIDTH = 17, 128, 192  # stage 1 at 64x96: latent [1, 128, 3, 2, 3] -> stage 2 [1, 128, 3, 4, 6]


def _contexts(config) -> TextContexts:
    g = torch.Generator().manual_seed(1)
    v1 = config.text_path_version == 1
    dv = config.caption_channels if v1 else config.video_dim
    da = config.caption_channels if v1 else config.audio_dim
    return TextContexts(torch.randn(1, 6, dv, generator=g), torch.randn(1, 6, da, generator=g))


@pytest.mark.parametrize("kind", ["spatial-x2", "spatial-x2-rational"])
def test_distilled_two_stage_chain_matches_the_reference(tiny_checkpoint, tmp_path, kind):
    upsampler_path = str(tmp_path / "upsampler.safetensors")
    tiny_upsamplers.write_upsampler(upsampler_path, kind)
    ours = build_component(tiny_checkpoint, "transformer", AudioVideoTransformer)
    ref = X0Model(tiny_models.load_reference(tiny_checkpoint, "transformer"))
    contexts = _contexts(ours.config)
    stage_1, stage_2 = torch.tensor(DISTILLED_SIGMAS), torch.tensor(STAGE2_SIGMAS)

    # -- the reference, as DistilledPipeline.__call__ composes it (no image conditions)
    def loop(s, video, audio, stepper):
        return euler_denoising_loop(
            s, video, audio, stepper, simple_denoising_func(contexts.video, contexts.audio, ref)
        )

    noiser = GaussianNoiser(torch.Generator().manual_seed(11))
    common = dict(
        conditionings=[],
        noiser=noiser,
        stepper=EulerDiffusionStep(),
        denoising_loop_fn=loop,
        components=PipelineComponents(torch.float32, torch.device("cpu")),
        dtype=torch.float32,
        device=torch.device("cpu"),
    )
    with torch.no_grad():
        video_1, audio_1 = denoise_audio_video(
            output_shape=VideoPixelShape(1, FRAMES, HEIGHT // 2, WIDTH // 2, FPS), sigmas=stage_1, **common
        )
        upscaled = upsample_video(
            video_1.latent[:1],
            tiny_models.load_reference(tiny_checkpoint, "video_encoder"),
            tiny_upsamplers.load_reference_upsampler(upsampler_path),
        )
        video_2, audio_2 = denoise_audio_video(
            output_shape=VideoPixelShape(1, FRAMES, HEIGHT, WIDTH, FPS),
            sigmas=stage_2,
            noise_scale=stage_2[0],
            initial_video_latent=upscaled,
            initial_audio_latent=audio_1.latent,
            **common,
        )

    # -- ours: the same noise, in the order the reference's one generator draws it
    g = torch.Generator().manual_seed(11)
    audio_t = audio_latent_length(FRAMES, FPS)
    small, big = (1, 3 * 2 * 3, 128), (1, 3 * 4 * 6, 128)

    def noise(video_shape):
        return torch.randn(*video_shape, generator=g), torch.randn(1, audio_t, 128, generator=g)

    video, audio = sample(
        ours,
        torch.zeros(1, 128, 3, 2, 3),
        frame_rate=FPS,
        positive=contexts,
        negative=None,
        sigmas=stage_1,
        noise=noise(small),
        audio_latent=torch.zeros(1, 8, audio_t, 16),
    )
    vae = load_video_vae(tiny_checkpoint, parts=("encoder",))
    up = upsample_latent(load_upsampler(upsampler_path), video, vae.per_channel_statistics)
    assert (up - upscaled).abs().max() <= TOLERANCE * max(1.0, upscaled.abs().max().item())
    video, audio = sample(
        ours, up, frame_rate=FPS, positive=contexts, negative=None, sigmas=stage_2, noise=noise(big), audio_latent=audio
    )

    video_error = (video - video_2.latent).abs().max().item()
    audio_error = (audio - audio_2.latent).abs().max().item()
    assert video.shape == (1, 128, 3, 4, 6) and audio.shape == audio_2.latent.shape
    assert video_error <= TOLERANCE and audio_error <= TOLERANCE, (video_error, audio_error)
