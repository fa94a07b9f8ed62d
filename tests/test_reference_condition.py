"""IC-LoRA reference conditioning: the token state and a conditioned loop against ltx-core's reference-video
conditioning, and the node that attaches a reference video to a latent."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.noisers import GaussianNoiser
from ltx_core.components.patchifiers import VideoLatentPatchifier
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.conditioning import VideoConditionByKeyframeIndex, VideoConditionByReferenceLatent
from ltx_core.model.transformer import X0Model
from ltx_core.tools import VideoLatentTools
from ltx_core.types import VideoLatentShape, VideoPixelShape
from ltx_pipelines.utils.helpers import denoise_audio_video, simple_denoising_func
from ltx_pipelines.utils.samplers import euler_denoising_loop
from ltx_pipelines.utils.types import PipelineComponents
from safetensors.torch import save_file

from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.conditioning import (
    KeyframeCondition,
    ReferenceCondition,
    apply_conditions,
    condition_from_dict,
    condition_to_dict,
    own_tokens,
    video_state,
)
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.latents import audio_latent_length
from ltx_av.ltx_core.sampling import sample
from ltx_av.ltx_core.text_encoder import TextContexts
from ltx_av.ltx_core.tiny import tiny_lora_tensors
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXReferenceCondition, LTXSampler, lora_reference_scale
from ltx_av.nodes.video import LTXLoadVideoVAE

import tiny_models

FPS = 24.0


def test_reference_tokens_equal_the_reference_state():
    """Scale 2, a reference shorter than the video, after a keyframe: tokens, clean values, mask and positions."""
    shape = (2, 128, 4, 4, 6)
    g = torch.Generator().manual_seed(0)
    key = torch.randn(1, 128, 1, 4, 6, generator=g)
    ref_latent = torch.randn(2, 128, 3, 2, 3, generator=g)
    tools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape(*shape), FPS)
    expected = tools.create_initial_state("cpu", torch.float32)
    for item in (
        VideoConditionByKeyframeIndex(key.expand(2, -1, -1, -1, -1), 9, 0.8),
        VideoConditionByReferenceLatent(ref_latent, downscale_factor=2, strength=0.9),
    ):
        expected = item.apply_to(expected, tools)
    ours = apply_conditions(
        video_state(torch.zeros(shape), FPS),
        [KeyframeCondition(key, 9, 0.8), ReferenceCondition(ref_latent, 2, 0.9)],
    )
    assert torch.equal(ours.latent, expected.latent) and torch.equal(ours.clean, expected.clean_latent)
    assert torch.allclose(ours.mask, expected.denoise_mask[..., 0])
    assert torch.allclose(ours.positions, expected.positions.float(), atol=1e-6)
    assert own_tokens(ours).latent.shape[1] == 4 * 4 * 6


def test_reference_conditions_are_checked_and_round_trip():
    state = video_state(torch.zeros(1, 128, 2, 4, 6), FPS)
    with pytest.raises(InputError, match=r"at scale 2 covers 128x128.*encode the reference at 96x64"):
        apply_conditions(state, [ReferenceCondition(torch.zeros(1, 128, 1, 2, 2), 2)])
    with pytest.raises(InputError, match="3 latent frames but the video latent only 2"):
        apply_conditions(state, [ReferenceCondition(torch.zeros(1, 128, 3, 4, 6), 1)])
    with pytest.raises(InputError, match="scale must be a whole number >= 1"):
        apply_conditions(state, [ReferenceCondition(torch.zeros(1, 128, 1, 4, 6), 0)])
    cond = ReferenceCondition(torch.ones(1, 128, 1, 2, 3), 2, 0.5)
    back = condition_from_dict(condition_to_dict(cond))
    assert isinstance(back, ReferenceCondition) and back.scale == 2 and back.strength == 0.5


def test_reference_conditioned_loop_equals_the_reference(tiny_checkpoint):
    """Two LTX-2 scheduler steps with a half-size reference video: the whole loop, same seed, both variants."""
    ours = build_component(tiny_checkpoint, "transformer", AudioVideoTransformer)
    ref = X0Model(tiny_models.load_reference(tiny_checkpoint, "transformer"))
    c = ours.config
    v1 = c.text_path_version == 1
    g = torch.Generator().manual_seed(1)
    contexts = TextContexts(
        torch.randn(1, 6, c.caption_channels if v1 else c.video_dim, generator=g),
        torch.randn(1, 6, c.caption_channels if v1 else c.audio_dim, generator=g),
    )
    reference = torch.randn(1, 128, 2, 2, 3, generator=g)
    frames, height, width = 17, 128, 192  # latent [1, 128, 3, 4, 6]
    sigmas = LTX2Scheduler().execute(steps=2).float()

    def loop(s, video, audio, stepper):
        return euler_denoising_loop(
            s, video, audio, stepper, simple_denoising_func(contexts.video, contexts.audio, ref)
        )

    with torch.no_grad():
        expected_video, expected_audio = denoise_audio_video(
            VideoPixelShape(1, frames, height, width, FPS),
            [VideoConditionByReferenceLatent(reference, downscale_factor=2, strength=1.0)],
            GaussianNoiser(torch.Generator().manual_seed(5)),
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
        torch.zeros(1, 128, 3, 4, 6),
        frame_rate=FPS,
        positive=contexts,
        negative=None,
        sigmas=sigmas,
        seed=5,
        audio_latent=torch.zeros(1, 8, audio_latent_length(frames, FPS), 16),
        conditions=[ReferenceCondition(reference, 2, 1.0)],
    )
    assert video.shape == (1, 128, 3, 4, 6)
    assert (video - expected_video.latent).abs().max() <= 1e-4
    assert (audio - expected_audio.latent).abs().max() <= 1e-4


@pytest.fixture
def vae(tiny_checkpoints, tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    os.symlink(tiny_checkpoints["LTX-2.3"], tmp_path / "checkpoints" / "tiny.safetensors")
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    return LTXLoadVideoVAE().load("checkpoints/tiny.safetensors", "fp32")[0]


def test_node_attaches_a_reference_at_the_loras_scale_and_the_sampler_cuts_it(vae, tiny_checkpoints, tmp_path):
    """The scale comes from the metadata of an IC-LoRA loaded by LTX-AV Load LoRA onto the model."""
    from ltx_av.ltx_core.lora import read_lora
    from ltx_av.nodes.model import load_transformer

    video, audio = LTXEmptyLatent().make(128, 64, 9, 24.0)
    base = load_transformer(tiny_checkpoints["LTX-2.3"], device="cpu", offload_device="cpu")
    lora = tmp_path / "ic-lora-ref0.5.safetensors"
    save_file(
        {k: v.contiguous() for k, v in tiny_lora_tensors("LTX-2.3", "video").items()},
        str(lora),
        metadata={"reference_downscale_factor": "2", "reference_spatial_scale_factor": "2"},
    )
    model = base.with_lora(read_lora(lora), 1.0)
    assert lora_reference_scale(model) == 2 and lora_reference_scale(base) is None
    (conditioned,) = LTXReferenceCondition().condition(vae, torch.rand(20, 40, 70, 3), video, 1.0, 0, model)
    (cond,) = conditioned["ltx_conditions"]
    assert cond["kind"] == "reference" and cond["index"] == 2
    assert tuple(cond["latent"].shape) == (1, 128, 2, 1, 2)  # 9 of the 20 frames, at 64x32 pixels
    c = model.config
    context = [[torch.randn(1, 4, c.video_dim), {"ltx_audio_context": torch.randn(1, 4, c.audio_dim)}]]
    out, _ = LTXSampler().run(model, context, conditioned, 0, schedule="distilled", audio_latent=audio)
    assert out["samples"].shape == video["samples"].shape and "ltx_conditions" not in out


def test_node_refuses_scales_that_do_not_cover_the_video(vae):
    video, _ = LTXEmptyLatent().make(96, 64, 9, 24.0)  # 3x2 latent cells
    with pytest.raises(InputError, match="LTXReferenceCondition: scale 2 does not divide"):
        LTXReferenceCondition().condition(vae, torch.rand(1, 64, 96, 3), video, 1.0, 2)
    two = SimpleNamespace(
        loras=[
            SimpleNamespace(name="a", metadata={"reference_downscale_factor": "2"}),
            SimpleNamespace(name="b", metadata={"reference_downscale_factor": "1"}),
        ]
    )
    with pytest.raises(InputError, match="declare different reference scales"):
        lora_reference_scale(two)
