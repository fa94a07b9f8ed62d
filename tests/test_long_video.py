"""Long videos with sound: extension plans, the streaming join, and the nodes on the tiny LTX-2.3 model."""

from __future__ import annotations

import pytest
import torch

from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.extend import Segment, check_timeline, extend, overlap_room, plan_extension
from ltx_av.ltx_core.join import audio_placement, crossfade, join_audio, join_frames, joined_frames
from ltx_av.nodes import NODE_CLASS_MAPPINGS
from ltx_av.nodes.audio import load_audio
from ltx_av.nodes.long_video import NODES, LTXExtend, LTXJoin, LTXKeyframeAtTime
from ltx_av.nodes.model import load_transformer
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXSampler
from ltx_av.nodes.video import load_video

FPS = 24.0
# Two unguided steps: one forward each (guidance is the sampler's business, tested with it).
FAST = dict(schedule="ltx2", steps=2, stg_blocks="none", cfg_video=1.0, cfg_audio=1.0, modality_video=1.0)
FAST.update(modality_audio=1.0, stg_video=0.0, stg_audio=0.0)
# Tiny segments: 25 frames (4 latent frames) of 64x64; each extension keeps 1 latent frame and adds 2.
FRAMES, ADD, OVERLAP = 25, 16 / FPS, 8 / FPS


# -- plans ---------------------------------------------------------------------------------------------------------


def test_plan_snaps_to_whole_latent_frames_and_says_what_it_kept():
    source = Segment(0, 121, FPS)
    plan = plan_extension(source, 5.0, 1.0, "after", source_audio_frames=source.audio_frames)
    assert (plan.added, plan.kept) == (15, 3)  # 120 frames added, 3 x 8 frames + the boundary shared
    assert plan.segment == Segment(96, 145, FPS) and plan.segment.end == source.end + 120
    assert plan.kept_source == range(13, 16) and plan.kept_target == range(1, 4) and plan.keyframe is None
    assert list(plan.overlap) == list(range(25))
    # the audio kept is the same second of sound, moved by whole 40 ms latent frames
    assert plan.audio_source == range(101, 126) and plan.audio_target == range(1, 26)
    text = plan.describe()
    assert "adds 120 frames (5.00 s; asked 5 s" in text and "overlap: 25 frames (1.04 s; asked 1 s)" in text

    before = plan_extension(source, 0.1, 0.0, "before")  # less than a latent frame of each: one of each
    assert (before.added, before.kept, before.keyframe) == (1, 1, 8)
    assert before.segment == Segment(-8, 17, FPS) and before.kept_target == range(2, 3)
    # the overlap may keep at most what leaves the source a frame of its own
    assert plan_extension(source, 1.0, 100.0, "after").kept == 14
    with pytest.raises(InputError, match="no room for an overlap"):
        plan_extension(Segment(0, 9, FPS), 1.0, 1.0, "after")
    with pytest.raises(InputError, match="direction"):
        plan_extension(source, 1.0, 1.0, "sideways")


def test_audio_follows_the_video_within_half_a_latent_frame():
    for fps in (24.0, 25.0, 30.0, 23.976, 60.0):
        source = Segment(0, 97, fps)
        for kept_seconds in (0.3, 0.7, 1.0):
            plan = plan_extension(source, 2.0, kept_seconds, "after", source_audio_frames=source.audio_frames)
            assert abs(plan.segment.audio_offset_ms) <= 20.0
            # a kept audio frame holds the sound of the same moment as in the source
            shift_s = (plan.audio_source.start - plan.audio_target.start) / 25.0
            video_shift_s = plan.segment.start / fps
            assert abs(shift_s - video_shift_s) <= 0.02 + 1e-9


def test_overlap_room_stays_clear_of_the_neighbours_overlap():
    first, second = Segment(0, 49, FPS), Segment(40, 49, FPS)
    # extending after `second`: its own frames run from 49 (where `first` ends) to 88
    assert overlap_room(second, [first], "after") == (89 - 49 - 1) // 8
    assert overlap_room(first, [second], "before") == (40 - 0 - 1) // 8
    with pytest.raises(InputError, match="overlaps the one at"):
        check_timeline([Segment(0, 49, FPS), Segment(24, 49, FPS), Segment(40, 49, FPS)])
    with pytest.raises(InputError, match="gap of 1 frames"):
        check_timeline([Segment(0, 9, FPS), Segment(10, 9, FPS)])
    with pytest.raises(InputError, match="frame rates"):
        check_timeline([Segment(0, 9, FPS), Segment(8, 9, 25.0)])


def test_extension_latents_hold_the_kept_frames_with_their_strength():
    source = Segment(0, 33, FPS)
    video, audio = torch.randn(1, 128, 5, 2, 2), torch.randn(1, 8, source.audio_frames, 16)
    plan = plan_extension(source, 16 / FPS, 16 / FPS, "before", source_audio_frames=audio.shape[2])
    made = extend(plan, video, audio, strength=0.75)
    assert made.video.shape == (1, 128, 5, 2, 2) and torch.equal(made.video[:, :, 3:5], video[:, :, 1:3])
    assert not made.video[:, :, :3].any() and made.video_mask.flatten().tolist() == [1, 1, 1, 0.25, 0.25]
    (keyframe,) = made.conditions
    assert keyframe.frame_index == 16 and keyframe.strength == 0.75 and torch.equal(keyframe.latent, video[:, :, :1])
    assert torch.equal(made.audio[:, :, plan.audio_target.start :], audio[:, :, 1 : 1 + len(plan.audio_source)])
    assert made.audio_mask[0, 0, :, 0].tolist().count(0.25) == len(plan.audio_target)
    assert extend(plan, video, audio, strength=0.0).conditions == ()


# -- the join --------------------------------------------------------------------------------------------------------


def _numbered(segment: Segment, run: int = 5):
    """A segment's frames as runs of ``run``, each frame holding its timeline index (so a join that puts every
    frame in its place gives 0, 1, 2, ... whatever it blends)."""
    frames = torch.arange(segment.start, segment.end, dtype=torch.float32).view(-1, 1, 1)
    return [(i, frames[i : i + run]) for i in range(0, segment.frames, run)]


def test_joined_frames_are_each_timeline_frame_once():
    first = Segment(-16, 41, FPS)
    second = Segment(16, 33, FPS)
    third = Segment(40, 57, FPS)
    segments = [first, second, third]
    runs = [_numbered(s) for s in segments]
    runs[1] = runs[1][:3] + runs[1]  # a decoder that retried sends its first runs again
    out = torch.cat(list(join_frames(segments, runs)))
    assert out.shape[0] == joined_frames(segments) == 113
    torch.testing.assert_close(out.flatten(), torch.arange(-16, 97, dtype=torch.float32))


def test_join_blends_linearly_and_holds_only_the_overlap():
    first, second = Segment(0, 17, FPS), Segment(8, 17, FPS)
    held = []

    def runs(value: float, segment: Segment):
        for i in range(segment.frames):
            held.append(i)
            yield i, torch.full((1, 1), value)

    chunks = join_frames([first, second], [runs(0.0, first), runs(1.0, second)])
    out = []
    for chunk in chunks:
        out.append(chunk)
        # frames come out as soon as they are final: never more than the overlap behind what was read
        assert len(held) - sum(c.shape[0] for c in out) <= 9
    out = torch.cat(out).flatten()
    assert out.shape[0] == 25 and not out[:8].any() and (out[17:] == 1).all()
    torch.testing.assert_close(out[8:17], crossfade(9))


def test_joined_audio_is_placed_by_latent_frame_and_lasts_as_long_as_the_video():
    rate = 48000
    segments = [Segment(-16, 41, FPS), Segment(16, 33, FPS), Segment(40, 57, FPS)]
    starts, total = audio_placement(segments, rate)
    assert total == round(113 / FPS * rate)
    origin = round(-16 / FPS * rate)
    waveforms = []
    for segment, start in zip(segments, starts, strict=True):
        # decoded audio ends a few ms before its video does: (4T - 3) mel frames of 10 ms
        n = (4 * segment.audio_frames - 3) * rate // 100
        waveforms.append(torch.arange(start + origin, start + origin + n, dtype=torch.float32).repeat(2, 1))
    out = join_audio(segments, waveforms, rate)
    assert out.shape == (2, total)
    covered = starts[-1] + waveforms[-1].shape[1]
    expected = torch.arange(origin, origin + covered, dtype=torch.float32)
    lead = max(0, starts[0])  # the first segment's audio may start a few ms after its video
    torch.testing.assert_close(out[0, lead:covered], expected[lead:covered])
    assert not out[:, covered:].any() and total - covered < rate // 20


# -- the nodes on the tiny model --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_checkpoints):
    path = tiny_checkpoints["LTX-2.3"]
    model = load_transformer(path, device="cpu", offload_device="cpu")
    vae = load_video(path, device="cpu", offload_device="cpu", parts=("encoder", "decoder"))
    audio_vae = load_audio(path, device="cpu", offload_device="cpu")
    return model, vae, audio_vae


def _conditioning(model, seed: int) -> list:
    c = model.config
    dv, da = (c.caption_channels, c.caption_channels) if c.text_path_version == 1 else (c.video_dim, c.audio_dim)
    g = torch.Generator().manual_seed(seed)
    signature = {"variant": model.variant, "video_dim": dv, "audio_dim": da, "checkpoint": "tiny"}
    return [
        [
            torch.randn(1, 7, dv, generator=g),
            {"ltx_audio_context": torch.randn(1, 7, da, generator=g), "ltx_text_path": signature},
        ]
    ]


def _sample(model, video: dict, audio: dict | None, seed: int, prompt: int = 1) -> tuple[dict, dict]:
    return LTXSampler().run(model, _conditioning(model, prompt), video, seed, audio_latent=audio, **FAST)


@pytest.fixture(scope="module")
def chain(tiny):
    """A first segment and one extension after it, both sampled (prompts differ per segment)."""
    model = tiny[0]
    video, audio = LTXEmptyLatent().make(64, 64, FRAMES, FPS)
    first = _sample(model, video, audio, seed=1, prompt=1)
    ext_video, ext_audio, info = LTXExtend().extend(first[0], ADD, OVERLAP, "after", 1.0, audio_latent=first[1])
    second = _sample(model, ext_video, ext_audio, seed=2, prompt=2)
    return first, (ext_video, ext_audio, info), second


@pytest.fixture(scope="module")
def joined(tiny, chain):
    """A third segment after the chain's two, and the three joined (video and sound)."""
    model, vae, audio_vae = tiny
    second = chain[2]
    video, audio, _ = LTXExtend().extend(second[0], ADD, OVERLAP, "after", 1.0, audio_latent=second[1])
    third = _sample(model, video, audio, seed=3, prompt=3)
    return third, LTXJoin().join(vae, third[0], audio_vae, third[1])


def test_nodes_are_registered_with_tooltips():
    for cls in NODES:
        assert NODE_CLASS_MAPPINGS[cls.__name__] is cls and cls.CATEGORY == "LTX-AV/long video"
        for section in cls.INPUT_TYPES().values():
            assert all(options.get("tooltip") for _, options in section.values()), cls.__name__


@pytest.mark.parametrize("direction", ["after", "before"])
def test_kept_overlap_tokens_are_unchanged_after_sampling(tiny, chain, direction):
    first = chain[0]
    video, audio, info = LTXExtend().extend(first[0], ADD, OVERLAP, direction, 1.0, audio_latent=first[1])
    assert "overlap: 9 frames" in info
    out_video, out_audio = _sample(tiny[0], video, audio, seed=5, prompt=3)
    source_video = first[0]["samples"]
    if direction == "after":  # [boundary, kept, new, new] <- the source's last latent frame
        assert torch.equal(out_video["samples"][:, :, 1:2], source_video[:, :, 3:4])
    else:  # [new, new, new, kept] <- the source's second latent frame, its first as a keyframe
        assert torch.equal(out_video["samples"][:, :, 3:4], source_video[:, :, 1:2])
        assert video["ltx_conditions"][0]["index"] == 16
    kept = audio["noise_mask"][0, 0, :, 0] == 0
    assert kept.sum() >= 7  # about the overlap's 0.33 s of sound, at 25 latent frames per second
    held = audio["samples"][:, :, kept]
    assert torch.equal(out_audio["samples"][:, :, kept], held) and held.abs().sum() > 0
    # and the rest was generated
    assert not torch.equal(out_audio["samples"][:, :, ~kept], audio["samples"][:, :, ~kept])


@pytest.mark.parametrize("direction", ["after", "before"])
def test_zero_strength_overlap_is_a_plain_generation(tiny, chain, direction):
    first = chain[0]
    video, audio, _ = LTXExtend().extend(first[0], ADD, OVERLAP, direction, 0.0, audio_latent=first[1])
    assert "ltx_conditions" not in video
    extended = _sample(tiny[0], video, audio, seed=7, prompt=3)
    frames = 1 + 8 * (video["samples"].shape[2] - 1)
    plain = _sample(tiny[0], *LTXEmptyLatent().make(64, 64, frames, FPS), seed=7, prompt=3)
    assert torch.equal(extended[0]["samples"], plain[0]["samples"])
    assert torch.equal(extended[1]["samples"], plain[1]["samples"])


def test_join_gives_exactly_the_timeline_in_frames_and_samples(tiny, chain, joined):
    vae = tiny[1]
    third, (images, sound, fps, info) = joined
    assert [len(third[0]["ltx_chain"]), third[0]["ltx_segment"]["start"]] == [2, 32]  # it travelled through the sampler
    frames = FRAMES + 16 + 16  # each extension adds 2 latent frames: 16 frames, nothing twice
    assert images.shape == (frames, 64, 64, 3) and fps == FPS and "3 segment(s), 57 frames" in info
    assert sound["waveform"].shape == (1, 2, round(frames / FPS * sound["sample_rate"]))
    assert 0 <= images.min() and images.max() <= 1
    # outside the overlaps the frames are each segment's own decode
    torch.testing.assert_close(images[:16], _frames(vae, chain[0][0])[:16])
    torch.testing.assert_close(images[41:], _frames(vae, third[0])[9:])


def test_extending_backwards_then_forwards_keeps_one_timeline(tiny, chain):
    model, vae, _ = tiny
    first = chain[0]
    video, audio, _ = LTXExtend().extend(first[0], ADD, OVERLAP, "before", 1.0, audio_latent=first[1])
    earlier = _sample(model, video, audio, seed=4, prompt=4)
    assert earlier[0]["ltx_segment"] == {"start": -16, "frames": 25, "frame_rate": FPS}
    # extending "after" from the earlier segment continues the end of the long video: the first segment's end
    video, audio, info = LTXExtend().extend(earlier[0], ADD, OVERLAP, "after", 1.0, audio_latent=earlier[1])
    assert "continues the long video's last segment" in info
    assert video["ltx_segment"]["start"] == FRAMES - 9
    assert torch.equal(video["samples"][:, :, 1:2], first[0]["samples"][:, :, 3:4])
    later = _sample(model, video, audio, seed=5, prompt=5)
    starts = [entry["video"]["ltx_segment"]["start"] for entry in later[0]["ltx_chain"]]
    assert sorted(starts) == [-16, 0]
    images, sound, _, info = LTXJoin().join(vae, later[0])  # the picture only (the sound is joined elsewhere)
    assert images.shape[0] == 16 + FRAMES + 16 and sound is None  # from frame -16 to frame 40
    assert "segment 1: frames -16..8" in info and "segment 3: frames 16..40" in info
    segments = [Segment(**entry["video"]["ltx_segment"]) for entry in later[0]["ltx_chain"]]
    segments = sorted([*segments, Segment(**later[0]["ltx_segment"])], key=lambda s: s.start)
    starts, samples = audio_placement(segments, 48000)
    assert samples == 57 * 2000  # 2000 samples a frame at 24 fps
    # each segment's sound starts with its picture, to the nearest 40 ms audio latent frame
    assert all(abs(start - 2000 * (s.start + 16)) <= 960 for start, s in zip(starts, segments, strict=True))


def test_keyframe_at_time_goes_to_the_segments_own_frame(tiny, chain):
    vae = tiny[1]
    ext_video = chain[1][0]  # starts at frame 16; frames 16..24 are the kept overlap
    image = torch.rand(1, 64, 64, 3)
    (out,) = LTXKeyframeAtTime().condition(vae, image, ext_video, 36 / FPS, 1.0, 0)
    assert out["ltx_conditions"][-1]["index"] == 20 and out["ltx_conditions"][-1]["kind"] == "keyframe"
    with pytest.raises(InputError, match="kept overlap"):
        LTXKeyframeAtTime().condition(vae, image, ext_video, 20 / FPS, 1.0, 0)
    with pytest.raises(InputError, match=r"outside this segment, which covers frames 16..40"):
        LTXKeyframeAtTime().condition(vae, image, ext_video, 2.0, 1.0, 0)


def test_join_refuses_segments_that_do_not_fit_together(tiny, chain):
    vae = tiny[1]
    second = chain[2]
    resized = {**second[0], "samples": torch.zeros(1, 128, 7, 2, 2)}
    with pytest.raises(InputError, match="made by Extend \\(long video\\) for 25 frames but now holds 49"):
        LTXJoin().join(vae, resized)
    bigger = {**second[0], "samples": torch.zeros(1, 128, 4, 4, 4)}
    with pytest.raises(InputError, match="segments differ in size"):
        LTXJoin().join(vae, bigger)
    with pytest.raises(InputError, match="earlier segment 1 has no 'ltx_segment'"):
        LTXJoin().join(vae, {**second[0], "ltx_chain": [{"video": chain[0][0], "audio": None}]})
    with pytest.raises(InputError, match="has none; connect audio_latent"):
        LTXExtend().extend(second[0], ADD, OVERLAP, "after", 1.0)


def _steps(frames: torch.Tensor) -> torch.Tensor:
    """Mean absolute change from each frame to the next ``[F - 1]``."""
    return (frames[1:] - frames[:-1]).abs().flatten(1).mean(dim=1)


def _frames(vae, latent: dict) -> torch.Tensor:
    return vae.decode_latent(latent["samples"])[0].permute(1, 2, 3, 0).add(1).mul(0.5)


def test_continuity_across_the_seam(tiny, chain, joined):
    """Continuity figures for the README: how much the joined picture changes from frame to frame across the seam
    against inside a segment (and the same for two independent segments cut end to end), and how far the two
    decodes the cross-fade reconciles are apart (against two unrelated segments)."""
    model, vae, audio_vae = tiny
    first, _, second = chain
    images, sound, _, _ = joined[1]
    steps = _steps(images)
    inside = torch.cat([steps[1:15], steps[25:31], steps[41:]])  # frame 0 -> 1 is the causal first frame
    seam = steps[15:25]  # from the last frame of the first segment alone through the blend (frames 16..24)
    # the same prompts and seeds without an overlap: a plain second segment, cut end to end after the first
    plain = _sample(model, *LTXEmptyLatent().make(64, 64, FRAMES, FPS), seed=2, prompt=2)
    a, b, p = _frames(vae, first[0]), _frames(vae, second[0]), _frames(vae, plain[0])
    cut = _steps(torch.cat([a, p]))
    cut_inside = torch.cat([cut[1 : FRAMES - 1], cut[FRAMES + 1 :]])
    shared = (a[16:] - b[:9]).abs().mean()  # the first segment's last 9 frames and the extension's first 9
    unrelated = (a[16:] - p[:9]).abs().mean()
    (wa, rate), (wb, _), (wp, _) = (audio_vae.decode(x[1]["samples"]) for x in (first, second, plain))
    offset = round(second[0]["ltx_segment"]["start"] / FPS * 25) * rate // 25  # whole 40 ms audio latent frames
    n = wa.shape[-1] - offset
    audio_shared = (wa[..., offset:] - wb[..., :n]).abs().mean() / wa[..., offset:].abs().mean()
    audio_unrelated = (wa[..., offset:] - wp[..., :n]).abs().mean() / wa[..., offset:].abs().mean()
    ratio, cut_ratio = seam.mean() / inside.median(), cut[FRAMES - 1] / cut_inside.median()
    report = (
        f"frame-to-frame change across the seam {seam.mean():.4f} vs inside {inside.median():.4f} (x{ratio:.2f}); "
        f"two independent segments cut end to end: x{cut_ratio:.2f}. Decodes of the shared frames differ by "
        f"{shared:.3f} (unrelated segments {unrelated:.3f}); their sound by {audio_shared:.1%} (unrelated "
        f"{audio_unrelated:.1%})"
    )
    print("\ncontinuity on the tiny LTX-2.3 model:", report)  # noqa: T201
    # no jump, no repeated or dropped frame at the seam: the change there is the change inside
    assert 0.8 < seam.min() / inside.median() and seam.max() / inside.median() < 1.2, report
    assert sound["waveform"].abs().amax() <= 1.0
