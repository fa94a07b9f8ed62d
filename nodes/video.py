"""Video VAE nodes: load the video VAE (``LTX_VAE``), encode IMAGE frames to a video LATENT, decode it back.

Video LATENT: ``{"samples": [B, 128, F', H', W'] float32, "type": "video", "frame_rate": float}`` and, when the
encoder padded the frames to the VAE's grid, ``"ltx_video_fit"`` (how, so the decoder can crop the padding off
again while the latent keeps that size). Core latent nodes (save/load, batch, upscale by, blend) work on it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

from ..ltx_core import checks
from ..ltx_core import tiling as tiles
from ..ltx_core.checkpoint import Checkpoint, open_checkpoint
from ..ltx_core.config import LTX25, VideoVAEConfig
from ..ltx_core.errors import CheckpointError, InputError, TooLargeError
from ..ltx_core.video_vae import (
    DECODE_NOISE_SCALE,
    DECODE_TIMESTEP,
    FIT_MODES,
    VideoFit,
    VideoVAE,
    fit_video,
    load_video_vae,
)
from ..ltx_core.video_vae_file import load_video_vae_file
from . import host
from .dtypes import VAE_DTYPES, vae_dtype
from .validation import (
    check_release,
    checked,
    find_model_file,
    is_audio_latent_shape,
    is_latent,
    model_choices,
    nested_part,
    record_release,
    register_socket,
)

log = logging.getLogger("ltx_av.nodes.video")

SOURCE_FOLDERS = ("checkpoints", "vae")
TILING_MODES = ("auto", "off", "manual")
# Share of the free memory tiles may plan to use; the rest absorbs the estimate's error and other allocations.
BUDGET_SHARE = 0.75
FIT_KEY = "ltx_video_fit"


class LoadedVideoVAE:
    """The ``LTX_VAE`` value: the video VAE of one checkpoint; each half is loaded the first time it is used.

    Python API for other nodes and scripts (pixels in [-1, 1]; returned tensors float32 on the host's
    intermediate device):

    - ``encode_pixels(pixels [B, 3, F, H, W], tiling="auto", progress=None) -> latent [B, 128, F', H', W']``
      with ``F = 8(F'-1) + 1`` and ``H, W`` multiples of 32 (else :class:`InputError`; see ``ltx_core.video_vae
      .fit_video`` to pad or crop first). ``tiling``: ``"auto"`` (by free memory), ``None`` (one piece) or a
      ``ltx_core.tiling.EncodeTiling``.
    - ``decode_latent(latent, tiling="auto", timestep=None, noise_scale=None, seed=0, progress=None) ->
      pixels [B, 3, F, H, W]`` (clamped to [-1, 1]); ``tiling`` as above with ``DecodeTiling``.
    - ``iter_decode(...)``: the same as runs ``(first_frame, pixels [B, 3, n, H, W])`` as they become final (a
      run can come again after an out-of-memory retry: write runs by position).
    - attributes ``config`` (:class:`VideoVAEConfig`), ``latent_channels`` (128), ``variant``, ``checkpoint``,
      ``dtype``, ``timestep_conditioning``.

    Weights wait on the offload device and move to the compute device for each call. Out-of-memory errors are
    retried with smaller tiles before giving up.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        dtype: torch.dtype,
        device: torch.device,
        offload_device: torch.device,
        parts: tuple[str, ...] = ("decoder",),
    ):
        self._ckpt = checkpoint
        self.variant = checkpoint.variant_name
        self.checkpoint = checkpoint.name
        self.dtype = dtype
        self.device = device
        self.offload_device = offload_device
        self.vae: VideoVAE = self._read(parts, offload_device)
        self.weights = host.ModuleWeights("LTXAVVideoVAE", [self.vae], device, offload_device)

    def _read(self, parts: tuple[str, ...], device: torch.device) -> VideoVAE:
        # LTX-2.5's VAE files carry the release's own config layout (and may hold the diffusion decoder).
        identity = self._ckpt.identity
        if identity.role == "video_vae" and LTX25 in identity.variants:
            return load_video_vae_file(self._ckpt.path, parts, dtype=self.dtype, device=device)
        return load_video_vae(self._ckpt, parts=parts, dtype=self.dtype, device=device)

    @property
    def config(self) -> VideoVAEConfig:
        return self.vae.config

    @property
    def releases(self) -> frozenset[str]:
        """The releases the VAE's file can belong to (read from its header)."""
        return self._ckpt.identity.variants

    @property
    def is_diffusion(self) -> bool:
        """Whether the decoder is LTX-2.5's diffusion decoder (it draws noise from the seed; no decode timestep)."""
        return self.vae.is_diffusion

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    @property
    def timestep_conditioning(self) -> bool:
        return self.config.timestep_conditioning

    def _ensure(self, part: str) -> None:
        if getattr(self.vae, part) is None:
            log.info("loading the %s video VAE %s from %s", self.variant, part, self.checkpoint)
            other = self._read((part,), self.vae.device)
            setattr(self.vae, part, getattr(other, part))
            self.weights.set_modules([self.vae])  # its size changed; placed whole at the next use

    @contextmanager
    def _in_use(self, part: str):
        self._ensure(part)
        with self.weights.in_use():
            yield self.vae

    def _budget(self, reserve: int = 0) -> int:
        return max(0, int(BUDGET_SHARE * (host.available_memory(self.device) - reserve)))

    # -- encoding ----------------------------------------------------------------------------------------------

    def encode_pixels(
        self,
        pixels: torch.Tensor,
        tiling: tiles.EncodeTiling | str | None = "auto",
        progress: host.Progress | None = None,
    ) -> torch.Tensor:
        """Pixels ``[B, 3, 8k+1, 32m, 32n]`` in [-1, 1] -> normalised latent ``[B, 128, k+1, m, n]`` float32."""
        with self._in_use("encoder") as vae, torch.inference_mode():
            vae.check_video(pixels, "pixels")
            setting = tiling
            if setting == "auto":
                setting = tiles.choose_encode_tiling(vae.config, pixels.shape, self._budget(), vae.dtype)
            callback = progress.callback() if progress is not None else None
            while True:
                try:
                    if setting is not None:
                        log.info("encoding %s in pieces: %s", list(pixels.shape), setting)
                    latent = tiles.encode(vae, pixels, setting, progress=callback)
                    break
                except Exception as error:
                    if not host.is_out_of_memory(error):
                        raise
                    smaller = tiles.smaller_encode_tiling(vae.config, pixels.shape, setting, vae.dtype)
                    if smaller is None:
                        raise out_of_memory("video encode", pixels.shape, self.device, ENCODE_ADVICE) from error
                    del error
                    host.free_memory(self.device)
                    log.warning("video encode ran out of memory; retrying with %s", smaller)
                    setting = smaller
        return latent.to(device=host.intermediate_device(), dtype=torch.float32)

    # -- decoding ----------------------------------------------------------------------------------------------

    def iter_decode(
        self,
        latent: torch.Tensor,
        tiling: tiles.DecodeTiling | str | None = "auto",
        timestep: float | None = None,
        noise_scale: float | None = None,
        seed: int = 0,
        progress: host.Progress | None = None,
        reserve_bytes: int = 0,
    ):
        """Runs ``(first_frame, pixels [B, 3, n, H, W] float32 in [-1, 1])`` on the compute device."""
        with self._in_use("decoder") as vae, torch.inference_mode():
            vae.check_latent(latent, "samples")
            setting = tiling
            if setting == "auto":
                budget = self._budget(reserve_bytes)
                setting = tiles.choose_decode_tiling(vae.decoder_config, latent.shape, budget, vae.dtype)
            plan = tiles.plan_decode(latent.shape, setting)
            log.info("decoding %s: %s, %d tile(s)", list(latent.shape), _describe(setting), plan.tile_count)
            generator = torch.Generator().manual_seed(int(seed))
            if vae.is_diffusion and (timestep is not None or noise_scale is not None):
                # the diffusion decoder starts from its own noise at t = 1: the conv decoder's settings do not apply
                log.info("the diffusion decoder has no decode timestep or noise scale; seed %d draws its noise", seed)
                timestep = noise_scale = None
            runs = tiles.iter_decode(
                vae,
                latent,
                setting,
                timestep=timestep,
                noise=generator,
                noise_scale=noise_scale,
                progress=progress.callback() if progress is not None else None,
                is_oom=host.is_out_of_memory,
                on_retry=lambda smaller: host.free_memory(self.device),
            )
            try:
                for start, frames in runs:
                    yield start, frames.clamp_(-1.0, 1.0)
            except Exception as error:
                if not host.is_out_of_memory(error):
                    raise
                # The tiler has already retried with every smaller tiling it knows.
                raise out_of_memory("video decode", latent.shape, self.device, DECODE_ADVICE) from error

    def decode_latent(self, latent: torch.Tensor, **kwargs) -> torch.Tensor:
        """Latent ``[B, 128, F', H', W']`` -> pixels ``[B, 3, 8(F'-1)+1, 32H', 32W']`` float32 in [-1, 1]."""
        out = None
        for start, frames in self.iter_decode(latent, **kwargs):
            if out is None:
                b, c, _, h, w = frames.shape
                shape = (b, c, 1 + 8 * (latent.shape[2] - 1), h, w)
                out = torch.empty(shape, dtype=torch.float32, device=host.intermediate_device())
            out[:, :, start : start + frames.shape[2]] = frames.to(out.device)
        return out

    def __repr__(self) -> str:
        return (
            f"LoadedVideoVAE({self.variant}, {self.checkpoint!r}, {str(self.dtype).removeprefix('torch.')}, "
            f"parts loaded {list(self.vae.parts)}, on {self.device})"
        )


DECODE_ADVICE = (
    "lower spatial_tile / temporal_tile (tiling = manual), decode fewer frames or a smaller size, or free GPU memory "
    "(other models, other programs)"
)
ENCODE_ADVICE = "encode fewer frames or a smaller size (resize first), or free GPU memory (other models, programs)"


def out_of_memory(what: str, shape, device: torch.device, advice: str) -> TooLargeError:
    """The error for an out-of-memory failure that smaller tiles could not cure (raise it ``from`` the original)."""
    return TooLargeError(
        f"{what} of {list(shape)} ran out of memory on {device} even with the smallest tiles; {advice}"
    )


def _describe(setting: tiles.DecodeTiling | None) -> str:
    return "one piece" if setting is None else setting.describe()


def load_video(
    path: str,
    *,
    dtype: str = "auto",
    device: torch.device | None = None,
    offload_device: torch.device | None = None,
    parts: tuple[str, ...] = ("decoder",),
) -> LoadedVideoVAE:
    """The video VAE of an official checkpoint (or a file holding only the VAE); more halves load on first use."""
    device = torch.device(device) if device is not None else host.compute_device()
    offload_device = torch.device(offload_device) if offload_device is not None else host.offload_device()
    ckpt = open_checkpoint(path)
    if "video_vae" not in ckpt.identity.components:
        raise CheckpointError(
            f"{ckpt.identity.describe()} holds no video VAE; pick an LTX checkpoint or a video VAE file"
        )
    loaded = LoadedVideoVAE(
        ckpt, dtype=vae_dtype(dtype, device), device=device, offload_device=offload_device, parts=parts
    )
    log.info("loaded %r", loaded)
    return loaded


# -- helpers for the nodes -------------------------------------------------------------------------------------------


def _source_choices() -> list[str]:
    return model_choices(SOURCE_FOLDERS)


def _video_latent(samples: object, node: str, channels: int) -> torch.Tensor:
    """The tensor of a video LATENT, refusing what is not one (named after the node's ``samples`` input)."""
    if not is_latent(samples):
        raise InputError(f"{node}: samples must be a LATENT (a dict with a 'samples' tensor); got {_kind(samples)}")
    # newer ComfyUI holds video + audio in one NestedTensor (core LTXVConcatAVLatent): its video part is ours. The
    # shape tells what a latent is (core's LTXVSeparateAVLatent gives both parts the joint latent's "type").
    latent = nested_part(samples["samples"], 0)
    if is_audio_latent_shape(latent):
        raise InputError(
            f"{node}: samples is an audio latent {list(latent.shape)}; decode it with Audio Decode (or "
            f"core's LTXVAudioVAEDecode), and give this node a video latent [batch, {channels}, frames, H, W]"
        )
    if latent.ndim != 5:
        raise InputError(
            f"{node}: samples has shape {list(latent.shape)}; a video latent is [batch, {channels}, frames, height, "
            "width] (an image latent from another model cannot be decoded by the LTX video VAE)"
        )
    if 0 in latent.shape:
        raise InputError(f"{node}: samples is empty (shape {list(latent.shape)}); nothing to decode")
    if latent.shape[1] != channels:
        raise InputError(
            f"{node}: samples has {latent.shape[1]} channels (shape {list(latent.shape)}); this video VAE decodes "
            f"latents with {channels}"
        )
    if not latent.is_floating_point():
        raise InputError(f"{node}: samples holds {latent.dtype} values; a latent holds floating-point numbers")
    return latent


def _kind(value: object) -> str:
    return "nothing (None)" if value is None else f"a {type(value).__name__}"


def check_images(images: object, node: str, name: str = "images") -> torch.Tensor:
    """An IMAGE batch ``[N, H, W, 3]`` of finite floats, or an :class:`InputError` naming ``name``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else _kind(images)
        raise InputError(f"{node}: {name} must be an IMAGE batch [frames, height, width, 3]; got {shape}")
    n, h, w, c = images.shape
    if n == 0 or h == 0 or w == 0:
        raise InputError(f"{node}: {name} is empty (shape {list(images.shape)}); connect at least one frame")
    if c != 3:
        hint = " (RGBA: drop the alpha channel first)" if c == 4 else ""
        raise InputError(f"{node}: {name} has {c} channels; the video VAE takes RGB images with 3{hint}")
    if not images.is_floating_point():
        raise InputError(f"{node}: {name} holds {images.dtype} values; an IMAGE holds floats in 0..1")
    checks.finite_tensor(images, f"{node}: {name}")
    return images


def _images_to_pixels(images: object, node: str) -> torch.Tensor:
    """IMAGE ``[N, H, W, 3]`` in 0..1 (frames) -> pixels ``[1, 3, N, H, W]`` in [-1, 1]."""
    images = check_images(images, node)
    # the pixels, a padded copy (fit) and the encoder's first feature maps are alive together
    checks.fits_memory(
        3 * checks.tensor_bytes(images.shape),
        host.available_memory(host.intermediate_device()),
        f"{node}: encoding {images.shape[0]} frames of {images.shape[2]}x{images.shape[1]}",
        advice="encode fewer frames or resize the images first",
    )
    return images.permute(3, 0, 1, 2).unsqueeze(0).float() * 2.0 - 1.0


def _tiling_tooltip(kind: str) -> str:
    return (
        f"auto: {kind} in one piece when it fits the free memory, else in tiles sized to fit. off: one piece. "
        "manual: the sizes below. In every mode an out-of-memory error is retried with smaller tiles."
    )


# -- nodes -----------------------------------------------------------------------------------------------------------


class LTXLoadVideoVAE:
    DISPLAY_NAME = "Load Video VAE"
    CATEGORY = "LTX-AV/loaders"
    DESCRIPTION = (
        "Loads the video VAE of LTX-2 / LTX-2.3 from an official checkpoint (models/checkpoints), or a file "
        "holding only the VAE with its config (models/vae), e.g. LTX-2.5's with the diffusion or the conv decoder. "
        "The decoder loads now, the encoder the first time something encodes. Every key is checked against the "
        "file's config."
    )
    RETURN_TYPES = ("LTX_VAE",)
    RETURN_NAMES = ("vae",)
    OUTPUT_TOOLTIPS = ("The video VAE for Video Encode / Decode and image conditioning.",)
    FUNCTION = "load"
    FILE_INPUTS = ("vae_name",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae_name": (
                    _source_choices(),
                    {
                        "tooltip": "An LTX-2 / LTX-2.3 checkpoint from models/checkpoints (its video VAE is "
                        "read) or a video VAE file from models/vae (LTX-2.5: ltx-2.5-video-vae-bf16.safetensors)."
                    },
                ),
                "dtype": (
                    list(VAE_DTYPES),
                    {
                        "default": "auto",
                        "tooltip": "auto: bf16 on NVIDIA GPUs that support it, else fp32. fp16 may overflow in this "
                        "VAE.",
                    },
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, vae_name):
        # Here so ComfyUI lets through the 'checkpoints/<file>' values workflows saved before the list showed plain
        # names; any name is resolved (or refused, naming the folders) when the node runs.
        return True

    @checked
    def load(self, vae_name: str, dtype: str = "auto"):
        path = find_model_file("LTXLoadVideoVAE", "vae_name", SOURCE_FOLDERS, vae_name)
        return (load_video(path, dtype=dtype),)


class LTXVAEEncode:
    DISPLAY_NAME = "Video Encode"
    CATEGORY = "LTX-AV/video"
    DESCRIPTION = (
        "Encodes IMAGE frames (the batch is the video, in order) to an LTX video latent [1, 128, frames', H/32, "
        "W/32]. The VAE needs 8k+1 frames and sides that are multiples of 32. fit=pad (default) repeats the last "
        "frame and the edge pixels (split evenly between the sides) up to the next valid size, and Video "
        "Decode crops them off again while the latent keeps that size; fit=crop drops trailing frames and trims "
        "the sides evenly (centred) to the valid size below; fit=error refuses and names the nearest valid sizes. "
        "Any change is logged."
    )
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("samples",)
    OUTPUT_TOOLTIPS = ("Video latent {'samples': [1, 128, frames', H/32, W/32], 'type': 'video', 'frame_rate'}.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LTX_VAE", {"tooltip": "From Load Video VAE."}),
                "images": ("IMAGE", {"tooltip": "The video's frames as an IMAGE batch (RGB, 0..1)."}),
                "fit": (
                    list(FIT_MODES),
                    {
                        "default": "pad",
                        "tooltip": "How frame counts other than 8k+1 and sides other than multiples "
                        "of 32 are handled; see the node description.",
                    },
                ),
                "frame_rate": (
                    "FLOAT",
                    {
                        "default": 24.0,
                        "min": 1.0,
                        "max": 240.0,
                        "step": 0.001,
                        "tooltip": "Frames per second of the video; stored in the latent for the sampler and audio.",
                    },
                ),
            },
            "optional": {
                "tiling": (list(TILING_MODES), {"default": "auto", "tooltip": _tiling_tooltip("encode")}),
                "temporal_chunk": (
                    "INT",
                    {
                        "default": 32,
                        "min": 0,
                        "max": 4096,
                        "step": 8,
                        "tooltip": "manual: frames encoded at a time "
                        "after the first (multiple of 8; exact, costs no quality). 0: all at once.",
                    },
                ),
                "spatial_tile": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 8192,
                        "step": 32,
                        "tooltip": "manual: tile size in pixels "
                        "(multiple of 32, at least 64), blended in latent space. 0: whole frames.",
                    },
                ),
                "spatial_overlap": (
                    "INT",
                    {
                        "default": 64,
                        "min": 64,
                        "max": 4096,
                        "step": 32,
                        "tooltip": "manual: overlap of spatial tiles in pixels (multiple of 32, at least 64).",
                    },
                ),
            },
        }

    @checked
    def encode(
        self,
        vae: LoadedVideoVAE,
        images: torch.Tensor,
        fit: str = "pad",
        frame_rate: float = 24.0,
        tiling: str = "auto",
        temporal_chunk: int = 32,
        spatial_tile: int = 0,
        spatial_overlap: int = 64,
    ):
        node = "LTXVAEEncode"
        pixels = _images_to_pixels(images, node)
        pixels, fitted = fit_video(pixels, fit, name=f"{node}: images")
        if fitted.changed:
            log.info("%s: %s", node, fitted.describe())
        setting: tiles.EncodeTiling | str | None
        if tiling == "manual":
            setting = _tiling(
                node,
                tiles.EncodeTiling,
                spatial_tile=spatial_tile or None,
                spatial_overlap=spatial_overlap,
                temporal_chunk=temporal_chunk or None,
            )
        else:
            setting = None if tiling == "off" else "auto"
        chunks = 1 + max(0, (pixels.shape[2] - 2) // max(temporal_chunk, 8))
        latent = vae.encode_pixels(pixels, setting, progress=host.Progress(chunks))
        out = {"samples": latent, "type": "video", "frame_rate": float(frame_rate)}
        if fitted.changed and fitted.mode == "pad":
            out[FIT_KEY] = fitted.as_dict()
        return (record_release(out, vae.releases, vae.checkpoint),)


class LTXVAEDecode:
    DISPLAY_NAME = "Video Decode"
    CATEGORY = "LTX-AV/video"
    DESCRIPTION = (
        "Decodes an LTX video latent [B, 128, F', H', W'] to IMAGE frames (8(F'-1)+1 per video, 32H' x 32W'; "
        "with a batch, the videos' frames follow each other). Long or large videos are decoded in tiles blended "
        "across their overlaps, streamed chunk by chunk so memory follows the tile size, not the video length. "
        "Padding added by Video Encode (fit=pad) is cropped off while the latent keeps its size. The input "
        "latent is never modified."
    )
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("Decoded frames [frames, height, width, 3] in 0..1.",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("LTX_VAE", {"tooltip": "From Load Video VAE."}),
                "samples": (
                    "LATENT",
                    {"tooltip": "A video latent (LTX-AV sampler, Video Encode, or core latent nodes in between)."},
                ),
            },
            "optional": {
                "tiling": (list(TILING_MODES), {"default": "auto", "tooltip": _tiling_tooltip("decode")}),
                "spatial_tile": (
                    "INT",
                    {
                        "default": 512,
                        "min": 0,
                        "max": 8192,
                        "step": 32,
                        "tooltip": "manual: tile size in pixels "
                        "along the longer side (multiple of 32, at least 64). 0: whole frames.",
                    },
                ),
                "spatial_overlap": (
                    "INT",
                    {
                        "default": 64,
                        "min": 0,
                        "max": 4096,
                        "step": 32,
                        "tooltip": "manual: overlap between "
                        "spatial tiles in pixels (multiple of 32, smaller than the tile).",
                    },
                ),
                "temporal_tile": (
                    "INT",
                    {
                        "default": 64,
                        "min": 0,
                        "max": 4096,
                        "step": 8,
                        "tooltip": "manual: frames per temporal "
                        "chunk (multiple of 8, at least 16). 0: all frames at once.",
                    },
                ),
                "temporal_overlap": (
                    "INT",
                    {
                        "default": 24,
                        "min": 0,
                        "max": 4096,
                        "step": 8,
                        "tooltip": "manual: frames shared by "
                        "consecutive chunks (multiple of 8, smaller than the chunk).",
                    },
                ),
                "decode_timestep": (
                    "FLOAT",
                    {
                        "default": DECODE_TIMESTEP,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.001,
                        "tooltip": "Only for VAEs "
                        "with a timestep-conditioned decoder (the file's config says so): how much denoising the "
                        "decoder does.",
                    },
                ),
                "decode_noise_scale": (
                    "FLOAT",
                    {
                        "default": DECODE_NOISE_SCALE,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.001,
                        "tooltip": "Only for "
                        "timestep-conditioned decoders: share of noise mixed into the latent before decoding.",
                    },
                ),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 2**63 - 1,
                        "tooltip": "Seed of the decoder's noise: timestep-conditioned decoders mix it into the "
                        "latent; LTX-2.5's diffusion decoder starts from it.",
                    },
                ),
            },
        }

    @checked
    def decode(
        self,
        vae: LoadedVideoVAE,
        samples: dict,
        tiling: str = "auto",
        spatial_tile: int = 512,
        spatial_overlap: int = 64,
        temporal_tile: int = 64,
        temporal_overlap: int = 24,
        decode_timestep: float = DECODE_TIMESTEP,
        decode_noise_scale: float = DECODE_NOISE_SCALE,
        seed: int = 0,
    ):
        node = "LTXVAEDecode"
        latent = _video_latent(samples, node, vae.latent_channels)
        check_release(samples, vae, node, "samples", "vae")
        setting: tiles.DecodeTiling | str | None
        if tiling == "manual":
            setting = _tiling(
                node,
                tiles.DecodeTiling,
                spatial_tile=spatial_tile or None,
                spatial_overlap=spatial_overlap,
                temporal_tile=temporal_tile or None,
                temporal_overlap=temporal_overlap,
            )
        else:
            setting = None if tiling == "off" else "auto"
        b, _, f, h, w = latent.shape
        frames, height, width = 1 + 8 * (f - 1), 32 * h, 32 * w
        # The IMAGE output is allocated whole (ComfyUI passes frames as one tensor): refuse what cannot be held.
        checks.fits_memory(
            checks.tensor_bytes((b, frames, height, width, 3)),
            host.available_memory(host.intermediate_device()),
            f"{node}: decoding {b * frames} frames of {width}x{height}",
            advice="decode a shorter or smaller latent (or its parts: core Latent nodes can slice it)",
        )
        checks.finite_tensor(latent, f"{node}: samples")  # after the size check: this reads every value
        # The frames are written straight into the IMAGE tensor, run by run.
        images = torch.empty((b, frames, height, width, 3), dtype=torch.float32, device=host.intermediate_device())
        same_memory = host.intermediate_device() == vae.device or vae.device.type == "cpu"
        progress = host.Progress(1)
        runs = vae.iter_decode(
            latent,
            tiling=setting,
            timestep=decode_timestep,
            noise_scale=decode_noise_scale,
            seed=seed,
            progress=progress,
            reserve_bytes=images.numel() * 4 if same_memory else 0,
        )
        for start, chunk in runs:
            n = chunk.shape[2]
            images[:, start : start + n] = chunk.add_(1.0).mul_(0.5).permute(0, 2, 3, 4, 1).to(images.device)
        fitted = VideoFit.from_dict(samples.get(FIT_KEY)) if isinstance(samples.get(FIT_KEY), dict) else None
        if fitted is not None:
            restored = fitted.restore(images.permute(0, 4, 1, 2, 3))
            if restored is None:
                log.info("%s: the latent no longer has the size it was padded to; keeping the full frames", node)
            else:
                log.info("%s: cropping the padding Video Encode added (%s)", node, fitted.describe())
                images = restored.permute(0, 2, 3, 4, 1)
        return (images.reshape(-1, *images.shape[2:]).contiguous(),)


def _tiling(node: str, kind: type, **sizes):
    """A manual tiling, its errors prefixed with the node (they name the widget already)."""
    try:
        return kind(**sizes)
    except InputError as e:
        raise InputError(f"{node}: {e}") from None


register_socket("LTX_VAE", LoadedVideoVAE, "the video VAE from Load Video VAE")

NODES: tuple[type, ...] = (LTXLoadVideoVAE, LTXVAEEncode, LTXVAEDecode)


__all__ = ["NODES", "LTXVAEDecode", "LTXVAEEncode", "LTXLoadVideoVAE", "LoadedVideoVAE", "load_video"]
