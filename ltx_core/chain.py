"""A long video headless (``python -m ltx_av generate --seconds S``): segments chained one after another and joined
into one .mp4 with one continuous soundtrack, as the long-video workflow does with Extend and Join.

:func:`plan_chain` lays the segments out on the timeline before anything loads: the first segment lasts about
``segment_seconds``; each next one extends the last after its end (:func:`.extend.plan_extension`), sharing about
``overlap_seconds`` with it and adding about ``segment_seconds`` of new time, until the video is ``seconds`` long
(snapped to 8k+1 frames). The new time is spread evenly over the extensions, so no segment ends up a sliver.

:func:`sample_chain` samples the segments in order, each with its own prompt and seed: the first as a single clip
is sampled, each next one from :func:`.extend.extend`'s latents, whose overlap holds the previous segment's last
latent frames and audio as tokens the sampler keeps, so the new part continues both picture and sound.

:func:`write_chain` decodes and joins them: every segment's audio is decoded and cross-faded whole (it is small),
then the frames are decoded one segment at a time, cross-faded over each overlap (:func:`.join.join_frames`) and
encoded as soon as they are final (:class:`.media.Mp4Writer`), so memory follows one segment, not the video.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import checks
from .audio import limit_peak
from .conditioning import audio_denoise_mask, video_denoise_mask
from .errors import InputError
from .extend import LONGEST_SEGMENT_SECONDS, ExtensionPlan, Segment, extend, overlap_room, plan_extension
from .join import join_audio, join_frames
from .latents import TIME_COMPRESSION
from .media import Mp4Writer

# What one step reports: (stage, done, total).
Report = Callable[[str, int, int], None]

# The longest video planned: far past any useful run (segments are sampled one after another), short of a typo
# (3000000) that would plan days of work.
MAX_SECONDS = 3600.0


def nearest_frames(seconds: float, frame_rate: float) -> int:
    """The 8k+1 frame count nearest ``seconds`` at ``frame_rate`` (at least 1; half rounds up)."""
    return TIME_COMPRESSION * max(0, math.floor((seconds * frame_rate - 1) / TIME_COMPRESSION + 0.5)) + 1


@dataclass(frozen=True)
class ChainPlan:
    """The segments of a long video in timeline order (the first at frame 0) and how each later one extends the
    one before (``extensions[i]`` makes ``segments[i + 1]``)."""

    seconds: float  # asked for
    segment_seconds: float
    overlap_seconds: float
    segments: tuple[Segment, ...]
    extensions: tuple[ExtensionPlan, ...]

    @property
    def frame_rate(self) -> float:
        return self.segments[0].frame_rate

    @property
    def frames(self) -> int:
        """Frames of the joined video."""
        return self.segments[-1].end

    def owner(self, frame: int) -> tuple[int, int]:
        """(segment index, its own frame) that shows the video's ``frame`` (negative: from the end): the earliest
        segment holding it, as a later one only keeps the frames it shares with that one."""
        frame = frame if frame >= 0 else self.frames + frame
        for i, segment in enumerate(self.segments):
            if segment.start <= frame < segment.end:
                return i, frame - segment.start
        raise InputError(f"frame {frame} is outside the video's {self.frames} frames")

    def describe(self) -> list[str]:
        """One line for the whole video, then one per segment, in frames and seconds."""
        fps = self.frame_rate
        lines = [
            f"{len(self.segments)} segment(s), {self.frames} frames ({self.frames / fps:.2f} s at {fps:g} fps; asked "
            f"{self.seconds:g} s, whole latent frames of 8)"
        ]
        for i, segment in enumerate(self.segments):
            line = f"segment {i + 1}: {segment.describe()}"
            if i:
                shared, added = len(self.extensions[i - 1].overlap), segment.end - self.segments[i - 1].end
                line += f", {shared} frames ({shared / fps:.2f} s) shared with segment {i}, {added} new"
            lines.append(line)
        return lines


def plan_chain(
    seconds: float,
    frame_rate: float,
    segment_seconds: float = 5.0,
    overlap_seconds: float = 1.0,
    names: dict[str, str] | None = None,
) -> ChainPlan:
    """Plan a video of about ``seconds`` in segments of about ``segment_seconds`` sharing about ``overlap_seconds``
    with the one before (see the module). A video no longer than one segment is one segment of that length.
    ``names`` maps ``seconds`` / ``segment_seconds`` / ``overlap_seconds`` to how the caller's user knows them
    (the command line: ``--seconds``, ...); every message starts with that name."""
    n = {"seconds": "seconds", "segment_seconds": "segment_seconds", "overlap_seconds": "overlap_seconds"}
    n |= names or {}
    seconds = checks.number(seconds, n["seconds"], above=0.0, maximum=MAX_SECONDS)
    segment_seconds = checks.number(segment_seconds, n["segment_seconds"], above=0.0, maximum=MAX_SECONDS)
    overlap_seconds = checks.number(overlap_seconds, n["overlap_seconds"], above=0.0, maximum=MAX_SECONDS)
    total = nearest_frames(seconds, frame_rate)
    first = nearest_frames(segment_seconds, frame_rate)
    if total <= first:
        return ChainPlan(seconds, segment_seconds, overlap_seconds, (Segment(0, total, frame_rate),), ())
    shortest = 2 * TIME_COMPRESSION + 1  # 3 latent frames: its first frame alone, one of its own, one the next keeps
    if first < shortest:
        raise InputError(
            f"{n['segment_seconds']} is {segment_seconds:g} s, {first} frames at {frame_rate:g} fps; a segment that is "
            f"extended needs at least {shortest} frames ({shortest / frame_rate:.2f} s)"
        )
    # New latent frames after the first segment, spread evenly over as few extensions as add at most about
    # segment_seconds each (the larger shares first).
    remaining = (total - first) // TIME_COMPRESSION
    per_extension = max(1, math.floor(segment_seconds * frame_rate / TIME_COMPRESSION + 0.5))
    count = -(-remaining // per_extension)
    shares = [remaining // count + (1 if i < remaining % count else 0) for i in range(count)]
    kept = max(1, math.floor(overlap_seconds * frame_rate / TIME_COMPRESSION + 0.5))
    # Every extended segment keeps a latent frame of its own beyond what it shares with both neighbours
    # (.extend.overlap_room): the first one beyond its end's overlap, each later one between its two overlaps.
    most = min([(first - 2) // TIME_COMPRESSION, *(share - 1 for share in shares[:-1])])
    if kept > most:
        raise InputError(
            f"{n['overlap_seconds']} is {overlap_seconds:g} s ({TIME_COMPRESSION * kept + 1} frames shared), too long "
            f"for segments of {segment_seconds:g} s, which must keep frames of their own between overlaps; at most "
            f"{TIME_COMPRESSION * most / frame_rate:.2f} s here (or a longer {n['segment_seconds']})"
        )
    # The longest segment these lengths can make, whatever --seconds spreads over them: the rule stays one rule.
    longest = max(first, 1 + TIME_COMPRESSION * (kept + per_extension)) / frame_rate
    if longest > LONGEST_SEGMENT_SECONDS:
        raise InputError(
            f"{n['segment_seconds']} is {segment_seconds:g} s: with the overlap its segments last up to "
            f"{longest:.2f} s, but LTX-2.x generates up to about {LONGEST_SEGMENT_SECONDS:g} s at once; keep "
            f"{n['segment_seconds']} plus {n['overlap_seconds']} within {LONGEST_SEGMENT_SECONDS:g} s"
        )
    segments, extensions = [Segment(0, first, frame_rate)], []
    for share in shares:
        last = segments[-1]
        plan = plan_extension(
            last,
            share * TIME_COMPRESSION / frame_rate,
            overlap_seconds,
            "after",
            room=overlap_room(last, segments[:-1], "after"),
            source_audio_frames=last.audio_frames,
        )
        segments.append(plan.segment)
        extensions.append(plan)
    return ChainPlan(seconds, segment_seconds, overlap_seconds, tuple(segments), tuple(extensions))


@dataclass
class SampledSegment:
    """One sampled segment: its latents, and the generator its decode continues (LTX-2.5's diffusion decoder)."""

    video: torch.Tensor
    audio: torch.Tensor
    generator: torch.Generator


def segment_prompts(prompts: Sequence[str], count: int) -> list[str]:
    """The prompt of each of ``count`` segments: one each in order, the last repeated."""
    return [prompts[min(i, len(prompts) - 1)] for i in range(count)]


@torch.inference_mode()
def sample_chain(
    pipe,
    plan: ChainPlan,
    *,
    prompts: Sequence[str],
    negative_prompt: str,
    width: int,
    height: int,
    steps: int | None,
    schedule: str,
    seed: int,
    image: torch.Tensor | None = None,
    image_frame: int = 0,
    image_strength: float = 1.0,
    image_crf: int | None = None,
    overlap_strength: float = 1.0,
    report: Report | None = None,
) -> list[SampledSegment]:
    """Sample every segment of ``plan`` with ``pipe`` (a :class:`~.pipeline.Pipeline`): segment i with prompt i
    (:func:`segment_prompts`) and seed ``seed + i``; ``image`` becomes the video's frame ``image_frame`` (negative:
    from the end) in the segment that shows it first."""
    from .pipeline import check_request, default_image_crf

    if isinstance(prompts, str) or not prompts:
        raise InputError(f"prompts must be a list of one prompt or more; got {prompts!r}")
    if len(prompts) > len(plan.segments):
        raise InputError(f"{len(prompts)} prompts for {len(plan.segments)} segment(s); give at most one per segment")
    for text in prompts[1:]:
        checks.text(text, "prompts")
    last = len(plan.segments) - 1
    check_request(  # the longest segment stands for them all; the last seed must exist too
        prompt=prompts[0],
        negative_prompt=negative_prompt,
        width=width,
        height=height,
        frames=max(segment.frames for segment in plan.segments),
        frame_rate=plan.frame_rate,
        steps=steps,
        schedule=schedule,
        seed=seed + last,
    )
    report = report or (lambda stage, done, total: None)
    texts = segment_prompts(prompts, len(plan.segments))
    wanted = list(dict.fromkeys([negative_prompt, *texts]))
    encoded = {}
    for i, text in enumerate(wanted):
        report("text", i, len(wanted))
        encoded[text] = pipe.encode(text)
    report("text", len(wanted), len(wanted))
    crf = default_image_crf(pipe.variant) if image_crf is None else image_crf
    pictured = plan.owner(image_frame) if image is not None else None
    made: list[SampledSegment] = []
    for i, segment in enumerate(plan.segments):
        stage = f"denoise {i + 1}/{len(plan.segments)}"
        conditions, video_mask, audio_mask = [], None, None
        if i == 0:
            video, audio = pipe.empty_latents(segment.frames, height, width, segment.frame_rate)
        else:
            previous = made[-1]
            extension = extend(plan.extensions[i - 1], previous.video, previous.audio, overlap_strength)
            video, audio = extension.video, extension.audio
            video_mask = video_denoise_mask(extension.video_mask, tuple(video.shape))
            audio_mask = audio_denoise_mask(extension.audio_mask, tuple(audio.shape))
            conditions += extension.conditions
        if pictured is not None and pictured[0] == i:
            conditions += pipe.image_conditions(image, pictured[1], image_strength, crf, segment.frames, height, width)
        generator = torch.Generator("cpu").manual_seed(seed + i)
        video, audio = pipe.sample_latents(
            encoded[texts[i]],
            encoded[negative_prompt],
            video,
            audio,
            frame_rate=segment.frame_rate,
            schedule=schedule,
            steps=steps,
            seed=seed + i,
            generator=generator,
            conditions=conditions,
            video_mask=video_mask,
            audio_mask=audio_mask,
            report=report,
            stage=stage,
        )
        made.append(SampledSegment(video, audio, generator))
    return made


@dataclass(frozen=True)
class Written:
    """What :func:`write_chain` wrote."""

    frames: int
    width: int
    height: int
    frame_rate: float
    sample_rate: int
    samples: int  # of the joined soundtrack: exactly the frames' duration
    gain_db: float = 0.0  # what the soundtrack was lowered by to keep its peak at PEAK_DBFS (0: unchanged)


@torch.inference_mode()
def write_chain(pipe, plan: ChainPlan, sampled: Sequence[SampledSegment], path: str, report: Report | None = None):
    """Decode ``sampled`` (``plan``'s segments) and write them joined into the .mp4 ``path``: the soundtrack
    cross-faded whole, the frames decoded segment by segment and streamed into the file (see the module)."""
    from .pipeline import to_uint8

    report = report or (lambda stage, done, total: None)
    segments = list(plan.segments)
    count = len(segments)
    waveforms = []
    for i, part in enumerate(sampled):
        report("audio decode", i, count)
        waveforms.append(pipe.decode_waveform(part.audio))
    report("audio decode", count, count)
    sample_rate = int(pipe.vocoder.sample_rate)
    soundtrack, gain = limit_peak(join_audio(segments, waveforms, sample_rate))
    del waveforms

    def runs(i: int):
        part = sampled[i]
        yield from pipe.iter_frames(part.video, report, part.generator, stage=f"decode {i + 1}/{count}")

    with Mp4Writer(path, plan.frame_rate, soundtrack, sample_rate) as writer:
        for chunk in join_frames(segments, (runs(i) for i in range(count))):
            writer.write(to_uint8(chunk).cpu())
        height, width = writer.size
    return Written(writer.frames, width, height, plan.frame_rate, sample_rate, soundtrack.shape[1], gain)
