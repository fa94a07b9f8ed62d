"""What the sampler keeps and what it generates: token states, image/keyframe conditions and denoise masks.

During sampling each stream is a :class:`TokenState`: patchified tokens plus a *denoise mask* per token (1: generate
from noise, 0: keep the clean value, in between: partly). The mask sets the token's timestep (``mask * sigma``),
how much noise it starts with, and how much of the model's prediction replaces its clean value at every step.

Conditions (architecture notes §7.7):

* :class:`FrameCondition` (``frame_index == 0``) *replaces* the tokens of latent frames from ``latent_index`` on
  with encoded frames (their clean value) and sets their mask to ``1 - strength``.
* :class:`KeyframeCondition` (any other frame) *appends* the encoded frames as extra tokens after the video's own,
  placed in time at pixel frame ``frame_index`` (see :func:`.patchify.keyframe_positions`), mask ``1 - strength``.
  They are cut off again before the latent is returned.
* :class:`KeyframeSlots` (LTX-2.5) appends empty one-pixel-frame slots at chosen pixel frames that are *generated*
  with the video (mask 1), each a latent frame of tokens spanning one pixel frame in time.

Two published implementations differ in how conditions enter the state (:class:`Conventions`): ltx-core 1.0.0
(the reference for LTX-2 / LTX-2.3) and 1.2.0 (the only one for LTX-2.5); :func:`conventions_for` picks a
release's.

Every video token also carries a *keyframe mark* (``TokenState.keyframes``): True for tokens that encode one
standalone pixel frame, i.e. the latent's first frame (the causal VAE encodes it alone) and generated slots; never
appended image or reference tokens. LTX-2.5 adds a learned embedding to the marked tokens; earlier models ignore
the marks.

Noise masks (``noise_mask`` of a LATENT) become per-token denoise masks with :func:`video_denoise_mask` and
:func:`audio_denoise_mask`; :func:`time_window_mask` builds one that regenerates a time window (retake).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from .config import LTX25
from .errors import InputError
from .latents import SPACE_COMPRESSION, TIME_COMPRESSION, nearest_frame_counts, video_frame_count
from .media import DEFAULT_IMAGE_CRF, h264_roundtrip, resize_to_fill
from .patchify import (
    audio_positions,
    keyframe_positions,
    patchify_audio,
    patchify_video,
    reference_positions,
    video_positions,
)

log = logging.getLogger("ltx_av.conditioning")


@dataclass(frozen=True)
class TokenState:
    """One stream during denoising (all ``[B, N, ...]`` with N = own tokens + appended conditioning tokens).

    ``latent`` ``[B, N, C]`` current values; ``clean`` ``[B, N, C]`` values kept where ``mask`` < 1; ``mask``
    ``[B, N]`` float32 denoise mask in [0, 1]; ``positions`` ``[B, A, N, 2]`` RoPE bounds; ``grid`` the latent's
    own size, ``(F, H, W)`` for video or ``(T,)`` for audio (its tokens come first); ``frame_rate`` (video);
    ``keyframes`` ``[B, N]`` bool keyframe marks (video; ``None`` for audio).
    Every token attends to every other (conditions add no attention mask, like the reference's plain items).
    """

    latent: torch.Tensor
    clean: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    grid: tuple[int, ...]
    frame_rate: float | None = None
    keyframes: torch.Tensor | None = None

    @property
    def own_tokens(self) -> int:
        n = 1
        for size in self.grid:
            n *= size
        return n

    @property
    def frozen(self) -> bool:
        """Every token is kept as it is (nothing to generate)."""
        return not bool((self.mask > 0).any())


def video_state(latent: torch.Tensor, frame_rate: float, denoise_mask: torch.Tensor | None = None) -> TokenState:
    """State of a video latent ``[B, C, F, H, W]`` (C = 128 for the released VAEs); ``denoise_mask``
    ``[B, F*H*W]`` (None: generate all)."""
    if latent.ndim != 5:
        raise InputError(f"video latent must be [B, C, F, H, W]; got shape {list(latent.shape)}")
    b, _, f, h, w = latent.shape
    tokens = patchify_video(latent.float()).contiguous()
    mask = torch.ones(b, f * h * w) if denoise_mask is None else denoise_mask.float()
    keyframes = torch.zeros(b, f * h * w, dtype=torch.bool, device=tokens.device)
    keyframes[:, : h * w] = True  # the first latent frame encodes pixel frame 0 alone
    return TokenState(
        latent=tokens,
        clean=tokens.clone(),
        mask=mask.to(tokens.device).clone(),
        positions=video_positions(b, f, h, w, frame_rate, device=tokens.device),
        grid=(f, h, w),
        frame_rate=float(frame_rate),
        keyframes=keyframes,
    )


def audio_state(latent: torch.Tensor, denoise_mask: torch.Tensor | None = None) -> TokenState:
    """State of an audio latent ``[B, 8, T, 16]``; ``denoise_mask`` ``[B, T]`` (None: generate all)."""
    if latent.ndim != 4:
        raise InputError(f"audio latent must be [B, 8, T, 16]; got shape {list(latent.shape)}")
    b, _, t, _ = latent.shape
    tokens = patchify_audio(latent.float()).contiguous()
    mask = torch.ones(b, t) if denoise_mask is None else denoise_mask.float()
    return TokenState(
        latent=tokens,
        clean=tokens.clone(),
        mask=mask.to(tokens.device).clone(),
        positions=audio_positions(b, t, device=tokens.device),
        grid=(t,),
    )


def own_tokens(state: TokenState) -> TokenState:
    """The state without appended conditioning tokens."""
    n = state.own_tokens
    return replace(
        state,
        latent=state.latent[:, :n],
        clean=state.clean[:, :n],
        mask=state.mask[:, :n],
        positions=state.positions[:, :, :n],
        keyframes=None if state.keyframes is None else state.keyframes[:, :n],
    )


def appended_tokens(state: TokenState) -> TokenState:
    """The tokens conditions appended after the latent's own (keyframes, references, slots), in order."""
    n = state.own_tokens
    return replace(
        state,
        latent=state.latent[:, n:],
        clean=state.clean[:, n:],
        mask=state.mask[:, n:],
        positions=state.positions[:, :, n:],
        keyframes=None if state.keyframes is None else state.keyframes[:, n:],
    )


# -- conventions ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conventions:
    """How a published implementation prepares what the model sees, where the two releases differ.

    ``single_frame_keyframes``: a keyframe of one latent frame (one encoded image) spans one pixel frame in time,
    ``[i, i + 1)``, instead of a latent frame's eight (it changes the keyframe's RoPE position). ``clean_only``: a
    condition sets only the kept values (and mask); the noisy starting value of an appended token is zero and a
    replaced token keeps the input latent's, where the other convention writes the condition into both; noise is
    then mixed in as ``lerp(clean, lerp(latent, noise, scale), mask)`` (only a partial strength with a noise scale
    below 1 tells the two apart, see :func:`.sampling.add_noise`). ``zero_frozen_sigma``: a stream with nothing to
    generate (audio kept in audio-to-video) is shown to the model at sigma 0, which drives its prompt AdaLN and the
    other stream's cross-attention gate, instead of the step's sigma.
    """

    single_frame_keyframes: bool = False
    clean_only: bool = False
    zero_frozen_sigma: bool = False


# ltx-core 1.0.0, the reference for LTX-2 and LTX-2.3.
LTX_CORE_1_0 = Conventions()
# ltx-core 1.2.0, the only implementation of LTX-2.5.
LTX_CORE_1_2 = Conventions(single_frame_keyframes=True, clean_only=True, zero_frozen_sigma=True)


def conventions_for(variant: str | None) -> Conventions:
    """The conventions of the implementation a release was published with."""
    return LTX_CORE_1_2 if variant == LTX25 else LTX_CORE_1_0


# -- image / keyframe conditions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameCondition:
    """Encoded frames ``[1|B, C, f, H, W]`` that replace latent frames ``latent_index .. latent_index + f - 1``."""

    latent: torch.Tensor
    strength: float = 1.0
    latent_index: int = 0

    @property
    def frame_index(self) -> int:
        return 0 if self.latent_index == 0 else 1 + TIME_COMPRESSION * (self.latent_index - 1)


@dataclass(frozen=True)
class KeyframeCondition:
    """Encoded frames ``[1|B, C, f, H, W]`` appended as extra tokens placed at pixel frame ``frame_index``."""

    latent: torch.Tensor
    frame_index: int
    strength: float = 1.0


@dataclass(frozen=True)
class ReferenceCondition:
    """An IC-LoRA reference: encoded frames ``[1|B, C, f, H/s, W/s]`` of a control video (edges, depth, pose, ...)
    appended as extra tokens, laid over the video from frame 0 with their pixel bounds scaled by ``scale`` (the
    LoRA's ``reference_downscale_factor``: the reference was trained at ``1/scale`` of the video's size). Kept
    clean at strength 1 (timestep 0), cut from the sampler's output like keyframes."""

    latent: torch.Tensor
    scale: int = 1
    strength: float = 1.0

    @property
    def frame_index(self) -> int:
        return 0


@dataclass(frozen=True)
class KeyframeSlots:
    """LTX-2.5 generated keyframes: one empty slot per pixel frame in ``frame_indices`` (strictly increasing,
    inside the video), each a latent frame of tokens at the video's size spanning that single pixel frame in time,
    generated with the video (mask 1) from zeros, or from ``latent`` ``[1|B, C, K, H, W]`` (K = one latent frame
    per slot) moved toward noise like any generated token. The slots are marked as keyframes (only models with a
    keyframe embedding know what they are) and cut from the sampler's output like other appended tokens; their
    content can be read from the final state (:func:`appended_tokens`)."""

    frame_indices: tuple[int, ...]
    latent: torch.Tensor | None = None

    @property
    def frame_index(self) -> int:
        return self.frame_indices[0] if self.frame_indices else 0


Condition = FrameCondition | KeyframeCondition | ReferenceCondition | KeyframeSlots


def _check_condition(state: TokenState, cond: Condition, name: str) -> tuple[int, torch.Tensor]:
    f, h, w = state.grid
    lat = cond.latent
    channels = state.latent.shape[-1]  # the video latent's own channel count (the VAE's latent_channels)
    if not isinstance(lat, torch.Tensor) or lat.ndim != 5 or 0 in lat.shape:
        shape = list(lat.shape) if isinstance(lat, torch.Tensor) else type(lat).__name__
        raise InputError(f"{name}: the encoded frames must be [1, {channels}, frames, H, W]; got {shape}")
    if lat.shape[1] != channels:
        raise InputError(
            f"{name}: the encoded frames have {lat.shape[1]} channels but the video latent has {channels}; encode "
            "the image with the video VAE of the model that samples this latent"
        )
    px = SPACE_COMPRESSION
    if isinstance(cond, ReferenceCondition):
        s = cond.scale
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise InputError(f"{name}: the reference scale must be a whole number >= 1; got {s!r}")
        if (lat.shape[3] * s, lat.shape[4] * s) != (h, w):
            raise InputError(
                f"{name} was encoded at {px * lat.shape[4]}x{px * lat.shape[3]} pixels, which at scale {s} covers "
                f"{px * s * lat.shape[4]}x{px * s * lat.shape[3]}, but the video latent is {px * w}x{px * h}; encode "
                f"the reference at {px * w // s}x{px * h // s} (the video's size / {s})"
            )
        if lat.shape[2] > f:
            raise InputError(
                f"{name} has {lat.shape[2]} latent frames but the video latent only {f}; use a shorter reference"
            )
    elif tuple(lat.shape[3:]) != (h, w):
        raise InputError(
            f"{name} was encoded at {px * lat.shape[4]}x{px * lat.shape[3]} pixels but the video latent is "
            f"{px * w}x{px * h}; apply the image condition to a latent of the final size (after any resize)"
        )
    b = state.latent.shape[0]
    if lat.shape[0] not in (1, b):
        raise InputError(f"{name} has batch {lat.shape[0]} but the video latent has batch {b}")
    if not 0.0 <= cond.strength <= 1.0:
        raise InputError(f"{name}: strength must be in [0, 1]; got {cond.strength}")
    tokens = patchify_video(lat.float().to(state.latent.device)).expand(b, -1, -1)
    return b, tokens


def apply_condition(
    state: TokenState, cond: Condition, name: str = "condition", conventions: Conventions = LTX_CORE_1_0
) -> TokenState:
    """The video state with ``cond`` applied (replaced tokens, or appended tokens with their positions), under
    ``conventions`` (:func:`conventions_for` of the model's release)."""
    if isinstance(cond, KeyframeSlots):
        return _append_slots(state, cond, name)
    b, tokens = _check_condition(state, cond, name)
    f, h, w = state.grid
    keep = 1.0 - float(cond.strength)
    frames = cond.latent.shape[2]
    if isinstance(cond, FrameCondition):
        if cond.latent_index < 0 or cond.latent_index + frames > f:
            raise InputError(
                f"{name}: {frames} latent frame(s) at latent frame {cond.latent_index} do not fit a video latent "
                f"of {f} frames"
            )
        start = cond.latent_index * h * w
        stop = start + tokens.shape[1]
        latent, clean, mask = state.latent.clone(), state.clean.clone(), state.mask.clone()
        if not conventions.clean_only:
            latent[:, start:stop] = tokens
        clean[:, start:stop] = tokens
        mask[:, start:stop] = keep
        return replace(state, latent=latent, clean=clean, mask=mask)
    if isinstance(cond, ReferenceCondition):
        rh, rw = cond.latent.shape[3:]
        positions = reference_positions(b, frames, rh, rw, cond.scale, state.frame_rate, device=state.latent.device)
    else:
        if cond.frame_index < 0:
            raise InputError(f"{name}: frame_index must be >= 0; got {cond.frame_index}")
        positions = keyframe_positions(b, frames, h, w, cond.frame_index, state.frame_rate, device=state.latent.device)
        if conventions.single_frame_keyframes and frames == 1:
            positions = _one_pixel_frame(positions, cond.frame_index, state.frame_rate)
    return _append(
        state,
        torch.zeros_like(tokens) if conventions.clean_only else tokens,
        tokens,
        torch.full(tokens.shape[:2], keep, device=state.mask.device),
        positions,
        marked=False,
    )


def _one_pixel_frame(positions: torch.Tensor, frame_index: int, frame_rate: float) -> torch.Tensor:
    """Narrow a one-latent-frame group at pixel frame ``frame_index`` to ``[frame_index, frame_index + 1)`` in time,
    rounded like its start (pixel frames in float32, then over the frame rate)."""
    positions = positions.clone()
    end = torch.tensor(float(frame_index + 1), dtype=torch.float32, device=positions.device) / frame_rate
    positions[:, 0, :, 1] = end
    return positions


def _append(
    state: TokenState,
    noisy: torch.Tensor,
    clean: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    *,
    marked: bool,
) -> TokenState:
    keyframes = state.keyframes
    if keyframes is not None:
        added = torch.full(noisy.shape[:2], marked, dtype=torch.bool, device=keyframes.device)
        keyframes = torch.cat([keyframes, added], dim=1)
    return replace(
        state,
        latent=torch.cat([state.latent, noisy.to(state.latent.dtype)], dim=1),
        clean=torch.cat([state.clean, clean.to(state.clean.dtype)], dim=1),
        mask=torch.cat([state.mask, mask.to(state.mask.dtype)], dim=1),
        positions=torch.cat([state.positions, positions.to(state.positions.dtype)], dim=2),
        keyframes=keyframes,
    )


def _append_slots(state: TokenState, cond: KeyframeSlots, name: str) -> TokenState:
    f, h, w = state.grid
    b, device = state.latent.shape[0], state.latent.device
    pixel_frames = video_frame_count(f)
    indices = cond.frame_indices
    if (
        not isinstance(indices, (tuple, list))
        or not indices
        or any(isinstance(i, bool) or not isinstance(i, int) for i in indices)
    ):
        raise InputError(
            f"{name}: frame_indices must be a non-empty list of whole pixel frame numbers; got {indices!r}"
        )
    if any(i < 0 or i >= pixel_frames for i in indices) or any(
        j <= i for i, j in zip(indices, indices[1:], strict=False)
    ):
        raise InputError(
            f"{name}: keyframe slots {list(indices)} must be strictly increasing pixel frames of the video, which "
            f"has frames 0..{pixel_frames - 1}"
        )
    if state.keyframes is None:
        raise InputError(f"{name}: keyframe slots need a video state (this one has no keyframe marks)")
    count = h * w * len(indices)
    channels = state.latent.shape[-1]
    if cond.latent is None:
        noisy = torch.zeros(b, count, channels, device=device)
    else:
        lat = cond.latent
        want = [1, channels, len(indices), h, w]
        if not isinstance(lat, torch.Tensor) or lat.ndim != 5 or list(lat.shape[1:]) != want[1:]:
            shape = list(lat.shape) if isinstance(lat, torch.Tensor) else type(lat).__name__
            raise InputError(
                f"{name}: the slots' starting latent must be {want} (one latent frame per slot); got {shape}"
            )
        if lat.shape[0] not in (1, b):
            raise InputError(f"{name}: the slots' starting latent has batch {lat.shape[0]} but the video has {b}")
        # one latent frame per slot, slot after slot (a frame-major patchify of the K frames is exactly that)
        noisy = patchify_video(lat.float().to(device)).expand(b, -1, -1)
    positions = torch.cat(
        [_one_pixel_frame(keyframe_positions(b, 1, h, w, i, state.frame_rate, device=device), i, state.frame_rate)
         for i in indices],
        dim=2,
    )  # fmt: skip
    return _append(
        state, noisy, torch.zeros(b, count, channels, device=device), torch.ones(b, count, device=device),
        positions, marked=True,
    )  # fmt: skip


def apply_conditions(
    state: TokenState,
    conditions: list[Condition] | tuple[Condition, ...],
    conventions: Conventions = LTX_CORE_1_0,
) -> TokenState:
    """Apply conditions in order (a later replace of the same frames wins; keyframes append in order)."""
    slots = [c for c in conditions if isinstance(c, KeyframeSlots)]
    if len(slots) > 1:
        raise InputError(
            f"{len(slots)} sets of keyframe slots were given; put all slots in one KeyframeSlots (their tokens must "
            "form one run)"
        )
    for i, cond in enumerate(conditions):
        state = apply_condition(state, cond, f"condition {i + 1} ({describe_condition(cond)})", conventions)
    return state


def describe_condition(cond: Condition) -> str:
    if isinstance(cond, KeyframeSlots):
        return f"generated keyframe slots at frames {', '.join(str(i) for i in cond.frame_indices)}"
    if isinstance(cond, ReferenceCondition):
        return f"IC-LoRA reference at scale {cond.scale}, strength {cond.strength:g}"
    kind = "replaces frames" if isinstance(cond, FrameCondition) else "keyframe"
    return f"{kind} at frame {cond.frame_index}, strength {cond.strength:g}"


def condition_to_dict(cond: Condition) -> dict[str, Any]:
    """Plain dict (tensors, numbers, strings) for a LATENT entry; :func:`condition_from_dict` reverses it."""
    if isinstance(cond, KeyframeSlots):
        return {"kind": "slots", "latent": cond.latent, "frames": [int(i) for i in cond.frame_indices]}
    if isinstance(cond, FrameCondition):
        return {"kind": "replace", "latent": cond.latent, "strength": float(cond.strength), "index": cond.latent_index}
    if isinstance(cond, ReferenceCondition):
        return {"kind": "reference", "latent": cond.latent, "strength": float(cond.strength), "index": cond.scale}
    return {"kind": "keyframe", "latent": cond.latent, "strength": float(cond.strength), "index": cond.frame_index}


def condition_from_dict(values: Any, name: str = "condition") -> Condition:
    if isinstance(values, dict) and values.get("kind") == "slots":
        frames, latent = values.get("frames"), values.get("latent")
        if not isinstance(frames, (list, tuple)) or not (latent is None or isinstance(latent, torch.Tensor)):
            raise InputError(f"{name}: keyframe slots need a 'frames' list and an optional 'latent' tensor")
        return KeyframeSlots(tuple(frames), latent)
    if not isinstance(values, dict) or not isinstance(values.get("latent"), torch.Tensor):
        raise InputError(f"{name} is not an LTX-AV image condition (a dict with an encoded 'latent')")
    kind, index, strength = values.get("kind"), values.get("index"), values.get("strength")
    if not isinstance(index, int) or not isinstance(strength, (int, float)):
        raise InputError(f"{name}: 'index' must be an int and 'strength' a number; got {index!r}, {strength!r}")
    if kind == "replace":
        return FrameCondition(values["latent"], float(strength), index)
    if kind == "keyframe":
        return KeyframeCondition(values["latent"], index, float(strength))
    if kind == "reference":
        return ReferenceCondition(values["latent"], index, float(strength))
    raise InputError(f"{name}: kind is {kind!r}; expected 'replace', 'keyframe' or 'reference'")


def condition_for_frame(
    encoded: torch.Tensor, frame_index: int, strength: float, video_frames: int, name: str = "condition"
) -> Condition:
    """The condition the reference uses for encoded frames ``[1, 128, f, H, W]`` starting at pixel frame
    ``frame_index`` (>= 0) of a video of ``video_frames`` pixel frames: replace at 0, keyframe otherwise."""
    pixels = video_frame_count(encoded.shape[2])
    last = frame_index + pixels - 1
    if frame_index < 0 or last >= video_frames:
        span = f"frames {frame_index}..{last}" if pixels > 1 else f"frame {frame_index}"
        raise InputError(f"{name}: {span} lie beyond the video, which has frames 0..{video_frames - 1}")
    if frame_index == 0:
        return FrameCondition(encoded, strength, 0)
    return KeyframeCondition(encoded, frame_index, strength)


def condition_pixels(
    images: torch.Tensor,
    height: int,
    width: int,
    crf: float = DEFAULT_IMAGE_CRF,
    content: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """IMAGE frames ``[N, H, W, 3]`` in 0..1 -> encoder input ``[1, 3, N', height, width]`` in [-1, 1], as the
    reference prepares conditioning images: each frame through one H.264 frame at ``crf`` (0: skipped) as 8-bit
    RGB, scaled to cover the target and centre-cropped. ``N'`` is the largest 8k+1 <= N (extra frames are dropped,
    with a log line). ``content`` ``(top, left, h, w)``: the frames fill that region and its edge pixels are
    repeated around it (a latent padded to the VAE grid, see ``video_vae.VideoFit``)."""
    if images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape:
        raise InputError(f"images must be an IMAGE batch [frames, height, width, 3]; got {list(images.shape)}")
    n = images.shape[0]
    keep, _ = nearest_frame_counts(n)
    if keep != n:
        log.info("conditioning on the first %d of %d frames (the video VAE encodes 8k+1 frames)", keep, n)
    frames = images[:keep].float().clamp(0, 1)
    if crf:
        as_bytes = (frames * 255).round().to(torch.uint8).cpu().numpy()
        frames = torch.stack([torch.from_numpy(h264_roundtrip(f, crf)) for f in as_bytes]).float()
    else:
        frames = frames * 255
    top, left, h, w = content if content is not None else (0, 0, height, width)
    pixels = resize_to_fill(frames, h, w) / 127.5 - 1.0  # [N, 3, h, w]
    if (h, w) != (height, width):
        pixels = F.pad(pixels, (left, width - w - left, top, height - h - top), mode="replicate")
    return pixels.permute(1, 0, 2, 3).unsqueeze(0).contiguous()


# -- noise masks -> denoise masks ----------------------------------------------------------------------------------


def _check_mask_values(mask: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"{name} must be a tensor; got {type(mask).__name__}")
    mask = mask.detach().float().cpu()
    if not torch.isfinite(mask).all():
        raise InputError(
            f"{name} contains NaN or infinite values; it must hold values in [0, 1] (1: regenerate, 0: keep)"
        )
    if (mask < 0).any() or (mask > 1).any():
        raise InputError(
            f"{name} must hold values in [0, 1] (1: regenerate, 0: keep); got {mask.min().item():g}..{mask.max().item():g}"
        )
    return mask


def _latent_frames_from_pixels(mask: torch.Tensor, frames: int) -> torch.Tensor:
    """``[..., 8(F-1)+1, h, w]`` -> ``[..., F, h, w]``: a latent frame is regenerated as much as the most
    regenerated of the pixel frames it encodes (the first alone, then groups of 8)."""
    first = mask[..., :1, :, :]
    rest = mask[..., 1:, :, :]
    if frames == 1:
        return first
    rest = rest.unflatten(-3, (frames - 1, TIME_COMPRESSION)).amax(dim=-3)
    return torch.cat([first, rest], dim=-3)


def video_denoise_mask(noise_mask: torch.Tensor, shape: tuple[int, ...], name: str = "noise_mask") -> torch.Tensor:
    """A video ``noise_mask`` -> ``[B, F*H*W]`` denoise mask for a latent of ``shape`` ``[B, 128, F, H, W]``.

    Accepted: ``[b, 1, f, h, w]`` or ``[b, f, h, w]`` (b: 1 or B), MASK-like ``[f, h, w]`` and core
    SetLatentNoiseMask's ``[f, 1, h, w]`` (a MASK batch is read as frames); ``f`` is 1, the
    latent frames F, or the pixel frames 8(F-1)+1; any ``h, w`` (in latent cells or pixels). A token takes the
    largest value over the pixels/frames it covers (so a region's border is regenerated, not blended).
    """
    mask = _check_mask_values(noise_mask, name)
    b, _, f, h, w = shape
    pixel_frames = video_frame_count(f)
    if mask.ndim == 3:
        mask = mask.unsqueeze(0)
    elif mask.ndim == 4 and mask.shape[1] == 1 and mask.shape[0] not in (1, b):
        mask = mask[:, 0].unsqueeze(0)  # core SetLatentNoiseMask stores a MASK batch (frames) as [N, 1, h, w]
    if mask.ndim == 5:
        if mask.shape[1] != 1:
            raise InputError(f"{name} has shape {list(mask.shape)}; a 5-D video mask is [batch, 1, frames, h, w]")
        mask = mask[:, 0]
    if mask.ndim != 4 or 0 in mask.shape:
        raise InputError(
            f"{name} has shape {list(noise_mask.shape)}; expected [batch, 1, frames, h, w], [batch, frames, h, w] "
            "or [frames, h, w]"
        )
    if mask.shape[0] not in (1, b):
        raise InputError(f"{name} has batch {mask.shape[0]} but the video latent has batch {b}")
    frames = mask.shape[1]
    if frames == pixel_frames and frames != f:
        mask = _latent_frames_from_pixels(mask, f)
    elif frames not in (1, f):
        raise InputError(
            f"{name} has {frames} frames; expected 1 (all frames), {f} (latent frames) or {pixel_frames} (video frames)"
        )
    if tuple(mask.shape[2:]) != (h, w):
        mask = F.adaptive_max_pool2d(mask, (h, w))
    return mask.expand(b, f, h, w).reshape(b, f * h * w).contiguous()


def audio_denoise_mask(noise_mask: torch.Tensor, shape: tuple[int, ...], name: str = "noise_mask") -> torch.Tensor:
    """An audio ``noise_mask`` -> ``[B, T]`` denoise mask for a latent of ``shape`` ``[B, 8, T, 16]``.

    Accepted: ``[b, c, t, m]`` (c: 1 or 8, m: 1 or 16; a token takes the largest value over its features),
    ``[b, t]`` or ``[t]``, with b in (1, B) and t in (1, T).
    """
    mask = _check_mask_values(noise_mask, name)
    b, c, t, m = shape
    if mask.ndim == 4:
        if mask.shape[1] not in (1, c) or mask.shape[3] not in (1, m):
            raise InputError(f"{name} has shape {list(mask.shape)}; a 4-D audio mask is [batch, 1|{c}, T, 1|{m}]")
        mask = mask.amax(dim=(1, 3))
    elif mask.ndim == 1:
        mask = mask.unsqueeze(0)
    if mask.ndim != 2 or mask.shape[0] not in (1, b) or mask.shape[1] not in (1, t):
        raise InputError(
            f"{name} has shape {list(noise_mask.shape)}; expected [batch, 1, {t}, 1], [batch, {t}] or [{t}] for an "
            f"audio latent of {t} frames and batch {b}"
        )
    return mask.expand(b, t).contiguous()


def time_window_mask(
    shape: tuple[int, ...], start: float, end: float, frame_rate: float | None = None, inside: bool = True
) -> torch.Tensor:
    """A latent-resolution ``noise_mask`` that regenerates the tokens overlapping ``[start, end)`` seconds
    (``inside=False``: everything else). ``shape``: a video ``[B, 128, F, H, W]`` (needs ``frame_rate``) -> mask
    ``[1, 1, F, 1, 1]``; an audio ``[B, 8, T, 16]`` -> ``[1, 1, T, 1]``."""
    if not end > start:
        raise InputError(f"the time window must end after it starts; got start {start} s, end {end} s")
    if len(shape) == 5:
        if frame_rate is None or not frame_rate > 0:
            raise InputError(f"a video time window needs a positive frame rate; got {frame_rate}")
        bounds = video_positions(1, shape[2], 1, 1, frame_rate)[0, 0]  # [F, 2] seconds
        view = (1, 1, -1, 1, 1)
    elif len(shape) == 4:
        bounds = audio_positions(1, shape[2])[0, 0]
        view = (1, 1, -1, 1)
    else:
        raise InputError(f"a time window needs a video [B,128,F,H,W] or audio [B,8,T,16] latent; got {list(shape)}")
    hit = (bounds[:, 1] > start) & (bounds[:, 0] < end)
    if not inside:
        hit = ~hit
    return hit.float().view(view)
