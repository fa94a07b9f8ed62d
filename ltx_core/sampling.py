"""The denoising loop: noise from a seed, per-token timesteps, guided x0 predictions and Euler steps.

Rectified flow: a token at noise level ``t`` is ``x = (1 - t) x0 + t n``. The model predicts a velocity; ``x0 = x -
v t`` per token (:func:`.transformer.velocity_to_x0`), with ``t = mask * sigma`` so kept tokens (mask 0) sit at
timestep 0. Per step, the guidance passes a stream needs run (:func:`plan_passes`), their x0 predictions are combined
(:func:`.guidance.guided_x0`), kept tokens are put back (``x0 * mask + clean * (1 - mask)``) and Euler moves every
token from ``sigma_i`` to ``sigma_{i+1}`` along ``(x - x0) / sigma_i``.

The ancestral sampler (``sampler="euler_ancestral"``, :func:`ancestral_euler_step`) is what ltx-pipelines 1.2.0 runs
for stage 1 of the distilled recipe on LTX-2.5 (:func:`default_sampler`): each step goes below ``sigma_{i+1}`` and
fresh noise brings it back up, drawn on the CPU from a second generator seeded ``seed + 10000`` (per step the video
tokens, then the audio, float32); kept tokens are put back after the noise.

A step's guidance passes can run as one forward over the stacked batch (``batch_passes``,
:func:`choose_batched_passes`: on CUDA when the memory is free, never by default on the CPU).

The entry point for scripts and nodes is :func:`sample`; :func:`denoise` is the loop on prepared
:class:`.conditioning.TokenState`s. Noise is drawn on the CPU from the seed (video tokens first, then audio, in
the patchified layout including appended conditioning tokens, float32) so results do not depend on the device.
Where the published implementations differ (how conditions and noise enter the state, the sigma a kept stream is
shown at), the model's release picks the conventions (:func:`.conditioning.conventions_for`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from . import checks, parallel
from .conditioning import (
    LTX_CORE_1_0,
    Condition,
    Conventions,
    KeyframeSlots,
    TokenState,
    apply_conditions,
    audio_state,
    conventions_for,
    own_tokens,
    video_state,
)
from .config import LTX25
from .errors import InputError
from .guidance import GuidanceParams, guided_x0
from .patchify import unpatchify_audio, unpatchify_video
from .perturbations import Perturbation, Perturbations, isolate_modalities, stg
from .schedules import validate_sigmas
from .text_encoder import TextContexts
from .transformer import StreamInput, velocity_to_x0

log = logging.getLogger("ltx_av.sampling")

# (video input, audio input, perturbations) -> (video velocity, audio velocity), e.g. an AudioVideoTransformer or
# the node's LoadedTransformer.
VelocityModel = Callable[
    [StreamInput | None, StreamInput | None, Perturbations | None], tuple[torch.Tensor | None, torch.Tensor | None]
]

NO_GUIDANCE = GuidanceParams()


# -- guidance passes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuidancePass:
    """One forward of the model per step: ``kind`` is cond, uncond, perturbed or isolated."""

    kind: str
    negative: bool = False
    perturbations: tuple[Perturbation, ...] = ()


def effective_guidance(
    video: GuidanceParams, audio: GuidanceParams, video_frozen: bool, audio_present: bool, audio_frozen: bool
) -> tuple[GuidanceParams, GuidanceParams]:
    """The guidance each stream really gets: none for a stream with nothing to generate (its prediction is
    discarded), and no modality guidance without an audio stream to isolate from."""
    if video_frozen:
        video = NO_GUIDANCE
    if not audio_present or audio_frozen:
        audio = NO_GUIDANCE
    if not audio_present and video.needs_isolated:
        log.info("video-only sampling: modality guidance has no audio stream to isolate from and is skipped")
        video = replace(video, modality=1.0)
    return video, audio


def plan_passes(video: GuidanceParams, audio: GuidanceParams) -> tuple[GuidancePass, ...]:
    """The forwards a step needs for these (effective) guidance settings; the conditional pass always runs."""
    passes = [GuidancePass("cond")]
    if video.needs_uncond or audio.needs_uncond:
        passes.append(GuidancePass("uncond", negative=True))
    if video.needs_perturbed or audio.needs_perturbed:
        skips: list[Perturbation] = []
        if video.needs_perturbed:
            skips += stg(video.stg_blocks, video=True, audio=False)
        if audio.needs_perturbed:
            skips += stg(audio.stg_blocks, video=False, audio=True)
        passes.append(GuidancePass("perturbed", perturbations=tuple(skips)))
    if video.needs_isolated or audio.needs_isolated:
        passes.append(GuidancePass("isolated", perturbations=isolate_modalities()))
    return tuple(passes)


def check_guidance_blocks(params: GuidanceParams, num_blocks: int, name: str) -> None:
    bad = [b for b in params.stg_blocks if not 0 <= b < num_blocks]
    if params.needs_perturbed and bad:
        raise InputError(
            f"{name} STG blocks {list(params.stg_blocks)} name blocks the model does not have (it has blocks 0.."
            f"{num_blocks - 1})"
        )


# -- noise ---------------------------------------------------------------------------------------------------------


MAX_SEED = 2**64 - 1


def check_seed(seed: object, name: str = "seed") -> int:
    """A seed torch can take as it is: a whole number in 0 .. 2^64 - 1 (torch would wrap -1 to 2^64 - 1 silently,
    so two different numbers would give the same video)."""
    return checks.integer(seed, name, minimum=0, maximum=MAX_SEED)


def draw_noise(seed: int, video_shape: Sequence[int], audio_shape: Sequence[int] | None = None):
    """Standard normal noise from ``seed`` on the CPU (float32): ``(video [B, N, 128], audio [B, T, 128] | None)``
    in that order from one generator."""
    generator = torch.Generator("cpu").manual_seed(check_seed(seed))
    video = torch.randn(*video_shape, generator=generator, dtype=torch.float32)
    audio = None if audio_shape is None else torch.randn(*audio_shape, generator=generator, dtype=torch.float32)
    return video, audio


def add_noise(
    state: TokenState, noise: torch.Tensor, scale: float, conventions: Conventions = LTX_CORE_1_0
) -> TokenState:
    """Move each token ``mask * scale`` of the way to ``noise`` (scale = the first sigma: a clean input becomes a
    sample at that noise level, kept tokens stay as they are). With ``conventions.clean_only`` the starting value
    and the kept value may differ: ``lerp(clean, lerp(latent, noise, scale), mask)`` (the same where they agree)."""
    if tuple(noise.shape) != tuple(state.latent.shape):
        raise InputError(f"noise has shape {list(noise.shape)}; the tokens have {list(state.latent.shape)}")
    noise = noise.to(state.latent.device, torch.float32)
    if conventions.clean_only:
        toward = torch.lerp(state.latent.float(), noise, scale)
        return replace(state, latent=torch.lerp(state.clean.float(), toward, state.mask.unsqueeze(-1)))
    amount = (state.mask * scale).unsqueeze(-1)
    noisy = noise * amount + state.latent * (1 - amount)
    return replace(state, latent=noisy)


# -- one step ------------------------------------------------------------------------------------------------------


def euler_step(x: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """``x + (x - x0) / sigma * (sigma_next - sigma)`` in float32 (sigmas are 0-d float32 tensors)."""
    velocity = (x.float() - x0.float()) / sigma.item()
    return x.float() + velocity * (sigma_next - sigma)


# The samplers :func:`denoise` knows: the deterministic Euler step, and the ancestral (SDE) one.
EULER = "euler"
EULER_ANCESTRAL = "euler_ancestral"
SAMPLERS = (EULER, EULER_ANCESTRAL)
# ltx-pipelines 1.2.0's distilled stage 1 on LTX-2.5: the full ancestral step (eta 1, noise at unit scale) ...
ANCESTRAL_ETA = 1.0
# ... from a generator seeded this far from the run's seed: seeded alike, its first draw would repeat the initial
# noise exactly (same shape, same generator state).
ANCESTRAL_SEED_OFFSET = 10000


def ancestral_euler_step(
    x: torch.Tensor,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    noise: torch.Tensor | None,
    eta: float = ANCESTRAL_ETA,
) -> torch.Tensor:
    """One ancestral Euler step of rectified flow, float32: Euler from ``sigma`` down to ``sigma_down`` (``eta`` 1:
    ``sigma_next**2 / sigma``), then standard normal ``noise`` (x's shape) back up to ``sigma_next``. At
    ``sigma_next`` 0 it returns ``x0``; with ``eta`` 0 it is :func:`euler_step` exactly (``noise`` may be None)."""
    if sigma_next == 0:
        # Noise added at the last step would stay in the result: the step lands on the clean estimate.
        return x0.float()
    if eta == 0 or sigma_next == sigma:
        # Nothing to re-noise (a repeated sigma is a step that changes nothing; at sigma 1 the rescale below would
        # be 0 / 0).
        return euler_step(x, x0, sigma, sigma_next)
    if noise is None:
        raise InputError(f"the ancestral step with eta {eta} needs noise; got none")
    sigma_down = sigma_next * (1 + eta * (sigma_next / sigma - 1))
    x = euler_step(x, x0, sigma, sigma_down)
    # At sigma_down the sample is (1 - sigma_down) x0 + sigma_down n. Rescaling by the signal ratio puts x0's weight
    # at 1 - sigma_next and shrinks the noise to sigma_down * ratio; independent noise of the remaining spread makes
    # its standard deviation sigma_next again, so the model sees a sample exactly at sigma_next.
    ratio = (1 - sigma_next) / (1 - sigma_down)
    spread = (sigma_next**2 - (sigma_down * ratio) ** 2).clamp(min=0).sqrt()
    return x * ratio + noise.float() * spread


def ancestral_seed(seed: int) -> int:
    """The seed of the ancestral sampler's noise for a run seeded ``seed`` (wrapped into torch's 64-bit range)."""
    return (check_seed(seed) + ANCESTRAL_SEED_OFFSET) % (MAX_SEED + 1)


def default_sampler(variant: str | None, schedule: str) -> str:
    """The sampler the official pipelines use for a release's ``schedule``: ltx-pipelines 1.2.0 samples stage 1 of
    the distilled recipe on LTX-2.5 with the ancestral step; everything else (stage 2, the dev schedule, LTX-2 and
    LTX-2.3 on any schedule) with plain Euler."""
    return EULER_ANCESTRAL if variant == LTX25 and schedule == "distilled" else EULER


def _advance(
    state: TokenState,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    generator: torch.Generator | None,
) -> TokenState:
    """One stream to ``sigma_next``: Euler, or with the ancestral noise ``generator`` the ancestral step (no draw
    on the last step to 0, like the reference, so the generator's sequence matches)."""
    if generator is None:
        return replace(state, latent=euler_step(state.latent, x0, sigma, sigma_next))
    if sigma_next == 0:
        return replace(state, latent=x0.float())
    noise = torch.randn(state.latent.shape, generator=generator, dtype=torch.float32).to(state.latent.device)
    x = ancestral_euler_step(state.latent, x0, sigma, sigma_next, noise)
    # The noise reached every token; kept ones (mask 0) get their value back, partly kept ones their share.
    return replace(state, latent=keep_clean(x, state))


def keep_clean(x0: torch.Tensor, state: TokenState) -> torch.Tensor:
    """Blend the prediction with the kept values: ``x0 * mask + clean * (1 - mask)``."""
    mask = state.mask.unsqueeze(-1)
    return x0 * mask + state.clean.float() * (1 - mask)


def _stream_input(
    state: TokenState, sigma: torch.Tensor, context: torch.Tensor, conventions: Conventions = LTX_CORE_1_0
) -> StreamInput:
    batch = state.latent.shape[0]
    shown = sigma * 0 if conventions.zero_frozen_sigma and state.frozen else sigma
    return StreamInput(
        latent=state.latent,
        sigma=shown.reshape(1).expand(batch),
        timesteps=state.mask * sigma,
        positions=state.positions,
        context=context,
        keyframes=state.keyframes,
    )


def model_variant(model: object) -> str | None:
    """The release of a velocity model that says it (an AudioVideoTransformer or a holder with its ``config``)."""
    return getattr(getattr(model, "config", None), "variant", None)


@dataclass(frozen=True)
class Progress:
    """What the loop reports after every model forward (``step`` counts finished steps, from 0).

    ``video_x0`` is the guided clean estimate of the video tokens (own tokens only, ``[B, N, 128]``) when a
    step has just finished, else None.
    """

    step: int
    steps: int
    forwards: int
    forwards_total: int
    video_x0: torch.Tensor | None = None


ProgressCallback = Callable[[Progress], None]


def denoise(
    model: VelocityModel,
    video: TokenState,
    audio: TokenState | None,
    sigmas: torch.Tensor,
    positive: TextContexts,
    negative: TextContexts | None,
    video_guidance: GuidanceParams,
    audio_guidance: GuidanceParams,
    callback: ProgressCallback | None = None,
    conventions: Conventions | None = None,
    *,
    sampler: str = EULER,
    seed: int = 0,
    batch_passes: bool | None = None,
) -> tuple[TokenState, TokenState | None]:
    """Run the loop over ``sigmas`` on noised states; contexts must already have the states' batch and device.
    ``audio=None`` leaves the audio stream out of every forward. ``conventions``: default, the model's release's.
    ``sampler``: one of :data:`SAMPLERS`; the ancestral one draws its noise from :func:`ancestral_seed` of
    ``seed``. ``batch_passes``: run a step's guidance passes as one forward (True), one forward each (False), or
    choose per run (None, :func:`choose_batched_passes`). Raises what ``callback`` raises (e.g. an interrupt),
    between forwards."""
    checks.choice(sampler, "sampler", SAMPLERS)
    generator = None
    if sampler == EULER_ANCESTRAL:
        generator = torch.Generator("cpu").manual_seed(ancestral_seed(seed))
    if conventions is None:
        conventions = conventions_for(model_variant(model))
    audio_frozen = audio is not None and audio.frozen
    video_guidance, audio_guidance = effective_guidance(
        video_guidance, audio_guidance, video.frozen, audio is not None, audio_frozen
    )
    passes = plan_passes(video_guidance, audio_guidance)
    uncond_video = uncond_audio = None
    if any(p.negative for p in passes):
        if negative is None:
            raise InputError("guidance with cfg != 1 needs a negative prompt; connect one or set cfg to 1")
        # Like the reference pipelines: the unconditional pass gives both streams the negative prompt, except a
        # stream with nothing to generate (kept audio in audio-to-video), which keeps hearing the positive one.
        uncond_video = positive.video if video.frozen else negative.video
        uncond_audio = positive.audio if audio_frozen else negative.audio
    steps = sigmas.numel() - 1
    total = steps * len(passes)
    done = 0
    # Guidance parallelism (a parallel.Mesh in use): this process runs its share of the passes, and all of them
    # are exchanged before the (replicated) combination and step.
    mesh = parallel.current()
    if mesh is not None:
        mesh = mesh.for_passes(len(passes))
    split = mesh is not None and mesh.guidance > 1
    own = mesh.own_passes(len(passes)) if split else list(range(len(passes)))
    batched = choose_batched_passes(model, [passes[j] for j in own], video, audio, positive, negative, batch_passes)
    with parallel.use(mesh):
        for i in range(steps):
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            inputs = {}  # only the passes this process runs
            for j in own:
                p = passes[j]
                v_ctx, a_ctx = (uncond_video, uncond_audio) if p.negative else (positive.video, positive.audio)
                v_in = _stream_input(video, sigma, v_ctx, conventions)
                a_in = None if audio is None else _stream_input(audio, sigma, a_ctx, conventions)
                inputs[j] = (p, v_in, a_in)
            computed: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
            if batched:
                mine = [inputs[j] for j in own]
                for j, (_, v_in, a_in), (v_vel, a_vel) in zip(own, mine, _batched_forward(model, mine), strict=True):
                    computed[j] = _x0s(video, audio, v_in, a_in, v_vel, a_vel)
                done += len(own)
            else:
                for j in own:
                    p, v_in, a_in = inputs[j]
                    perturbations = (
                        Perturbations.same(video.latent.shape[0], p.perturbations) if p.perturbations else None
                    )
                    with torch.no_grad():
                        v_vel, a_vel = model(v_in, a_in, perturbations)
                    computed[j] = _x0s(video, audio, v_in, a_in, v_vel, a_vel)
                    done += 1
                    if callback is not None and done < (i + 1) * len(passes):
                        callback(Progress(i, steps, done, total))
            if split:
                like = (video.latent, None if audio is None else audio.latent)
                computed = dict(enumerate(mesh.share_predictions(len(passes), computed, like)))
                done = (i + 1) * len(passes)
            predictions = {p.kind: computed[j] for j, p in enumerate(passes)}

            # Video before audio: the ancestral sampler's draws come in the reference's order.
            v_x0 = keep_clean(_guided(predictions, 0, video_guidance), video)
            video = _advance(video, v_x0, sigma, sigma_next, generator)
            if audio is not None:
                a_x0 = keep_clean(_guided(predictions, 1, audio_guidance), audio)
                audio = _advance(audio, a_x0, sigma, sigma_next, generator)
            if callback is not None:
                callback(Progress(i + 1, steps, done, total, v_x0[:, : video.own_tokens]))
    return video, audio


def _x0s(
    video: TokenState,
    audio: TokenState | None,
    v_in: StreamInput,
    a_in: StreamInput | None,
    v_vel: torch.Tensor,
    a_vel: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    v_x0 = velocity_to_x0(video.latent, v_vel.to(video.latent.device), v_in.timesteps)
    if audio is None:
        return v_x0, None
    return v_x0, velocity_to_x0(audio.latent, a_vel.to(audio.latent.device), a_in.timesteps)


# -- guidance passes in one forward ---------------------------------------------------------------------------------

# How much more than sampling.working_bytes (a low estimate of a forward's activations and the loop's states) must
# be free before the passes are batched: the estimate leaves out the attention kernels' and allocator's own needs.
BATCHED_HEADROOM = 2.0


def choose_batched_passes(
    model: VelocityModel,
    passes: Sequence[GuidancePass],
    video: TokenState,
    audio: TokenState | None,
    positive: TextContexts,
    negative: TextContexts | None,
    requested: bool | None = None,
) -> bool:
    """Whether a step's guidance passes run as one forward over ``passes x batch`` items.

    Only possible when the passes' inputs stack (contexts of the same shape) and the model takes per-item
    perturbations (an :class:`.transformer.AudioVideoTransformer`, or a holder with its ``config``). ``requested``
    True / False forces it where possible; None (auto) batches on CUDA when ``BATCHED_HEADROOM`` x the batched
    forward's :func:`working_bytes` is free on the device, and never on the CPU, where one forward is already
    compute-bound and stacking only multiplies the activations (bench/sampler.py measures both)."""
    if requested is False or len(passes) < 2 or getattr(model, "config", None) is None:
        return False
    contexts = [positive] + ([negative] if negative is not None else [])
    for stream in ("video", "audio"):
        shapes = {tuple(getattr(c, stream).shape[1:]) for c in contexts}
        if len(shapes) > 1:
            return False
    if requested:
        return True
    device = video.latent.device
    if device.type != "cuda":
        return False
    dtype = getattr(model, "compute_dtype", torch.bfloat16)
    audio_tokens = 0 if audio is None else audio.latent.shape[1]
    need = working_bytes(model.config, video.latent.shape[1], audio_tokens, video.latent.shape[0] * len(passes), dtype)
    return BATCHED_HEADROOM * need <= _free_bytes(device)


def _free_bytes(device: torch.device) -> int:
    """What the CUDA device can still hand out: free memory plus what the caching allocator holds unused."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def _stack(inputs: Sequence[StreamInput]) -> StreamInput:
    """Stream inputs of the passes as one batch, pass after pass."""

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(s, name) for s in inputs]
        return None if values[0] is None else torch.cat(values, dim=0)

    sigmas = [torch.as_tensor(s.sigma, dtype=torch.float32).reshape(-1).expand(s.batch) for s in inputs]
    return StreamInput(
        latent=cat("latent"),
        sigma=torch.cat([s.to(inputs[0].latent.device) for s in sigmas]),
        timesteps=cat("timesteps"),
        positions=cat("positions"),
        context=cat("context"),
        context_mask=cat("context_mask"),
        self_attention_mask=cat("self_attention_mask"),
        enabled=inputs[0].enabled,
        keyframes=cat("keyframes"),
    )


def _batched_forward(
    model: VelocityModel, inputs: Sequence[tuple[GuidancePass, StreamInput, StreamInput | None]]
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """All passes in one forward (each item skips what its pass skips); the velocities split back per pass."""
    batch = inputs[0][1].batch
    video = _stack([v for _, v, _ in inputs])
    audio = None if inputs[0][2] is None else _stack([a for _, _, a in inputs])
    perturbations = Perturbations.of([p.perturbations for p, _, _ in inputs for _ in range(batch)])
    with torch.no_grad():
        v_vel, a_vel = model(video, audio, perturbations)
    v_parts = v_vel.split(batch)
    a_parts = a_vel.split(batch) if a_vel is not None else [None] * len(inputs)
    return list(zip(v_parts, a_parts, strict=True))


def _guided(predictions: dict, stream: int, params: GuidanceParams) -> torch.Tensor:
    """Guided x0 of one stream (0 video, 1 audio) from the passes' predictions ``{kind: (video, audio)}``."""
    parts = {kind: pred[stream] for kind, pred in predictions.items()}
    return guided_x0(params, parts["cond"], parts.get("uncond"), parts.get("perturbed"), parts.get("isolated"))


# -- the whole thing -----------------------------------------------------------------------------------------------


def _batched(context: torch.Tensor, batch: int, device: torch.device, name: str) -> torch.Tensor:
    if context.ndim != 3:
        raise InputError(f"{name} must be [batch, tokens, width]; got shape {list(context.shape)}")
    if context.shape[0] not in (1, batch):
        raise InputError(f"{name} has batch {context.shape[0]} but the latent has batch {batch}")
    return context.to(device, torch.float32).expand(batch, -1, -1)


def state_bytes(
    video_tokens: int, audio_tokens: int, batch: int, video_channels: int = 128, audio_channels: int = 128
) -> int:
    """The float32 token states the loop keeps whatever the model: latent, clean value, mask-scaled noise, one
    estimate per guidance pass (up to four), the guided estimate and the next step's latent."""
    return 4 * batch * (video_tokens * video_channels + audio_tokens * audio_channels) * 9


def working_bytes(config, video_tokens: int, audio_tokens: int, batch: int, dtype: torch.dtype) -> int:
    """A low estimate of the memory one sampling step needs beyond the weights: the float32 token states of the
    loop (latent, clean value, noise, one estimate per guidance pass, the guided result), and the largest
    activations of a block (the stream, its normalised copy, q/k/v, the attention output and the feed-forward's
    4x-wide hidden layer in the compute dtype, plus the float32 per-token modulation rows). Used to refuse sizes
    that cannot run, never to plan: the real peak is higher."""
    size = torch.empty((), dtype=dtype).element_size()
    states = state_bytes(video_tokens, audio_tokens, batch, config.in_channels, config.audio_in_channels)
    widths = ((video_tokens, config.video_dim), (audio_tokens, config.audio_dim))
    activations = max(batch * tokens * width * (10 * size + 4 * config.adaln_coefficients) for tokens, width in widths)
    return int(states + activations)


def sample(
    model: VelocityModel,
    video_latent: torch.Tensor,
    *,
    frame_rate: float,
    positive: TextContexts,
    negative: TextContexts | None,
    sigmas: torch.Tensor | Sequence[float],
    seed: int = 0,
    video_guidance: GuidanceParams = NO_GUIDANCE,
    audio_guidance: GuidanceParams = NO_GUIDANCE,
    audio_latent: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
    audio_mask: torch.Tensor | None = None,
    conditions: Sequence[Condition] = (),
    noise: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    noise_scale: float | None = None,
    device: torch.device | str | None = None,
    callback: ProgressCallback | None = None,
    conventions: Conventions | None = None,
    sampler: str = EULER,
    batch_passes: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Denoise a video latent ``[B, 128, F, H, W]`` (and an audio latent ``[B, 8, T, 16]``, or None for video
    only) from ``sigmas[0]`` to ``sigmas[-1]``; returns the latents in the same shapes, float32 on the CPU.

    The inputs are the starting point: tokens with denoise mask m (``video_mask`` ``[B, F*H*W]``, ``audio_mask``
    ``[B, T]``, default 1; conditions set their own) are moved ``m * noise_scale`` (default ``sigmas[0]``) of the
    way to noise; zeros become pure noise at sigma 1. ``noise``: ``(video [B, N, 128], audio [B, T, 128] | None)``
    to use instead of drawing from ``seed`` (N includes appended keyframe tokens). ``device``: where the loop's
    tensors live (default: the CPU). ``conventions``: how conditions, noise and a kept stream's sigma are prepared
    (default: those of the model's release, :func:`.conditioning.conventions_for`). ``sampler``: "euler" or
    "euler_ancestral" (its step noise comes from ``seed + 10000`` also when ``noise`` is given;
    :func:`default_sampler` says which the official pipelines use). ``batch_passes``: see :func:`denoise`.
    """
    sigmas = validate_sigmas(sigmas)
    seed = check_seed(seed)
    sampler = checks.choice(sampler, "sampler", SAMPLERS)
    device = torch.device(device) if device is not None else torch.device("cpu")
    if video_latent.ndim != 5:
        raise InputError(f"video latent must be [B, 128, F, H, W]; got shape {list(video_latent.shape)}")
    batch = video_latent.shape[0]
    if audio_latent is not None and (audio_latent.ndim != 4 or audio_latent.shape[0] != batch):
        raise InputError(
            f"audio latent must be [B, 8, T, 16] with the video's batch {batch}; got {list(audio_latent.shape)}"
        )
    if conventions is None:
        conventions = conventions_for(model_variant(model))
    _check_slots_supported(model, conditions)
    video = apply_conditions(
        video_state(video_latent.to(device), frame_rate, video_mask), list(conditions), conventions
    )
    audio = None if audio_latent is None else audio_state(audio_latent.to(device), audio_mask)

    if noise is None:
        noise = draw_noise(seed, video.latent.shape, None if audio is None else audio.latent.shape)
    scale = float(sigmas[0]) if noise_scale is None else float(noise_scale)
    video = add_noise(video, noise[0], scale, conventions)
    if audio is not None:
        if noise[1] is None:
            raise InputError("injected noise has no audio part but an audio latent is given")
        audio = add_noise(audio, noise[1], scale, conventions)

    def contexts(c: TextContexts | None, name: str) -> TextContexts | None:
        if c is None:
            return None
        return TextContexts(
            _batched(c.video, batch, device, f"{name} video context"),
            _batched(c.audio, batch, device, f"{name} audio context"),
        )

    video, audio = denoise(
        model,
        video,
        audio,
        sigmas.to(device),
        contexts(positive, "positive"),
        contexts(negative, "negative"),
        video_guidance,
        audio_guidance,
        callback,
        conventions,
        sampler=sampler,
        seed=seed,
        batch_passes=batch_passes,
    )
    f, h, w = video.grid
    video_out = unpatchify_video(own_tokens(video).latent, f, h, w).cpu()
    audio_out = None
    if audio is not None:
        audio_out = unpatchify_audio(audio.latent, audio_latent.shape[1], audio_latent.shape[3]).cpu()
    return video_out, audio_out


def _check_slots_supported(model: object, conditions: Sequence[Condition]) -> None:
    """Generated keyframe slots only mean something to a model trained with the keyframe embedding (LTX-2.5); on
    any other they would cost a latent frame of tokens each and be denoised as ordinary tokens."""
    config = getattr(model, "config", None)
    if config is None or not any(isinstance(c, KeyframeSlots) for c in conditions):
        return
    if not getattr(config, "use_keyframes_abs_pos_embedding", False):
        raise InputError(
            f"generated keyframe slots need a model with the keyframe embedding (LTX-2.5: "
            f"use_keyframes_abs_pos_embedding); this {getattr(config, 'variant', 'LTX-2')} model has none. Remove the "
            "slots or use an LTX-2.5 transformer"
        )


# -- preview -------------------------------------------------------------------------------------------------------


def preview_image(video_x0: torch.Tensor, grid: tuple[int, int, int], size: int = 256) -> torch.Tensor:
    """A cheap look at the first latent frame of item 0 of the current estimate: its three main directions
    (PCA over the frame's tokens) as RGB, ``[h, w, 3]`` uint8 scaled to ``size`` pixels along the longer side.

    It shows layout and motion, not true colours (that needs the VAE); signs are fixed per direction so colours
    do not flip between steps.
    """
    _, h, w = grid
    x = video_x0[0, : h * w].float().cpu()
    x = x - x.mean(dim=0, keepdim=True)
    if h * w >= 3:
        _, _, v = torch.linalg.svd(x, full_matrices=False)
        basis = v[:3].T  # [128, 3]
        basis = basis * torch.sign(basis.sum(dim=0, keepdim=True) + 1e-12)
        rgb = x @ basis
    else:
        rgb = x[:, :3]
    lo, hi = rgb.amin(dim=0, keepdim=True), rgb.amax(dim=0, keepdim=True)
    rgb = ((rgb - lo) / (hi - lo).clamp(min=1e-6)).reshape(h, w, 3)
    scale = max(1, math.floor(size / max(h, w)))
    rgb = rgb.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)
    return (rgb * 255).round().to(torch.uint8)
