"""Two-stage generation: load a latent upsampler (``LTX_UPSAMPLER``) and upsample a video latent with it.

The official two-stage recipe samples at half size, upsamples the latent (spatial x2 / x1.5, or temporal x2) and
refines it with a few steps at full size: Sampler (video + audio) with ``schedule = stage2`` re-noises the upsampled latent
at that schedule's first sigma and denoises from there.

What a video latent carries is handled visibly: the padding record (``ltx_video_fit``) is scaled with the latent
when the scaled sizes are whole numbers, and dropped (logged) otherwise; image conditions and noise masks belong to
the small latent's grid and are dropped with a log line saying how to re-attach them (apply Image Condition (keyframe)
again at full size, as the official pipelines do). Temporal x2 doubles the frame rate the latents record, for the
audio latent too, so the sampler keeps pairing them.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from ..ltx_core import checks
from ..ltx_core.checkpoint import open_checkpoint
from ..ltx_core.errors import TooLargeError
from ..ltx_core.upsampler import LatentUpsampler, estimate_upsample_bytes, load_upsampler, upsample_latent
from ..ltx_core.video_vae import VideoFit
from . import host
from .dtypes import VAE_DTYPES, vae_dtype
from .sampling import CONDITIONS_KEY, FIT_KEY, _frame_rate, _latent_dict, _video_samples
from .validation import check_release, checked, model_file, register_socket

log = logging.getLogger("ltx_av.nodes.upsample")

FOLDER = "latent_upscale_models"
# Share of the free memory the upsampler may plan to use (as the video decode does).
BUDGET_SHARE = 0.75


class LoadedUpsampler:
    """The ``LTX_UPSAMPLER`` value: a latent upsampler, waiting on the offload device between calls.

    ``upsample(latent, statistics)``: a normalised video latent -> the upsampled normalised latent (float32, on the
    host's intermediate device), run on the compute device within the free memory. Attributes ``config``
    (:class:`~ltx_av.ltx_core.upsampler.UpsamplerConfig`), ``kind``, ``file``.
    """

    def __init__(self, model: LatentUpsampler, *, file: str, device: torch.device, offload_device: torch.device):
        self.model = model
        self.file = file
        self.device = device
        self.offload_device = offload_device
        self.weights = host.ModuleWeights("LTXAVUpsampler", [model], device, offload_device)

    @property
    def config(self):
        return self.model.config

    @property
    def kind(self) -> str:
        return self.config.kind

    def upsample(self, latent: torch.Tensor, statistics: torch.nn.Module, name: str = "samples") -> torch.Tensor:
        statistics_device = statistics.get_buffer("mean-of-means").device
        try:
            with self.weights.in_use():
                budget = int(BUDGET_SHARE * host.available_memory(self.device))
                with torch.inference_mode():
                    out = upsample_latent(
                        self.model, latent.float(), statistics.to(self.device), budget_bytes=budget, name=name
                    )
        except Exception as error:
            if not host.is_out_of_memory(error):
                raise
            raise TooLargeError(
                f"upsampling {list(latent.shape)} ran out of memory on {self.device}; upsample a shorter or smaller "
                "latent, or free GPU memory (other models, other programs)"
            ) from error
        finally:
            statistics.to(statistics_device)
        return out.to(device=host.intermediate_device(), dtype=torch.float32)

    def __repr__(self) -> str:
        return f"LoadedUpsampler({self.kind}, {self.file!r}, {str(self.model.dtype).removeprefix('torch.')})"


def load_latent_upsampler(
    path: str,
    *,
    dtype: str = "auto",
    device: torch.device | None = None,
    offload_device: torch.device | None = None,
) -> LoadedUpsampler:
    """The upsampler of an official upsampler file (its kind from the file's config), strictly loaded."""
    device = torch.device(device) if device is not None else host.compute_device()
    offload_device = torch.device(offload_device) if offload_device is not None else host.offload_device()
    ckpt = open_checkpoint(path)
    model = load_upsampler(ckpt, dtype=vae_dtype(dtype, device), device=offload_device)
    loaded = LoadedUpsampler(model, file=ckpt.name, device=device, offload_device=offload_device)
    log.info("loaded %r", loaded)
    return loaded


def scaled_fit(fit: VideoFit, kind_temporal: bool, num: int, den: int) -> VideoFit | None:
    """The padding record of a latent after upsampling, or ``None`` when the scaled sizes are not whole."""
    if kind_temporal:
        return replace(fit, frames=2 * fit.frames - 1, fitted_frames=2 * fit.fitted_frames - 1)
    sizes = (fit.height, fit.width, fit.fitted_height, fit.fitted_width, fit.top, fit.left)
    if any(size * num % den for size in sizes):
        return None
    height, width, fitted_height, fitted_width, top, left = (size * num // den for size in sizes)
    return replace(
        fit, height=height, width=width, fitted_height=fitted_height, fitted_width=fitted_width, top=top, left=left
    )


# -- nodes -----------------------------------------------------------------------------------------------------------


class LTXUpsamplerLoader:
    DISPLAY_NAME = "Load Latent Upsampler"
    CATEGORY = "LTX-AV/loaders"
    DESCRIPTION = (
        "Loads an official LTX-2 / LTX-2.3 / LTX-2.5 latent upsampler from models/latent_upscale_models: spatial x2, spatial "
        "x1.5 or temporal x2 (the file's config says which). Every key is checked against that config."
    )
    RETURN_TYPES = ("LTX_UPSAMPLER",)
    RETURN_NAMES = ("upsampler",)
    OUTPUT_TOOLTIPS = ("The upsampler for Latent Upsample (two-stage).",)
    FUNCTION = "load"
    FILE_INPUTS = ("upsampler_name",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "upsampler_name": (
                    host.list_models(FOLDER) or ["(put an upsampler in models/latent_upscale_models)"],
                    {
                        "tooltip": "e.g. ltx-2.3-spatial-upscaler-x2-1.1.safetensors (spatial x2), "
                        "ltx-2.3-spatial-upscaler-x1.5-1.0 or ltx-2.3-temporal-upscaler-x2-1.0."
                    },
                ),
                "dtype": (
                    list(VAE_DTYPES),
                    {"default": "auto", "tooltip": "auto: bf16 on NVIDIA GPUs that support it, else fp32."},
                ),
            }
        }

    @checked
    def load(self, upsampler_name: str, dtype: str = "auto"):
        path = model_file("LTXUpsamplerLoader", "upsampler_name", (FOLDER,), upsampler_name)
        return (load_latent_upsampler(path, dtype=dtype),)


class LTXLatentUpsample:
    DISPLAY_NAME = "Latent Upsample (two-stage)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = (
        "Upsamples a video latent with a latent upsampler, between the two stages of a two-stage generation: "
        "spatial x2 / x1.5 keep the frame count, temporal x2 turns F latent frames into 2F-1 and doubles the frame "
        "rate (of the audio latent too, when connected; its samples are unchanged). Then sample again with "
        "Sampler (video + audio), schedule stage2. Image conditions and noise masks of the small latent are dropped (logged): apply "
        "Image Condition (keyframe) again on the upsampled latent, at full size."
    )
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("video_latent", "audio_latent")
    OUTPUT_TOOLTIPS = (
        "The upsampled video latent for Sampler (video + audio) with schedule stage2.",
        "The audio latent, passed through (its frame rate doubled by a temporal upsampler); None if not connected.",
    )
    FUNCTION = "upsample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_latent": ("LATENT", {"tooltip": "The stage-1 video latent (Sampler (video + audio)'s output)."}),
                "upsampler": ("LTX_UPSAMPLER", {"tooltip": "From Load Latent Upsampler."}),
                "vae": (
                    "LTX_VAE",
                    {"tooltip": "The model's video VAE: the upsampler works on latents without its normalisation."},
                ),
            },
            "optional": {
                "audio_latent": (
                    "LATENT",
                    {"tooltip": "The stage-1 audio latent; passed through (frame rate doubled by temporal x2)."},
                ),
            },
        }

    @checked
    def upsample(self, video_latent, upsampler: LoadedUpsampler, vae, audio_latent=None):
        node = "LTXLatentUpsample"
        latent = _latent_dict(video_latent, node, "video_latent")
        # the VAE's statistics un-normalise the latent: they must be those of the release that made it
        check_release(latent, vae, node, "video_latent", "vae")
        samples = _video_samples(latent, node, "video_latent", upsampler.config.in_channels, scan=False)
        audio = None if audio_latent is None else _latent_dict(audio_latent, node, "audio_latent")
        out_shape = upsampler.config.output_shape(samples.shape)
        checks.fits_memory(
            checks.tensor_bytes(out_shape) + estimate_upsample_bytes(upsampler.config, samples.shape, torch.float32, 2),
            host.available_memory(upsampler.device),
            f"{node}: upsampling {list(samples.shape)} to {list(out_shape)} ({upsampler.kind})",
            advice="upsample a shorter or smaller latent",
        )
        checks.finite_tensor(samples, f"{node}: video_latent")
        temporal = upsampler.config.temporal_upsample
        fps = _frame_rate(latent, node, "video_latent")
        up = upsampler.upsample(samples, vae.vae.per_channel_statistics, f"{node}: video_latent")

        out = {k: v for k, v in latent.items() if k not in (CONDITIONS_KEY, "noise_mask", FIT_KEY)}
        out.update(samples=up, type="video")
        if latent.get(CONDITIONS_KEY):
            log.info(
                "%s: dropped %d image condition(s) of the small latent; apply Image Condition (keyframe) again on the "
                "upsampled latent (at full size), as the official two-stage pipelines do",
                node,
                len(latent[CONDITIONS_KEY]),
            )
        if latent.get("noise_mask") is not None:
            log.info(
                "%s: dropped the noise_mask (it is on the small latent's grid); set it again on the upsampled latent "
                "(e.g. Time Window Mask (retake))",
                node,
            )
        fit = VideoFit.from_dict(latent[FIT_KEY]) if isinstance(latent.get(FIT_KEY), dict) else None
        if fit is not None:
            scaled = scaled_fit(fit, temporal, *upsampler.config.spatial_ratio)
            if scaled is None:
                log.info("%s: the padding record does not scale to whole pixels; the decode keeps the padding", node)
            else:
                out[FIT_KEY] = scaled.as_dict()
        out_audio = None
        if temporal and fps is not None:
            out["frame_rate"] = 2 * fps
            log.info("%s: temporal x2: %g fps -> %g fps", node, fps, 2 * fps)
        if audio is not None:
            out_audio = dict(audio)
            if temporal and audio.get("frame_rate") is not None:
                out_audio["frame_rate"] = 2 * _frame_rate(audio, node, "audio_latent")
        log.info("%s: %s -> %s with the %s upsampler", node, list(samples.shape), list(up.shape), upsampler.kind)
        return (out, out_audio)


register_socket("LTX_UPSAMPLER", LoadedUpsampler, "the upsampler from Load Latent Upsampler")

NODES: tuple[type, ...] = (LTXUpsamplerLoader, LTXLatentUpsample)
