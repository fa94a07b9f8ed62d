"""``python -m ltx_av generate --seconds S``: a long video chained from segments headless, on the tiny built-in
model (loaded once for the module; 64x64, 2 steps). The .mp4 is read back with PyAV and held against what the run
printed; the sampler's inputs and outputs are watched to see each segment's prompt and its kept overlap. Bad
values are refused as every ``generate`` argument is (tests/test_cli.py's contract: one line, exit status 2,
nothing loaded or written)."""

from __future__ import annotations

import re

import av
import numpy as np
import pytest
import torch
from test_cli import _refused, no_loading  # noqa: F401 (a fixture)

import ltx_av.__main__ as cli
from ltx_av.ltx_core import pipeline
from ltx_av.ltx_core.chain import plan_chain
from ltx_av.ltx_core.conditioning import KeyframeCondition
from ltx_av.ltx_core.latents import AUDIO_LATENTS_PER_SECOND

SMALL = ["--variant", "LTX-2.3", "--width", "64", "--height", "64", "--steps", "2", "-q"]  # the random tiny model
# 3 segments of 17, 25 and 25 frames sharing 9 with the one before: 49 frames, 2.04 s at 24 fps
THREE = ["--seconds", "2", "--segment-seconds", "0.67", "--overlap-seconds", "0.33"]
SAMPLE_RATE = 48000  # the tiny vocoder's

# (id, arguments, flag named, words the message must contain)
LONG_CASES = [
    ("seconds-zero", ["--seconds", "0"], "--seconds", "must be greater than 0; got 0"),
    ("seconds-negative", ["--seconds", "-5"], "--seconds", "greater than 0; got -5"),
    ("seconds-nan", ["--seconds", "nan"], "--seconds", "must be a finite number"),
    ("seconds-word", ["--seconds", "long"], "--seconds", "invalid float value: 'long'"),
    ("seconds-past-an-hour", ["--seconds", "3601"], "--seconds", "at most 3600; got 3601"),
    ("segment-seconds-zero", ["--seconds", "30", "--segment-seconds", "0"], "--segment-seconds", "greater than 0"),
    ("segment-too-short", ["--seconds", "30", "--segment-seconds", "0.5"], "--segment-seconds", "at least 17 frames"),
    ("overlap-zero", ["--seconds", "30", "--overlap-seconds", "0"], "--overlap-seconds", "greater than 0; got 0"),
    ("overlap-a-whole-segment", ["--seconds", "30", "--overlap-seconds", "5"], "--overlap-seconds", "at most 4.67 s"),
    (
        "overlap-of-short-segments",
        ["--seconds", "9", "--segment-seconds", "1", "--overlap-seconds", "0.9"],
        "--overlap-seconds",
        "too long for segments of 1 s",
    ),  # fmt: skip
    ("segment-seconds-alone", ["--segment-seconds", "5"], "--segment-seconds", "only used with --seconds"),
    ("overlap-seconds-alone", ["--overlap-seconds", "1"], "--overlap-seconds", "only used with --seconds"),
    ("prompts-without-seconds", ["--prompt", "a", "--prompt", "b"], "--prompt", "was given 2 times; several"),
    (
        "more-prompts-than-segments",
        ["--seconds", "6", "--prompt", "a", "--prompt", "b", "--prompt", "c"],
        "--prompt",
        "given 3 times but the video has 2 segment(s) (2 segment(s), 145 frames",
    ),  # fmt: skip
    ("second-prompt-bad", ["--seconds", "30", "--prompt", "a", "--prompt", "b \ud83d"], "--prompt", "lone surrogate"),
    ("frames-with-seconds", ["--seconds", "30", "--frames", "121"], "--frames", "leave --frames out"),
    ("two-stage-with-seconds", ["--seconds", "30", "--two-stage"], "--two-stage", "not supported with --seconds"),
    (
        "seed-past-the-last-segment",
        ["--seconds", "30", "--seed", str(2**64 - 3)],
        "--seed",
        "at most 18446744073709551610",
    ),  # fmt: skip
    (
        "image-frame-past-the-video",
        ["--seconds", "10", "--image", "{png}", "--image-frame", "241"],
        "--image-frame",
        "between -241 and 240; got 241",
    ),  # fmt: skip
    ("fps-zero", ["--seconds", "30", "--fps", "0"], "--fps", "greater than 0; got 0"),
    (
        "segment-past-20-s",
        ["--seconds", "60", "--segment-seconds", "19.5"],
        "--segment-seconds",
        "its segments last up to 20.71 s, but LTX-2.x generates up to about 20 s at once",
    ),
    (
        "segment-too-large",
        ["--seconds", "60", "--segment-seconds", "18", "--width", "8192", "--height", "8192"],
        "--segment-seconds",
        "433 frames of 8192x8192: the decoded segment",
    ),  # fmt: skip
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("cli_long_inputs")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(root / "frame.png")
    # test_cli's _refused expands "{real}" into these: no case here uses them
    return {"tmp": str(root), "png": str(root / "frame.png"), "ckpt": "", "gemma": ""}


@pytest.mark.usefixtures("no_loading")
@pytest.mark.parametrize(("args", "flag", "words"), [c[1:] for c in LONG_CASES], ids=[c[0] for c in LONG_CASES])
def test_generate_refuses_a_bad_long_video_before_loading(args, flag, words, files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _refused(["generate", *args], files, tmp_path, capsys)
    assert line.startswith(f"error: {flag}: "), line
    assert words in line, line


@pytest.mark.usefixtures("no_loading")
def test_long_arguments_are_planned_without_loading(files, tmp_path, monkeypatch):
    """The defaults are the long-video workflow's: 5 s segments sharing 1 s. --seconds 30 at 24 fps: 721 frames
    in 6 segments (121 frames, then 5 x 145 adding 120 each); every segment is checked as a clip (the longest)."""
    monkeypatch.chdir(tmp_path)
    plan = cli.plan_generate(cli.build_parser().parse_args(["generate", "--seconds", "30", "--prompt", "a"]))
    assert plan.chain.frames == 721 and [s.frames for s in plan.chain.segments] == [121] + [145] * 5
    assert [len(e.overlap) for e in plan.chain.extensions] == [25] * 5 and plan.frames == 145
    assert plan.prompts == ["a"] and plan.prompt == "a"
    plan = cli.plan_generate(cli.build_parser().parse_args(["generate", "--seconds", "12", "--image", files["png"],
                                                            "--image-frame", "-1"]))  # fmt: skip
    # the 168 new frames after the first segment are shared evenly, not 120 + a sliver of 48
    assert [s.frames for s in plan.chain.segments] == [121, 113, 105] and plan.chain.frames == 289
    assert plan.image_frame == -1 and plan.chain.owner(-1) == (2, 104)
    assert cli.plan_generate(cli.build_parser().parse_args(["generate"])).chain is None  # one clip, as before
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The built-in model, loaded once for the module."""
    return pipeline.tiny_pipeline(str(tmp_path_factory.mktemp("tiny_long")), "LTX-2.3")


@pytest.fixture
def run(tiny, monkeypatch, tmp_path, capsys):
    """``generate`` in-process with the module's model; returns (printed lines, the sampler calls: keyword
    arguments with the latents each call returned)."""
    monkeypatch.setattr(pipeline, "tiny_pipeline", lambda folder, variant, **kw: tiny)
    calls = []
    real = tiny.sample_latents

    def watched(positive, negative, video, audio, **kwargs):
        out = real(positive, negative, video, audio, **kwargs)
        calls.append(dict(kwargs, positive=positive, video_in=video, audio_in=audio, video=out[0], audio=out[1]))
        return out

    monkeypatch.setattr(tiny, "sample_latents", watched)

    def go(*args: str) -> tuple[list[str], list[dict]]:
        calls.clear()
        capsys.readouterr()
        cli.main(["generate", *SMALL, *args])
        return capsys.readouterr().out.splitlines(), list(calls)

    return go


def _read(path) -> tuple[np.ndarray, np.ndarray, int]:
    """(frames [F, H, W, 3], audio [2, N], the audio's sample rate) of an .mp4."""
    with av.open(str(path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        container.seek(0)
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
        return frames, audio, container.streams.audio[0].rate


def test_seconds_writes_one_mp4_as_long_as_its_plan_with_continuous_sound(run, tiny, files, tmp_path):
    """Three segments, two prompts (the second goes on for the third segment), an image at frame 30 of the whole
    video: the file holds exactly the frames the run printed and sound for all of them; each extension starts
    from the previous segment's latents, and its kept overlap (video and audio) leaves the sampler unchanged."""
    out = tmp_path / "long.mp4"
    argv = [*THREE, "--prompt", "a red car", "--prompt", "a blue boat", "--seed", "5"]
    printed, calls = run(*argv, "--image", files["png"], "--image-frame", "30", "--output", str(out))
    text = "\n".join(printed)
    summary = re.search(r"long video: 3 segment\(s\), (\d+) frames \(([\d.]+) s at 24 fps", text)
    assert summary, text
    frames, seconds = int(summary[1]), float(summary[2])
    assert frames == 49 and seconds == 2.04
    assert (
        f"({frames} frames 64x64 at 24 fps, {seconds:.2f} s, {SAMPLE_RATE} Hz stereo audio of {seconds:.2f} s)" in text
    )
    for i, prompt in enumerate(["1 'a red car'", "2 'a blue boat'", "2 'a blue boat'"]):
        assert printed[-3 + i].startswith(f"segment {i + 1}: ") and printed[-3 + i].endswith(f"prompt {prompt}")

    video, audio, rate = _read(out)
    assert video.shape == (frames, 64, 64, 3) and rate == SAMPLE_RATE
    # the soundtrack lasts as long as the frames (the decoder rounds up to its 1024-sample AAC frames)
    expected = frames / 24 * SAMPLE_RATE
    latent = SAMPLE_RATE / AUDIO_LATENTS_PER_SECOND
    assert abs(audio.shape[1] - expected) < latent, (audio.shape, expected)
    # no gap: every 10 ms carries the (loud, random-weight) sound up to the last audio latent frame, which the
    # decoded audio may stop short of (as a single clip's does)
    window = SAMPLE_RATE // 100
    loud = np.sqrt(
        (audio[:, : int(expected - latent) // window * window].reshape(2, -1, window) ** 2).mean(axis=(0, 2))
    )
    assert loud.min() > 0.2 * np.median(loud), loud.min()

    plan = plan_chain(2, 24.0, 0.67, 0.33)
    assert len(calls) == 3 and [c["seed"] for c in calls] == [5, 6, 7]
    with torch.inference_mode():
        red, blue = tiny.encode("a red car"), tiny.encode("a blue boat")
    for call, prompt in zip(calls, (red, blue, blue), strict=True):
        # (encoded here on other threads than the run's: equal to rounding; the two prompts differ by ~1)
        torch.testing.assert_close(call["positive"].video, prompt.video, rtol=0, atol=1e-4)
    assert calls[0]["video_mask"] is None and calls[0]["audio_mask"] is None
    for i, extension in enumerate(plan.extensions):
        previous, call = calls[i], calls[i + 1]
        source, target = extension.kept_source, extension.kept_target
        kept = previous["video"][:, :, source.start : source.stop]
        assert torch.equal(call["video_in"][:, :, target.start : target.stop], kept)
        assert torch.equal(call["video"][:, :, target.start : target.stop], kept)  # unchanged by the sampler
        a_source, a_target = extension.audio_source, extension.audio_target
        assert len(a_target) >= 8  # 9 frames at 24 fps = 0.375 s: 8 whole 40 ms latents after the boundary
        heard = previous["audio"][:, :, a_source.start : a_source.stop]
        assert torch.equal(call["audio"][:, :, a_target.start : a_target.stop], heard)
        assert call["audio"][:, :, a_target.stop :].abs().sum() > 0  # the rest is new sound
    # frame 30 of the video is frame 22 of segment 2 (segment 1 ends at frame 16)
    assert [len(c["conditions"]) for c in calls] == [0, 1, 0]
    (image,) = calls[1]["conditions"]
    assert isinstance(image, KeyframeCondition) and image.frame_index == 22


def test_seconds_shorter_than_a_segment_is_one_segment_made_as_a_single_clip(run, tmp_path):
    """--seconds 0.7 (17 frames) under the 5 s default segment: one segment, said so, and the same picture and
    sound as the single clip of --frames 17 (the chain's first segment is today's generation)."""
    printed, calls = run("--seconds", "0.7", "--output", str(tmp_path / "long.mp4"))
    assert len(calls) == 1
    text = "\n".join(printed)
    assert "long video: 1 segment(s), 17 frames (0.71 s at 24 fps; asked 0.7 s" in text
    assert "--seconds 0.7 is no longer than one segment (--segment-seconds 5): one segment, nothing joined" in text
    run("--frames", "17", "--output", str(tmp_path / "clip.mp4"))
    long_video, long_audio, _ = _read(tmp_path / "long.mp4")
    clip_video, clip_audio, _ = _read(tmp_path / "clip.mp4")
    assert long_video.shape[0] == 17 and np.array_equal(long_video, clip_video)
    # the clip's sound stops where its decoded audio does, a few ms short of its last frame; the long video's
    # soundtrack is padded with silence to the frames' exact length: the same sound before that
    same = clip_audio.shape[1] - 2048  # AAC codes overlapping 1024-sample frames: the last two see the end
    assert np.array_equal(long_audio[:, :same], clip_audio[:, :same])
