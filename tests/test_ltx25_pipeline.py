"""LTX-2.5 headless: ``generate --checkpoint`` with the transformer file of the split release, the other files found
beside it in the ComfyUI models layout or named, on the tiny 2.5 stand-ins (``make-tiny-models`` writes the same)."""

from __future__ import annotations

import os
import shutil

import av
import pytest
import torch

from ltx_av.__main__ import main
from ltx_av.ltx_core import tiny
from ltx_av.ltx_core.checkpoint import identify
from ltx_av.ltx_core.pipeline import Pipeline, find_split_files

SMALL = ["--width", "64", "--height", "64", "--frames", "9", "--steps", "2", "--negative-prompt", "blurry", "-q"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny LTX-2.5 stand-ins under a ComfyUI-like models folder, with an LTX-2.3 stand-in beside them."""
    folder = tmp_path_factory.mktemp("ltx25") / "models"
    files = tiny.write_tiny_ltx25(str(folder), seed=1, stand_in=True)
    files["ltx-2.3"] = tiny.write_tiny_checkpoint(str(folder / "checkpoints" / "ltx-2.3.safetensors"), "LTX-2.3", 1)
    return files


def test_the_stand_ins_are_split_ltx25_files(models):
    roles = {part: identify(path) for part, path in models.items() if part != "ltx-2.3"}
    assert {p: i.variant for p, i in roles.items()} == dict.fromkeys(roles, "LTX-2.5")
    assert roles["transformer"].role == "transformer" and roles["text_encoder"].role == "text_encoder"
    assert (roles["video_vae"].video_decoder, roles["video_vae_conv"].video_decoder) == ("diffusion", "conv")
    assert roles["transformer"].gemma_version == roles["text_encoder"].gemma_version == tiny.LTX25_GEMMA_VERSION


def test_the_other_files_are_found_beside_the_transformer(models):
    split = find_split_files(models["transformer"])
    assert (split.text_encoder, split.video_vae, split.audio_vae) == (
        models["text_encoder"],
        models["video_vae"],  # the diffusion decoder over the conv one, as the official pipelines decode
        models["audio_vae"],
    )
    assert split.found == ("text_encoder", "video_vae", "audio_vae")
    named = find_split_files(models["transformer"], video_vae=models["video_vae_conv"])
    assert named.video_vae == models["video_vae_conv"] and "video_vae" not in named.found


def test_generate_from_the_split_files_writes_the_mp4(models, tmp_path, capsys, one_thread):
    """Gemma 4 text path, 2 guided steps with the 2.5 conventions, the diffusion decoder, the audio VAE."""
    output = tmp_path / "clip.mp4"
    main(["generate", "--checkpoint", models["transformer"], "--prompt", "a cat", *SMALL, "--output", str(output)])
    assert f"wrote {output}" in capsys.readouterr().out
    with av.open(str(output)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height) == (64, 64)
        assert audio.rate == 48000 and audio.channels == 2
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 9
    assert max(float(f.std()) for f in frames) > 1.0  # decoded pictures, not a constant


def test_the_pipeline_runs_each_decoder_and_its_noise_follows_the_seed(models, one_thread):
    pipe = Pipeline.load(models["transformer"], device="cpu", dtype=torch.float32)
    assert pipe.variant == "LTX-2.5" and pipe.video_vae.is_diffusion
    request = dict(negative_prompt="blurry", width=64, height=64, frames=9, schedule="distilled")
    first = pipe.generate("a bird", seed=3, **request)
    again = pipe.generate("a bird", seed=3, **request)
    other = pipe.generate("a bird", seed=4, **request)
    assert torch.equal(first.frames, again.frames) and torch.equal(first.waveform, again.waveform)
    assert not torch.equal(first.frames, other.frames)
    assert first.frames.shape == (9, 64, 64, 3) and first.sample_rate == 48000
    conv = Pipeline.load(models["transformer"], video_vae=models["video_vae_conv"], device="cpu", dtype=torch.float32)
    assert not conv.video_vae.is_diffusion
    assert conv.generate("a bird", seed=3, **request).frames.shape == (9, 64, 64, 3)


def _refusal(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *argv, "--prompt", "a", *SMALL])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and "Traceback" not in captured.err
    return captured.err.strip().splitlines()[-1]


def test_a_mixed_release_is_refused_naming_both_files(models, capsys):
    line = _refusal(["--checkpoint", models["transformer"], "--video-vae", models["ltx-2.3"]], capsys)
    assert line.startswith("error: --video-vae:")
    assert "'ltx-2.3.safetensors' (LTX-2.3" in line and "'ltx-2.5-22b-dev-transformer-bf16.safetensors'" in line


def test_a_file_of_another_part_is_refused(models, capsys):
    line = _refusal(["--checkpoint", models["transformer"], "--audio-vae", models["video_vae"]], capsys)
    assert line.startswith("error: --audio-vae:") and "holds no audio VAE" in line


def test_a_lone_transformer_names_the_missing_file_and_its_flag(models, tmp_path, capsys):
    lone = tmp_path / "alone" / os.path.basename(models["transformer"])
    lone.parent.mkdir()
    shutil.copyfile(models["transformer"], lone)
    line = _refusal(["--checkpoint", str(lone)], capsys)
    assert line.startswith("error: --text-encoder:") and "no LTX-2.5 text encoder was found beside" in line


def test_split_flags_need_a_split_transformer(models, capsys):
    line = _refusal(["--checkpoint", models["ltx-2.3"], "--gemma", "x", "--video-vae", models["video_vae"]], capsys)
    assert line.startswith("error: --video-vae:") and "single-file checkpoint" in line
    line = _refusal(["--audio-vae", models["audio_vae"]], capsys)
    assert line.startswith("error: --audio-vae:") and "--checkpoint" in line


def test_an_image_is_recompressed_at_the_release_crf(models, monkeypatch, one_thread):
    """ltx-pipelines 1.2.0 re-compresses an image condition at CRF 18 for 2.4+ models (33 before); an explicit
    value wins."""
    from ltx_av.ltx_core import pipeline

    used = []
    real = pipeline.condition_pixels
    monkeypatch.setattr(pipeline, "condition_pixels", lambda *a: used.append(a[-1]) or real(*a))
    pipe = Pipeline.load(models["transformer"], device="cpu", dtype=torch.float32)
    image = torch.rand(40, 48, 3, generator=torch.Generator().manual_seed(0))
    request = dict(negative_prompt="b", width=64, height=64, frames=9, schedule="distilled", image=image)
    pipe.generate("a", **request)
    pipe.generate("a", image_crf=0, **request)
    assert used == [18, 0]
    assert (pipeline.default_image_crf("LTX-2.3"), pipeline.default_image_crf("LTX-2")) == (33, 33)
