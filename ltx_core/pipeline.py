"""Text (and optionally an image) to a video with sound, headless: the path ``python -m ltx_av generate`` runs.

The same building blocks the nodes use, wired in one place: Gemma 3 and the checkpoint's text path encode the
prompts, the transformer denoises video and audio latents together under guidance, and the two VAEs (plus the
vocoder) turn the latents back into frames and a waveform.

LTX-2.5 ships as split files (transformer, Gemma 4 text encoder with the text projection, video VAE, audio VAE):
given its transformer, :func:`find_split_files` takes the files named and finds the others beside it in the ComfyUI
models layout, checking from the headers that each holds its part, that all come from one release and that the
text encoder is the Gemma the transformer names. Sampling follows the model's release (ltx-core 1.2.0's conventions
for 2.5, :func:`.conditioning.conventions_for`); the diffusion video decoder runs its file's default steps and draws
its noise from the run's generator after the sampling noise, as ltx-pipelines 1.2.0 does.

Two-stage (``generate(..., two_stage=True)`` with a spatial x2 latent upsampler loaded): the official distilled
recipe. Stage 1 samples at half width and height with the chosen schedule; the video latent is upsampled x2 (through
the video VAE's latent statistics); stage 2 re-noises it and the stage-1 audio at the first of the 3 stage-2 sigmas
and denoises at full size without guidance, with any image condition encoded again at full size. All noise comes
from one generator seeded with ``seed``, drawn in the order ltx-pipelines' distilled pipeline draws it (stage-1
video, audio, stage-2 video, audio).

A long video (:mod:`.chain`, ``generate --seconds``) uses the same pieces one segment at a time:
:meth:`Pipeline.sample_latents` (a one-stage run's sampling, here from an extension's latents with its kept
overlap), :meth:`Pipeline.iter_frames` (the video decode, streamed) and :meth:`Pipeline.decode_waveform`.

LoRAs (``Pipeline.load(..., loras=[(path, strength)], stage2_loras=[...])``): ``loras`` change the transformer in
every stage, ``stage2_loras`` in stage 2 only, on top of ``loras`` (the official dev recipe: stage 2 adds the
distilled LoRA at 1.0, ltx-pipelines' ``--distilled-lora``). :meth:`Pipeline.load` loaded the transformer itself
and nobody else holds it, so it fuses ``loras`` into the weights once (:func:`~.lora.fuse_loras_`, like ltx-core's
builder): no per-step cost. ``stage2_loras``, and LoRAs given later with :meth:`Pipeline.set_loras` (a pipeline a
caller keeps and reuses with other LoRAs), are applied per block as the model runs (:class:`~.lora.LoraPatches`) and
never change the weights, so a stage without such a LoRA in effect runs the transformer exactly as it is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import checks
from .checkpoint import Checkpoint, ModelFiles, build_component, identify, open_checkpoint, open_model_files
from .conditioning import apply_conditions, audio_state, condition_for_frame, condition_pixels, video_state
from .errors import CheckpointError, InputError, LTXError
from .gemma import GemmaEncoder, load_gemma
from .guidance import GuidanceParams, default_guidance, default_steps
from .latents import SPACE_COMPRESSION, audio_latent_length, video_latent_shape
from .lora import (
    AppliedLora,
    LinearShapes,
    LoraFile,
    LoraPatches,
    bind_lora,
    check_lora_fits,
    fuse_loras_,
    read_lora,
)
from .offload import BLOCKS_PREFIX, place_weights
from .sampling import MAX_SEED, default_sampler, sample
from .schedules import DISTILLED_SIGMAS, MAX_STEPS, STAGE2_SIGMAS, ltx2_sigmas
from .text_encoder import TextContexts, TextPath, encode_prompts, load_text_path
from .transformer import AudioVideoTransformer
from .upsampler import LatentUpsampler, UpsamplerConfig, load_upsampler, upsample_latent

if TYPE_CHECKING:
    from .gemma4_encoder import Gemma4Encoder

log = logging.getLogger("ltx_av.pipeline")

# The negative prompt of the official pipelines.
DEFAULT_NEGATIVE_PROMPT = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)

SCHEDULES = ("ltx2", "distilled")
OFFLOAD_MODES = ("none", "blocks")
# What a two-stage run decodes as its soundtrack: the stage-1 audio refined with the video in stage 2 (ltx-pipelines
# 1.0.0), or the stage-1 audio itself (1.2.0, which refines it too and then discards the result).
STAGE2_AUDIO = ("refine", "keep")
# A two-stage run's sides: stage 1 runs at half of each, which must itself be a multiple of 32.
TWO_STAGE_MULTIPLE = 2 * SPACE_COMPRESSION

# Bounds of a request (as LTX-AV Empty Latent's): sides in pixels, frames, frames per second.
MAX_SIDE = 8192
MAX_FRAMES = 10001
MAX_FRAME_RATE = 1000.0

# The H.264 CRF an image condition is re-compressed at, per release (ltx-pipelines 1.2.0: 33 up to LTX-2.3, 18 from
# 2.4 on, the compression the newer models were trained with).
IMAGE_CRF = {"LTX-2": 33, "LTX-2.3": 33, "LTX-2.5": 18}


def default_image_crf(variant: str | None) -> int:
    """The image condition's CRF the official pipelines use for ``variant`` (33 when the release is unknown)."""
    return IMAGE_CRF.get(variant, 33)


# A short negative prompt for the tiny stand-in, whose byte-level tokenizer would truncate the official one.
TINY_NEGATIVE_PROMPT = "blurry, distorted, low quality, silent"

# What a step reports: (stage, done, total).
Report = Callable[[str, int, int], None]

# A LoRA strength's bounds (those of LTX-AV Load LoRA): well past any useful value, short of certain overflow.
LORA_STRENGTH_LIMIT = 10.0
# A LoRA as the pipeline takes it: (a .safetensors path or an opened file, strength).
LoraSpec = tuple["str | os.PathLike | LoraFile", float]


@dataclass
class Generated:
    """The result: ``frames`` ``[F, H, W, 3]`` uint8, ``waveform`` ``[2, N]`` float32 at ``sample_rate`` Hz."""

    frames: torch.Tensor
    frame_rate: float
    waveform: torch.Tensor
    sample_rate: int


_REQUEST_ARGUMENTS = (
    "prompt",
    "negative_prompt",
    "width",
    "height",
    "frames",
    "frame_rate",
    "steps",
    "schedule",
    "seed",
    "image_frame",
    "two_stage",
    "stage2_audio",
)


def nearest_two_stage_sizes(pixels: int) -> tuple[int, int]:
    """The multiples of 64 just below and just above ``pixels`` (both 64 below 64)."""
    m = TWO_STAGE_MULTIPLE
    if pixels <= m:
        return m, m
    below = pixels // m * m
    return below, below if below == pixels else below + m


def check_request(
    *,
    prompt: str,
    negative_prompt: str,
    width: int,
    height: int,
    frames: int,
    frame_rate: float,
    steps: int | None,
    schedule: str,
    seed: int,
    image_frame: int = 0,
    two_stage: bool = False,
    stage2_audio: str = "refine",
    names: dict[str, str] | None = None,
) -> dict:
    """Check what :meth:`Pipeline.generate` is asked for before any work; returns the values by argument name.

    ``names`` maps an argument to how the caller's user knows it (the command line passes ``{"frame_rate":
    "--fps", ...}``); every message starts with that name. ``steps`` None means the version's default; with the
    distilled schedule, whose 8 steps are fixed, it must be None. ``two_stage``: width and height must be
    multiples of 64 (stage 1 runs at half of each).
    """
    n = {key: key for key in _REQUEST_ARGUMENTS} | (names or {})
    checks.text(prompt, n["prompt"])
    checks.text(negative_prompt, n["negative_prompt"])
    checks.choice(schedule, n["schedule"], SCHEDULES)
    two_stage = checks.boolean(two_stage, n["two_stage"])
    checks.choice(stage2_audio, n["stage2_audio"], STAGE2_AUDIO)
    frames = checks.integer(frames, n["frames"], minimum=1, maximum=MAX_FRAMES)
    height = checks.integer(height, n["height"], minimum=32, maximum=MAX_SIDE)
    width = checks.integer(width, n["width"], minimum=32, maximum=MAX_SIDE)
    if two_stage:
        for key, value in (("height", height), ("width", width)):
            if value % TWO_STAGE_MULTIPLE:
                lo, hi = nearest_two_stage_sizes(value)
                raise InputError(
                    f"{n[key]} must be a multiple of 64 with {n['two_stage']} (stage 1 runs at half size, a multiple "
                    f"of 32); got {value}, nearest valid: {lo if lo == hi else f'{lo} or {hi}'}"
                )
    try:
        video_latent_shape(frames, height, width)  # names the nearest valid values
    except InputError as e:
        text = str(e)
        key = next(k for k in ("frames", "height", "width") if text.startswith(k))
        raise InputError(n[key] + text[len(key) :]) from None
    frame_rate = checks.number(frame_rate, n["frame_rate"], above=0.0, maximum=MAX_FRAME_RATE)
    if steps is not None:
        if schedule == "distilled":
            raise InputError(
                f"{n['steps']} is {steps!r}, but the distilled schedule always runs the 8 steps distilled checkpoints "
                f"are trained for; leave {n['steps']} out, or use {n['schedule']} ltx2"
            )
        steps = checks.integer(steps, n["steps"], minimum=1, maximum=MAX_STEPS)
    seed = checks.integer(seed, n["seed"], minimum=0, maximum=MAX_SEED)
    image_frame = checks.integer(image_frame, n["image_frame"], minimum=-frames, maximum=frames - 1)
    return dict(
        prompt=prompt,
        negative_prompt=negative_prompt,
        width=width,
        height=height,
        frames=frames,
        frame_rate=frame_rate,
        steps=steps,
        schedule=schedule,
        seed=seed,
        image_frame=image_frame,
        two_stage=two_stage,
        stage2_audio=stage2_audio,
    )


def check_upsampler_file(
    path: str | os.PathLike, latent_channels: int = 128, name: str = "upsampler"
) -> UpsamplerConfig:
    """Check from its header alone (no tensor is read) that ``path`` is a latent upsampler file a two-stage run can
    use: the spatial x2 kind, working on ``latent_channels`` channels (the video VAE's), every key and shape as its
    config says. Returns its config; raises :class:`InputError` / :class:`~.errors.CheckpointError` naming it."""
    from .checkpoint import check_config_against_file, check_keys

    text = os.fspath(path)
    if not os.path.lexists(text):
        raise InputError(f"{name}: no such file {text!r}")
    if os.path.isdir(text):
        raise InputError(
            f"{name}: {text!r} is a folder; expected a latent upsampler file such as "
            "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
        )
    ckpt = open_checkpoint(text)
    try:
        if "upsampler" not in ckpt.components:
            held = ", ".join(ckpt.components) or "no LTX component"
            raise InputError(
                f"{name}: {text!r} holds {held}, not a latent upsampler; two-stage generation needs the spatial x2 "
                "upsampler file (ltx-2.3-spatial-upscaler-x2-1.1.safetensors for LTX-2.3, "
                "ltx-2-spatial-upscaler-x2-1.0.safetensors for LTX-2)"
            )
        config = ckpt.component_config("upsampler")
        if config.spatial_ratio != (2, 1):
            raise InputError(
                f"{name}: {text!r} is a {config.kind} upsampler; two-stage generation samples at half width and "
                "height and needs the spatial x2 one (e.g. ltx-2.3-spatial-upscaler-x2-1.1.safetensors)"
            )
        if config.in_channels != latent_channels:
            raise InputError(
                f"{name}: {text!r} works on {config.in_channels}-channel latents but the checkpoint's video VAE makes "
                f"{latent_channels}-channel ones; use the upsampler released with that model"
            )
        check_config_against_file(ckpt, "upsampler", config)
        with torch.device("meta"):
            module = LatentUpsampler(config)
        check_keys(module, ckpt.shapes("upsampler"), component="upsampler", source=ckpt.path, variant=ckpt.variant_name)
    finally:
        ckpt.file.close()
    return config


def transformer_shapes(config) -> LinearShapes:
    """The linear weights a :class:`~.config.TransformerConfig` describes, to check LoRAs against before anything
    loads. Built from a one-block model on the meta device, whose block stands for every block (all blocks of the
    transformer are alike): thousands of meta modules would cost a second on a busy CPU."""
    with torch.device("meta"):
        one = LinearShapes.of(AudioVideoTransformer(dataclasses.replace(config, num_layers=1)))
    first = BLOCKS_PREFIX + "0."
    weights = {name: shape for name, shape in one.weights.items() if not name.startswith(BLOCKS_PREFIX)}
    for name, shape in one.weights.items():
        if name.startswith(first):
            weights.update({f"{BLOCKS_PREFIX}{i}.{name[len(first) :]}": shape for i in range(config.num_layers)})
    return LinearShapes(weights, config.num_layers)


def check_lora_file(
    lora: str | os.PathLike | LoraFile, strength: float, shapes: LinearShapes, variant: str, name: str = "lora"
) -> tuple[LoraFile, float]:
    """Check a LoRA and its strength against a transformer's ``shapes`` (:func:`transformer_shapes`, or
    :meth:`~.lora.LinearShapes.of` a loaded one) from the file's header alone: a plain LoRA ``.safetensors`` whose
    every layer is one of the model's with its shape, and a finite strength within +-:data:`LORA_STRENGTH_LIMIT`.
    Returns (the opened file, the strength); raises :class:`InputError` / :class:`~.errors.CheckpointError`, the
    strength's naming ``name``."""
    strength = checks.number(strength, f"{name} strength", minimum=-LORA_STRENGTH_LIMIT, maximum=LORA_STRENGTH_LIMIT)
    opened = lora if isinstance(lora, LoraFile) else read_lora(lora)
    check_lora_fits(opened, shapes, variant)
    return opened, strength


def _lora_specs(specs: Sequence[LoraSpec], name: str) -> list[LoraSpec]:
    if isinstance(specs, (str, os.PathLike, LoraFile)) or not isinstance(specs, Sequence):
        raise InputError(f"{name} must be a list of (path, strength) pairs; got {type(specs).__name__} {specs!r}")
    for i, spec in enumerate(specs):
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            raise InputError(f"{name}[{i}] must be a (path, strength) pair; got {spec!r}")
    return [tuple(spec) for spec in specs]


def _checked_loras(
    specs: Sequence[LoraSpec], name: str, shapes: LinearShapes, variant: str
) -> list[tuple[LoraFile, float]]:
    return [
        check_lora_file(path, strength, shapes, variant, f"{name}[{i}]")
        for i, (path, strength) in enumerate(_lora_specs(specs, name))
    ]


def check_offload(offload: str, device: torch.device) -> str:
    """``offload`` as :meth:`Pipeline.load` takes it; block streaming only means something on a GPU."""
    checks.choice(offload, "offload", OFFLOAD_MODES)
    if offload == "blocks" and device.type == "cpu":
        raise InputError(
            "offload 'blocks' streams the transformer's blocks from system RAM to a GPU; on the CPU the weights "
            "already live in system RAM, so there is nothing to stream (use offload 'none')"
        )
    return offload


def _work_budget(device: torch.device) -> int:
    """Working memory the video decode and the upsampler may plan to use (bytes)."""
    return 2 * 2**30 if device.type == "cpu" else 6 * 2**30


def _draw_noise(
    generator: torch.Generator, video: torch.Tensor, audio: torch.Tensor, conditions: list, frame_rate: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next noise of ``generator`` for one stage, shaped as :func:`~.sampling.sample` takes it: the video's
    tokens (its own plus any appended keyframe tokens) first, then the audio's."""
    video_shape = apply_conditions(video_state(video, frame_rate), conditions).latent.shape
    audio_shape = audio_state(audio).latent.shape
    video_noise = torch.randn(*video_shape, generator=generator, dtype=torch.float32)
    return video_noise, torch.randn(*audio_shape, generator=generator, dtype=torch.float32)


# -- LTX-2.5's split files --------------------------------------------------------------------------------------

# Where ComfyUI keeps each part of a split release, relative to its models folder (the transformer lives in
# diffusion_models/ or unet/); the part's own folder is searched too, for files kept side by side.
SPLIT_FOLDERS = {"text_encoder": ("text_encoders", "clip"), "video_vae": ("vae",), "audio_vae": ("vae",)}
SPLIT_TITLES = {"text_encoder": "text encoder", "video_vae": "video VAE", "audio_vae": "audio VAE"}


@dataclass(frozen=True)
class SplitFiles:
    """The files of one split (LTX-2.5) model, checked to hold their parts and to come from one release.
    ``found``: the parts that were found beside the transformer rather than named."""

    transformer: str
    text_encoder: str
    video_vae: str
    audio_vae: str
    found: tuple[str, ...] = ()

    def open(self) -> ModelFiles:
        return open_model_files(
            transformer=self.transformer,
            text_encoder=self.text_encoder,
            video_vae=self.video_vae,
            audio_vae=self.audio_vae,
        )


def _split_latent_channels(video_vae: str) -> int:
    from .video_vae_file import video_vae_configs

    return video_vae_configs(open_checkpoint(video_vae).raw_config["vae"])[0].latent_channels


def _prefixed(error: LTXError, name: str) -> LTXError:
    """``error`` with its message starting with the input's name, of the same kind where its class allows."""
    message = f"{name}: {error}"
    try:
        return type(error)(message)
    except TypeError:
        return CheckpointError(message)


def is_split_transformer(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the transformer file of a split release (LTX-2.5), not a single-file checkpoint."""
    return identify(path).role == "transformer"


def _candidates(transformer: str, part: str) -> list[str]:
    here = os.path.dirname(os.path.abspath(transformer))
    models = os.path.dirname(here)
    folders = [here] + [os.path.join(models, name) for name in SPLIT_FOLDERS[part]]
    found = []
    for folder in dict.fromkeys(folders):
        if os.path.isdir(folder):
            found += sorted(
                os.path.join(folder, name) for name in os.listdir(folder) if name.lower().endswith(".safetensors")
            )
    return found


def _fits(path: str, part: str, variants: frozenset[str]) -> tuple[bool, bool]:
    """(holds ``part`` of one of ``variants``, has the diffusion decoder); unreadable files never fit."""
    try:
        who = identify(path)
    except LTXError:
        return False, False
    holds = "gemma" in who.components if part == "text_encoder" else part in who.components
    fits = holds and who.role in (part, "text_encoder") and bool(who.variants & variants)
    return fits, who.video_decoder == "diffusion"


def find_split_files(
    transformer: str | os.PathLike,
    *,
    text_encoder: str | os.PathLike | None = None,
    video_vae: str | os.PathLike | None = None,
    audio_vae: str | os.PathLike | None = None,
    names: dict[str, str] | None = None,
) -> SplitFiles:
    """The parts of a split release for ``transformer``: those named, the others found beside it in the ComfyUI
    models layout (``../text_encoders``, ``../vae``, or its own folder) by what their headers say (the video VAE:
    the diffusion decoder when both decoders are there, as the official pipelines decode). Every file is checked
    from its header alone: that it holds its part, that all come from one release (a mixed release names both
    files), that the text encoder is the Gemma the transformer was trained with. ``names``: how the caller's user
    knows each part (the command line passes ``{"text_encoder": "--text-encoder", ...}``)."""
    from .gemma4_encoder import check_gemma_version, inspect_gemma4

    n = {"transformer": "transformer", **{p: p for p in SPLIT_FOLDERS}} | (names or {})
    transformer = os.fspath(transformer)
    model = open_checkpoint(transformer)
    if model.identity.role != "transformer":
        raise InputError(f"{n['transformer']}: {model.identity.describe()} is not the transformer of a split release")
    variants = model.identity.variants
    given = {"text_encoder": text_encoder, "video_vae": video_vae, "audio_vae": audio_vae}
    chosen, found = {}, []
    for part, value in given.items():
        if value is not None:
            path = os.fspath(value)
            if not os.path.isfile(path):
                raise InputError(f"{n[part]}: no such file {path!r}")
            chosen[part] = path
            continue
        fitting = [(p, diffusion) for p in _candidates(transformer, part) for ok, diffusion in [_fits(p, part, variants)]
                   if ok]  # fmt: skip
        if not fitting:
            folders = ", ".join(f"../{f}" for f in SPLIT_FOLDERS[part])
            raise InputError(
                f"{n[part]}: no {model.identity.release} {SPLIT_TITLES[part]} was found beside '{model.name}' (in its "
                f"folder or {folders}); name the file with {n[part]}"
            )
        fitting.sort(key=lambda item: not item[1])  # the diffusion decoder first
        chosen[part] = fitting[0][0]
        found.append(part)
        log.info("using the %s %s", SPLIT_TITLES[part], chosen[part])
    for part, path in chosen.items():
        try:  # its part, and the transformer's release (a mixed release names both files)
            open_model_files(transformer=model, **{part: path})
        except LTXError as e:
            raise _prefixed(e, n[part]) from None
    files = SplitFiles(transformer, found=tuple(found), **chosen)
    files.open()  # one release (a mixed release names both files)
    source = inspect_gemma4(files.text_encoder)
    try:
        check_gemma_version(
            model.metadata,
            gemma_model_type=source.model_type,
            gemma_version=source.gemma_version,
            checkpoint_name=model.name,
            gemma_name=source.name,
        )
    except LTXError as e:
        raise _prefixed(e, n["text_encoder"]) from None
    return files


class Pipeline:
    """Every model of one checkpoint plus its Gemma, ready to generate: an LTX-2 / LTX-2.3 single-file checkpoint
    with a Gemma 3, or LTX-2.5's split files (:class:`SplitFiles`) with their Gemma 4. ``upsampler``: the spatial x2
    latent upsampler two-stage runs use (None until :meth:`load_upsampler`)."""

    def __init__(
        self,
        checkpoint: Checkpoint | SplitFiles,
        gemma: GemmaEncoder | Gemma4Encoder,
        *,
        device,
        dtype,
        offload: str = "none",
    ):
        from .audio_vae import load_audio_vae
        from .video_vae import load_video_vae
        from .vocoder import load_vocoder

        self.device, self.dtype = torch.device(device), dtype
        check_offload(offload, self.device)
        self.gemma = gemma
        if isinstance(checkpoint, SplitFiles):  # LTX-2.5: one file per part, the text path joined over two
            from .text_encoder import load_ltx25_text_path
            from .video_vae_file import load_video_vae_file

            files = checkpoint.open()
            self.checkpoint = files.files["transformer"]
            self.split_files: SplitFiles | None = checkpoint
            self.text_path: TextPath = load_ltx25_text_path(
                self.checkpoint, gemma, dtype=torch.float32, device=self.device
            )
            transformer_source = files.source("transformer")
            self.video_vae = load_video_vae_file(checkpoint.video_vae, dtype=dtype, device=self.device)
            audio_source = vocoder_source = files.source("audio_vae")
        else:
            self.checkpoint = checkpoint
            self.split_files = None
            self.text_path = load_text_path(checkpoint, dtype=torch.float32, device=self.device)
            transformer_source = audio_source = vocoder_source = checkpoint
            self.video_vae = load_video_vae(checkpoint, dtype=dtype, device=self.device)
        self.variant = self.checkpoint.variant_name
        self.transformer = build_component(transformer_source, "transformer", AudioVideoTransformer, device="cpu")
        place_weights(self.transformer, self.device, dtype, stream_blocks=offload == "blocks")
        self.audio_vae = load_audio_vae(audio_source, dtype=dtype, device=self.device)
        self.vocoder = load_vocoder(vocoder_source, device=self.device)
        self.upsampler: LatentUpsampler | None = None
        self.loras: tuple[AppliedLora, ...] = ()
        self.stage2_loras: tuple[AppliedLora, ...] = ()
        self.fused_loras: tuple[AppliedLora, ...] = ()  # the LoRAs added into the transformer's weights

    @classmethod
    def load(
        cls,
        checkpoint: str | os.PathLike,
        gemma: str | os.PathLike | None = None,
        *,
        text_encoder: str | os.PathLike | None = None,
        video_vae: str | os.PathLike | None = None,
        audio_vae: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        offload: str = "none",
        upsampler: str | os.PathLike | None = None,
        loras: Sequence[LoraSpec] = (),
        stage2_loras: Sequence[LoraSpec] = (),
    ) -> Pipeline:
        """Load an official (or tiny stand-in) checkpoint and a Gemma 3 (HF folder, .safetensors or .gguf), and
        for two-stage runs a spatial x2 latent ``upsampler`` file; ``loras`` / ``stage2_loras``: see
        :meth:`set_loras`; ``loras`` are fused into the transformer's weights (this pipeline loaded it and is its
        only user). The upsampler's and the LoRAs' headers are checked before anything loads. Default device: CUDA
        if available (bfloat16), else the CPU (float32).

        LTX-2.5 (``checkpoint`` is the transformer file of the split release): ``text_encoder`` (the Gemma 4 file;
        ``gemma`` is taken for it when given), ``video_vae`` and ``audio_vae`` name the other files, and any not
        named is found beside the transformer (:func:`find_split_files`), all checked before anything loads."""
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        check_offload(offload, device)
        split = None
        if is_split_transformer(checkpoint):
            split = find_split_files(
                checkpoint, text_encoder=text_encoder or gemma, video_vae=video_vae, audio_vae=audio_vae
            )
        elif text_encoder is not None or video_vae is not None or audio_vae is not None:
            raise InputError(
                f"text_encoder, video_vae and audio_vae name the parts of a split (LTX-2.5) release; "
                f"'{os.path.basename(os.fspath(checkpoint))}' is a single-file checkpoint that holds its own"
            )
        elif gemma is None:
            raise InputError("gemma is required with a single-file (LTX-2 / LTX-2.3) checkpoint: the Gemma 3 12B")
        ckpt = open_checkpoint(checkpoint)
        if upsampler is not None:
            latent_channels = (
                ckpt.component_config("video_vae").latent_channels
                if split is None
                else _split_latent_channels(split.video_vae)
            )
            check_upsampler_file(upsampler, latent_channels)
        if loras or stage2_loras:
            # Headers only, against the transformer's shapes, so a LoRA for another model fails in a second.
            shapes = transformer_shapes(ckpt.component_config("transformer"))
            loras = _checked_loras(loras, "loras", shapes, ckpt.variant_name)
            stage2_loras = _checked_loras(stage2_loras, "stage2_loras", shapes, ckpt.variant_name)
        if split is not None:
            from .gemma4_encoder import load_gemma4

            encoder = load_gemma4(split.text_encoder, dtype=dtype, device=device)
            pipe = cls(split, encoder, device=device, dtype=dtype, offload=offload)
        else:
            encoder = load_gemma(gemma, dtype=dtype, device=device)
            pipe = cls(ckpt, encoder, device=device, dtype=dtype, offload=offload)
        if upsampler is not None:
            pipe.load_upsampler(upsampler)
        if loras or stage2_loras:
            pipe.set_loras(loras, stage2_loras, fuse=True)
        return pipe

    def set_loras(
        self, loras: Sequence[LoraSpec] = (), stage2_loras: Sequence[LoraSpec] = (), *, fuse: bool = False
    ) -> None:
        """Use ``loras`` in every stage and, in stage 2 of a two-stage run, ``stage2_loras`` on top of them (the
        official dev recipe: the distilled LoRA at 1.0 there); each a (``.safetensors`` path or opened
        :class:`~.lora.LoraFile`, strength) pair, strengths within +-:data:`LORA_STRENGTH_LIMIT`. Replaces the
        LoRAs set before. Every file is checked against the transformer before any factor is read.

        By default the LoRAs are applied per block as the model runs and the loaded weights never change, so the
        pipeline can be reused with other LoRAs. ``fuse=True`` (what :meth:`load` does) adds ``loras`` into the
        transformer's weights in place instead (:func:`~.lora.fuse_loras_`): no per-step cost, but only for a
        pipeline whose transformer nobody else uses, and for good: later calls must give the same ``loras``
        (``stage2_loras`` may change)."""
        shapes = LinearShapes.of(self.transformer)
        checked = [
            _checked_loras(loras, "loras", shapes, self.variant),
            _checked_loras(stage2_loras, "stage2_loras", shapes, self.variant),
        ]
        if self.fused_loras and [_lora_identity(f, s) for f, s in checked[0]] != [
            _lora_identity(a.file, a.strength) for a in self.fused_loras
        ]:
            raise InputError(
                f"this pipeline's transformer has {_named(self.fused_loras)} fused into its weights (Pipeline.load("
                "..., loras=...)); they apply in every stage and cannot be changed or removed: load the pipeline "
                "again for other loras (stage2_loras can change)"
            )
        every = self.fused_loras or tuple(
            bind_lora(lora, self.transformer, self.variant, strength) for lora, strength in checked[0]
        )
        stage2 = tuple(bind_lora(lora, self.transformer, self.variant, strength) for lora, strength in checked[1])
        if fuse and every and not self.fused_loras:
            fuse_loras_(self.transformer, every)
            self.fused_loras = every
            log.info(
                "%s: fused into the transformer's weights (this pipeline loaded it and is its only user)", _named(every)
            )
        elif every and not self.fused_loras:
            log.info("%s: applied per block as the transformer runs (its weights stay as loaded)", _named(every))
        if stage2:
            log.info("stage-2 %s: applied per block as the transformer runs", _named(stage2))
        self.loras, self.stage2_loras = every, stage2

    def _velocity_model(self, stack: Sequence[AppliedLora]):
        """What a stage samples with: the transformer itself when no LoRA of ``stack`` is in effect beyond those
        fused into its weights (so such a stage computes exactly as without LoRAs), else the transformer computing
        with the other LoRAs' patched weights (made per block as it runs; the patches live as long as the returned
        callable)."""
        stack = [a for a in stack if not any(a is fused for fused in self.fused_loras)]
        patches = LoraPatches(stack, self.transformer)  # leaves out LoRAs at strength 0
        if not patches:
            return self.transformer
        return functools.partial(patches.forward, self.transformer)

    def load_upsampler(self, path: str | os.PathLike) -> LatentUpsampler:
        """Load the spatial x2 latent upsampler two-stage runs use (checked against the video VAE first), in the
        pipeline's device and dtype."""
        check_upsampler_file(path, self.video_vae.config.latent_channels)
        self.upsampler = load_upsampler(path, dtype=self.dtype, device=self.device)
        return self.upsampler

    def encode(self, prompt: str) -> TextContexts:
        return encode_prompts(self.gemma, self.text_path, [prompt])

    def guidance(self, schedule: str) -> tuple[GuidanceParams, GuidanceParams]:
        """The official defaults for this version (video, audio), STG at the last block of a model with fewer blocks
        than the release's; none for the distilled schedule."""
        if schedule == "distilled":
            return GuidanceParams(), GuidanceParams()
        video, audio = default_guidance(self.variant)
        last = self.transformer.config.num_layers - 1
        if any(b > last for b in video.stg_blocks + audio.stg_blocks):
            # A toy model (the demo) has fewer blocks than the release's STG block: perturb its last one instead.
            video = dataclasses.replace(video, stg_blocks=tuple(min(b, last) for b in video.stg_blocks))
            audio = dataclasses.replace(audio, stg_blocks=tuple(min(b, last) for b in audio.stg_blocks))
        return video, audio

    def sigmas(self, schedule: str, steps: int | None) -> torch.Tensor:
        """The sigmas of a (stage-1) ``schedule``: the 8 distilled ones, or the LTX-2 schedule of ``steps``."""
        if schedule == "distilled":
            return torch.tensor(DISTILLED_SIGMAS)
        return ltx2_sigmas(steps or default_steps(self.variant))

    def image_conditions(
        self, image: torch.Tensor | None, frame: int, strength: float, crf: int, frames: int, height: int, width: int
    ) -> list:
        """``image`` encoded at ``width`` x ``height`` as the condition of pixel frame ``frame`` (negative: from the
        end); no condition without an image."""
        if image is None:
            return []
        images = image[None] if image.ndim == 3 else image
        index = frame if frame >= 0 else frames + frame
        pixels = condition_pixels(images, height, width, crf)
        encoded = self.video_vae.encode(pixels.to(self.device, self.dtype)).float().cpu()
        return [condition_for_frame(encoded, index, strength, frames, "image")]

    @torch.inference_mode()
    def generate(
        self,
        prompt: str,
        *,
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        width: int = 768,
        height: int = 512,
        frames: int = 121,
        frame_rate: float = 24.0,
        steps: int | None = None,
        schedule: str = "ltx2",
        seed: int = 0,
        image: torch.Tensor | None = None,
        image_frame: int = 0,
        image_strength: float = 1.0,
        image_crf: int | None = None,
        two_stage: bool = False,
        stage2_audio: str = "refine",
        report: Report | None = None,
    ) -> Generated:
        """Generate ``frames`` frames of ``width`` x ``height`` at ``frame_rate`` fps with their soundtrack.

        ``image`` (``[H, W, 3]`` or ``[N, H, W, 3]`` floats in 0..1) conditions frame ``image_frame`` (0: the first
        frame; negative counts from the end), re-compressed at ``image_crf`` (default: the release's,
        :func:`default_image_crf`). ``schedule``: "ltx2" (``steps``, default 40 for LTX-2 / 30 for
        LTX-2.3, with the official guidance) or "distilled" (8 fixed steps, no guidance, for distilled files;
        ``steps`` must be None). Every argument is checked (:func:`check_request`) before any model runs.

        ``two_stage`` (needs :attr:`upsampler`; width and height multiples of 64): ``schedule`` runs at half width
        and height, the latent is upsampled x2, and 3 unguided steps (:data:`~.schedules.STAGE2_SIGMAS`) refine it
        at full size. ``stage2_audio``: "refine" decodes the audio refined in stage 2 (ltx-pipelines 1.0.0),
        "keep" the stage-1 audio (1.2.0); the video is the same either way.
        """
        check_request(
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            frames=frames,
            frame_rate=frame_rate,
            steps=steps,
            schedule=schedule,
            seed=seed,
            image_frame=image_frame,
            two_stage=two_stage,
            stage2_audio=stage2_audio,
        )
        if image is not None:
            checks.finite_tensor(image, "image")
            if image.ndim not in (3, 4) or image.shape[-1] != 3:
                raise InputError(f"image must be [H, W, 3] or [N, H, W, 3] in 0..1; got shape {list(image.shape)}")
        if two_stage and self.upsampler is None:
            raise InputError(
                "two_stage needs a spatial x2 latent upsampler; load one with Pipeline.load(..., upsampler=PATH) or "
                "pipeline.load_upsampler(PATH) (e.g. ltx-2.3-spatial-upscaler-x2-1.1.safetensors)"
            )
        report = report or (lambda stage, done, total: None)
        report("text", 0, 2)
        positive = self.encode(prompt)
        report("text", 1, 2)
        negative = self.encode(negative_prompt)
        report("text", 2, 2)
        crf = default_image_crf(self.variant) if image_crf is None else image_crf
        condition = dict(image=image, frame=image_frame, strength=image_strength, crf=crf, frames=frames)
        sigmas = self.sigmas(schedule, steps)
        generator = torch.Generator("cpu").manual_seed(seed)
        stage_1 = "stage 1" if two_stage else "denoise"
        stage_h, stage_w = (height // 2, width // 2) if two_stage else (height, width)
        if two_stage:
            log.info(
                "two-stage: stage 1 at %dx%d (%d %s steps), x2 latent upsample, stage 2 at %dx%d (%d steps)",
                stage_w,
                stage_h,
                len(sigmas) - 1,
                schedule,
                width,
                height,
                len(STAGE2_SIGMAS) - 1,
            )
            if self.stage2_loras:
                log.info("stage 2 adds %s", _named(self.stage2_loras))
            elif schedule == "ltx2":
                log.info(
                    "stage 2 refines with the same model as stage 1 (for a dev checkpoint the official recipe adds the "
                    "distilled LoRA there at 1.0: stage2_loras, on the command line --stage2-lora)"
                )
        elif self.stage2_loras:
            log.warning("the stage-2 LoRAs (%s) are not used: this run has one stage", _named(self.stage2_loras))
        video, audio = self.empty_latents(frames, stage_h, stage_w, frame_rate)
        video, audio = self.sample_latents(
            positive,
            negative,
            video,
            audio,
            frame_rate=frame_rate,
            schedule=schedule,
            steps=steps,
            seed=seed,
            generator=generator,
            conditions=self.image_conditions(**condition, height=stage_h, width=stage_w),
            report=report,
            stage=stage_1,
        )
        if not two_stage:
            return self.decode(video, audio, frame_rate, frames, report, **self._decode_noise(generator))

        report("upsample", 0, 1)
        video = upsample_latent(
            self.upsampler,
            video,
            self.video_vae.per_channel_statistics,
            budget_bytes=_work_budget(self.device),
            name="the stage-1 video latent",
        )
        report("upsample", 1, 1)
        stage_1_audio = audio
        conditions = self.image_conditions(**condition, height=height, width=width)
        video, audio = sample(
            self._velocity_model((*self.loras, *self.stage2_loras)),
            video,
            frame_rate=frame_rate,
            positive=positive,
            negative=None,
            sigmas=torch.tensor(STAGE2_SIGMAS),
            audio_latent=audio,
            conditions=conditions,
            noise=_draw_noise(generator, video, audio, conditions, frame_rate),
            device=self.device,
            callback=self._progress(report, "stage 2", len(STAGE2_SIGMAS) - 1),
        )
        audio = stage_1_audio if stage2_audio == "keep" else audio
        return self.decode(video, audio, frame_rate, frames, report, **self._decode_noise(generator))

    @staticmethod
    def empty_latents(frames: int, height: int, width: int, frame_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero video ``[1, 128, F, H, W]`` and audio ``[1, 8, T, 16]`` latents of a clip (what sampling starts from
        where nothing is kept)."""
        latent_frames, latent_h, latent_w = video_latent_shape(frames, height, width)
        video = torch.zeros(1, 128, latent_frames, latent_h, latent_w)
        return video, torch.zeros(1, 8, audio_latent_length(frames, frame_rate), 16)

    def sample_latents(
        self,
        positive: TextContexts,
        negative: TextContexts | None,
        video: torch.Tensor,
        audio: torch.Tensor,
        *,
        frame_rate: float,
        schedule: str,
        steps: int | None,
        seed: int,
        generator: torch.Generator,
        conditions: Sequence = (),
        video_mask: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        report: Report | None = None,
        stage: str = "denoise",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One guided sampling pass (a one-stage run, or stage 1 of two) from ``video`` / ``audio`` under
        ``schedule``'s sigmas and guidance, with the ``loras`` of every stage. The noise is ``generator``'s next
        (video then audio, as :func:`_draw_noise`); ``video_mask`` ``[B, F*H*W]`` / ``audio_mask`` ``[B, T]`` (1:
        generate, 0: keep, as :func:`~.sampling.sample`) keep tokens of the start latents, e.g. an extension's
        overlap. Returns the latents, float32 on the CPU."""
        report = report or (lambda stage, done, total: None)
        sigmas = self.sigmas(schedule, steps)
        video_guidance, audio_guidance = self.guidance(schedule)
        conditions = list(conditions)
        # ltx-pipelines 1.2.0 takes the ancestral step in LTX-2.5's distilled stage 1 (its noise from seed + 10000,
        # not from the run's generator, whose sequence stage 2 and the decoder continue); stage 2 is always Euler,
        # and so is a retake (a video noise mask), as in its retake pipeline and as LTX Sampler does.
        stepper = default_sampler(self.variant, schedule)
        if video_mask is not None:
            stepper = "euler"
        if stepper != "euler":
            log.info("%s samples with the %s step (the release's recipe)", stage, stepper)
        return sample(
            self._velocity_model(self.loras),
            video,
            frame_rate=frame_rate,
            positive=positive,
            negative=negative,
            sigmas=sigmas,
            video_guidance=video_guidance,
            audio_guidance=audio_guidance,
            audio_latent=audio,
            video_mask=video_mask,
            audio_mask=audio_mask,
            conditions=conditions,
            noise=_draw_noise(generator, video, audio, conditions, frame_rate),
            device=self.device,
            callback=self._progress(report, stage, len(sigmas) - 1),
            sampler=stepper,
            seed=seed,
        )

    def _decode_noise(self, generator: torch.Generator) -> dict:
        # Only the diffusion decoder draws from the run's generator (see decode).
        return {"generator": generator} if self.video_vae.is_diffusion else {}

    @staticmethod
    def _progress(report: Report, stage: str, total: int):
        def step(p) -> None:
            if p.video_x0 is not None:  # a step has just finished
                report(stage, p.step, total)

        return step

    def decode(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        frame_rate: float,
        frames: int,
        report: Report,
        generator: torch.Generator | None = None,
    ) -> Generated:
        """Latents to frames and a waveform. The conv decoder's noise comes from a generator seeded 0; LTX-2.5's
        diffusion decoder draws from ``generator``, the one sampling drew from (ltx-pipelines 1.2.0 decodes with
        the run's generator, continuing after the sampling noise; its steps are the file's
        ``default_num_inference_steps``)."""
        from . import tiling
        from .audio import trim_to_duration

        pixels = tiling.decode(
            self.video_vae, video.to(self.device), **self._decode_arguments(video, report, generator)
        )
        rgb = to_uint8(pixels[0].permute(1, 2, 3, 0))  # [F, H, W, 3]
        report("audio decode", 0, 1)
        waveform = self.decode_waveform(audio)
        report("audio decode", 1, 1)
        sample_rate = int(self.vocoder.sample_rate)
        waveform = trim_to_duration(waveform, sample_rate, frames / frame_rate)
        return Generated(rgb.cpu()[:frames], frame_rate, waveform, sample_rate)

    def iter_frames(
        self,
        video: torch.Tensor,
        report: Report | None = None,
        generator: torch.Generator | None = None,
        stage: str = "video decode",
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """The video latent's frames as the decoder finishes them: ``(first frame, frames [n, H, W, 3])`` runs,
        floats in -1..1 on the pipeline's device, decoded as :meth:`decode` decodes (:func:`to_uint8` makes its
        pixels of them). A run may repeat frames sent before (the decoder retried with smaller tiles after running
        out of memory): write them by position."""
        from . import tiling

        report = report or (lambda stage, done, total: None)
        arguments = self._decode_arguments(video, report, generator, stage)
        for start, frames in tiling.iter_decode(self.video_vae, video.to(self.device), **arguments):
            yield start, frames[0].permute(1, 2, 3, 0)

    def decode_waveform(self, audio: torch.Tensor) -> torch.Tensor:
        """An audio latent ``[1, 8, T, 16]`` -> its whole decoded waveform ``[2, N]`` float32 on the CPU, at the
        vocoder's ``sample_rate`` (not trimmed: it runs a few ms short of or past its video)."""
        from .audio import decode_audio

        return decode_audio(self.audio_vae, self.vocoder, audio.to(self.device))[0].float().cpu()

    def _decode_arguments(
        self, video: torch.Tensor, report: Report, generator: torch.Generator | None, stage: str = "video decode"
    ) -> dict:
        """The tiling and noise the video decode uses (:func:`~.tiling.iter_decode`'s arguments): tiles planned
        within the device's work budget; the conv decoder's noise from a generator seeded 0, the diffusion
        decoder's from ``generator``."""
        from . import tiling

        vae = self.video_vae
        plan = tiling.choose_decode_tiling(vae.decoder_config, video.shape, _work_budget(self.device), self.dtype)
        noise = generator if vae.is_diffusion and generator is not None else torch.Generator("cpu").manual_seed(0)
        return dict(tiling=plan, noise=noise, progress=lambda done, total: report(stage, done, total))


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Decoded pixels in -1..1 -> uint8 0..255, as a video file stores them."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _lora_identity(lora: LoraFile, strength: float) -> tuple:
    return os.path.realpath(lora.path), lora.size, lora.mtime_ns, float(strength)


def _named(stack: Sequence[AppliedLora]) -> str:
    return ", ".join(f"LoRA '{applied.name}' at {applied.strength:g}" for applied in stack)


# The tiny upsampler's file name beside the tiny checkpoint.
TINY_UPSAMPLER = "tiny-spatial-upscaler-x2.safetensors"


def tiny_pipeline(
    folder: str,
    variant: str = "LTX-2.3",
    seed: int = 0,
    *,
    device: str | torch.device = "cpu",
    offload: str = "none",
    upsampler: bool = False,
    loras: Sequence[LoraSpec] = (),
    stage2_loras: Sequence[LoraSpec] = (),
) -> Pipeline:
    """Write the tiny stand-in checkpoint and Gemma (the files ``make-tiny-models`` writes) into ``folder`` and
    load them: float32 on the CPU, the default dtype of ``device`` elsewhere. ``upsampler``: also write a tiny
    spatial x2 latent upsampler beside them and load it (for two-stage runs). ``loras`` / ``stage2_loras``: as
    :meth:`Pipeline.load` takes them (the stand-in LoRAs of :func:`~.tiny.write_tiny_lora` fit)."""
    from .tiny import write_tiny_checkpoint, write_tiny_gemma, write_tiny_upsampler

    device = torch.device(device)
    check_offload(offload, device)
    checkpoint = write_tiny_checkpoint(os.path.join(folder, "tiny-ltx.safetensors"), variant, seed, stand_in=True)
    gemma = write_tiny_gemma(os.path.join(folder, "tiny-gemma-3"), seed)
    upsampler_path = None
    if upsampler:
        upsampler_path = write_tiny_upsampler(os.path.join(folder, TINY_UPSAMPLER), "spatial-x2", seed, stand_in=True)
    dtype = torch.float32 if device.type == "cpu" else None
    return Pipeline.load(
        checkpoint,
        gemma,
        device=device,
        dtype=dtype,
        offload=offload,
        upsampler=upsampler_path,
        loras=loras,
        stage2_loras=stage2_loras,
    )
