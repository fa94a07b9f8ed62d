"""Joining the decoded segments of a long video into one video and one soundtrack.

Segments (:class:`.extend.Segment`) overlap their neighbours on the timeline. Over an overlap of ``n`` frames the
result fades linearly from the earlier segment to the later one: its first shared frame is the earlier segment's,
its last the later one's (so a segment's first frame, the generated boundary of an extension, never shows on its
own), and every timeline frame appears once. The soundtrack is cross-faded the same way in samples.

Frames stream: :func:`join_frames` takes each segment's decoded frames as runs, in order, and gives the joined
frames back as soon as they are final, holding only the frames a segment shares with the next one. Memory
follows the decoder's runs and the overlap, not the length of the video. The soundtrack is small beside the
frames and is joined whole (:func:`join_audio`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch

from .errors import InputError
from .extend import Segment, check_timeline
from .latents import AUDIO_LATENTS_PER_SECOND


def crossfade(count: int) -> torch.Tensor:
    """Weights ``[count]`` of the later segment over an overlap of ``count`` frames or samples, 0 to 1."""
    if count <= 1:
        return torch.full((max(count, 0),), 0.5)
    return torch.linspace(0.0, 1.0, count)


def joined_frames(segments: Sequence[Segment]) -> int:
    """Frames of the joined video: from the first segment's first frame to the last segment's last."""
    ordered = check_timeline(segments)
    return ordered[-1].end - ordered[0].start


def join_frames(
    segments: Sequence[Segment], runs: Iterable[Iterable[tuple[int, torch.Tensor]]]
) -> Iterator[torch.Tensor]:
    """The joined video's frames, in order, in chunks ``[n, ...]`` (time first).

    ``segments`` in timeline order; ``runs`` gives, for each segment in turn, its decoded frames as
    ``(first_frame, frames [n, ...])`` runs in order (a run may repeat frames already given, as a decoder retried
    after running out of memory sends them again: those are skipped). Each segment's runs are read only when the
    joined frames reach it."""
    ordered = check_timeline(segments)
    if list(ordered) != list(segments):
        raise InputError("join_frames: give the segments in timeline order (by start frame)")
    held: torch.Tensor | None = None  # the previous segment's frames shared with this one
    runs = iter(runs)
    for i, segment in enumerate(segments):
        try:
            segment_runs = next(runs)
        except StopIteration:
            raise InputError(f"join_frames: {len(segments)} segments but only {i} sets of frames") from None
        head = segments[i - 1].end - segment.start if i else 0
        tail = segment.end - segments[i + 1].start if i + 1 < len(segments) else 0
        weights = crossfade(head)
        keep: list[torch.Tensor] = []
        position = 0
        for start, frames in segment_runs:
            if start > position:
                raise InputError(
                    f"join_frames: segment {i + 1}'s frames jump from {position} to {start}; runs must follow each other"
                )
            frames = frames[position - start :]
            if frames.shape[0] == 0:
                continue
            stop = position + frames.shape[0]
            if stop > segment.frames:
                raise InputError(f"join_frames: segment {i + 1} gave more than its {segment.frames} frames")
            if position < head:  # blend with the previous segment's shared frames
                n = min(stop, head) - position
                w = weights[position : position + n].to(frames.device).view(-1, *[1] * (frames.dim() - 1))
                previous = held[position : position + n].to(frames.device)
                yield previous.float().lerp(frames[:n].float(), w.float())
                frames, position = frames[n:], position + n
            mine = min(stop, segment.frames - tail) - position
            if mine > 0:
                yield frames[:mine]
                frames, position = frames[mine:], position + mine
            if frames.shape[0]:  # shared with the next segment: held until its frames arrive
                keep.append(frames.clone())
                position += frames.shape[0]
        if position != segment.frames:
            raise InputError(f"join_frames: segment {i + 1} gave {position} frames; it has {segment.frames}")
        held = torch.cat(keep) if keep else None


def audio_placement(segments: Sequence[Segment], sample_rate: int) -> tuple[list[int], int]:
    """(each segment's first sample in the joined soundtrack, the soundtrack's length in samples).

    A segment's audio starts at its whole audio latent frame (:attr:`.Segment.audio_start`, 40 ms steps); the
    soundtrack starts with the first segment's first video frame and lasts exactly as long as the joined frames."""
    ordered = check_timeline(segments)
    first = ordered[0]
    per_latent = sample_rate / AUDIO_LATENTS_PER_SECOND
    origin = round(first.start / first.frame_rate * sample_rate)
    starts = [round(s.audio_start * per_latent) - origin for s in segments]
    total = round((ordered[-1].end - first.start) / first.frame_rate * sample_rate)
    return starts, total


def join_audio(segments: Sequence[Segment], waveforms: Sequence[torch.Tensor], sample_rate: int) -> torch.Tensor:
    """One soundtrack ``[C, N]`` from each segment's decoded waveform ``[C, n]`` (segments in timeline order):
    cross-faded where they overlap, silence where none reaches (the last few ms, as a decoded latent ends a little
    before its video), exactly :func:`audio_placement`'s length."""
    if len(waveforms) != len(segments):
        raise InputError(f"join_audio: {len(segments)} segments but {len(waveforms)} waveforms")
    starts, total = audio_placement(segments, sample_rate)
    channels = {w.shape[0] for w in waveforms}
    if len(channels) != 1 or any(w.ndim != 2 for w in waveforms):
        raise InputError(
            f"join_audio: waveforms must be [channels, samples] alike; got {[list(w.shape) for w in waveforms]}"
        )
    out = torch.zeros(channels.pop(), total)
    written = 0  # the soundtrack is final before this sample
    for start, waveform in zip(starts, waveforms, strict=True):
        lo, hi = max(start, 0), min(start + waveform.shape[1], total)
        if hi <= lo:
            continue
        piece = waveform[:, lo - start : hi - start].float()
        shared = max(0, min(written, hi) - lo)
        if shared:
            w = crossfade(shared)
            out[:, lo : lo + shared] = out[:, lo : lo + shared].lerp(piece[:, :shared], w)
        out[:, lo + shared : hi] = piece[:, shared:]
        written = max(written, hi)
    return out
