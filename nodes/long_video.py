"""Long-video nodes: extend a segment in time (LTXExtend), place a keyframe by its time on the long video
(LTXKeyframeAtTime), and join the segments into one video with one soundtrack (LTXJoin).

A long video is a chain of segments, each sampled by Sampler (video + audio) with its own prompt. Extend (long video) makes the
next segment's latents from the chain's last (or first) one; the chain travels inside the latents, so Join (long video)
needs only the last segment's latents to decode and cross-fade them all. LATENT keys this module adds (plain dict
entries: the sampler and core latent nodes pass them along):

- video ``"ltx_segment"``: ``{"start", "frames", "frame_rate"}``, the segment's place on the timeline
  (``ltx_core.extend.Segment``; frame 0 is the first frame of the first segment generated), and
  ``"ltx_overlap"``: ``[first, stop)``, its own pixel frames that hold the segment it was extended from.
- video ``"ltx_chain"``: ``[{"video": LATENT, "audio": LATENT | None}, ...]``, the long video's other segments as
  they were when this one was made (without chains of their own).
- ``"noise_mask"`` on both latents (the kept overlap) and, extending before, an ``"ltx_conditions"`` keyframe (the
  source's first frame); see ``ltx_core.extend`` for the layout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..ltx_core import checks
from ..ltx_core.conditioning import condition_to_dict
from ..ltx_core.errors import InputError
from ..ltx_core.extend import (
    DIRECTIONS,
    Segment,
    check_timeline,
    extend,
    overlap_room,
    plan_extension,
    timeline_frame,
)
from ..ltx_core.join import join_audio, join_frames, joined_frames
from ..ltx_core.latents import VIDEO_LATENT_CHANNELS, nearest_frame_counts, video_frame_count
from ..ltx_core.video_vae import DECODE_NOISE_SCALE, DECODE_TIMESTEP, VideoFit
from . import host
from .sampling import (
    CONDITIONS_KEY,
    DEFAULT_FRAME_RATE,
    FIT_KEY,
    LTXImageCondition,
    _audio_samples,
    _frame_rate,
    _latent_dict,
    _video_samples,
)
from .validation import check_release, checked
from .video import check_images

log = logging.getLogger("ltx_av.nodes.long_video")

SEGMENT_KEY = "ltx_segment"
OVERLAP_KEY = "ltx_overlap"
CHAIN_KEY = "ltx_chain"
# What a segment's own latents carry and a copy in a chain or an extension must not: how it was sampled.
_SAMPLING_KEYS = ("samples", "noise_mask", CONDITIONS_KEY, CHAIN_KEY, SEGMENT_KEY, OVERLAP_KEY, FIT_KEY)
# Audio latent frames the audio may differ from its video by (the sampler's own tolerance: rounding).
AUDIO_SLACK = 1


# -- the long video a latent belongs to ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One segment of a long video: its place, its latents (dicts and checked tensors)."""

    segment: Segment
    video: dict
    video_samples: torch.Tensor
    audio: dict | None
    audio_samples: torch.Tensor | None
    name: str


def _part(video: object, audio: object, node: str, name: str, channels: int) -> Part:
    video = _latent_dict(video, node, name)
    samples = _video_samples(video, node, name, channels, scan=False)
    frames = video_frame_count(samples.shape[2])
    fps = _frame_rate(video, node, name) or DEFAULT_FRAME_RATE
    record = video.get(SEGMENT_KEY)
    if record is None:
        segment = Segment(0, frames, fps)
    else:
        segment = Segment.from_dict(record, f"{node}: {name}'s {SEGMENT_KEY!r}")
        if segment.frames != frames:
            raise InputError(
                f"{node}: {name} was made by Extend (long video) for {segment.frames} frames but now holds {frames} (its "
                "length changed since, e.g. a temporal upsample); extend and join the latents Extend (long video) made"
            )
        if abs(segment.frame_rate - fps) > 1e-6:
            raise InputError(
                f"{node}: {name} records {fps:g} fps but was made by Extend (long video) at {segment.frame_rate:g} fps"
            )
    audio_samples = None
    if audio is not None:
        audio_name = name.replace("video", "audio")
        audio = _latent_dict(audio, node, audio_name)
        audio_samples = _audio_samples(audio, node, audio_name, scan=False)
        if audio_samples.shape[0] != samples.shape[0]:
            raise InputError(
                f"{node}: {name} has batch {samples.shape[0]} but {audio_name} has {audio_samples.shape[0]}"
            )
        if abs(audio_samples.shape[2] - segment.audio_frames) > AUDIO_SLACK:
            raise InputError(
                f"{node}: {audio_name} has {audio_samples.shape[2]} latent frames but its video ({frames} frames at "
                f"{fps:g} fps) needs {segment.audio_frames}; make both with Empty Latent (video + audio), or encode the sound "
                f"with Audio Encode video_frames={frames}, frame_rate={fps:g}"
            )
    return Part(segment, video, samples, audio, audio_samples, name)


def _long_video(
    video_latent: object,
    audio_latent: object,
    node: str,
    channels: int = VIDEO_LATENT_CHANNELS,
    audio: bool = True,
) -> list[Part]:
    """Every segment of the long video ``video_latent`` belongs to (itself and its chain), in timeline order;
    ``audio=False``: their pictures only."""
    given = _part(video_latent, audio_latent if audio else None, node, "video_latent", channels)
    chain = given.video.get(CHAIN_KEY)
    if chain is None:
        chain = []
    if not isinstance(chain, (list, tuple)):
        raise InputError(
            f"{node}: video_latent's {CHAIN_KEY!r} is {checks.article(type(chain).__name__)}; it is a list made by "
            "Extend (long video)"
        )
    parts = [given]
    for i, entry in enumerate(chain):
        name = f"video_latent's earlier segment {i + 1}"
        if not isinstance(entry, dict) or "video" not in entry:
            raise InputError(
                f"{node}: {name} is not a {{'video': LATENT, 'audio': LATENT}} entry made by Extend (long video)"
            )
        if not isinstance(entry.get("video"), dict) or SEGMENT_KEY not in entry["video"]:
            raise InputError(f"{node}: {name} has no {SEGMENT_KEY!r} record; the chain was edited or damaged")
        sound = entry.get("audio") if audio else None
        parts.append(_part(entry["video"], sound, node, name.replace("segment", "video segment"), channels))
    reference = given.video_samples.shape
    for part in parts[1:]:
        shape = part.video_samples.shape
        if (shape[0], shape[1], shape[3], shape[4]) != (reference[0], reference[1], reference[3], reference[4]):
            raise InputError(
                f"{node}: the long video's segments differ in size: {part.segment.describe()} is {list(shape)} but "
                f"video_latent is {list(reference)}; extend the sampled segments themselves (upsample every segment "
                "or none)"
            )
    with_audio = [p.audio_samples is not None for p in parts]
    if any(with_audio) and not all(with_audio):
        missing = next(p for p in parts if p.audio_samples is None)
        hint = "connect audio_latent" if missing is given else "extend every segment with its audio latent"
        raise InputError(
            f"{node}: some segments of the long video have audio latents and the one at "
            f"{missing.segment.describe()} has none; {hint}"
        )
    check_timeline([p.segment for p in parts])
    return sorted(parts, key=lambda p: p.segment.start)


def _chain_entry(part: Part) -> dict:
    """A segment as a chain keeps it: its latents without how they were sampled, with its place."""
    video = {k: v for k, v in part.video.items() if k not in _SAMPLING_KEYS}
    video.update(samples=part.video_samples, frame_rate=part.segment.frame_rate)
    video[SEGMENT_KEY] = part.segment.as_dict()
    if isinstance(part.video.get(FIT_KEY), dict):
        video[FIT_KEY] = part.video[FIT_KEY]
    audio = None
    if part.audio is not None:
        audio = {k: v for k, v in part.audio.items() if k not in _SAMPLING_KEYS}
        audio["samples"] = part.audio_samples
    return {"video": video, "audio": audio}


def _spatial_fit(part: Part) -> VideoFit | None:
    """The padding Video Encode / Empty Latent added around the frames (fit=pad), when it still applies."""
    fit = VideoFit.from_dict(part.video.get(FIT_KEY)) if isinstance(part.video.get(FIT_KEY), dict) else None
    _, _, _, h, w = part.video_samples.shape
    if fit is None or fit.mode != "pad" or (fit.fitted_height, fit.fitted_width) != (32 * h, 32 * w):
        return None
    if (fit.height, fit.width) == (fit.fitted_height, fit.fitted_width):
        return None
    return fit


def _extended_fit(part: Part, frames: int) -> dict | None:
    """The source's spatial padding for a new segment of ``frames`` frames (its time padding does not carry)."""
    fit = _spatial_fit(part)
    if fit is None:
        return None
    return VideoFit(
        "pad", frames, fit.height, fit.width, frames, fit.fitted_height, fit.fitted_width, fit.top, fit.left
    ).as_dict()


# -- LTXExtend -----------------------------------------------------------------------------------------------------


class LTXExtend:
    DISPLAY_NAME = "Extend (long video)"
    CATEGORY = "LTX-AV/long video"
    DESCRIPTION = (
        "Makes the latents of the next segment of a long video, with its sound: connect a sampled segment (or "
        "encoded footage) and its audio latent, sample the result with Sampler (video + audio) (any prompt), extend again, "
        "and join them all with Join (long video). 'after' continues the end of the long video the segment belongs to, "
        "'before' leads into its start. The new segment overlaps the old one: the overlap holds the old video's "
        "last (or first) latent frames and the sound of that stretch as kept tokens, so the new part continues "
        "both. Lengths snap to whole latent frames (8 frames); the info output says what was kept."
    )
    RETURN_TYPES = ("LATENT", "LATENT", "STRING")
    RETURN_NAMES = ("video_latent", "audio_latent", "info")
    OUTPUT_TOOLTIPS = (
        "The new segment's video latent (overlap kept, the rest to generate) for Sampler (video + audio).",
        "Its audio latent (the overlap's sound kept), or None without an audio latent.",
        "What was snapped and kept: frames, seconds, the overlap, the audio offset.",
    )
    FUNCTION = "extend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_latent": (
                    "LATENT",
                    {"tooltip": "A sampled segment (Sampler (video + audio)) or encoded footage (Video Encode)."},
                ),
                "seconds": (
                    "FLOAT",
                    {
                        "default": 5.0,
                        "min": 0.0,
                        "max": 60.0,
                        "step": 0.01,
                        "tooltip": "Time to add, snapped to whole latent frames (8 frames; at least one).",
                    },
                ),
                "overlap_seconds": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 20.0,
                        "step": 0.01,
                        "tooltip": "Time shared with the segment extended: its frames and sound are kept there. "
                        "Snapped to whole latent frames (8k+1 frames; at least 9), at most what the segment has.",
                    },
                ),
                "direction": (
                    list(DIRECTIONS),
                    {
                        "default": "after",
                        "tooltip": "after: continue the end of the long video; before: lead into its start.",
                    },
                ),
                "overlap_strength": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "1: the overlap is kept exactly; lower values let the sampler change it; 0: "
                        "nothing is kept (a plain generation of the new segment's size).",
                    },
                ),
            },
            "optional": {
                "audio_latent": (
                    "LATENT",
                    {"tooltip": "The segment's audio latent; its sound continues. Not connected: video only."},
                ),
            },
        }

    @checked
    def extend(
        self,
        video_latent,
        seconds: float,
        overlap_seconds: float,
        direction: str = "after",
        overlap_strength: float = 1.0,
        audio_latent=None,
    ):
        node = "LTXExtend"
        parts = _long_video(video_latent, audio_latent, node)
        source = parts[-1] if direction == "after" else parts[0]
        others = [p.segment for p in parts if p is not source]
        plan = plan_extension(
            source.segment,
            seconds,
            overlap_seconds,
            direction,
            room=overlap_room(source.segment, others, direction),
            source_audio_frames=None if source.audio_samples is None else source.audio_samples.shape[2],
        )
        for p in parts:
            checks.finite_tensor(p.video_samples, f"{node}: {p.name}")
            if p.audio_samples is not None:
                checks.finite_tensor(p.audio_samples, f"{node}: {p.name.replace('video', 'audio')}")
        made = extend(plan, source.video_samples, source.audio_samples, overlap_strength)
        fps, frames = plan.segment.frame_rate, plan.segment.frames
        chain = [_chain_entry(p) for p in parts]

        video = {k: v for k, v in source.video.items() if k not in _SAMPLING_KEYS}
        video.update(samples=made.video, type="video", frame_rate=fps, noise_mask=made.video_mask)
        video[SEGMENT_KEY] = plan.segment.as_dict()
        video[OVERLAP_KEY] = [plan.overlap.start, plan.overlap.stop]
        video[CHAIN_KEY] = chain
        if made.conditions:
            video[CONDITIONS_KEY] = [condition_to_dict(c) for c in made.conditions]
        fit = _extended_fit(source, frames)
        if fit is not None:
            video[FIT_KEY] = fit
        audio = None
        if made.audio is not None:
            audio = {k: v for k, v in source.audio.items() if k not in _SAMPLING_KEYS}
            audio.update(
                samples=made.audio, type="audio", frame_rate=fps, duration=frames / fps, noise_mask=made.audio_mask
            )
        info = (
            plan.describe()
            + f"\noverlap strength {overlap_strength:g}; the long video now has {len(parts) + 1} segments"
        )
        if source.name != "video_latent":  # the connected segment is not at the end being extended
            info += f"\n(continues the long video's {'last' if direction == 'after' else 'first'} segment)"
        log.info("%s: %s", node, info.replace("\n", "; "))
        return (video, audio, info)


# -- LTXKeyframeAtTime ---------------------------------------------------------------------------------------------


class LTXKeyframeAtTime:
    DISPLAY_NAME = "Keyframe at Time (long video)"
    CATEGORY = "LTX-AV/long video"
    DESCRIPTION = (
        "Attaches an image (or a clip) to a segment of a long video at a time on the whole video's timeline (0: the "
        "first frame of the first segment generated; segments extended before it have negative times), like Image "
        "Condition (keyframe) at the segment's own frame. Refused outside the segment and inside its kept overlap "
        "(those frames belong to the segment it continues)."
    )
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("video_latent",)
    OUTPUT_TOOLTIPS = ("The segment's video latent with the condition attached.",)
    FUNCTION = "condition"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LTX_VAE", {"tooltip": "From Load Video VAE (the model's checkpoint)."}),
                "image": ("IMAGE", {"tooltip": "One image, or a batch of frames used as a clip."}),
                "video_latent": (
                    "LATENT",
                    {"tooltip": "A segment from Extend (long video) (or Empty Latent (video + audio))."},
                ),
                "seconds": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": -100000.0,
                        "max": 100000.0,
                        "step": 0.01,
                        "tooltip": "When the image shows, on the long video's timeline (snapped to the nearest frame).",
                    },
                ),
                "strength": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "1: the frame is kept exactly; lower values let the sampler change it.",
                    },
                ),
            },
            "optional": {
                "crf": (
                    "INT",
                    {
                        "default": -1,
                        "min": -1,
                        "max": 51,
                        "tooltip": "H.264 quality the image is re-compressed at first; -1: Image Condition (keyframe)'s "
                        "default; 0: none.",
                    },
                ),
            },
        }

    @checked
    def condition(self, vae, image, video_latent, seconds: float, strength: float = 1.0, crf: int = -1):
        node = "LTXKeyframeAtTime"
        part = _part(video_latent, None, node, "video_latent", vae.latent_channels)
        images = check_images(image, node, "image")
        segment = part.segment
        first = timeline_frame(segment, seconds)
        last = first + nearest_frame_counts(images.shape[0])[0] - 1
        if first < 0 or last >= segment.frames:
            raise InputError(
                f"{node}: {seconds:g} s is outside this segment, which covers {segment.describe()}; attach the image "
                "to the segment that shows that moment"
            )
        overlap = part.video.get(OVERLAP_KEY)
        if isinstance(overlap, (list, tuple)) and len(overlap) == 2 and first < overlap[1] and last >= overlap[0]:
            shown = (segment.seconds(segment.start + overlap[0]), segment.seconds(segment.start + overlap[1]))
            raise InputError(
                f"{node}: {seconds:g} s falls in this segment's kept overlap ({shown[0]:.2f}..{shown[1]:.2f} s), which "
                "holds the segment it continues; attach the image to that segment, or pick a later (earlier) time"
            )
        log.info("%s: %g s is frame %d of the segment at %s", node, seconds, first, segment.describe())
        extra = {} if crf < 0 else {"crf": crf}
        return LTXImageCondition().condition(vae, images, part.video, first, strength, **extra)


# -- LTXJoin -------------------------------------------------------------------------------------------------------


class LTXJoin:
    DISPLAY_NAME = "Join (long video)"
    CATEGORY = "LTX-AV/long video"
    DESCRIPTION = (
        "Decodes every segment of a long video (the connected segment and the ones it was extended from) and joins "
        "them into one video and one soundtrack: frames are blended across each overlap, the sound is cross-faded "
        "in samples, every frame appears once, and the sound lasts exactly as long as the frames. Segments are "
        "decoded one after another, streamed, so the work memory follows one segment, not the whole video."
    )
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT", "STRING")
    RETURN_NAMES = ("images", "audio", "frame_rate", "info")
    OUTPUT_TOOLTIPS = (
        "The whole video's frames [frames, height, width, 3] in 0..1.",
        "The whole soundtrack (None without audio_vae).",
        "Frames per second, e.g. for core Create Video.",
        "The segments joined: where each sits and how long the overlaps are.",
    )
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LTX_VAE", {"tooltip": "From Load Video VAE."}),
                "video_latent": (
                    "LATENT",
                    {"tooltip": "The last sampled segment of the long video (it carries the earlier ones)."},
                ),
            },
            "optional": {
                "audio_vae": ("LTX_AUDIO_VAE", {"tooltip": "From Load Audio VAE + Vocoder; decodes the soundtrack."}),
                "audio_latent": ("LATENT", {"tooltip": "The last segment's audio latent (from the same sampler)."}),
            },
        }

    @checked
    def join(self, vae, video_latent, audio_vae=None, audio_latent=None):
        node = "LTXJoin"
        if audio_latent is not None and audio_vae is None:
            raise InputError(
                f"{node}: audio_latent is connected but audio_vae is not; connect Load Audio VAE + Vocoder"
            )
        parts = _long_video(video_latent, audio_latent, node, vae.latent_channels, audio=audio_vae is not None)
        if audio_vae is not None and parts[0].audio_samples is None:
            raise InputError(f"{node}: audio_vae is connected but the segments have no audio; connect audio_latent")
        for p in parts:  # a latent of another release would decode into noise
            check_release(p.video, vae, node, p.name, "vae")
            if audio_vae is not None:
                check_release(p.audio, audio_vae, node, p.name.replace("video", "audio"), "audio_vae")
        batch = parts[0].video_samples.shape[0]
        if batch != 1:
            raise InputError(f"{node}: video_latent has batch {batch}; join one video at a time (batch 1)")
        fits = {None if f is None else (f.top, f.left, f.height, f.width) for f in map(_spatial_fit, parts)}
        if len(fits) > 1:
            raise InputError(f"{node}: the segments were padded differently (Video Encode fit=pad); join alike")
        crop = fits.pop()
        segments = [p.segment for p in parts]
        total = joined_frames(segments)
        _, _, _, h, w = parts[0].video_samples.shape
        top, left, height, width = crop if crop is not None else (0, 0, 32 * h, 32 * w)
        checks.fits_memory(
            checks.tensor_bytes((total, height, width, 3)),
            host.available_memory(host.intermediate_device()),
            f"{node}: joining {total} frames of {width}x{height}",
            advice="join fewer or shorter segments, or a smaller size",
        )
        for p in parts:
            checks.finite_tensor(p.video_samples, f"{node}: {p.name}")
            if p.audio_samples is not None:
                checks.finite_tensor(p.audio_samples, f"{node}: {p.name.replace('video', 'audio')}")

        images = torch.empty((total, height, width, 3), dtype=torch.float32, device=host.intermediate_device())
        # where the frames share memory with the decoder, its tiles are planned around them
        same_memory = host.intermediate_device() == vae.device or vae.device.type == "cpu"

        def runs(part: Part) -> Iterator[tuple[int, torch.Tensor]]:
            decoded = vae.iter_decode(
                part.video_samples,
                tiling="auto",
                timestep=DECODE_TIMESTEP,
                noise_scale=DECODE_NOISE_SCALE,
                seed=0,
                progress=host.Progress(1),
                reserve_bytes=images.numel() * 4 if same_memory else 0,
            )
            for start, frames in decoded:  # [1, 3, n, H, W] in [-1, 1] -> [n, h, w, 3]
                pixels = frames[0, :, :, top : top + height, left : left + width].permute(1, 2, 3, 0)
                yield start, pixels

        position = 0
        for chunk in join_frames(segments, (runs(p) for p in parts)):
            n = chunk.shape[0]
            images[position : position + n] = chunk.to(images.device).add(1.0).mul(0.5)
            position += n
            host.check_interrupt()
        audio = None
        if audio_vae is not None:
            waveforms, rate = [], audio_vae.sample_rate
            for p in parts:
                waveform, rate = audio_vae.decode(p.audio_samples, name=f"{node}: {p.name.replace('video', 'audio')}")
                waveforms.append(waveform[0])
            audio = {"waveform": join_audio(segments, waveforms, rate)[None], "sample_rate": rate}
        fps = segments[0].frame_rate
        lines = [f"{len(parts)} segment(s), {total} frames ({total / fps:.2f} s at {fps:g} fps)"]
        for i, segment in enumerate(segments):
            shared = segments[i - 1].end - segment.start if i else 0
            lines.append(f"segment {i + 1}: {segment.describe()}" + (f", {shared} frames blended" if shared else ""))
        info = "\n".join(lines)
        log.info("%s: %s", node, info.replace("\n", "; "))
        return (images, audio, fps, info)


NODES: tuple[type, ...] = (LTXExtend, LTXKeyframeAtTime, LTXJoin)
