"""Generation nodes: empty latents, image/keyframe conditioning, the sampler, time-window masks, latent files.

LATENT keys this module adds (all plain dict entries, so core latent nodes pass them along):

- video and audio: ``"frame_rate"`` (fps of the video); audio also ``"duration"`` (seconds it stands for).
- video: ``"ltx_conditions"``: a list of ``{"kind": "replace" | "keyframe", "latent": [1, 128, f, h, w] float32,
  "index": int, "strength": float}`` (``index``: first replaced latent frame, or the keyframe's pixel frame),
  added by LTXImageCondition and applied by LTXSampler (which returns its latent without them).
- ``"noise_mask"``: which tokens to regenerate (see ``ltx_core.conditioning.video_denoise_mask`` /
  ``audio_denoise_mask`` for the accepted layouts); LTXTimeWindowMask writes one for a time window.
- video ``"ltx_video_fit"`` (from the video module): LTXEmptyLatent records the padding it added so the decoder
  crops it off.

Audio rule of LTXSampler (``audio_mode`` "auto"): an audio latent's ``noise_mask`` decides when it has one;
otherwise an all-zero latent (LTXEmptyLatent) is generated and one holding audio (LTXAudioEncode, which marks
nothing) is kept exactly -- audio-to-video. "generate" re-noises it to the first sigma and refines it (second
stages), "keep" never changes it.

Core SaveLatent keeps only ``samples``; LTXSaveLatent / LTXLoadLatent keep the whole dicts (video + audio).
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager

import torch

from ..ltx_core import checks
from ..ltx_core.conditioning import (
    FrameCondition,
    ReferenceCondition,
    audio_denoise_mask,
    condition_for_frame,
    condition_from_dict,
    condition_pixels,
    condition_to_dict,
    time_window_mask,
    video_denoise_mask,
)
from ..ltx_core.config import LTX23
from ..ltx_core.errors import InputError, TooLargeError
from ..ltx_core.guidance import GuidanceParams, default_guidance, default_steps
from ..ltx_core.latents import (
    AUDIO_LATENT_CHANNELS,
    AUDIO_LATENT_MEL_BINS,
    VIDEO_LATENT_CHANNELS,
    audio_latent_length,
    nearest_frame_counts,
    nearest_sizes,
    video_frame_count,
    video_latent_shape,
)
from ..ltx_core.pipeline import default_image_crf
from ..ltx_core.sampling import (
    EULER,
    EULER_ANCESTRAL,
    NO_GUIDANCE,
    Progress,
    check_guidance_blocks,
    default_sampler,
    preview_image,
    sample,
    state_bytes,
    working_bytes,
)
from ..ltx_core.schedules import DISTILLED_SIGMAS, STAGE2_SIGMAS, ltx2_sigmas, validate_sigmas
from ..ltx_core.text_encoder import TextContexts
from ..ltx_core.video_vae import FIT_MODES, VideoFit
from . import host
from .validation import (
    check_release,
    checked,
    is_audio_latent_shape,
    is_latent,
    nested_part,
    record_release,
    releases_of,
)
from .video import check_images

log = logging.getLogger("ltx_av.nodes.sampling")

CONDITIONS_KEY = "ltx_conditions"
FIT_KEY = "ltx_video_fit"
DEFAULT_FRAME_RATE = 24.0
SCHEDULES = ("ltx2", "distilled", "stage2")
AUDIO_MODES = ("auto", "generate", "keep")
# Frame rates a latent may record (the widgets allow 1..240; higher is a unit mistake).
MAX_FRAME_RATE = 1000.0


# -- latent dict helpers -------------------------------------------------------------------------------------------


def _latent_dict(value: object, node: str, name: str) -> dict:
    if not is_latent(value):
        got = "nothing (None)" if value is None else f"a {type(value).__name__}"
        raise InputError(f"{node}: {name} must be a LATENT (a dict with a 'samples' tensor); got {got}")
    return value


def _floats(samples: torch.Tensor, node: str, name: str, scan: bool = True) -> torch.Tensor:
    """Float32 samples; ``scan``: also refuse NaN/inf (reads every value, so callers with a size check do it
    after that, with ``scan=False`` here)."""
    if not samples.is_floating_point():
        raise InputError(f"{node}: {name} holds {samples.dtype} values; a latent holds floating-point numbers")
    if scan:
        checks.finite_tensor(samples, f"{node}: {name}")
    return samples.float()


# The tensor's shape tells a video latent from an audio one; the dict's "type" does not always: core's
# LTXVSeparateAVLatent gives both parts the keys of the joint latent (its "type" is the audio's).
AUDIO_IN_VIDEO_INPUT = (
    "{node}: {name} is an audio latent {shape}; connect it to an audio input (audio_latent, or Audio "
    "Decode) and give {name} a video latent (Empty Latent (video + audio), or core's EmptyLTXVLatentVideo)"
)
VIDEO_IN_AUDIO_INPUT = (
    "{node}: {name} is a video latent {shape}; connect it to a video input (video_latent, or Video Decode) "
    "and give {name} an audio latent (Empty Latent (video + audio)'s second output, Audio Encode, or core's "
    "LTXVEmptyLatentAudio)"
)


def _video_samples(
    latent: dict, node: str, name: str, channels: int = VIDEO_LATENT_CHANNELS, scan: bool = True
) -> torch.Tensor:
    samples = nested_part(latent["samples"], 0)
    if is_audio_latent_shape(samples):
        raise InputError(AUDIO_IN_VIDEO_INPUT.format(node=node, name=name, shape=list(samples.shape)))
    if samples.ndim != 5 or samples.shape[1] != channels or 0 in samples.shape:
        raise InputError(
            f"{node}: {name} has shape {list(samples.shape)}; an LTX video latent is [batch, {channels}, frames, "
            "H/32, W/32] with no empty dimension"
        )
    return _floats(samples, node, name, scan)


def _audio_samples(latent: dict, node: str, name: str, scan: bool = True) -> torch.Tensor:
    samples = nested_part(latent["samples"], -1)
    if getattr(samples, "ndim", 0) == 5:
        raise InputError(VIDEO_IN_AUDIO_INPUT.format(node=node, name=name, shape=list(samples.shape)))
    if (
        samples.ndim != 4
        or samples.shape[1] != AUDIO_LATENT_CHANNELS
        or samples.shape[3] != AUDIO_LATENT_MEL_BINS
        or 0 in samples.shape
    ):
        raise InputError(
            f"{node}: {name} has shape {list(samples.shape)}; an LTX audio latent is [batch, 8, frames, 16] with at "
            "least one frame"
        )
    return _floats(samples, node, name, scan)


def _fit(latent: dict) -> VideoFit | None:
    fit = latent.get(FIT_KEY)
    if fit is None:
        return None
    record = VideoFit.from_dict(fit)
    if record is None:
        log.warning("the latent's %r record is incomplete or inconsistent (edited?); ignoring it", FIT_KEY)
    return record


def _real_frames(latent: dict, samples: torch.Tensor) -> int:
    """Frames of the video the latent stands for (without padding an LTXEmptyLatent/Encode fit=pad added)."""
    fit = _fit(latent)
    frames = video_frame_count(samples.shape[2])
    if fit is not None and fit.mode == "pad" and fit.fitted_frames == frames:
        return fit.frames
    return frames


def _frame_rate(latent: dict, node: str, name: str) -> float | None:
    rate = latent.get("frame_rate")
    if rate is None:
        return None
    return checks.number(rate, f"{node}: {name}'s frame_rate", above=0.0, maximum=MAX_FRAME_RATE)


def _conditions(latent: dict, node: str, name: str) -> list:
    """The image conditions a video latent carries (a list; absent or None: none)."""
    found = latent.get(CONDITIONS_KEY)
    if found is None:
        return []
    if not isinstance(found, (list, tuple)):
        raise InputError(
            f"{node}: {name}'s {CONDITIONS_KEY!r} is {checks.article(type(found).__name__)}; it is a list made by "
            "Image Condition (keyframe)"
        )
    return list(found)


# -- LTXEmptyLatent ------------------------------------------------------------------------------------------------


class LTXEmptyLatent:
    DISPLAY_NAME = "Empty Latent (video + audio)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = (
        "Empty video and audio latents for text-to-video+audio: video [batch, 128, 1 + (frames-1)/8, H/32, W/32], "
        "audio [batch, 8, round(frames / fps * 25), 16], both carrying the frame rate. The video VAE needs 8k+1 "
        "frames and sides that are multiples of 32: fit=pad makes the latent the next valid size and Video "
        "Decode crops the extra frames/pixels off again; fit=crop uses the valid size below; fit=error "
        "refuses and names the nearest valid sizes. Any change is logged."
    )
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("video_latent", "audio_latent")
    OUTPUT_TOOLTIPS = (
        "Video latent (zeros) for Sampler (video + audio).",
        "Audio latent (zeros) of the same duration.",
    )
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "width": ("INT", {"default": 768, "min": 32, "max": 8192, "step": 32, "tooltip": "Width in pixels."}),
                "height": (
                    "INT",
                    {"default": 512, "min": 32, "max": 8192, "step": 32, "tooltip": "Height in pixels."},
                ),
                "frames": (
                    "INT",
                    {"default": 121, "min": 1, "max": 10001, "step": 8, "tooltip": "Video frames (8k+1: 9, ... 121)."},
                ),
                "frame_rate": (
                    "FLOAT",
                    {"default": 24.0, "min": 1.0, "max": 240.0, "step": 0.001, "tooltip": "Frames per second."},
                ),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": "Videos generated at once."}),
            },
            "optional": {
                "fit": (
                    list(FIT_MODES),
                    {"default": "pad", "tooltip": "What to do with sizes the VAE cannot take; see the description."},
                ),
            },
        }

    @checked
    def make(self, width: int, height: int, frames: int, frame_rate: float, batch_size: int = 1, fit: str = "pad"):
        return empty_latents(width, height, frames, frame_rate, batch_size, fit)


def empty_latents(
    width: int, height: int, frames: int, frame_rate: float, batch_size: int = 1, fit: str = "pad"
) -> tuple[dict, dict]:
    """(video LATENT, audio LATENT) of zeros; see :class:`LTXEmptyLatent`."""
    node = "LTXEmptyLatent"
    checks.choice(fit, f"{node}: fit", FIT_MODES)
    batch_size = checks.integer(batch_size, f"{node}: batch_size", minimum=1)
    frame_rate = checks.number(frame_rate, f"{node}: frame_rate", above=0.0, maximum=MAX_FRAME_RATE)
    width = checks.integer(width, f"{node}: width", minimum=1)
    height = checks.integer(height, f"{node}: height", minimum=1)
    frames = checks.integer(frames, f"{node}: frames", minimum=1)
    lo_f, hi_f = nearest_frame_counts(frames)
    lo_h, lo_w = nearest_sizes(height)[0], nearest_sizes(width)[0]
    record = None
    if fit == "error":
        video_latent_shape(frames, height, width)  # raises naming the nearest valid sizes
        fitted = (frames, height, width)
    elif fit == "crop":
        if height < 32 or width < 32:
            raise InputError(f"LTXEmptyLatent: {width}x{height} is too small to crop to a multiple of 32; use fit=pad")
        fitted = (lo_f, lo_h, lo_w)
    else:
        fitted = (hi_f, max(32, -(-height // 32) * 32), max(32, -(-width // 32) * 32))
    f, h, w = fitted
    # An empty latent is only useful to sample: refuse a size the sampler's token states alone could not hold.
    video_tokens = batch_size * (1 + (f - 1) // 8) * (h // 32) * (w // 32)
    audio_tokens = batch_size * audio_latent_length(frames if fit == "pad" else f, frame_rate)
    checks.fits_memory(
        state_bytes(video_tokens, audio_tokens, 1),
        host.available_memory(host.compute_device()),
        f"{node}: {batch_size} x {f} frames of {w}x{h} ({video_tokens:,} video tokens) to sample",
        advice="make the video shorter or smaller (or generate it in parts)",
    )
    if fitted != (frames, height, width):
        top, left = ((h - height) // 2, (w - width) // 2) if fit == "pad" else ((height - h) // 2, (width - w) // 2)
        record = VideoFit(fit, frames, height, width, f, h, w, top, left)
        log.info("LTXEmptyLatent: %s", record.describe())
    shape = video_latent_shape(f, h, w)
    video = {
        "samples": torch.zeros(batch_size, VIDEO_LATENT_CHANNELS, *shape),
        "type": "video",
        "frame_rate": float(frame_rate),
    }
    real_frames = frames if fit == "pad" else f
    if record is not None and fit == "pad":
        video[FIT_KEY] = record.as_dict()
    length = audio_latent_length(real_frames, frame_rate)
    audio = {
        "samples": torch.zeros(batch_size, AUDIO_LATENT_CHANNELS, length, AUDIO_LATENT_MEL_BINS),
        "type": "audio",
        "frame_rate": float(frame_rate),
        "duration": real_frames / frame_rate,
    }
    return video, audio


# -- LTXImageCondition ---------------------------------------------------------------------------------------------


# The crf widget's "the release's own" value.
AUTO_CRF = -1


class LTXImageCondition:
    DISPLAY_NAME = "Image Condition (keyframe)"
    CATEGORY = "LTX-AV/conditioning"
    DESCRIPTION = (
        "Attaches an image (or a clip: an IMAGE batch of 8k+1 frames) to a video latent as a condition for the "
        "Sampler (video + audio). frame_index 0 replaces the first latent frame(s); any other index adds the encoded frames as extra "
        "tokens placed at that frame (keyframe), removed again from the sampler's output. Negative indices count "
        "from the end: -1 puts the image (or the clip's last frame) on the last frame. Chain several for first/last "
        "frame or multi-keyframe videos. The image is prepared like the official pipelines: H.264 re-compression "
        "at crf (0: off), scaled to cover the video and centre-cropped."
    )
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("video_latent",)
    OUTPUT_TOOLTIPS = ("The same video latent with the condition attached (under 'ltx_conditions').",)
    FUNCTION = "condition"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LTX_VAE", {"tooltip": "From Load Video VAE (the model's checkpoint)."}),
                "image": ("IMAGE", {"tooltip": "One image, or a batch of frames used as a clip."}),
                "video_latent": (
                    "LATENT",
                    {"tooltip": "The video latent to generate (e.g. Empty Latent (video + audio))."},
                ),
                "frame_index": (
                    "INT",
                    {
                        "default": 0,
                        "min": -100000,
                        "max": 100000,
                        "tooltip": "Video frame the image goes to: 0 = first, -1 = last, other values = keyframe.",
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
                "crf": (
                    "INT",
                    {
                        "default": AUTO_CRF,
                        "min": AUTO_CRF,
                        "max": 51,
                        "tooltip": "H.264 quality the image is re-compressed at first (the model was trained on "
                        "compressed frames). -1: the release's own, as the official pipelines (33 for LTX-2 / "
                        "LTX-2.3, 18 for LTX-2.5, told by the VAE). 0: no re-compression.",
                    },
                ),
            }
        }

    @checked
    def condition(self, vae, image, video_latent, frame_index: int, strength: float, crf: int = AUTO_CRF):
        node = "LTXImageCondition"
        if crf < 0:
            crf = default_image_crf(vae.variant)
        latent = _latent_dict(video_latent, node, "video_latent")
        releases = check_release(latent, vae, node, "video_latent", "vae")
        samples = _video_samples(latent, node, "video_latent", vae.latent_channels)
        earlier = _conditions(latent, node, "video_latent")
        check_images(image, node, "image")
        _, _, _, h, w = samples.shape
        height, width = 32 * h, 32 * w
        fit = _fit(latent)
        content = None
        if fit is not None and fit.mode == "pad" and (fit.fitted_height, fit.fitted_width) == (height, width):
            content = (fit.top, fit.left, fit.height, fit.width)
        frames = nearest_frame_counts(image.shape[0])[0]  # a clip is cut to 8k+1 frames (logged when prepared)
        real = _real_frames(latent, samples)
        index = frame_index if frame_index >= 0 else real + frame_index - (frames - 1)
        if index < 0 or index + frames - 1 >= real:
            raise InputError(
                f"{node}: frame_index {frame_index} puts {frames} frame(s) at frames {index}..{index + frames - 1}, "
                f"outside the video, which has frames 0..{real - 1} (-{real}..-1 counting from the end)"
            )
        # the prepared frames at the latent's size (and their H.264 round trip at the image's size)
        _, src_h, src_w, _ = image.shape
        checks.fits_memory(
            frames * (3 * checks.tensor_bytes((3, height, width)) + 6 * src_h * src_w * 3),
            host.available_memory(host.intermediate_device()),
            f"{node}: {frames} frame(s) of {src_w}x{src_h} for a {width}x{height} video",
            advice="resize the image first",
        )
        try:
            pixels = condition_pixels(image, height, width, crf, content)
        except InputError as e:
            raise InputError(f"{node}: {e}") from None
        encoded = vae.encode_pixels(pixels)
        cond = condition_for_frame(encoded.cpu().float(), index, strength, video_frame_count(samples.shape[2]), node)
        out = dict(latent)
        out[CONDITIONS_KEY] = [*earlier, condition_to_dict(cond)]
        log.info("%s: %s frame(s) at frame %d, strength %g, crf %d", node, frames, index, strength, crf)
        return (record_release(out, releases, vae.checkpoint),)


# -- LTXReferenceCondition (IC-LoRA) ---------------------------------------------------------------------------------

REFERENCE_SCALE_KEYS = ("reference_downscale_factor", "reference_spatial_scale_factor")


def lora_reference_scale(model) -> int | None:
    """The reference scale the IC-LoRAs applied to ``model`` declare in their metadata (None: none declares one);
    two that disagree are an error, as in the official IC-LoRA pipeline."""
    found: dict[int, str] = {}
    for lora in getattr(model, "loras", ()) or ():
        metadata = getattr(lora, "metadata", None) or {}
        for key in REFERENCE_SCALE_KEYS:
            if key in metadata:
                try:
                    value = int(float(metadata[key]))
                except (TypeError, ValueError):
                    raise InputError(
                        f"LoRA '{getattr(lora, 'name', '?')}' has {key} = {metadata[key]!r} in its metadata; expected "
                        "a whole number"
                    ) from None
                found.setdefault(value, getattr(lora, "name", "?"))
                break
    if len(found) > 1:
        raise InputError(
            "the model's IC-LoRAs declare different reference scales: "
            + ", ".join(f"{name} {scale}" for scale, name in found.items())
            + "; use IC-LoRAs trained for the same reference size"
        )
    return next(iter(found), None)


class LTXReferenceCondition:
    DISPLAY_NAME = "Reference Video (IC-LoRA)"
    CATEGORY = "LTX-AV/conditioning"
    DESCRIPTION = (
        "Attaches a reference video (e.g. edges, depth or pose from core preprocessing nodes) to a video latent for "
        "an IC-LoRA (canny / depth / pose / union control, detailer): encoded at the size the IC-LoRA was trained "
        "with (the video's size divided by its reference scale, read from the LoRA's metadata when the model is "
        "connected), appended as extra tokens laid over the video, kept clean at strength 1, and cut from the "
        "sampler's output. Load the IC-LoRA with Load LoRA (stackable) on the model that samples this latent."
    )
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("video_latent",)
    OUTPUT_TOOLTIPS = ("The same video latent with the reference attached (under 'ltx_conditions').",)
    FUNCTION = "condition"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LTX_VAE", {"tooltip": "From Load Video VAE (the model's checkpoint)."}),
                "reference": ("IMAGE", {"tooltip": "The control video's frames (an IMAGE batch), e.g. from Canny."}),
                "video_latent": (
                    "LATENT",
                    {"tooltip": "The video latent to generate (e.g. Empty Latent (video + audio))."},
                ),
                "strength": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "1: the reference is kept as it is (what IC-LoRAs are trained with).",
                    },
                ),
                "scale": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 8,
                        "tooltip": "Reference size = video size / scale. 0: the IC-LoRA's own value from its "
                        "metadata (connect the model; 1 if none declares one). Files named '...ref0.5' use 2.",
                    },
                ),
            },
            "optional": {
                "model": ("LTX_MODEL", {"tooltip": "The model with the IC-LoRA loaded, to read its reference scale."}),
            },
        }

    @checked
    def condition(self, vae, reference, video_latent, strength: float = 1.0, scale: int = 0, model=None):
        node = "LTXReferenceCondition"
        latent = _latent_dict(video_latent, node, "video_latent")
        samples = _video_samples(latent, node, "video_latent", vae.latent_channels)
        earlier = _conditions(latent, node, "video_latent")
        check_images(reference, node, "reference")
        declared = lora_reference_scale(model) if model is not None else None
        if scale == 0:
            scale = declared or 1
            log.info("%s: reference scale %d (%s)", node, scale, "from the IC-LoRA" if declared else "default")
        elif declared is not None and declared != scale:
            log.warning("%s: scale %d overrides the IC-LoRA's own %d", node, scale, declared)
        _, _, f, h, w = samples.shape
        if h % scale or w % scale:
            raise InputError(
                f"{node}: scale {scale} does not divide the video latent's {w}x{h} cells ({32 * w}x{32 * h} pixels); "
                "the reference must cover the video exactly: use a size whose latent divides by the scale"
            )
        real = _real_frames(latent, samples)
        frames = nearest_frame_counts(min(reference.shape[0], real))[0]
        if frames < reference.shape[0]:
            log.info("%s: using the first %d of the reference's %d frames", node, frames, reference.shape[0])
        height, width = 32 * h // scale, 32 * w // scale
        _, src_h, src_w, _ = reference.shape
        checks.fits_memory(
            frames * (3 * checks.tensor_bytes((3, height, width)) + src_h * src_w * 3 * 4),
            host.available_memory(host.intermediate_device()),
            f"{node}: {frames} reference frame(s) of {src_w}x{src_h}",
            advice="resize the reference first",
        )
        try:
            pixels = condition_pixels(reference[:frames], height, width, crf=0)  # the official path compresses none
        except InputError as e:
            raise InputError(f"{node}: {e}") from None
        encoded = vae.encode_pixels(pixels).cpu().float()
        cond = ReferenceCondition(encoded, scale, float(strength))
        out = dict(latent)
        out[CONDITIONS_KEY] = [*earlier, condition_to_dict(cond)]
        log.info(
            "%s: %d reference frame(s) at %dx%d (scale %d), strength %g", node, frames, width, height, scale, strength
        )
        return (out,)


# -- LTXSampler ----------------------------------------------------------------------------------------------------


def _expected_context_widths(model) -> tuple[int, int]:
    c = model.config
    if c.text_path_version == 1:
        return c.caption_channels, c.caption_channels
    return c.cross_attention_dim, c.audio_cross_attention_dim


def conditioning_contexts(conditioning: object, model, name: str, node: str = "LTXSampler") -> TextContexts:
    """Video/audio text contexts of an LTX-AV CONDITIONING, checked against the model's text path."""
    if not isinstance(conditioning, list) or not conditioning:
        got = "nothing (None)" if conditioning is None else f"a {type(conditioning).__name__}"
        got = "an empty list" if conditioning == [] else got
        raise InputError(f"{node}: {name} must be a CONDITIONING from Text Encode (prompt); got {got}")
    if len(conditioning) > 1:
        raise InputError(
            f"{node}: {name} holds {len(conditioning)} prompts (e.g. from Conditioning Combine); Sampler (video + audio) takes "
            "one encoded prompt per input"
        )
    entry = conditioning[0]
    if not isinstance(entry, (list, tuple)) or len(entry) < 2 or not isinstance(entry[1], dict):
        raise InputError(f"{node}: {name} is not a CONDITIONING entry [tensor, dict]")
    video, extras = entry[0], entry[1]
    audio = extras.get("ltx_audio_context")
    if not isinstance(video, torch.Tensor) or not isinstance(audio, torch.Tensor):
        raise InputError(
            f"{node}: {name} has no LTX audio context; it was not made by Text Encode (prompt); CLIP Text Encode and "
            "other text encoders give conditioning the LTX-AV sampler cannot use"
        )
    want_v, want_a = _expected_context_widths(model)
    signature = extras.get("ltx_text_path")
    if isinstance(signature, dict):
        got = (signature.get("variant"), signature.get("video_dim"), signature.get("audio_dim"))
        if got != (model.variant, want_v, want_a):
            raise InputError(
                f"{node}: {name} was encoded with the {got[0]} text path (contexts {got[1]} / {got[2]} wide, from "
                f"'{signature.get('checkpoint')}') but the model is {model.variant} (expects {want_v} / {want_a}, "
                f"'{model.checkpoint}'); load Load Text Encoder (Gemma) with the model's checkpoint"
            )
        if signature.get("checkpoint") != model.checkpoint:
            log.info("%s was encoded with the text path of '%s'", name, signature.get("checkpoint"))
    if (
        video.ndim != 3
        or audio.ndim != 3
        or video.shape[-1] != want_v
        or audio.shape[-1] != want_a
        or 0 in video.shape
        or 0 in audio.shape
    ):
        raise InputError(
            f"{node}: {name} contexts are {list(video.shape)} (video) and {list(audio.shape)} (audio); the "
            f"{model.variant} model expects [batch, tokens, {want_v}] and [batch, tokens, {want_a}]"
        )
    for part, tensor in (("video", video), ("audio", audio)):
        if not tensor.is_floating_point():
            raise InputError(f"{node}: {name} {part} context holds {tensor.dtype} values; expected floats")
        checks.finite_tensor(tensor, f"{node}: {name} {part} context")
    return TextContexts(video.float(), audio.float())


def _parse_blocks(text: str, node: str) -> tuple[int, ...] | None:
    """``""`` -> None (default); ``"none"`` -> (); ``"28, 29"`` -> (28, 29)."""
    text = (text or "").strip().lower()
    if not text:
        return None
    if text == "none":
        return ()
    try:
        return tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise InputError(
            f"{node}: stg_blocks is {text!r}; expected block numbers separated by commas (e.g. '28' or '28, 29'), "
            "'none', or empty for the default"
        ) from None


def guidance_settings(
    variant: str, guided: bool, values: dict[str, float], blocks: tuple[int, ...] | None
) -> tuple[GuidanceParams, GuidanceParams]:
    """(video, audio) guidance from widget values where -1 (any negative) means the default: the reference's
    defaults for ``variant`` when ``guided``, else none (distilled schedules run one conditional pass)."""
    dv, da = default_guidance(variant) if guided else (NO_GUIDANCE, NO_GUIDANCE)

    def pick(key: str, default: float) -> float:
        value = values.get(key, -1.0)
        return default if value < 0 else float(value)

    out = []
    for suffix, d in (("video", dv), ("audio", da)):
        out.append(
            GuidanceParams(
                cfg=pick(f"cfg_{suffix}", d.cfg),
                stg=pick(f"stg_{suffix}", d.stg),
                stg_blocks=d.stg_blocks if blocks is None else blocks,
                modality=pick(f"modality_{suffix}", d.modality),
                rescale=pick(f"rescale_{suffix}", d.rescale),
            )
        )
    return out[0], out[1]


def choose_sigmas(
    schedule: str,
    steps: int,
    variant: str,
    tokens: int | None,
    sigmas: torch.Tensor | None = None,
    max_shift: float = 2.05,
    base_shift: float = 0.95,
    stretch: bool = True,
    terminal: float = 0.1,
) -> tuple[torch.Tensor, bool]:
    """(sigmas, guided by default?) for the sampler's schedule settings; a SIGMAS input wins."""
    if steps > 0 and (sigmas is not None or schedule != "ltx2"):
        log.warning(
            "LTXSampler: steps=%d is not used: %s sets the steps (steps only counts for the ltx2 schedule)",
            steps,
            "the sigmas input" if sigmas is not None else f"the {schedule} schedule",
        )
    if sigmas is not None:
        return validate_sigmas(sigmas, "LTXSampler: sigmas input"), True
    if schedule == "distilled":
        return torch.tensor(DISTILLED_SIGMAS), False
    if schedule == "stage2":
        return torch.tensor(STAGE2_SIGMAS), False
    if schedule != "ltx2":
        raise InputError(f"LTXSampler: schedule is {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    steps = steps if steps > 0 else default_steps(variant)
    try:
        return ltx2_sigmas(steps, tokens, max_shift, base_shift, stretch, terminal), True
    except InputError as e:
        raise InputError(f"LTXSampler: {e}") from None


def audio_keep_mask(latent: dict, samples: torch.Tensor, mode: str, node: str = "LTXSampler") -> torch.Tensor | None:
    """The audio denoise mask ``[B, T]`` by ``audio_mode`` (None: generate everything); see LTXSampler."""
    if mode not in AUDIO_MODES:
        raise InputError(f"{node}: audio_mode is {mode!r}; expected one of {', '.join(AUDIO_MODES)}")
    if mode == "keep":
        return torch.zeros(samples.shape[0], samples.shape[2])
    if latent.get("noise_mask") is not None:
        mask = nested_part(latent["noise_mask"], -1)
        return audio_denoise_mask(mask, tuple(samples.shape), f"{node}: audio_latent noise_mask")
    if mode == "auto" and bool(samples.abs().amax() > 0):
        log.info("%s: audio_latent holds audio and has no noise_mask: keeping it (audio-to-video)", node)
        return torch.zeros(samples.shape[0], samples.shape[2])
    return None


# Frame rates a latent without a record may have been made for (core's empty latents record none; its LTXV Empty
# Latent Audio defaults to 25 fps).
COMMON_FRAME_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0)


def frame_rate_from_audio(video: dict, video_samples: torch.Tensor, audio_samples: torch.Tensor, node: str):
    """The one common frame rate at which the video's frames last as long as the audio latent (core latents record
    no frame rate; the audio latent's length says which one it was made for), or None."""
    frames = _real_frames(video, video_samples)
    t = audio_samples.shape[2]
    fits = [r for r in COMMON_FRAME_RATES if audio_latent_length(frames, r) == t]
    if len(fits) != 1 or fits[0] == DEFAULT_FRAME_RATE:
        return None
    log.info(
        "%s: the latents record no frame_rate; the audio latent's %d latent frames fit %d video frames at %g fps: "
        "sampling at %g fps",
        node, t, frames, fits[0], fits[0],
    )  # fmt: skip
    return fits[0]


def check_audio_length(video: dict, video_samples: torch.Tensor, audio: dict, audio_samples: torch.Tensor, fps: float):
    frames = video_frame_count(video_samples.shape[2])
    real = _real_frames(video, video_samples)
    # One video frame either way is rounding, not a mismatch: a temporal x2 upsample makes 2F - 1 frames at twice
    # the rate, whose span differs from the audio's by half a source frame.
    allowed = {audio_latent_length(n + d, fps) for n in (frames, real) for d in (-1, 0, 1) if n + d > 0}
    t = audio_samples.shape[2]
    if t not in allowed:
        need = audio_latent_length(real, fps)
        raise InputError(
            f"LTXSampler: audio_latent has {t} latent frames ({t / 25:.2f} s) but video_latent spans {real} frames at "
            f"{fps:g} fps ({real / fps:.2f} s), which needs {need}; encode the audio with Audio Encode "
            f"video_frames={real} and frame_rate={fps:g}, or make both latents with Empty Latent (video + audio); with core's "
            f"LTXVEmptyLatentAudio: frames_number={real}, frame_rate={fps:g}"
        )


def _float_widget(tip: str, shown: float) -> tuple:
    # The widget shows LTX-2.3's official value; -1 (what older workflows saved) still means the checkpoint's.
    return (
        "FLOAT",
        {
            "default": shown,
            "min": -1.0,
            "max": 100.0,
            "step": 0.05,
            "tooltip": tip + " Used when settings is 'as set above'; -1: the checkpoint's official value.",
        },
    )


# What the sampler's widgets show: LTX-2.3's official recipe (the newest supported version).
_SHOWN_VIDEO, _SHOWN_AUDIO = default_guidance(LTX23)
SHOWN_STEPS = default_steps(LTX23)


def official_settings_note(
    schedule: str, steps: int, values: dict[str, float], used: tuple[GuidanceParams, GuidanceParams], sigma_count: int
) -> list[str]:
    """The widget values that differ from the official settings in effect (to tell the user they were not used)."""
    notes = []
    if schedule == "ltx2" and steps > 0 and steps != sigma_count:
        notes.append(f"steps {steps} (official {sigma_count})")
    for suffix, params in zip(("video", "audio"), used, strict=True):
        for field in ("cfg", "stg", "modality", "rescale"):
            value, official = values[f"{field}_{suffix}"], getattr(params, field)
            if value >= 0 and not math.isclose(value, official):
                notes.append(f"{field}_{suffix} {value:g} (official {official:g})")
    return notes


class LTXSampler:
    DISPLAY_NAME = "Sampler (video + audio)"
    CATEGORY = "LTX-AV/sampling"
    DESCRIPTION = (
        "Generates video and sound together with the LTX-2 / LTX-2.3 transformer: Euler steps on the model's clean "
        "estimates with per-token timesteps (kept tokens sit at timestep 0), multimodal guidance per stream (CFG, "
        "STG, modality isolation, rescale): the checkpoint's official recipe (settings = official) or the values "
        "set, and the image/keyframe conditions attached to the video latent. Without an audio latent only "
        "video is computed. A noise_mask on either latent regenerates only part of it (retake / inpaint); an audio "
        "latent that holds real audio is kept as is (audio-to-video, see audio_mode). Noise comes from the seed on "
        "the CPU, so results do not depend on the GPU. The preview shows the first frame's estimate as its three "
        "main latent directions in false colour (layout and motion, not real colours)."
    )
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("video_latent", "audio_latent")
    OUTPUT_TOOLTIPS = (
        "Denoised video latent (conditions removed, frame rate kept) for Video Decode.",
        "Denoised audio latent for Audio Decode (None when no audio latent was given).",
    )
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("LTX_MODEL", {"tooltip": "From Load Model (transformer)."}),
                "positive": (
                    "CONDITIONING",
                    {"tooltip": "The prompt, from Text Encode (prompt) with the same checkpoint."},
                ),
                "video_latent": (
                    "LATENT",
                    {
                        "tooltip": "Video to generate: Empty Latent (video + audio), optionally with image conditions attached."
                    },
                ),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 2**63 - 1,
                        "control_after_generate": True,
                        "tooltip": "Noise seed.",
                    },
                ),
                "schedule": (
                    list(SCHEDULES),
                    {
                        "default": "ltx2",
                        "tooltip": "ltx2: the LTX-2 scheduler with steps (for dev checkpoints, guided). distilled: "
                        "the 8 sigmas distilled checkpoints were trained for (unguided; on LTX-2.5 with ancestral Euler "
                        "steps, as the official pipeline). stage2: the 3-step "
                        "refinement of a two-stage run (unguided): connect the upsampled latent (Latent "
                        "Upsample); it is re-noised to the first of these sigmas and refined. A SIGMAS input "
                        "overrides this (a latent holding content is re-noised to its first value).",
                    },
                ),
                "steps": (
                    "INT",
                    {
                        "default": SHOWN_STEPS,
                        "min": 0,
                        "max": 500,
                        "tooltip": "ltx2 schedule steps, used when settings is 'as set above' (official: 30 for "
                        "LTX-2.3, 40 for LTX-2); 0: the checkpoint's official count. The distilled and stage2 "
                        "schedules have fixed steps (8 and 3).",
                    },
                ),
                "cfg_video": _float_widget("Classifier-free guidance for video (1: off).", _SHOWN_VIDEO.cfg),
                "cfg_audio": _float_widget("Classifier-free guidance for audio (1: off).", _SHOWN_AUDIO.cfg),
                "stg_video": _float_widget("Spatio-temporal guidance for video (0: off).", _SHOWN_VIDEO.stg),
                "stg_audio": _float_widget("Spatio-temporal guidance for audio (0: off).", _SHOWN_AUDIO.stg),
                "stg_blocks": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Transformer blocks perturbed for STG, e.g. '29' or '28, 29'. Empty: the default "
                        "(29 for LTX-2, 28 for LTX-2.3); 'none': no STG.",
                    },
                ),
                "modality_video": _float_widget("Audio->video modality guidance (1: off).", _SHOWN_VIDEO.modality),
                "modality_audio": _float_widget("Video->audio modality guidance (1: off).", _SHOWN_AUDIO.modality),
                "rescale_video": _float_widget(
                    "Pulls guided video back toward the prompt's spread (0: off).", _SHOWN_VIDEO.rescale
                ),
                "rescale_audio": _float_widget(
                    "Pulls guided audio back toward the prompt's spread (0: off).", _SHOWN_AUDIO.rescale
                ),
            },
            "optional": {
                "negative": (
                    "CONDITIONING",
                    {"tooltip": "Negative prompt (Text Encode (prompt)); needed whenever cfg is not 1."},
                ),
                "audio_latent": (
                    "LATENT",
                    {
                        "tooltip": "Audio to generate alongside (Empty Latent (video + audio)) or to follow (Audio Encode). "
                        "Not connected: video only (the audio stream is not computed)."
                    },
                ),
                "audio_mode": (
                    list(AUDIO_MODES),
                    {
                        "default": "auto",
                        "tooltip": "auto: follow the audio latent's noise_mask if it has one, else generate an "
                        "all-zero latent (Empty Latent) and keep one holding audio (Audio Encode: audio-to-video). "
                        "generate: (re)generate it; in a second stage this refines the stage-1 audio with the video "
                        "(ltx-pipelines 1.0.0). keep: never change it (the video follows the stage-1 audio). To "
                        "refine but hear the stage-1 audio (ltx-pipelines 1.2), use generate and decode the stage-1 "
                        "audio latent.",
                    },
                ),
                "sigmas": ("SIGMAS", {"tooltip": "Custom noise levels from 1 down to 0; overrides schedule/steps."}),
                "max_shift": (
                    "FLOAT",
                    {"default": 2.05, "min": 0.0, "max": 10.0, "step": 0.01, "tooltip": "ltx2 schedule shift."},
                ),
                "base_shift": (
                    "FLOAT",
                    {
                        "default": 0.95,
                        "min": 0.0,
                        "max": 10.0,
                        "step": 0.01,
                        "tooltip": "ltx2 schedule shift at 1024 tokens (used only with shift_by_size).",
                    },
                ),
                "shift_by_size": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Interpolate the shift by the latent's token count (official pipelines: off, "
                        "i.e. always max_shift).",
                    },
                ),
                "stretch": ("BOOLEAN", {"default": True, "tooltip": "Stretch the ltx2 schedule to end at terminal."}),
                "terminal": (
                    "FLOAT",
                    {
                        "default": 0.1,
                        "min": 0.001,
                        "max": 0.999,
                        "step": 0.001,
                        "tooltip": "Last non-zero sigma of a stretched ltx2 schedule.",
                    },
                ),
                # Last, so workflows saved before it existed keep their widget positions.
                "settings": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "label_on": "official for checkpoint + schedule",
                        "label_off": "as set above",
                        "tooltip": "official: steps and guidance follow the checkpoint's official recipe for the "
                        "schedule (ltx2: the values shown are LTX-2.3's; LTX-2 uses 40 steps and STG block 29; "
                        "distilled / stage2: no guidance) and the widgets above are not used (the console says "
                        "which differ). as set above: the widgets are used as they are.",
                    },
                ),
            },
        }

    @checked
    def run(
        self,
        model,
        positive,
        video_latent,
        seed: int,
        schedule: str = "ltx2",
        steps: int = 0,
        cfg_video: float = -1.0,
        cfg_audio: float = -1.0,
        stg_video: float = -1.0,
        stg_audio: float = -1.0,
        stg_blocks: str = "",
        modality_video: float = -1.0,
        modality_audio: float = -1.0,
        rescale_video: float = -1.0,
        rescale_audio: float = -1.0,
        negative=None,
        audio_latent=None,
        audio_mode: str = "auto",
        sigmas=None,
        max_shift: float = 2.05,
        base_shift: float = 0.95,
        shift_by_size: bool = False,
        stretch: bool = True,
        terminal: float = 0.1,
        settings: bool = False,  # scripts that leave it out keep their values; the widget defaults to official
    ):
        node = "LTXSampler"
        video = _latent_dict(video_latent, node, "video_latent")
        check_release(video, model, node, "video_latent", "model")
        video_samples = _video_samples(video, node, "video_latent", model.config.in_channels, scan=False)
        audio, audio_samples = None, None
        if audio_latent is not None:
            audio = _latent_dict(audio_latent, node, "audio_latent")
            audio_samples = _audio_samples(audio, node, "audio_latent", scan=False)
            check_release(audio, model, node, "audio_latent", "model")
        elif getattr(video["samples"], "is_nested", False):
            audio, audio_samples = video, _audio_samples(video, node, "video_latent", scan=False)

        fps = _frame_rate(video, node, "video_latent")
        if fps is None and audio is not None:
            fps = _frame_rate(audio, node, "audio_latent")
        if fps is None and audio_samples is not None:
            fps = frame_rate_from_audio(video, video_samples, audio_samples, node)
        if fps is None:
            fps = DEFAULT_FRAME_RATE
            log.info("%s: video_latent records no frame_rate; assuming %g fps", node, fps)
        b = video_samples.shape[0]
        if audio_samples is not None:
            audio_fps = _frame_rate(audio, node, "audio_latent")
            if audio_fps is not None and abs(audio_fps - fps) > 1e-6:
                raise InputError(
                    f"{node}: video_latent is at {fps:g} fps but audio_latent was made for {audio_fps:g} fps"
                )
            if audio_samples.shape[0] != b:
                raise InputError(f"{node}: video_latent has batch {b} but audio_latent has {audio_samples.shape[0]}")
            check_audio_length(video, video_samples, audio, audio_samples, fps)

        pos = conditioning_contexts(positive, model, "positive", node)
        neg = None if negative is None else conditioning_contexts(negative, model, "negative", node)
        for name, c in (("positive", pos), ("negative", neg)):
            if c is not None and c.video.shape[0] not in (1, b):
                raise InputError(f"{node}: {name} has batch {c.video.shape[0]} but video_latent has batch {b}")

        tokens = video_samples.shape[2] * video_samples.shape[3] * video_samples.shape[4] if shift_by_size else None
        official = bool(settings)
        sigma_list, guided = choose_sigmas(
            schedule, 0 if official else steps, model.variant, tokens, sigmas, max_shift, base_shift, stretch, terminal
        )
        # The step the official pipelines take on this schedule: ltx-pipelines 1.2.0 samples LTX-2.5's distilled
        # stage 1 with the ancestral Euler step, all else with Euler. A SIGMAS input replaces the schedule, so it
        # runs plain Euler like any custom schedule.
        sampler = default_sampler(model.variant, schedule if sigmas is None else "sigmas")
        values = dict(
            cfg_video=cfg_video,
            cfg_audio=cfg_audio,
            stg_video=stg_video,
            stg_audio=stg_audio,
            modality_video=modality_video,
            modality_audio=modality_audio,
            rescale_video=rescale_video,
            rescale_audio=rescale_audio,
        )
        blocks_given = _parse_blocks(stg_blocks, node)
        video_guidance, audio_guidance = guidance_settings(
            model.variant, guided, {} if official else values, None if official else blocks_given
        )
        if official:
            unused = official_settings_note(
                schedule if sigmas is None else "sigmas", steps, values, (video_guidance, audio_guidance),
                sigma_list.numel() - 1,
            )  # fmt: skip
            if blocks_given is not None and blocks_given != video_guidance.stg_blocks:
                unused.append(f"stg_blocks {stg_blocks!r}")
            if unused:
                log.info(
                    "%s: settings = official for %s on the %s schedule; not used: %s (switch settings to 'as set "
                    "above' to use them)",
                    node,
                    model.variant,
                    schedule if sigmas is None else "given sigmas",
                    ", ".join(unused),
                )
        blocks = model.config.num_layers
        check_guidance_blocks(video_guidance, blocks, f"{node}: video")
        if audio_samples is not None:
            check_guidance_blocks(audio_guidance, blocks, f"{node}: audio")

        video_mask = None
        if video.get("noise_mask") is not None:
            mask = nested_part(video["noise_mask"], 0)
            if isinstance(mask, torch.Tensor) and mask.ndim == 5 and mask.shape[1] == video_samples.shape[1] > 1:
                # a per-channel mask (core's LTXVConcatAVLatent fills a missing one with ones_like the latent): a
                # token takes its largest value over the channels, as for audio masks
                mask = mask.amax(dim=1, keepdim=True)
            video_mask = video_denoise_mask(mask, tuple(video_samples.shape), f"{node}: noise_mask")
        audio_mask = None
        if audio_samples is not None:
            audio_mask = audio_keep_mask(audio, audio_samples, audio_mode, node)
        conditions = [
            condition_from_dict(c, f"{node}: video_latent condition {i + 1}")
            for i, c in enumerate(_conditions(video, node, "video_latent"))
        ]
        for i, cond in enumerate(conditions):
            checks.finite_tensor(cond.latent, f"{node}: video_latent condition {i + 1}")
        if sampler == EULER_ANCESTRAL and (
            video_mask is not None or any(isinstance(c, ReferenceCondition) for c in conditions)
        ):
            # ltx-pipelines 1.2.0's IC-LoRA and retake pipelines run the distilled sigmas with plain Euler; only the
            # distilled text/image-to-video recipe takes the ancestral step
            sampler = EULER
        own = video_samples.shape[2] * video_samples.shape[3] * video_samples.shape[4]
        extra = sum(math.prod(c.latent.shape[2:]) for c in conditions if not isinstance(c, FrameCondition))
        audio_tokens = 0 if audio_samples is None else audio_samples.shape[2]
        work = working_bytes(model.config, own + extra, audio_tokens, b, model.dtype)
        checks.fits_memory(
            work,
            host.available_memory(model.device),
            f"{node}: sampling {b} x {own + extra:,} video tokens",
            where=f"memory on {model.device} beyond the weights",
            advice="make the video shorter or smaller (a 768x512x121 video is 6,144 tokens)",
        )
        checks.finite_tensor(video_samples, f"{node}: video_latent")
        if audio_samples is not None:
            checks.finite_tensor(audio_samples, f"{node}: {'audio_latent' if audio is not video else 'video_latent'}")
        log.info(
            "%s: %d %s steps %s, video %s, audio %s, guidance video %s audio %s, %d condition(s)",
            node,
            sigma_list.numel() - 1,
            sampler if sampler == "euler" else f"{sampler} (LTX-2.5 distilled; step noise from seed + 10000)",
            [round(s, 4) for s in sigma_list.tolist()],
            list(video_samples.shape),
            "none" if audio_samples is None else list(audio_samples.shape),
            video_guidance,
            "none (kept)" if audio_mask is not None and not bool(audio_mask.any()) else audio_guidance,
            len(conditions),
        )

        progress = host.Progress(sigma_list.numel() - 1)
        grid = tuple(video_samples.shape[2:])

        def report(p: Progress) -> None:
            if p.video_x0 is None:
                host.check_interrupt()
                return
            progress.update(1, preview=_pil(preview_image(p.video_x0, grid)))

        with model.in_use(work), _out_of_memory_advice(node, model.device):  # ComfyUI makes room for both
            v_out, a_out = sample(
                model,
                video_samples,
                frame_rate=fps,
                positive=pos,
                negative=neg,
                sigmas=sigma_list,
                seed=seed,
                video_guidance=video_guidance,
                audio_guidance=audio_guidance,
                audio_latent=audio_samples,
                video_mask=video_mask,
                audio_mask=audio_mask,
                conditions=conditions,
                device=model.device,
                callback=report,
                sampler=sampler,
            )
        out_video = {k: v for k, v in video.items() if k != CONDITIONS_KEY}
        out_video.update(samples=v_out.to(host.intermediate_device()), type="video", frame_rate=fps)
        out_audio = None
        if a_out is not None:
            out_audio = {k: v for k, v in audio.items() if k != CONDITIONS_KEY}
            out_audio.update(samples=a_out.to(host.intermediate_device()), type="audio", frame_rate=fps)
            if audio is video:  # a nested AV latent came in; give back plain ones
                out_audio.pop(FIT_KEY, None)
                out_video.pop("noise_mask", None)
            record_release(out_audio, releases_of(model), model.checkpoint)
        return (record_release(out_video, releases_of(model), model.checkpoint), out_audio)


@contextmanager
def _out_of_memory_advice(node: str, device: torch.device):
    """Turn an out-of-memory failure into the advice the README gives (the original stays the cause)."""
    try:
        yield
    except Exception as error:
        if not host.is_out_of_memory(error):
            raise
        raise TooLargeError(
            f"{node}: ran out of memory on {device} while sampling; set offload = blocks and/or dtype = "
            "float8-storage on Load Model (transformer), or make the video shorter or smaller"
        ) from error


def _pil(rgb: torch.Tensor):
    from PIL import Image

    return Image.fromarray(rgb.numpy())


# -- LTXTimeWindowMask ---------------------------------------------------------------------------------------------


class LTXTimeWindowMask:
    DISPLAY_NAME = "Time Window Mask (retake)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = (
        "Sets a video or audio latent's noise_mask so Sampler (video + audio) regenerates only the latent frames overlapping "
        "[start, end) seconds (or only those outside it) and keeps the rest exactly: retake a moment of an encoded "
        "video or its sound. Video latent frames cover 8 frames each (the first one frame); audio latent frames "
        "40 ms."
    )
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The latent with a noise_mask.",)
    FUNCTION = "mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": ("LATENT", {"tooltip": "A video latent (with frame_rate) or an audio latent."}),
                "start_seconds": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.0, "max": 100000.0, "step": 0.01, "tooltip": "Window start (s)."},
                ),
                "end_seconds": (
                    "FLOAT",
                    {"default": 2.0, "min": 0.0, "max": 100000.0, "step": 0.01, "tooltip": "Window end (s)."},
                ),
                "regenerate": (
                    ["inside", "outside"],
                    {"default": "inside", "tooltip": "inside: redo the window, keep the rest; outside: the opposite."},
                ),
            },
            "optional": {
                "frame_rate": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 240.0,
                        "step": 0.001,
                        "tooltip": "Video frame rate; 0: the latent's own (24 if it records none).",
                    },
                ),
            },
        }

    @checked
    def mask(self, latent, start_seconds: float, end_seconds: float, regenerate: str = "inside", frame_rate=0.0):
        node = "LTXTimeWindowMask"
        latent = _latent_dict(latent, node, "latent")
        samples = latent["samples"]
        fps = frame_rate or _frame_rate(latent, node, "latent") or DEFAULT_FRAME_RATE
        if samples.ndim == 5:
            samples = _video_samples(latent, node, "latent")
        elif samples.ndim == 4:
            samples = _audio_samples(latent, node, "latent")
        else:
            raise InputError(f"{node}: latent has shape {list(samples.shape)}; connect an LTX video or audio latent")
        if regenerate not in ("inside", "outside"):
            raise InputError(f"{node}: regenerate is {regenerate!r}; expected 'inside' or 'outside'")
        if not end_seconds > start_seconds:
            raise InputError(f"{node}: end_seconds ({end_seconds:g}) must be after start_seconds ({start_seconds:g})")
        mask = time_window_mask(tuple(samples.shape), start_seconds, end_seconds, fps, regenerate == "inside")
        if not bool(mask.any()):
            log.warning(
                "%s: [%g, %g) s selects no latent frame; nothing will be regenerated", node, start_seconds, end_seconds
            )
        out = dict(latent)
        out["noise_mask"] = mask
        return (out,)


NODES: tuple[type, ...] = (
    LTXEmptyLatent,
    LTXImageCondition,
    LTXReferenceCondition,
    LTXSampler,
    LTXTimeWindowMask,
)
