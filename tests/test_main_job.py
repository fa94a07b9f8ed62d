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


def test_generate_refuses_a_checkpoint_without_gemma(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "ltx_av", "generate", "--checkpoint", "x.safetensors"],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "--checkpoint needs --gemma" in proc.stderr


@pytest.mark.parametrize("size", [(250, 160)])
def test_generate_refuses_bad_sizes_clearly(tmp_path, size):
    width, height = size
    proc = subprocess.run(
        [sys.executable, "-m", "ltx_av", "generate", "--width", str(width), "--height", str(height)],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "width" in proc.stderr and "250" in proc.stderr


def test_make_tiny_models_writes_the_workflow_files(tmp_path):
    proc = _run(["make-tiny-models", str(tmp_path / "models")], cwd=str(tmp_path))
    for relative, variant in TINY_MODEL_FILES.items():
        path = tmp_path / "models" / relative
        assert path.exists(), relative
        assert f"wrote {path}" in proc.stdout
        if variant is not None:
            assert open_checkpoint(str(path)).variant == variant
        else:  # the Gemma 3 stand-in: a Hugging Face folder with its tokenizer
            assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
