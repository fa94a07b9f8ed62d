"""The demo world and the measures the demo model's quality test uses: the world's own clips must pass every
measure, a degraded copy (blur, noise, another sample rate) still must, and noise must not."""

from __future__ import annotations

import pytest
import torch

from ltx_av.ltx_core import demo_measure as measure
from ltx_av.ltx_core import demo_world as world
from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.mel import resample

# One clip per motion, both tones, every colour and shape (held-out pairs included).
CASES = [
    ("red", "ball", "moves left", "low hum", 1),
    ("green", "square", "moves right", "high beeps", 2),
    ("blue", "triangle", "moves up", "low hum", 3),
    ("yellow", "ball", "moves down", "high beeps", 4),
    ("red", "triangle", "bounces", "high beeps", 5),
    ("blue", "square", "bounces", "low hum", 6),
    ("green", "triangle", "bounces", "high beeps", 7),
]


@pytest.fixture(scope="module")
def clips():
    return [(world.make_scene(*case[:4], seed=case[4]),) + world.render(world.make_scene(*case[:4], seed=case[4]))
            for case in CASES]  # fmt: skip


def _check(scene, frames, waveform, rate):
    track = measure.centroid_track(frames)
    assert measure.dominant_colour(frames) == scene.colour
    assert measure.motion_direction(track) == scene.motion
    assert measure.tone_band(waveform, rate) == scene.tone
    onsets = measure.onset_frames(waveform, rate)
    assert measure.clicks_match(onsets, world.bounce_frames(scene)), (onsets, world.bounce_frames(scene))
    assert measure.clicks_match(onsets, measure.floor_contacts(track)), (onsets, measure.floor_contacts(track))


def test_the_worlds_own_clips_pass_every_measure(clips, one_thread):
    for scene, frames, waveform in clips:
        assert tuple(frames.shape) == (49, 160, 256, 3) and waveform.shape == (2, round(49 / 24 * 16000))
        _check(scene, frames, waveform, world.SAMPLE_RATE)
        assert measure.peak_dbfs(waveform) <= -1.0
        if scene.motion == "bounces":
            assert len(world.bounce_frames(scene)) == 1 and 18 <= world.bounce_frames(scene)[0] <= 20  # 0.8 s in


def test_the_measures_survive_blur_noise_and_another_sample_rate(clips, one_thread):
    g = torch.Generator().manual_seed(0)
    blur = torch.nn.AvgPool2d(5, stride=1, padding=2, count_include_pad=False)
    for scene, frames, waveform in clips[::2]:  # every kind of motion and both tones
        soft = blur(frames.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        noisy = (soft + 0.03 * torch.randn(soft.shape, generator=g)).clamp(0, 1)
        as_bytes = (noisy * 255).round().to(torch.uint8)
        audio = resample(waveform[None].double(), 16000, 48000)[0].float()
        audio = audio + 0.003 * torch.randn(audio.shape, generator=g)
        _check(scene, as_bytes, audio, 48000)


def test_noise_passes_no_measure():
    g = torch.Generator().manual_seed(1)
    static = torch.rand(49, 160, 256, 3, generator=g)
    assert measure.motion_direction(measure.centroid_track(static)) is None
    hiss = 0.3 * torch.randn(2, 32000, generator=g)
    assert measure.onset_times(hiss, 16000) == []  # steady broadband noise has no onsets
    assert measure.tone_band(torch.zeros(2, 16000), 16000) is None
    plain = torch.full((9, 32, 32, 3), 0.35)
    assert measure.dominant_colour(plain) is None


def test_scenes_are_deterministic_and_held_out_pairs_never_train():
    a, b = world.scene_from_seed(123), world.scene_from_seed(123)
    assert a == b and torch.equal(world.render_frames(a), world.render_frames(b))
    assert torch.equal(world.render_audio(a), world.render_audio(b))
    trained = {world.scene_from_seed(s) for s in range(150)}
    assert not any(s.held_out for s in trained)
    assert {(s.colour, s.shape) for s in trained} == {
        (c, s) for c in world.COLOURS for s in world.SHAPES
    } - world.HELD_OUT_PAIRS
    assert all(world.scene_from_seed(s, held_out=True).held_out for s in range(20))


def test_captions_follow_the_grammar():
    scene = world.make_scene("red", "ball", "moves left", "low hum", 0)
    assert scene.caption == "a red ball moves left, low hum"
    assert world.parse_caption("A Red Ball moves left, low hum ") == ("red", "ball", "moves left", "low hum")
    assert world.parse_caption("a purple ball moves left, low hum") is None
    every = world.all_captions()
    assert len(every) == 4 * 3 * 5 * 2 and len(set(every)) == len(every)
    assert set(world.all_captions(True)) | set(world.all_captions(False)) == set(every)
    with pytest.raises(InputError, match="colour must be one of .*got 'purple'"):
        world.make_scene("purple", "ball", "bounces", "low hum", 0)


def test_psnr_and_peak():
    a = torch.zeros(4, 4, 3)
    assert measure.psnr(a, a) == float("inf")
    assert measure.psnr(a, a + 0.1) == pytest.approx(20.0)
    assert measure.peak_dbfs(torch.tensor([0.5, -0.25])) == pytest.approx(-6.0206, abs=1e-3)


def test_the_quality_judge_passes_the_worlds_clips_and_fails_a_wrong_caption(clips):
    from ltx_av.ltx_core.demo_quality import judge

    for scene, frames, waveform in clips:
        verdict = judge(frames, waveform, world.SAMPLE_RATE, scene.caption)
        assert all(v is not False for v in verdict.values()), (scene.caption, verdict)
        assert (verdict["clicks"] is None) == (scene.motion != "bounces")
    scene, frames, waveform = clips[0]  # a red ball moving left with a low hum
    wrong = judge(frames, waveform, world.SAMPLE_RATE, "a blue ball moves right, high beeps")
    assert wrong == {"colour": False, "motion": False, "tone": False, "clicks": None}
    with pytest.raises(ValueError, match="not a caption"):
        judge(frames, waveform, world.SAMPLE_RATE, "a cat")


def test_the_worlds_tones_repeat_every_mel_frame():
    """The vocoder learns the sound sample by sample, which only works if a stretch of it follows from its mel
    frames: every tone's phase repeats after one frame (160 samples at 16 kHz), wherever the clip is cut."""
    hop = int(world.SAMPLE_RATE / world.FRAME_HZ)
    hum = world.render_audio(world.make_scene("blue", "ball", "moves up", "low hum", 3))  # upright: a steady pan
    assert torch.allclose(hum[:, 8000:12000], hum[:, 8000 + hop : 12000 + hop], atol=1e-5)
    beeps = world.render_audio(world.make_scene("green", "square", "moves up", "high beeps", 4))
    for k in range(1, 8):  # the steady middle of each beep, whose pitch is that of the shape's height at its start
        start = int((k / world.BEEPS_PER_SECOND + 0.02) * world.SAMPLE_RATE)
        stop = start + int(0.07 * world.SAMPLE_RATE) - hop
        assert torch.allclose(beeps[:, start:stop], beeps[:, start + hop : stop + hop], atol=1e-5)
    pitches = {world.make_scene("red", "ball", "bounces", "high beeps", s).pitch for s in range(30)}
    assert pitches == {1200.0, 1300.0, 1400.0}
