"""LTX-2.5 in the nodes: the split files in their ComfyUI folders, each loader listing and loading its part, the
node chain equal to the headless pipeline (whose parity with ltx-core 1.2.0 tests/test_ltx25_*.py show), the
duration head, the release's own defaults, and files of two releases refused by name."""

from __future__ import annotations

import os

import pytest
import torch

from ltx_av.ltx_core import tiny
from ltx_av.ltx_core.duration_head import load_duration_head, predict_duration
from ltx_av.ltx_core.errors import CheckpointError, InputError
from ltx_av.ltx_core.pipeline import Pipeline
from ltx_av.nodes import sampling as sampling_nodes
from ltx_av.nodes.audio import LTXAudioDecode, LTXAudioVAELoader
from ltx_av.nodes.duration import LTXDurationPredict
from ltx_av.nodes.model import LTXModelLoader
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXImageCondition, LTXSampler
from ltx_av.nodes.text import LTXTextEncode, LTXTextEncoderLoader
from ltx_av.nodes.video import LTXLoadVideoVAE, LTXVAEDecode

FILES = {part: os.path.basename(path) for part, path in tiny.LTX25_FILES.items()}
CKPT23 = "ltx-2.3.safetensors"
SIZE = dict(width=64, height=64, frames=9)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny LTX-2.5 split files where ComfyUI keeps them, an LTX-2.3 checkpoint beside them."""
    folder = tmp_path_factory.mktemp("ltx25_nodes") / "models"
    paths = tiny.write_tiny_ltx25(str(folder), seed=1, stand_in=True)
    paths["ltx-2.3"] = tiny.write_tiny_checkpoint(str(folder / "checkpoints" / CKPT23), "LTX-2.3", 1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTX_AV_MODELS_DIR", str(folder))
        yield paths


def _choices(cls, name: str) -> list[str]:
    return cls.INPUT_TYPES()["required"][name][0]


def _encode(encoder, text: str):
    return LTXTextEncode().encode(encoder, text)[0]


def test_each_loader_lists_its_split_file_by_its_plain_name(models):
    assert FILES["transformer"] in _choices(LTXModelLoader, "model_name")
    assert FILES["transformer"] in _choices(LTXTextEncoderLoader, "ckpt_name")
    assert FILES["text_encoder"] in _choices(LTXTextEncoderLoader, "gemma")
    assert {FILES["video_vae"], FILES["video_vae_conv"], CKPT23} <= set(_choices(LTXLoadVideoVAE, "vae_name"))
    assert {FILES["audio_vae"], CKPT23} <= set(_choices(LTXAudioVAELoader, "ckpt_name"))
    assert _choices(LTXDurationPredict, "head_name") == [FILES["duration_head"]]


def test_the_node_chain_equals_the_headless_pipeline(models, one_thread):
    """Model (auto: per_token_cross_gate), Gemma 4 text path, guided sampling with 2.5's conventions, the conv
    decoder and the audio VAE: the same frames and waveform as Pipeline.generate for the same seed."""
    model = LTXModelLoader().load(FILES["transformer"], "auto", "none")[0]
    assert model.variant == "LTX-2.5" and model.av_timestep_rule == "per_token_cross_gate"
    assert LTXModelLoader().load(CKPT23, "auto", "none")[0].av_timestep_rule == "cross_sigma"
    encoder = LTXTextEncoderLoader().load(FILES["text_encoder"], FILES["transformer"], dtype="float32")[0]
    positive, negative = _encode(encoder, "a bird"), _encode(encoder, "blurry")
    video, audio = LTXEmptyLatent().make(64, 64, 9, 24.0)
    video, audio = LTXSampler().run(model, positive, video, 3, steps=2, negative=negative, audio_latent=audio)
    vae = LTXLoadVideoVAE().load(FILES["video_vae_conv"])[0]
    frames = LTXVAEDecode().decode(vae, video)[0]
    sound = LTXAudioDecode().decode(LTXAudioVAELoader().load(FILES["audio_vae"])[0], audio)[0]["waveform"][0]

    pipe = Pipeline.load(models["transformer"], video_vae=models["video_vae_conv"], device="cpu", dtype=torch.float32)
    reference = pipe.generate("a bird", negative_prompt="blurry", steps=2, seed=3, **SIZE)
    assert torch.equal((frames * 255).round(), reference.frames.float())
    assert torch.equal(sound, reference.waveform)


def test_the_diffusion_decoder_draws_its_noise_from_the_seed(models, one_thread):
    vae = LTXLoadVideoVAE().load(FILES["video_vae"])[0]
    assert vae.is_diffusion and vae.variant == "LTX-2.5"
    latent = {"samples": torch.randn(1, 128, 2, 2, 2, generator=torch.Generator().manual_seed(0))}
    first, again, other = (LTXVAEDecode().decode(vae, latent, seed=s)[0] for s in (5, 5, 6))
    assert first.shape == (9, 64, 64, 3) and torch.equal(first, again) and not torch.equal(first, other)


def test_the_duration_head_sets_the_empty_latents_frames(models):
    encoder = LTXTextEncoderLoader().load(FILES["text_encoder"], FILES["transformer"], dtype="float32")[0]
    positive = _encode(encoder, "a long, slow pan over the sea")
    frames, seconds = LTXDurationPredict().predict(FILES["duration_head"], positive, 24.0, 1.0, 20.0)
    head = load_duration_head(models["duration_head"])
    (expected,) = predict_duration(
        head, positive[0][0], positive[0][1]["ltx_audio_context"], frame_rate=24.0, min_seconds=1.0, max_seconds=20.0
    )
    assert (frames, seconds) == (expected.num_frames, pytest.approx(expected.seconds, rel=1e-6))
    assert (frames - 1) % 8 == 0
    video, audio = LTXEmptyLatent().make(64, 64, frames, 24.0)
    assert video["samples"].shape[2] == (frames - 1) // 8 + 1
    assert audio["duration"] == pytest.approx(frames / 24.0)
    # a range clamps the prediction: 12..17 frames at 24 fps; floored to 9, below the minimum: the next, 17
    assert LTXDurationPredict().predict(FILES["duration_head"], positive, 24.0, 0.5, 0.7)[0] == 17


def test_the_image_crf_is_the_releases_own(models, monkeypatch):
    used = []
    real = sampling_nodes.condition_pixels

    def spy(image, height, width, crf, content=None):
        used.append(crf)
        return real(image, height, width, crf, content)

    monkeypatch.setattr(sampling_nodes, "condition_pixels", spy)
    image = torch.rand(1, 64, 64, 3)
    for vae_name in (FILES["video_vae_conv"], CKPT23):
        vae = LTXLoadVideoVAE().load(vae_name)[0]
        video, _ = LTXEmptyLatent().make(64, 64, 9, 24.0)
        LTXImageCondition().condition(vae, image, video, 0, 1.0)  # crf left at -1: the release's own
        LTXImageCondition().condition(vae, image, video, 0, 1.0, crf=25)
    assert used == [18, 25, 33, 25]


def test_files_of_two_releases_are_refused_naming_both(models, one_thread):
    model = LTXModelLoader().load(FILES["transformer"], "auto", "none")[0]
    encoder = LTXTextEncoderLoader().load(FILES["text_encoder"], FILES["transformer"], dtype="float32")[0]
    positive = _encode(encoder, "a bird")
    video, audio = LTXEmptyLatent().make(64, 64, 9, 24.0)
    vae23 = LTXLoadVideoVAE().load(CKPT23)[0]
    conditioned = LTXImageCondition().condition(vae23, torch.rand(1, 64, 64, 3), video, 0, 1.0)[0]
    with pytest.raises(
        InputError, match=rf"video_latent was made with '{CKPT23}' \(LTX-2.3\).*'{FILES['transformer']}'"
    ):
        LTXSampler().run(model, positive, conditioned, 0, steps=1)
    sampled, sampled_audio = LTXSampler().run(model, positive, video, 0, schedule="distilled", audio_latent=audio)
    with pytest.raises(InputError, match=rf"samples was made with '{FILES['transformer']}' \(LTX-2.5\).*'{CKPT23}'"):
        LTXVAEDecode().decode(vae23, sampled)
    with pytest.raises(InputError, match="audio_vae"):
        LTXAudioDecode().decode(LTXAudioVAELoader().load(CKPT23)[0], sampled_audio)
    # the text path of one release with the model of another, and Gemma 3 with 2.5
    with pytest.raises(InputError, match="LTX-2.3 text path"):
        LTXSampler().run(model, _encode_23(models), video, 0, steps=1)
    with pytest.raises(CheckpointError, match="is Gemma 4"):
        LTXTextEncoderLoader().load(FILES["text_encoder"], CKPT23)
    with pytest.raises(CheckpointError, match="holds no audio VAE"):
        LTXAudioVAELoader().load(FILES["video_vae"])


def _encode_23(models) -> list:
    model = LTXModelLoader().load(CKPT23, "fp32", "none")[0]
    c = model.config
    signature = {"variant": "LTX-2.3", "video_dim": c.video_dim, "audio_dim": c.audio_dim, "checkpoint": CKPT23}
    return [
        [
            torch.randn(1, 5, c.video_dim),
            {"ltx_audio_context": torch.randn(1, 5, c.audio_dim), "ltx_text_path": signature},
        ]
    ]


def test_a_garbled_release_record_is_ignored_not_a_crash(models):
    from ltx_av.nodes.validation import RELEASE_KEY, check_release

    vae = LTXLoadVideoVAE().load(CKPT23)[0]
    for record in (5, {"releases": 5}, {"releases": [None, 3]}, {"releases": "LTX-2.5"}, {"file": object()}):
        assert check_release({RELEASE_KEY: record}, vae, "node", "samples", "vae") == frozenset({"LTX-2.3"})
    with pytest.raises(InputError, match="'x' \\(LTX-2.5\\)"):
        check_release({RELEASE_KEY: {"releases": ["LTX-2.5"], "file": "x"}}, vae, "node", "samples", "vae")


def test_distilled_runs_the_ancestral_step_headless_and_in_the_nodes_alike(models, one_thread):
    """LTX-2.5's distilled stage 1 takes the ancestral step (ltx-pipelines 1.2.0) in Pipeline.generate and in the
    sampler node: the same frames for the same seed (tests/test_ltx25_ancestral.py: the step matches 1.2.0)."""
    model = LTXModelLoader().load(FILES["transformer"], "auto", "none")[0]
    encoder = LTXTextEncoderLoader().load(FILES["text_encoder"], FILES["transformer"], dtype="float32")[0]
    video, audio = LTXEmptyLatent().make(64, 64, 9, 24.0)
    video, _ = LTXSampler().run(model, _encode(encoder, "a bird"), video, 5, schedule="distilled", audio_latent=audio)
    frames = LTXVAEDecode().decode(LTXLoadVideoVAE().load(FILES["video_vae_conv"])[0], video)[0]
    pipe = Pipeline.load(models["transformer"], video_vae=models["video_vae_conv"], device="cpu", dtype=torch.float32)
    reference = pipe.generate("a bird", negative_prompt="", schedule="distilled", seed=5, **SIZE)
    assert torch.equal((frames * 255).round(), reference.frames.float())
