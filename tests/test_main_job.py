"""The README's main job, run as a user runs it: ``python -m ltx_av generate`` in a fresh process, and
``python -m ltx_av make-tiny-models``. The outputs are checked with PyAV and our own checkpoint loader."""

from __future__ import annotations

import os
import subprocess
import sys

import av
import pytest

from ltx_av.ltx_core import open_checkpoint
from ltx_av.ltx_core.tiny import TINY_MODEL_FILES


def _run(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "ltx_av", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_generate_writes_an_mp4_with_video_and_audio(tmp_path):
    """The exact README command (no arguments: tiny built-in model), in a folder of its own."""
    proc = _run(["generate"], cwd=str(tmp_path))
    written = list(tmp_path.glob("ltx_av_*.mp4"))
    assert len(written) == 1
    assert f"wrote {written[0]}" in proc.stdout
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
        samples = sum(frame.samples for frame in container.decode(audio=0))
    video_seconds = 49 / 24
    # audio trimmed to the picture (AAC adds at most a couple of 1024-sample frames of priming/padding)
    assert abs(samples / 48000 - video_seconds) < 3 * 1024 / 48000


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

    proc, models = stand_ins
    for relative, variant in TINY_MODEL_FILES.items():
        path = models / relative
        assert path.exists(), relative
        assert f"wrote {path}" in proc.stdout
        if variant is not None:
            checkpoint = open_checkpoint(str(path))
            assert checkpoint.variant == variant and tiny.STAND_IN_KEY in checkpoint.metadata
            assert checkpoint.config.transformer.num_layers == tiny.STAND_IN_LAYERS[variant]
        else:  # the Gemma 3 stand-in: a Hugging Face folder with its tokenizer
            assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert os.path.getsize(models / "checkpoints" / "ltx-2.3-22b-dev.safetensors") < 80 * 2**20


@pytest.fixture
def one_thread():
    """Tiny models are all overhead: one thread runs them as fast and does not collapse when the 2 cores are
    shared with other work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_make_tiny_models_replaces_its_own_stand_ins(tmp_path, capsys, one_thread):
    from ltx_av.__main__ import main

    main(["make-tiny-models", str(tmp_path)])
    main(["make-tiny-models", str(tmp_path)])  # a second run replaces what the first wrote
    assert capsys.readouterr().out.count("wrote ") == 2 * len(TINY_MODEL_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "text_encoders"]
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
    import tiny_models

    for relative, variant in TINY_MODEL_FILES.items():
        if variant is None or "distilled" in relative:
            continue
        path = str(stand_ins[1] / relative)
        for part in tiny_models.REFERENCE_PARTS:
            module = tiny_models.load_reference(path, part)
            assert all(t.isfinite().all() for t in module.state_dict().values() if t.is_floating_point()), part
