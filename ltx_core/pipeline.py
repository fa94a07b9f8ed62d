"""Text (and optionally an image) to a video with sound, headless: the path ``python -m ltx_av generate`` runs.

The same building blocks the nodes use, wired in one place: Gemma 3 and the checkpoint's text path encode the
prompts, the transformer denoises video and audio latents together under guidance, and the two VAEs (plus the
vocoder) turn the latents back into frames and a waveform.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import checks
from .checkpoint import Checkpoint, build_component, open_checkpoint
from .conditioning import condition_for_frame, condition_pixels
from .errors import InputError
from .gemma import GemmaEncoder, load_gemma
from .guidance import GuidanceParams, default_guidance, default_steps
from .latents import audio_latent_length, video_latent_shape
from .offload import place_weights
from .sampling import MAX_SEED, sample
from .schedules import DISTILLED_SIGMAS, MAX_STEPS, ltx2_sigmas
from .text_encoder import TextContexts, TextPath, encode_prompts, load_text_path
from .transformer import AudioVideoTransformer

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

# Bounds of a request (as LTX-AV Empty Latent's): sides in pixels, frames, frames per second.
MAX_SIDE = 8192
MAX_FRAMES = 10001
MAX_FRAME_RATE = 1000.0

# A short negative prompt for the tiny stand-in, whose byte-level tokenizer would truncate the official one.
TINY_NEGATIVE_PROMPT = "blurry, distorted, low quality, silent"

# What a step reports: (stage, done, total).
Report = Callable[[str, int, int], None]


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
)


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
    names: dict[str, str] | None = None,
) -> dict:
    """Check what :meth:`Pipeline.generate` is asked for before any work; returns the values by argument name.

    ``names`` maps an argument to how the caller's user knows it (the command line passes ``{"frame_rate":
    "--fps", ...}``); every message starts with that name. ``steps`` None means the version's default; with the
    distilled schedule, whose 8 steps are fixed, it must be None.
    """
    n = {key: key for key in _REQUEST_ARGUMENTS} | (names or {})
    checks.text(prompt, n["prompt"])
    checks.text(negative_prompt, n["negative_prompt"])
    checks.choice(schedule, n["schedule"], SCHEDULES)
    frames = checks.integer(frames, n["frames"], minimum=1, maximum=MAX_FRAMES)
    height = checks.integer(height, n["height"], minimum=32, maximum=MAX_SIDE)
    width = checks.integer(width, n["width"], minimum=32, maximum=MAX_SIDE)
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
    )


def check_offload(offload: str, device: torch.device) -> str:
    """``offload`` as :meth:`Pipeline.load` takes it; block streaming only means something on a GPU."""
    checks.choice(offload, "offload", OFFLOAD_MODES)
    if offload == "blocks" and device.type == "cpu":
        raise InputError(
            "offload 'blocks' streams the transformer's blocks from system RAM to a GPU; on the CPU the weights "
            "already live in system RAM, so there is nothing to stream (use offload 'none')"
        )
    return offload


class Pipeline:
    """Every model of one checkpoint plus a Gemma 3, ready to generate."""

    def __init__(self, checkpoint: Checkpoint, gemma: GemmaEncoder, *, device, dtype, offload: str = "none"):
        from .audio_vae import load_audio_vae
        from .video_vae import load_video_vae
        from .vocoder import load_vocoder

        self.checkpoint = checkpoint
        self.variant = checkpoint.variant_name
        self.device, self.dtype = torch.device(device), dtype
        check_offload(offload, self.device)
        self.gemma = gemma
        self.text_path: TextPath = load_text_path(checkpoint, dtype=torch.float32, device=self.device)
        self.transformer = build_component(checkpoint, "transformer", AudioVideoTransformer, device="cpu")
        place_weights(self.transformer, self.device, dtype, stream_blocks=offload == "blocks")
        self.video_vae = load_video_vae(checkpoint, dtype=dtype, device=self.device)
        self.audio_vae = load_audio_vae(checkpoint, dtype=dtype, device=self.device)
        self.vocoder = load_vocoder(checkpoint, device=self.device)

    @classmethod
    def load(
        cls,
        checkpoint: str | os.PathLike,
        gemma: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        offload: str = "none",
    ) -> Pipeline:
        """Load an official (or tiny stand-in) checkpoint and a Gemma 3 (HF folder, .safetensors or .gguf).
        Default device: CUDA if available (bfloat16), else the CPU (float32)."""
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        check_offload(offload, device)
        ckpt = open_checkpoint(checkpoint)
        encoder = load_gemma(gemma, dtype=dtype, device=device)
        return cls(ckpt, encoder, device=device, dtype=dtype, offload=offload)

    def encode(self, prompt: str) -> TextContexts:
        return encode_prompts(self.gemma, self.text_path, [prompt])

    def guidance(self, schedule: str) -> tuple[GuidanceParams, GuidanceParams]:
        """The official defaults for this version (video, audio); none for the distilled schedule."""
        if schedule == "distilled":
            return GuidanceParams(), GuidanceParams()
        return default_guidance(self.variant)

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
        image_crf: int = 33,
        report: Report | None = None,
    ) -> Generated:
        """Generate ``frames`` frames of ``width`` x ``height`` at ``frame_rate`` fps with their soundtrack.

        ``image`` (``[H, W, 3]`` or ``[N, H, W, 3]`` floats in 0..1) conditions frame ``image_frame`` (0: the first
        frame; negative counts from the end). ``schedule``: "ltx2" (``steps``, default 40 for LTX-2 / 30 for
        LTX-2.3, with the official guidance) or "distilled" (8 fixed steps, no guidance, for distilled files;
        ``steps`` must be None). Every argument is checked (:func:`check_request`) before any model runs.
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
        )
        if image is not None:
            checks.finite_tensor(image, "image")
            if image.ndim not in (3, 4) or image.shape[-1] != 3:
                raise InputError(f"image must be [H, W, 3] or [N, H, W, 3] in 0..1; got shape {list(image.shape)}")
        report = report or (lambda stage, done, total: None)
        latent_frames, latent_h, latent_w = video_latent_shape(frames, height, width)
        report("text", 0, 2)
        positive = self.encode(prompt)
        report("text", 1, 2)
        negative = self.encode(negative_prompt)
        report("text", 2, 2)

        conditions = []
        if image is not None:
            images = image[None] if image.ndim == 3 else image
            index = image_frame if image_frame >= 0 else frames + image_frame
            pixels = condition_pixels(images, height, width, image_crf)
            encoded = self.video_vae.encode(pixels.to(self.device, self.dtype)).float().cpu()
            conditions.append(condition_for_frame(encoded, index, image_strength, frames, "image"))

        if schedule == "distilled":
            sigmas = torch.tensor(DISTILLED_SIGMAS)
        else:
            sigmas = ltx2_sigmas(steps or default_steps(self.variant))
        video_guidance, audio_guidance = self.guidance(schedule)
        video = torch.zeros(1, 128, latent_frames, latent_h, latent_w)
        audio = torch.zeros(1, 8, audio_latent_length(frames, frame_rate), 16)
        total = len(sigmas) - 1

        def step(p) -> None:
            if p.video_x0 is not None:  # a step has just finished
                report("denoise", p.step, total)

        video, audio = sample(
            self.transformer,
            video,
            frame_rate=frame_rate,
            positive=positive,
            negative=negative,
            sigmas=sigmas,
            seed=seed,
            video_guidance=video_guidance,
            audio_guidance=audio_guidance,
            audio_latent=audio,
            conditions=conditions,
            device=self.device,
            callback=step,
        )
        return self.decode(video, audio, frame_rate, frames, report)

    def decode(
        self, video: torch.Tensor, audio: torch.Tensor, frame_rate: float, frames: int, report: Report
    ) -> Generated:
        from . import tiling
        from .audio import decode_audio, trim_to_duration

        budget = 2 * 2**30 if self.device.type == "cpu" else 6 * 2**30
        plan = tiling.choose_decode_tiling(self.video_vae.config, video.shape, budget, self.dtype)
        pixels = tiling.decode(
            self.video_vae,
            video.to(self.device),
            plan,
            noise=torch.Generator(device="cpu").manual_seed(0),
            progress=lambda done, total: report("video decode", done, total),
        )
        rgb = ((pixels[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [3, F, H, W]
        report("audio decode", 0, 1)
        waveform = decode_audio(self.audio_vae, self.vocoder, audio.to(self.device))[0].float().cpu()
        report("audio decode", 1, 1)
        sample_rate = int(self.vocoder.sample_rate)
        waveform = trim_to_duration(waveform, sample_rate, frames / frame_rate)
        return Generated(rgb.permute(1, 2, 3, 0).cpu()[:frames], frame_rate, waveform, sample_rate)


def tiny_pipeline(
    folder: str, variant: str = "LTX-2.3", seed: int = 0, *, device: str | torch.device = "cpu", offload: str = "none"
) -> Pipeline:
    """Write the tiny stand-in checkpoint and Gemma (the files ``make-tiny-models`` writes) into ``folder`` and
    load them: float32 on the CPU, the default dtype of ``device`` elsewhere."""
    from .tiny import write_tiny_checkpoint, write_tiny_gemma

    device = torch.device(device)
    check_offload(offload, device)
    checkpoint = write_tiny_checkpoint(os.path.join(folder, "tiny-ltx.safetensors"), variant, seed, stand_in=True)
    gemma = write_tiny_gemma(os.path.join(folder, "tiny-gemma-3"), seed)
    dtype = torch.float32 if device.type == "cpu" else None
    return Pipeline.load(checkpoint, gemma, device=device, dtype=dtype, offload=offload)
