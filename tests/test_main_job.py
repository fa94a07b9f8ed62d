"""The README's main job, run as a user runs it: ``python -m ltx_av generate`` in a fresh process, and
``python -m ltx_av make-tiny-models``. The outputs are checked with PyAV and our own checkpoint loader."""

from __future__ import annotations

import os
import subprocess
import sys

import av
import numpy as np
import pytest
import torch

from ltx_av.ltx_core import open_checkpoint
from ltx_av.ltx_core.checkpoint import identify
from ltx_av.ltx_core.tiny import TINY_MODEL_FILES


def _run(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "ltx_av", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_generate_writes_an_mp4_with_video_and_audio(tmp_path):
    """The exact README command (no arguments: the built-in model), in a folder of its own: it says what it made.
    With the demo model (once its files ship) the sound in the file peaks at -1 dBFS or below, AAC's overshoot
    included; the random model's noise is lowered to -1 dBFS, but AAC codes noise with overshoots of several dB."""
    from ltx_av.ltx_core import demo_model

    demo = demo_model.available()
    proc = _run(["generate"], cwd=str(tmp_path))
    written = list(tmp_path.glob("ltx_av_*.mp4"))
    assert len(written) == 1
    assert f"wrote {written[0]}" in proc.stdout
    made = "a red ball bounces, low hum" if demo else "a calm ocean at sunrise, waves rolling onto the sand, gulls…"
    assert f"{made}: 49 frames 256×160, 2.0 s stereo 48 kHz" in proc.stdout.splitlines()
    assert ("built-in demo model" if demo else "random weights") in proc.stderr
    assert "denoise" in proc.stderr and "8/8" in proc.stderr  # progress on the terminal

    with av.open(str(written[0])) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert (video.width, video.height) == (256, 160)
        assert audio.codec_context.name == "aac"
        assert audio.rate == 48000 and audio.channels == 2
        frames = sum(1 for _ in container.decode(video=0))
        assert frames == 49
        container.seek(0)
        sound = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)
        samples = sound.shape[1]
    if demo:
        assert np.abs(sound).max() <= 10 ** (-1 / 20), f"peak {20 * np.log10(np.abs(sound).max()):.2f} dBFS"
    video_seconds = 49 / 24
    # audio trimmed to the picture (AAC adds at most a couple of 1024-sample frames of priming/padding)
    assert abs(samples / 48000 - video_seconds) < 3 * 1024 / 48000


def test_generate_two_stage_writes_a_full_size_mp4_with_video_and_audio(tmp_path):
    """The README's two-stage command with the tiny built-in model (and its tiny upsampler): stage 1 at 128x96,
    the latent upsampled x2, stage 2 at the full 256x192."""
    proc = _run(["generate", "--two-stage"], cwd=str(tmp_path))
    written = list(tmp_path.glob("ltx_av_*.mp4"))
    assert len(written) == 1 and f"wrote {written[0]}" in proc.stdout
    assert "stage 1 at 128x96" in proc.stderr and "stage 2 at 256x192" in proc.stderr
    for stage, steps in (("stage 1", "8/8"), ("upsample", "1/1"), ("stage 2", "3/3")):
        assert any(line.strip().startswith(stage) and line.endswith(steps) for line in proc.stderr.splitlines())
    with av.open(str(written[0])) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.codec_context.name == "h264" and (video.width, video.height) == (256, 192)
        assert audio.codec_context.name == "aac" and audio.rate == 48000 and audio.channels == 2
        assert sum(1 for _ in container.decode(video=0)) == 49
        container.seek(0)
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(samples / 48000 - 49 / 24) < 3 * 1024 / 48000


def test_generate_in_process_with_the_other_variant_into_new_folders(tmp_path, capsys):
    """LTX-2's stand-in, a small size, an image on the last frame and an output in folders that do not exist yet:
    they are created, the video lands there complete, and nothing else is left."""
    from PIL import Image

    from ltx_av.__main__ import main

    Image.new("RGB", (40, 30), (0, 200, 0)).save(tmp_path / "last.png")
    output = tmp_path / "out" / "nested" / "clip.mp4"
    args = ["generate", "--variant", "LTX-2", "--width", "64", "--height", "64", "--frames", "9", "--steps", "2"]
    main([*args, "--image", str(tmp_path / "last.png"), "--image-frame", "-1", "--output", str(output), "-q"])
    assert f"wrote {output}" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "out" / "nested")) == ["clip.mp4"]
    with av.open(str(output)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (64, 64)
        assert container.streams.audio[0].rate == 24000  # LTX-2's vocoder
        assert sum(1 for _ in container.decode(video=0)) == 9


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """``python -m ltx_av make-tiny-models`` run once: (its output, the models folder)."""
    folder = tmp_path_factory.mktemp("stand_ins")
    proc = _run(["make-tiny-models", str(folder / "models")], cwd=str(folder))
    return proc, folder / "models"


def test_make_tiny_models_writes_the_workflow_files(stand_ins):
    from ltx_av.ltx_core import tiny
    from ltx_av.ltx_core.checkpoint import build_component
    from ltx_av.ltx_core.lora import bind_lora, read_lora
    from ltx_av.ltx_core.transformer import AudioVideoTransformer
    from ltx_av.ltx_core.upsampler import load_upsampler

    proc, models = stand_ins
    for relative, variant in TINY_MODEL_FILES.items():
        path = models / relative
        assert path.exists(), relative
        assert f"wrote {path}" in proc.stdout
        if variant in tiny.UPSAMPLER_KINDS:  # the upsamplers, loaded strictly, of the kind their names say
            upsampler = load_upsampler(str(path))
            assert upsampler.config.kind == {"spatial-x2": "spatial x2", "temporal-x2": "temporal x2"}[variant]
            assert tiny.STAND_IN_KEY in open_checkpoint(str(path)).metadata
            assert os.path.getsize(path) < 10 * 2**20
        elif variant in tiny.TINY_LORA_KINDS:  # the LoRAs bind to the stand-in checkpoint of their variant
            model_variant, _, declared = tiny.TINY_LORA_KINDS[variant]
            lora = read_lora(str(path))
            assert lora.metadata.items() >= declared.items() and tiny.STAND_IN_KEY in lora.metadata
            assert os.path.getsize(path) < 2**20
            # LTX-2.5's LoRA binds to the split release's transformer file
            own = "ltx-2.5-transformer" if model_variant == "LTX-2.5" else model_variant
            checkpoint = next(p for p, v in TINY_MODEL_FILES.items() if v == own)
            model = build_component(str(models / checkpoint), "transformer", AudioVideoTransformer)
            assert bind_lora(lora, model, model_variant).factors
        elif variant in tiny.LTX25_PARTS:  # LTX-2.5's split files: each an LTX-2.5 file of its part, marked
            identity = identify(str(path))
            assert identity.variant == "LTX-2.5" and tiny.STAND_IN_KEY in open_checkpoint(str(path)).metadata
            part = tiny.LTX25_PARTS[variant][0]
            assert identity.role == ("video_vae" if part == "video_vae_conv" else part)
            if part.startswith("video_vae"):
                assert identity.video_decoder == ("conv" if part == "video_vae_conv" else "diffusion")
            assert os.path.getsize(path) < 64 * 2**20
        elif variant is not None:
            checkpoint = open_checkpoint(str(path))
            assert checkpoint.variant == variant and tiny.STAND_IN_KEY in checkpoint.metadata
            assert checkpoint.config.transformer.num_layers == tiny.STAND_IN_LAYERS[variant]
        else:  # the Gemma 3 stand-in: a Hugging Face folder with its tokenizer
            assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert os.path.getsize(models / "checkpoints" / "ltx-2.3-22b-dev.safetensors") < 80 * 2**20


def test_make_tiny_models_replaces_its_own_stand_ins(tmp_path, capsys, one_thread):
    from ltx_av.__main__ import main

    main(["make-tiny-models", str(tmp_path)])
    main(["make-tiny-models", str(tmp_path)])  # a second run replaces what the first wrote
    assert capsys.readouterr().out.count("wrote ") == 2 * len(TINY_MODEL_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints", "diffusion_models", "latent_upscale_models", "loras", "model_patches", "text_encoders", "vae"
    ]  # fmt: skip
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".partial")]


def test_the_stand_ins_run_the_workflow_nodes_with_the_official_defaults(stand_ins, monkeypatch, one_thread):
    """The node chain of the text-to-video workflows on the stand-ins, with the sampler's shipped settings (official
    steps and guidance: STG on block 28 for LTX-2.3, 29 for LTX-2, which the stand-ins are deep enough to have), at
    a small size and 2 steps."""
    from ltx_av import NODE_CLASS_MAPPINGS as nodes

    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(stand_ins[1]))
    gemma = "gemma-3-12b-it-qat-q4_0-unquantized/"
    for checkpoint in ("ltx-2.3-22b-dev.safetensors", "ltx-2-19b-dev.safetensors"):
        model = nodes["LTXModelLoader"]().load(checkpoint, "auto", "none")[0]
        text = nodes["LTXTextEncoderLoader"]().load(gemma, checkpoint)[0]
        positive = nodes["LTXTextEncode"]().encode(text, "a dog runs on a beach")[0]
        negative = nodes["LTXTextEncode"]().encode(text, "blurry")[0]
        video, audio = nodes["LTXEmptyLatent"]().make(64, 64, 9, 24.0)
        video, audio = nodes["LTXSampler"]().run(
            model, positive, video, 42, steps=2, negative=negative, audio_latent=audio
        )
        vae = nodes["LTXLoadVideoVAE"]().load(f"checkpoints/{checkpoint}")[0]
        frames = nodes["LTXVAEDecode"]().decode(vae, video)[0]
        sound = nodes["LTXAudioDecode"]().decode(nodes["LTXAudioVAELoader"]().load(checkpoint)[0], audio)[0]
        assert tuple(frames.shape) == (9, 64, 64, 3) and sound["waveform"].shape[0] == 1
        assert bool(frames.isfinite().all()) and bool(sound["waveform"].isfinite().all())


def test_the_reference_builds_every_part_of_the_stand_ins(stand_ins):
    """The leaner stand-ins are still official-layout files: ltx-core's own builders load every part strictly."""
    import tiny_upsamplers

    from ltx_av.ltx_core import tiny

    import tiny_models

    for relative, variant in TINY_MODEL_FILES.items():
        if variant is None or variant in tiny.TINY_LORA_KINDS or "distilled" in relative:
            continue  # the LoRAs are checked against ltx-core's fusion in test_lora.py
        if variant in tiny.LTX25_PARTS:
            continue  # ltx-core 1.0.0 has no LTX-2.5 (1.2.0's parity: the tests/fixtures/ltx25 fixtures)
        path = str(stand_ins[1] / relative)
        if variant in tiny.UPSAMPLER_KINDS:
            module = tiny_upsamplers.load_reference_upsampler(path)
            assert all(t.isfinite().all() for t in module.state_dict().values())
            continue
        for part in tiny_models.REFERENCE_PARTS:
            module = tiny_models.load_reference(path, part)
            assert all(t.isfinite().all() for t in module.state_dict().values() if t.is_floating_point()), part


def test_two_stage_from_the_stand_ins_through_the_command_line(stand_ins, tmp_path, capsys, one_thread):
    """--checkpoint with --upsampler: the distilled stand-in, its Gemma and the spatial x2 upsampler that
    make-tiny-models wrote, the distilled recipe at a small size, keeping the stage-1 audio."""
    from ltx_av.__main__ import main

    models = stand_ins[1]
    output = tmp_path / "two.mp4"
    main(
        ["generate", "--two-stage", "--schedule", "distilled", "--stage2-audio", "keep", "--device", "cpu"]
        + ["--checkpoint", str(models / "checkpoints" / "ltx-2.3-22b-distilled.safetensors")]
        + ["--gemma", str(models / "text_encoders" / "gemma-3-12b-it-qat-q4_0-unquantized")]
        + ["--upsampler", str(models / "latent_upscale_models" / "ltx-2.3-spatial-upscaler-x2-1.1.safetensors")]
        + ["--width", "128", "--height", "64", "--frames", "9", "--output", str(output), "-q"]
    )
    assert f"wrote {output}" in capsys.readouterr().out
    with av.open(str(output)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (128, 64)
        assert sum(1 for _ in container.decode(video=0)) == 9 and container.streams.audio[0].rate == 48000


# -- the pipeline's two-stage path, against ltx_core's pieces composed by hand ---------------------------------------


@pytest.fixture(scope="module")
def small_pipeline(tmp_path_factory):
    """A 2-layer tiny LTX-2.3 checkpoint (the test widths), the tiny Gemma and a tiny spatial x2 upsampler."""
    from ltx_av.ltx_core import tiny
    from ltx_av.ltx_core.pipeline import Pipeline

    folder = tmp_path_factory.mktemp("small_pipeline")
    checkpoint = tiny.write_tiny_checkpoint(str(folder / "ltx.safetensors"), "LTX-2.3", seed=2)
    gemma = tiny.write_tiny_gemma(str(folder / "gemma"), seed=2)
    upsampler = tiny.write_tiny_upsampler(str(folder / "up.safetensors"), "spatial-x2", seed=2)
    return Pipeline.load(checkpoint, gemma, device="cpu", dtype=torch.float32, upsampler=upsampler)


def _latents_of(pipe, monkeypatch, **kwargs):
    """Run ``pipe.generate`` and return the (video, audio) latents it decodes."""
    seen = {}

    def capture(video, audio, frame_rate, frames, report):
        seen["latents"] = (video.clone(), audio.clone())
        return None

    monkeypatch.setattr(pipe, "decode", capture)
    pipe.generate("a red ball bounces", negative_prompt="blurry", **kwargs)
    return seen["latents"]


def test_the_two_stage_pipeline_is_the_pieces_composed_by_hand(small_pipeline, monkeypatch, one_thread):
    """sample at half size (distilled sigmas, an image on the last frame encoded at half size) -> upsample_latent
    with the video VAE's statistics -> sample at full size from the upsampled latent and the stage-1 audio (stage-2
    sigmas, no guidance, the image encoded again at full size). The noise of both stages comes from one generator
    seeded with the seed, in the order video, audio, video, audio; an appended keyframe adds its tokens to the
    video noise. stage2_audio keep: the same video, the stage-1 audio."""
    from ltx_av.ltx_core.conditioning import condition_for_frame, condition_pixels
    from ltx_av.ltx_core.latents import audio_latent_length
    from ltx_av.ltx_core.sampling import sample
    from ltx_av.ltx_core.schedules import DISTILLED_SIGMAS, STAGE2_SIGMAS
    from ltx_av.ltx_core.upsampler import upsample_latent

    pipe = small_pipeline
    frames, height, width, fps, seed = 17, 128, 192, 24.0, 7
    image = torch.rand(40, 50, 3, generator=torch.Generator().manual_seed(3))
    request = dict(width=width, height=height, frames=frames, frame_rate=fps, seed=seed, schedule="distilled")
    video, audio = _latents_of(pipe, monkeypatch, two_stage=True, image=image, image_frame=-1, **request)

    with torch.inference_mode():
        positive = pipe.encode("a red ball bounces")

        def keyframe(h, w):
            pixels = condition_pixels(image[None], h, w, 33)
            encoded = pipe.video_vae.encode(pixels).float()
            return [condition_for_frame(encoded, frames - 1, 1.0, frames)]

        g = torch.Generator().manual_seed(seed)
        audio_t = audio_latent_length(frames, fps)
        # latent 3x2x3 (+ the keyframe's 1x2x3 appended) at half size, 3x4x6 (+ 1x4x6) at full size
        noise_1 = torch.randn(1, 18 + 6, 128, generator=g), torch.randn(1, audio_t, 128, generator=g)
        noise_2 = torch.randn(1, 72 + 24, 128, generator=g), torch.randn(1, audio_t, 128, generator=g)
        common = dict(frame_rate=fps, positive=positive)
        video_1, audio_1 = sample(
            pipe.transformer,
            torch.zeros(1, 128, 3, 2, 3),
            negative=pipe.encode("blurry"),
            sigmas=DISTILLED_SIGMAS,
            audio_latent=torch.zeros(1, 8, audio_t, 16),
            conditions=keyframe(64, 96),
            noise=noise_1,
            **common,
        )
        up = upsample_latent(pipe.upsampler, video_1, pipe.video_vae.per_channel_statistics)
        video_2, audio_2 = sample(
            pipe.transformer,
            up,
            negative=None,
            sigmas=STAGE2_SIGMAS,
            audio_latent=audio_1,
            conditions=keyframe(128, 192),
            noise=noise_2,
            **common,
        )
    assert video.shape == (1, 128, 3, 4, 6) and audio.shape == audio_1.shape
    assert torch.equal(video, video_2) and torch.equal(audio, audio_2)
    assert not torch.equal(audio_2, audio_1)  # stage 2 did refine the audio

    kept_video, kept_audio = _latents_of(
        pipe, monkeypatch, two_stage=True, image=image, image_frame=-1, stage2_audio="keep", **request
    )
    assert torch.equal(kept_video, video_2) and torch.equal(kept_audio, audio_1)


def test_one_stage_noise_is_still_drawn_from_the_seed(small_pipeline, monkeypatch, one_thread):
    """The single-stage path, whose noise now comes from the same generator code, is what sample(seed=...) gives."""
    from ltx_av.ltx_core.sampling import sample
    from ltx_av.ltx_core.schedules import DISTILLED_SIGMAS

    pipe = small_pipeline
    video, audio = _latents_of(pipe, monkeypatch, width=64, height=64, frames=9, seed=5, schedule="distilled")
    with torch.inference_mode():
        expected = sample(
            pipe.transformer,
            torch.zeros(1, 128, 2, 2, 2),
            frame_rate=24.0,
            positive=pipe.encode("a red ball bounces"),
            negative=pipe.encode("blurry"),
            sigmas=DISTILLED_SIGMAS,
            seed=5,
            audio_latent=torch.zeros_like(audio),
        )
    assert torch.equal(video, expected[0]) and torch.equal(audio, expected[1])


def test_two_stage_refuses_before_any_work(small_pipeline, monkeypatch):
    from ltx_av.ltx_core.errors import InputError

    def trap(*args, **kwargs):
        raise AssertionError("the model ran before the request was checked")

    monkeypatch.setattr(small_pipeline, "encode", trap)
    with pytest.raises(InputError, match="width must be a multiple of 64 with two_stage.*nearest valid: 64 or 128"):
        small_pipeline.generate("x", width=96, height=64, frames=9, two_stage=True)
    with pytest.raises(InputError, match="stage2_audio is .both.; expected one of .refine., .keep."):
        small_pipeline.generate("x", width=64, height=64, frames=9, two_stage=True, stage2_audio="both")
    monkeypatch.setattr(small_pipeline, "upsampler", None)
    with pytest.raises(InputError, match="two_stage needs a spatial x2 latent upsampler"):
        small_pipeline.generate("x", width=64, height=64, frames=9, two_stage=True)
