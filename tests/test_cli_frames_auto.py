"""``generate --frames auto``: LTX-2.5's duration head chooses the clip's length from the prompt, headless, on the tiny
2.5 stand-ins (``make-tiny-models`` writes the same files); refused clearly where there is no head to ask."""

from __future__ import annotations

import os
import re
import shutil

import av
import pytest
import torch

from ltx_av.__main__ import main
from ltx_av.ltx_core import tiny
from ltx_av.ltx_core.duration_head import load_duration_head, predict_duration
from ltx_av.ltx_core.pipeline import Pipeline

SMALL = ["--width", "64", "--height", "64", "--steps", "2", "--negative-prompt", "blurry", "-q"]
PROMPT = "a cat walks along the beach"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny LTX-2.5 release in a ComfyUI-like models folder (the head in model_patches/), an LTX-2.3 stand-in
    beside it."""
    folder = tmp_path_factory.mktemp("auto") / "models"
    files = tiny.write_tiny_ltx25(str(folder), seed=1, stand_in=True)
    files["ltx-2.3"] = tiny.write_tiny_checkpoint(str(folder / "checkpoints" / "ltx-2.3.safetensors"), "LTX-2.3", 1)
    return files


@pytest.fixture(scope="module")
def predicted(models):
    """What the head predicts for PROMPT, computed here through the library (seconds, frames at 24 fps)."""
    torch.set_num_threads(1)
    pipe = Pipeline.load(models["transformer"], device="cpu", dtype=torch.float32)
    contexts = pipe.encode(PROMPT)
    (prediction,) = predict_duration(
        load_duration_head(models["duration_head"]), contexts.video, contexts.audio, frame_rate=24.0
    )
    return prediction


def _frames_in(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_auto_generates_the_predicted_length_and_says_how_it_snapped(models, predicted, tmp_path, capsys, one_thread):
    output = tmp_path / "auto.mp4"
    main(["generate", "--checkpoint", models["transformer"], "--prompt", PROMPT, "--frames", "auto", *SMALL,
          "--output", str(output)])  # fmt: skip
    out = capsys.readouterr().out
    raw = round(predicted.seconds * 24)
    assert predicted.num_frames % 8 == 1 and raw != predicted.num_frames  # the stand-in's prediction is snapped
    line = next(line for line in out.splitlines() if line.startswith("--frames auto:"))
    assert f"{predicted.seconds:.2f} s -> {raw} frames at 24 fps -> {predicted.num_frames} (8k+1)" in line
    assert line.endswith(f"generating {predicted.num_frames} frames")
    assert f"wrote {output}" in out and f"({predicted.num_frames} frames 64x64" in out
    assert _frames_in(output) == predicted.num_frames


def test_a_named_head_is_used_and_the_frame_rate_counts(models, predicted, tmp_path, capsys, one_thread):
    """The head named with --duration-head (anywhere); at 8 fps the same seconds are fewer frames."""
    head = tmp_path / "elsewhere" / "my-head.safetensors"
    head.parent.mkdir()
    shutil.copyfile(models["duration_head"], head)
    output = tmp_path / "slow.mp4"
    main(["generate", "--checkpoint", models["transformer"], "--prompt", PROMPT, "--frames", "auto",
          "--duration-head", str(head), "--fps", "8", *SMALL, "--output", str(output)])  # fmt: skip
    expected = (round(predicted.seconds * 8) - 1) // 8 * 8 + 1
    assert f"generating {expected} frames" in capsys.readouterr().out
    assert _frames_in(output) == expected


def _refusal(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--prompt", "a", *SMALL, *argv])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and "Traceback" not in captured.err
    return captured.err.strip().splitlines()[-1]


def test_a_release_without_a_duration_head_is_refused(models, capsys):
    line = _refusal(["--checkpoint", models["ltx-2.3"], "--frames", "auto"], capsys)  # before --gemma is asked for
    assert line.startswith("error: --frames: auto predicts the length with LTX-2.5's duration head")
    assert "'ltx-2.3.safetensors' is LTX-2.3, which has none" in line
    line = _refusal(["--frames", "auto"], capsys)  # the built-in tiny model
    assert line.startswith("error: --frames:") and "tiny model lacks" in line


def test_a_missing_head_is_refused_naming_its_flag(models, tmp_path, capsys):
    """The release without model_patches/: nothing to predict with, said before any model loads."""
    layout = tmp_path / "models"
    for part in ("transformer", "text_encoder", "video_vae", "audio_vae"):
        relative = os.path.relpath(models[part], os.path.dirname(os.path.dirname(models["transformer"])))
        (layout / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(models[part], layout / relative)
    transformer = layout / "diffusion_models" / os.path.basename(models["transformer"])
    line = _refusal(["--checkpoint", str(transformer), "--frames", "auto"], capsys)
    assert line.startswith("error: --duration-head: --frames auto needs LTX-2.5's duration head")
    assert "in its folder or ../model_patches" in line and "name the file with --duration-head" in line
    line = _refusal(["--checkpoint", str(transformer), "--frames", "auto", "--duration-head", "nope.st"], capsys)
    assert line == "error: --duration-head: no such file 'nope.st'"


def test_wrong_uses_of_the_flags_are_refused(models, capsys):
    line = _refusal(["--checkpoint", models["transformer"], "--frames", "auto", "--duration-head",
                     models["video_vae"]], capsys)  # fmt: skip
    assert line.startswith("error: --duration-head:") and "is not a duration head" in line
    line = _refusal(["--checkpoint", models["transformer"], "--frames", "9", "--duration-head",
                     models["duration_head"]], capsys)  # fmt: skip
    assert line.startswith("error: --duration-head: is only used with --frames auto")
    line = _refusal(["--frames", "soon"], capsys)
    assert re.search(r"--frames.*'soon'", line) and "auto" in line
    line = _refusal(["--checkpoint", models["transformer"], "--frames", "auto", "--seconds", "12"], capsys)
    assert line.startswith("error: --frames: sets the length of a single clip")
