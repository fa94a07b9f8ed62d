"""The command line, tried as a new user would: every bad argument of ``generate`` and ``make-tiny-models`` is
refused before any model loads, with the flag the user typed named on one line of stderr, exit status 2, no
traceback and nothing written. Most cases call ``main([...])`` in-process (the loaders are replaced by traps that
fail the test if reached); two run the real ``python -m ltx_av`` entry point."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time

import pytest

import ltx_av.__main__ as cli
from ltx_av.ltx_core import pipeline, tiny

# (id, arguments, flag named, words the message must contain)
GENERATE_CASES = [
    ("steps-zero", ["--steps", "0"], "--steps", "between 1 and 1000; got 0"),
    ("steps-negative", ["--steps", "-3"], "--steps", "got -3"),
    ("steps-too-many", ["--steps", "1001"], "--steps", "between 1 and 1000"),
    ("steps-word", ["--steps", "abc"], "--steps", "invalid int value: 'abc'"),
    ("steps-with-distilled", ["--schedule", "distilled", "--steps", "4"], "--steps", "8 steps"),
    ("schedule-unknown", ["--schedule", "fast"], "--schedule", "invalid choice: 'fast'"),
    ("width-zero", ["--width", "0"], "--width", "between 32 and 8192; got 0"),
    ("width-not-32k", ["--width", "250"], "--width", "nearest valid: 224 or 256"),
    ("height-not-32k", ["--height", "100"], "--height", "nearest valid: 96 or 128"),
    ("width-huge", ["--width", "99999"], "--width", "between 32 and 8192; got 99999"),
    ("frames-zero", ["--frames", "0"], "--frames", "between 1 and 10001; got 0"),
    ("frames-not-8k1", ["--frames", "100"], "--frames", "nearest valid: 97 or 105"),
    ("too-large", ["--width", "8192", "--height", "8192", "--frames", "10001"], "--frames", "is available"),
    ("fps-zero", ["--fps", "0"], "--fps", "greater than 0; got 0"),
    ("fps-negative", ["--fps", "-24"], "--fps", "greater than 0"),
    ("fps-nan", ["--fps", "nan"], "--fps", "finite"),
    ("fps-inf", ["--fps", "inf"], "--fps", "finite"),
    ("fps-huge", ["--fps", "5000"], "--fps", "at most 1000; got 5000"),
    ("seed-negative", ["--seed", "-1"], "--seed", "between 0 and 18446744073709551615; got -1"),
    ("seed-too-big", ["--seed", str(2**64)], "--seed", "got 18446744073709551616"),
    ("prompt-lone-surrogate", ["--prompt", "a cat \ud83d"], "--prompt", "lone surrogate"),
    ("threads-zero", ["--threads", "0"], "--threads", "got 0"),
    ("image-frame-without-image", ["--image-frame", "3"], "--image-frame", "give --image too"),
    ("image-frame-past-end", ["--image", "{png}", "--image-frame", "49"], "--image-frame", "between -49 and 48"),
    ("image-frame-before-start", ["--image", "{png}", "--image-frame", "-50"], "--image-frame", "got -50"),
    ("image-missing", ["--image", "{tmp}/nope.png"], "--image", "no such file"),
    ("image-is-text", ["--image", "{text}"], "--image", "not an image"),
    ("image-truncated", ["--image", "{truncated}"], "--image", "cannot be read as an image"),
    ("image-is-folder", ["--image", "{tmp}"], "--image", "is a folder"),
    ("device-unknown", ["--device", "foo"], "--device", "'foo' is not a device"),
    ("device-other-kind", ["--device", "meta"], "--device", "not supported"),
    ("device-cpu-number", ["--device", "cpu:1"], "--device", "no numbered devices"),
    ("device-cuda-absent", ["--device", "{cuda}"], "--device", "cuda"),
    ("offload-on-cpu", ["--offload", "blocks"], "--offload", "system RAM"),
    ("offload-unknown", ["--offload", "disk"], "--offload", "invalid choice"),
    ("gemma-without-checkpoint", ["--gemma", "{tmp}"], "--gemma", "only used with --checkpoint"),
    ("checkpoint-missing", ["--checkpoint", "{tmp}/x.safetensors", "--gemma", "{gemma}"], "--checkpoint", "no such"),
    ("checkpoint-is-folder", ["--checkpoint", "{tmp}", "--gemma", "{gemma}"], "--checkpoint", "is a folder"),
    ("checkpoint-pickle", ["--checkpoint", "{pickle}", "--gemma", "{gemma}"], "--checkpoint", "pickle"),
    ("checkpoint-corrupt", ["--checkpoint", "{corrupt}", "--gemma", "{gemma}"], "--checkpoint", "corrupt.safetensors"),
    ("checkpoint-without-gemma", ["--checkpoint", "{ckpt}"], "--gemma", "required with --checkpoint"),
    ("gemma-missing", ["--checkpoint", "{ckpt}", "--gemma", "{tmp}/none"], "--gemma", "no such file or folder"),
    ("gemma-not-gemma", ["--checkpoint", "{ckpt}", "--gemma", "{text}"], "--gemma", "not a Gemma source"),
    ("variant-with-checkpoint", ["--checkpoint", "{ckpt}", "--variant", "LTX-2"], "--variant", "comes from the file"),
    ("output-is-folder", ["--output", "{tmp}"], "--output", "is a folder"),
    ("output-parent-is-file", ["--output", "{text}/clip.mp4"], "--output", "is a file, not a folder"),
    ("output-under-file-deep", ["--output", "{text}/a/b/clip.mp4"], "--output", "is a file, not a folder"),
    ("output-unwritable", ["--output", "/proc/ltx_av_clip.mp4"], "--output", "cannot write the video in '/proc'"),
    ("output-not-mp4", ["--output", "{tmp}/clip.avi"], "--output", "must end in .mp4"),
    ("output-no-suffix", ["--output", "{tmp}/clip"], "--output", "'clip.mp4'"),
    ("output-name-too-long", ["--output", "{tmp}/new/" + "x" * 300 + ".mp4"], "--output", "bytes long"),
    ("two-stage-width-not-64", ["--two-stage", "--width", "224"], "--width", "multiple of 64 with --two-stage"),
    ("two-stage-width-nearest", ["--two-stage", "--width", "250"], "--width", "got 250, nearest valid: 192 or 256"),
    ("two-stage-height-not-64", ["--two-stage", "--height", "160"], "--height", "nearest valid: 128 or 192"),
    ("two-stage-width-tiny", ["--two-stage", "--width", "32"], "--width", "got 32, nearest valid: 64"),
    (
        "two-stage-steps-with-distilled",
        ["--two-stage", "--schedule", "distilled", "--steps", "4"],
        "--steps",
        "8 steps",
    ),
    ("upsampler-without-two-stage", ["--upsampler", "{upsampler}"], "--upsampler", "only used with --two-stage"),
    ("stage2-audio-without-two-stage", ["--stage2-audio", "keep"], "--stage2-audio", "only used with --two-stage"),
    ("stage2-audio-unknown", ["--two-stage", "--stage2-audio", "both"], "--stage2-audio", "invalid choice: 'both'"),
    ("upsampler-with-tiny-model", ["--two-stage", "--upsampler", "{upsampler}"], "--upsampler", "with --checkpoint"),
    ("two-stage-without-upsampler", ["--two-stage", "{real}"], "--upsampler", "required with --two-stage"),
    ("upsampler-missing", ["--two-stage", "{real}", "--upsampler", "{tmp}/up.safetensors"], "--upsampler", "no such"),
    ("upsampler-is-folder", ["--two-stage", "{real}", "--upsampler", "{tmp}"], "--upsampler", "is a folder"),
    ("upsampler-pickle", ["--two-stage", "{real}", "--upsampler", "{pickle}"], "--upsampler", "pickle"),
    ("upsampler-corrupt", ["--two-stage", "{real}", "--upsampler", "{corrupt}"], "--upsampler", "corrupt.safetensors"),
    ("upsampler-is-checkpoint", ["--two-stage", "{real}", "--upsampler", "{ckpt}"], "--upsampler", "not a latent"),
    ("upsampler-temporal", ["--two-stage", "{real}", "--upsampler", "{temporal}"], "--upsampler", "temporal x2 up"),
    ("upsampler-x1.5", ["--two-stage", "{real}", "--upsampler", "{x1_5}"], "--upsampler", "spatial x1.5 (rational)"),
    ("upsampler-other-channels", ["--two-stage", "{real}", "--upsampler", "{ch64}"], "--upsampler", "64-channel"),
    ("upsampler-keys-wrong", ["--two-stage", "{real}", "--upsampler", "{broken}"], "--upsampler", "1 missing"),
    # LoRAs: "{lora}" is the LTX-2.3 stand-in's (it fits the built-in model), "{lora_2}" the LTX-2 stand-in's
    ("lora-missing", ["--lora", "{tmp}/none.safetensors"], "--lora", "no such file '"),
    ("lora-missing-with-strength", ["--lora", "{tmp}/none.safetensors:0.5"], "--lora", "none.safetensors'"),
    ("lora-is-folder", ["--lora", "{tmp}"], "--lora", "is a folder; expected a LoRA file such as"),
    ("lora-pickle", ["--lora", "{pickle}"], "--lora", "'model.ckpt' is a pickle file (.ckpt)"),
    ("lora-pickle-renamed", ["--lora", "{pickled_lora}"], "--lora", "is a pickle"),
    ("lora-corrupt", ["--lora", "{corrupt}"], "--lora", "not a valid safetensors file"),
    ("lora-is-checkpoint", ["--lora", "{ckpt}"], "--lora", "'tiny.safetensors' is not a LoRA"),
    ("lora-other-variant", ["--lora", "{lora_2}"], "--lora", "does not fit this LTX-2.3 transformer"),
    ("lora-for-ltx2-on-checkpoint", ["{real}", "--lora", "{lora_for_2}"], "--lora", "made for LTX-2 (only LTX-2 has"),
    ("lora-other-size", ["{real}", "--lora", "{lora}"], "--lora", "blocks up to 28, but this model has 2 blocks"),
    ("lora-strength-word", ["--lora", "{lora}:strong"], "--lora", "must be a number, e.g. 'lora-2.3.safetensors:0.8'"),
    ("lora-strength-empty", ["--lora", "{lora}:"], "--lora", "has nothing after ':'"),
    ("lora-strength-too-big", ["--lora", "{lora}:11"], "--lora", "must be between -10 and 10; got 11"),
    ("lora-strength-too-small", ["--lora", "{lora}:-10.5"], "--lora", "between -10 and 10; got -10.5"),
    ("lora-strength-nan", ["--lora", "{lora}:nan"], "--lora", "must be a finite number; got nan"),
    ("lora-no-file", ["--lora", ":0.5"], "--lora", "names no file; the form is FILE[:STRENGTH]"),
    ("lora-second-bad", ["--lora", "{lora}", "--lora", "{lora_2}:0.5"], "--lora", "'lora-2.safetensors' does not"),
    ("stage2-lora-without-two-stage", ["--stage2-lora", "{lora}"], "--stage2-lora", "add --two-stage, or use --lora"),
    ("stage2-lora-other-variant", ["--two-stage", "--stage2-lora", "{lora_2}"], "--stage2-lora", "does not fit"),
    ("stage2-lora-strength", ["--two-stage", "--stage2-lora", "{lora}:x"], "--stage2-lora", "must be a number"),
]

TINY_CASES = [
    ("folder-is-file", ["{text}"], "folder", "is a file"),
    ("folder-under-file", ["{text}/models"], "folder", "is a file, not a folder"),
    ("folder-unwritable", ["/proc/ltx_av_models"], "folder", "cannot write the model files in '/proc'"),
    ("real-model-in-place", ["{models_with_real}"], "folder", "looks like the real model"),
    ("folder-where-file-goes", ["{models_with_folder}"], "folder", "is not a file"),
    ("file-where-folder-goes", ["{models_with_file}"], "folder", "is a file, but the stand-ins go in a folder"),
    ("folder-missing", [], "folder", "missing; it is required"),
    ("real-upsampler-in-place", ["{models_with_real_upsampler}"], "folder", "looks like the real model"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs the cases point at, outside the folder each case runs in."""
    from PIL import Image

    root = tmp_path_factory.mktemp("cli_inputs")
    out = {"tmp": str(root)}
    Image.new("RGB", (64, 48), (200, 10, 10)).save(root / "frame.png")
    out["png"] = str(root / "frame.png")
    (root / "notes.txt").write_text("not an image\n")
    out["text"] = str(root / "notes.txt")
    data = (root / "frame.png").read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    out["truncated"] = str(root / "cut.png")
    (root / "model.ckpt").write_bytes(b"\x80\x04")
    out["pickle"] = str(root / "model.ckpt")
    (root / "corrupt.safetensors").write_bytes(b"\xff" * 64)
    out["corrupt"] = str(root / "corrupt.safetensors")
    out["ckpt"] = tiny.write_tiny_checkpoint(str(root / "tiny.safetensors"), "LTX-2.3")
    out["gemma"] = tiny.write_tiny_gemma(str(root / "gemma"))
    out["cuda"] = "cuda:99" if _cuda() else "cuda"
    for name in ("real", "folder", "file", "real_upsampler"):
        models = root / f"models_with_{name}"
        (models / "checkpoints").mkdir(parents=True)
        out[f"models_with_{name}"] = str(models)
    # the size of a real checkpoint and of the smallest real upsampler (sparse: no disk used)
    with open(root / "models_with_real" / "checkpoints" / "ltx-2.3-22b-dev.safetensors", "wb") as f:
        f.truncate(tiny.PROTECTED_BYTES + 1)
    (root / "models_with_real_upsampler" / "latent_upscale_models").mkdir()
    with open(root / "models_with_real_upsampler" / "latent_upscale_models" / _TEMPORAL, "wb") as f:
        f.truncate(261_944_000)
    _write_upsamplers(root, out)
    _write_loras(root, out)
    (root / "models_with_folder" / "checkpoints" / "ltx-2.3-22b-dev.safetensors").mkdir()
    (root / "models_with_file" / "text_encoders").write_text("")  # a file where a folder must go
    return out


_TEMPORAL = "ltx-2.3-temporal-upscaler-x2-1.0.safetensors"


def _write_upsamplers(root, out: dict) -> None:
    """Upsampler files for the --upsampler cases: the right kind, the other kinds, other latent channels and one
    whose tensors do not match its config."""
    import json

    from safetensors.torch import load_file, save_file

    from ltx_av.ltx_core.upsampler import LatentUpsampler, UpsamplerConfig

    for key, kind in (("upsampler", "spatial-x2"), ("temporal", "temporal-x2"), ("x1_5", "spatial-x1.5")):
        out[key] = tiny.write_tiny_upsampler(str(root / f"{kind}.safetensors"), kind)
    config = tiny.tiny_upsampler_config("spatial-x2") | {"in_channels": 64}
    module = LatentUpsampler(UpsamplerConfig.from_dict(config))
    save_file(module.state_dict(), str(root / "ch64.safetensors"), metadata={"config": json.dumps(config)})
    out["ch64"] = str(root / "ch64.safetensors")
    tensors = load_file(out["upsampler"])
    del tensors["final_conv.bias"]
    config = json.dumps(tiny.tiny_upsampler_config("spatial-x2"))
    save_file(tensors, str(root / "broken.safetensors"), metadata={"config": config})
    out["broken"] = str(root / "broken.safetensors")


def _write_loras(root, out: dict) -> None:
    """LoRA files for the --lora cases: the stand-ins of both versions (the built-in model is the LTX-2.3 one), one
    that fits the small "{real}" checkpoint, one made for an LTX-2 checkpoint of that size and a pickle."""
    import tiny_loras
    import torch
    from safetensors.torch import save_file

    out["lora"] = tiny.write_tiny_lora(str(root / "lora-2.3.safetensors"), "lora-distilled-2.3")
    out["lora_2"] = tiny.write_tiny_lora(str(root / "lora-2.safetensors"), "lora-distilled-2")
    out["lora_for_ckpt"] = str(root / "small.safetensors")
    tiny_loras.write_lora(out["lora_for_ckpt"], "LTX-2.3", "attention")
    shapes = tiny_loras.linear_shapes("LTX-2")
    layers = tiny_loras.factors(
        {m: shapes[m] for m in ("caption_projection.linear_1", "transformer_blocks.0.attn1.to_q")}
    )
    out["lora_for_2"] = str(root / "small-ltx-2.safetensors")
    save_file(tiny_loras.lora_tensors(layers), out["lora_for_2"])
    torch.save({"lora_A": torch.zeros(2, 2)}, root / "pickled.safetensors")
    out["pickled_lora"] = str(root / "pickled.safetensors")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture
def no_loading(monkeypatch):
    """Replace everything that loads or writes a model with a trap."""

    def trap(*args, **kwargs):
        raise AssertionError("a model was loaded or written before the arguments were checked")

    monkeypatch.setattr(pipeline.Pipeline, "load", trap)
    monkeypatch.setattr(pipeline, "tiny_pipeline", trap)
    monkeypatch.setattr(tiny, "write_tiny_models", trap)
    monkeypatch.setattr(tiny, "write_tiny_checkpoint", trap)
    monkeypatch.setattr(tiny, "write_tiny_gemma", trap)
    monkeypatch.setattr(tiny, "write_tiny_upsampler", trap)
    monkeypatch.setattr(pipeline, "load_upsampler", trap)


def _snapshot(*folders: str) -> set[tuple[str, int]]:
    seen = set()
    for folder in folders:
        for root, dirs, names in os.walk(folder):
            for name in dirs + names:
                path = os.path.join(root, name)
                seen.add((path, os.path.getsize(path) if os.path.isfile(path) else -1))
    return seen


def _refused(argv: list[str], files: dict, workdir, capsys) -> str:
    # "{real}": the checkpoint and its Gemma, two flags with their values
    real = ["--checkpoint", files["ckpt"], "--gemma", files["gemma"]]
    argv = [part for a in argv for part in (real if a == "{real}" else [a.format(**files)])]
    if any(a.startswith("/proc/") for a in argv) and not os.path.isdir("/proc"):
        pytest.skip("needs Linux's /proc, a folder nobody may create files in")
    before = _snapshot(str(workdir), files["tmp"])
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    seconds = time.perf_counter() - started
    captured = capsys.readouterr()
    assert exit_info.value.code == 2, captured.err
    assert seconds < 2.0, f"{argv}: took {seconds:.1f} s to refuse"
    assert "Traceback" not in captured.err and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert _snapshot(str(workdir), files["tmp"]) == before, "a file or folder was left behind"
    return lines[0]


@pytest.mark.parametrize(("args", "flag", "words"), [c[1:] for c in GENERATE_CASES], ids=[c[0] for c in GENERATE_CASES])
def test_generate_refuses_a_bad_argument_before_loading(
    args, flag, words, files, tmp_path, monkeypatch, capsys, no_loading
):
    monkeypatch.chdir(tmp_path)  # where the default output would go
    line = _refused(["generate", *args], files, tmp_path, capsys)
    assert line.startswith(f"error: {flag}: "), line
    assert words in line, line


@pytest.mark.parametrize(("args", "flag", "words"), [c[1:] for c in TINY_CASES], ids=[c[0] for c in TINY_CASES])
def test_make_tiny_models_refuses_a_bad_folder_before_writing(
    args, flag, words, files, tmp_path, monkeypatch, capsys, no_loading
):
    monkeypatch.chdir(tmp_path)
    line = _refused(["make-tiny-models", *args], files, tmp_path, capsys)
    assert line.startswith(f"error: {flag}: "), line
    assert words in line, line


@pytest.mark.parametrize(
    ("argv", "words"),
    [([], "command: missing; it is required"), (["render"], "command: invalid choice: 'render'")],
    ids=["no-command", "unknown-command"],
)
def test_a_missing_or_unknown_command_is_a_usage_error(argv, words, files, tmp_path, monkeypatch, capsys, no_loading):
    monkeypatch.chdir(tmp_path)
    line = _refused(argv, files, tmp_path, capsys)
    assert line.startswith(f"error: {words}") and line.endswith("(see: python -m ltx_av --help)"), line


def test_a_real_model_is_never_replaced(files):
    path = os.path.join(files["models_with_real"], "checkpoints", "ltx-2.3-22b-dev.safetensors")
    with pytest.raises(Exception, match="looks like the real model"):
        tiny.check_tiny_targets(files["models_with_real"])
    assert os.path.getsize(path) == tiny.PROTECTED_BYTES + 1


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["generate", "--fps", "0"], "--fps"), (["make-tiny-models", "{text}"], "folder")],
    ids=["generate", "make-tiny-models"],
)
def test_the_real_entry_point_refuses_in_one_line(argv, flag, files, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ltx_av", *[a.format(**files) for a in argv]],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {flag}: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and not os.listdir(tmp_path)


def test_good_arguments_are_planned_without_loading(files, tmp_path, no_loading):
    args = cli.build_parser().parse_args(
        ["generate", "--checkpoint", files["ckpt"], "--gemma", files["gemma"], "--image", files["png"]]
        + ["--image-frame", "-1", "--output", str(tmp_path / "a" / "b" / "clip.MP4"), "--device", "cpu"]
    )
    plan = cli.plan_generate(args)
    assert (plan.width, plan.height, plan.frames, plan.steps) == (768, 512, 121, None)  # the checkpoint's defaults
    assert plan.variant == "LTX-2.3" and plan.image.shape == (48, 64, 3) and plan.image_frame == -1
    assert plan.new_folders == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    assert not os.listdir(tmp_path)  # folders are only created when the video is written
    tiny_plan = cli.plan_generate(cli.build_parser().parse_args(["generate", "--schedule", "distilled"]))
    assert (tiny_plan.width, tiny_plan.height, tiny_plan.frames, tiny_plan.steps) == (256, 160, 49, None)
    assert tiny_plan.device == "cpu" and tiny_plan.variant == "LTX-2.3"
    assert not tiny_plan.two_stage and tiny_plan.upsampler is None and tiny_plan.stage2_audio == "refine"


def test_two_stage_arguments_are_planned_without_loading(files, tmp_path, no_loading):
    real = ["--checkpoint", files["ckpt"], "--gemma", files["gemma"], "--device", "cpu"]
    argv = ["generate", "--two-stage", *real, "--upsampler", files["upsampler"], "--stage2-audio", "keep"]
    plan = cli.plan_generate(cli.build_parser().parse_args(argv))
    assert plan.two_stage and plan.upsampler == files["upsampler"] and plan.stage2_audio == "keep"
    assert (plan.width, plan.height) == (768, 512)  # the checkpoint's default size is already a multiple of 64
    # the tiny model's default height (160) is not: --two-stage makes it 192, and brings its own upsampler
    tiny_plan = cli.plan_generate(cli.build_parser().parse_args(["generate", "--two-stage"]))
    assert (tiny_plan.width, tiny_plan.height, tiny_plan.frames) == (256, 192, 49)
    assert tiny_plan.two_stage and tiny_plan.upsampler is None and tiny_plan.stage2_audio == "refine"
    assert not os.listdir(tmp_path)


def test_lora_arguments_are_planned_without_loading(files, tmp_path, no_loading, monkeypatch):
    """--lora and --stage2-lora repeat, keep their order, default to strength 1 and are read from their headers
    only: the factors are never read while planning."""
    from ltx_av.ltx_core.checkpoint import SafetensorsFile

    def no_factors(self, key):
        raise AssertionError(f"a tensor ({key}) was read while planning")

    monkeypatch.setattr(SafetensorsFile, "read", no_factors)
    real = ["--checkpoint", files["ckpt"], "--gemma", files["gemma"], "--device", "cpu"]
    lora = files["lora_for_ckpt"]
    argv = ["generate", *real, "--lora", f"{lora}:0.5", "--lora", lora, "--lora", f"{lora}:-2e-1"]
    plan = cli.plan_generate(cli.build_parser().parse_args(argv))
    assert plan.loras == [(lora, 0.5), (lora, 1.0), (lora, -0.2)] and plan.stage2_loras == []
    argv = ["generate", "--two-stage", *real, "--upsampler", files["upsampler"], "--stage2-lora", f"{lora}:1.5"]
    plan = cli.plan_generate(cli.build_parser().parse_args(argv))
    assert plan.loras == [] and plan.stage2_loras == [(lora, 1.5)]
    tiny_plan = cli.plan_generate(cli.build_parser().parse_args(["generate", "--lora", files["lora"] + ":0"]))
    assert tiny_plan.loras == [(files["lora"], 0.0)]
    assert not cli.plan_generate(cli.build_parser().parse_args(["generate"])).loras
    assert not os.listdir(tmp_path)


def test_lora_strength_is_split_at_the_last_colon_only_where_it_can_be_one(tmp_path):
    assert cli._split_lora("a.safetensors") == ("a.safetensors", None)
    assert cli._split_lora("dir:x/a.safetensors:0.8") == ("dir:x/a.safetensors", "0.8")
    assert cli._split_lora("C:\\loras\\a.safetensors") == ("C:\\loras\\a.safetensors", None)  # a Windows drive
    assert cli._split_lora("C:/loras/a.safetensors") == ("C:/loras/a.safetensors", None)
    odd = tmp_path / "style:v2.safetensors"  # a colon in an existing file's name is part of the name
    odd.write_bytes(b"")
    assert cli._split_lora(str(odd)) == (str(odd), None)
    assert cli._split_lora(f"{odd}:0.3") == (str(odd), "0.3")


def test_help_shows_defaults_without_markup(capsys):
    for argv in (["--help"], ["generate", "--help"], ["make-tiny-models", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "`" not in text
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 24)", "(default: 0)", "(default: ltx2)", "(default: none)", "(default: 768; 256"):
        assert default in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_line_never_lands_inside_the_progress_bar():
    stream = _Terminal()
    console = cli.Console(stream)
    logger = logging.getLogger("ltx_av.test_cli")
    handler = cli.ConsoleHandler(console)
    handler.setFormatter(cli._Format("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        console.progress("text", 1, 2)
        logger.warning("prompt is 1079 tokens; it was truncated")
        console.progress("text", 2, 2)
        console.progress("denoise", 1, 8)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().split("\n")
    assert lines[1] == "warning: prompt is 1079 tokens; it was truncated"  # on a line of its own
    assert lines[0].startswith("\r") and lines[0].endswith("1/2")
    assert lines[2].startswith("\r") and lines[2].endswith("2/2")
    assert lines[3].startswith("\r") and "denoise" in lines[3] and console.open
    # not a terminal (a log file): one line per update, no carriage returns
    plain = io.StringIO()
    cli.Console(plain).progress("denoise", 3, 8)
    assert plain.getvalue() == "      denoise [###########...................] 3/8\n"


def test_a_failed_write_leaves_nothing(tmp_path):
    plan = cli.Plan(**{f: None for f in cli.Plan.__dataclass_fields__})
    plan.output = str(tmp_path / "new" / "deeper" / "clip.mp4")
    plan.new_folders = [str(tmp_path / "new"), str(tmp_path / "new" / "deeper")]

    def half_then_full_disk(path):
        with open(path, "wb") as f:
            f.write(b"\0" * 1000)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        cli._write_atomically(plan, half_then_full_disk)
    assert not os.listdir(tmp_path)

    (tmp_path / "old.mp4").write_bytes(b"old")
    plan.output, plan.new_folders = str(tmp_path / "old.mp4"), []
    with pytest.raises(OSError):
        cli._write_atomically(plan, half_then_full_disk)
    assert os.listdir(tmp_path) == ["old.mp4"] and (tmp_path / "old.mp4").read_bytes() == b"old"
    cli._write_atomically(plan, lambda path: open(path, "wb").write(b"new"))
    assert os.listdir(tmp_path) == ["old.mp4"] and (tmp_path / "old.mp4").read_bytes() == b"new"
