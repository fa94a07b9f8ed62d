"""The causal video VAE of LTX-2 / 2.3 / 2.5: ``[B,3,F,H,W]`` pixels in [-1, 1] <-> ``[B,128,F',H',W']`` latents.

8 frames and 32x32 pixels become one latent cell; the first frame is encoded on its own, so ``F = 8(F'-1) + 1``.
The encoder patchifies 4x4 pixels into channels, then runs residual stages and space-to-depth downsamplers; the
decoder mirrors it with depth-to-space upsamplers and, in checkpoints that have it, a timestep-conditioned
("denoising") decoder that mixes a little noise into the latent before decoding. Latents are normalised per
channel with statistics stored in the checkpoint. The architecture comes from :class:`VideoVAEConfig`. LTX-2.5
keeps this encoder and convolutional decoder and adds a diffusion decoder (``diffusion_decoder``), which takes the
decoder's place when the VAE is built with its config (its files: ``video_vae_file``).

Root module keys: ``encoder.*``, ``decoder.*``, ``per_channel_statistics.{mean-of-means,std-of-means}``; either
half can be left out (:func:`load_video_vae`), since many workflows only decode.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .checkpoint import Checkpoint, build_component, open_checkpoint
from .config import VideoVAEConfig
from .diffusion_decoder import DiffusionDecoder, DiffusionDecoderConfig
from .errors import ConfigError, InputError
from .latents import SPACE_COMPRESSION, TIME_COMPRESSION, nearest_frame_counts, nearest_sizes
from .layers import TimestepEmbedder
from .video_vae_blocks import (
    CausalCache,
    DepthToSpaceUp,
    FramePaddedConv3d,
    PixelNorm,
    ResBlock,
    ResStage,
    SpaceToDepthDown,
    make_norm,
)

log = logging.getLogger("ltx_av.video_vae")

# What the official decoder uses when the caller gives no timestep / noise scale.
DECODE_TIMESTEP = 0.05
DECODE_NOISE_SCALE = 0.025

PARTS = ("encoder", "decoder")

_STRIDES = {"time": (2, 1, 1), "space": (1, 2, 2), "all": (2, 2, 2)}


# -- patchify ----------------------------------------------------------------------------------------------------


def patchify_frames(video: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B,C,F,H,W]`` -> frame-major ``[B,F,C*p*p,H/p,W/p]``, channel index ``c*p*p + (x mod p)*p + (y mod p)``."""
    b, c, f, h, w = video.shape
    v = video.view(b, c, f, h // patch, patch, w // patch, patch)  # b c f h q w r
    return v.permute(0, 2, 1, 6, 4, 3, 5).reshape(b, f, c * patch * patch, h // patch, w // patch)


def unpatchify_frames(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify_frames`: frame-major ``[B,F,C*p*p,h,w]`` -> ``[B,C,F,h*p,w*p]``."""
    b, f, cpp, h, w = x.shape
    c = cpp // (patch * patch)
    v = x.view(b, f, c, patch, patch, h, w)  # b f c r q h w
    return v.permute(0, 2, 1, 5, 4, 6, 3).reshape(b, c, f, h * patch, w * patch)


# -- config -> blocks --------------------------------------------------------------------------------------------


def _params(name: str, params: dict[str, Any], where: str) -> tuple[int, int, bool]:
    """(num_layers, multiplier, residual) of one block entry, refusing options we do not implement."""
    if params.get("inject_noise"):
        raise ConfigError(
            f"config key 'vae.{where}' block {name!r} asks for noise injection ('inject_noise'), which no released "
            "LTX-2 VAE uses and LTX-AV does not implement"
        )
    layers = params.get("num_layers", 1)
    multiplier = params.get("multiplier", None)
    return int(layers), multiplier, bool(params.get("residual", False))


def _encoder_block(name: str, params: dict[str, Any], channels: int, cfg: VideoVAEConfig) -> tuple[nn.Module, int]:
    layers, multiplier, _ = _params(name, params, "encoder_blocks")
    pad = cfg.encoder_spatial_padding_mode
    if name == "res_x":
        return ResStage(channels, layers, cfg.norm_layer, pad), channels
    if name == "res_x_y":
        out = channels * (multiplier or 2)
        return ResBlock(channels, out, cfg.norm_layer, pad), out
    if name in ("compress_time", "compress_space", "compress_all"):
        return FramePaddedConv3d(channels, channels, _STRIDES[name.split("_")[1]], pad), channels
    if name == "compress_all_x_y":
        out = channels * (multiplier or 2)
        return FramePaddedConv3d(channels, out, _STRIDES["all"], pad), out
    if name in ("compress_time_res", "compress_space_res", "compress_all_res"):
        out = channels * (multiplier or 2)
        return SpaceToDepthDown(channels, out, _STRIDES[name.split("_")[1]], pad), out
    raise ConfigError(
        f"config key 'vae.encoder_blocks' has unknown block {name!r}; known: res_x, res_x_y, compress_time, "
        "compress_space, compress_all, compress_all_x_y, compress_time_res, compress_space_res, compress_all_res"
    )


def _decoder_block(name: str, params: dict[str, Any], channels: int, cfg: VideoVAEConfig) -> tuple[nn.Module, int]:
    layers, multiplier, residual = _params(name, params, "decoder_blocks")
    pad = cfg.decoder_spatial_padding_mode
    if name == "res_x":
        return ResStage(channels, layers, cfg.norm_layer, pad, cfg.timestep_conditioning), channels
    if name == "res_x_y":
        out = channels // (multiplier or 2)
        return ResBlock(channels, out, cfg.norm_layer, pad), out
    if name in ("compress_time", "compress_space", "compress_all"):
        reduction = multiplier or 1
        # Only the all-axes upsampler reads 'residual' in the official implementation.
        block = DepthToSpaceUp(
            channels, _STRIDES[name.split("_")[1]], reduction, residual and name == "compress_all", pad
        )
        return block, block.out_channels
    raise ConfigError(
        f"config key 'vae.decoder_blocks' has unknown block {name!r}; known: res_x, res_x_y, compress_time, "
        "compress_space, compress_all"
    )


def decoder_bottleneck_channels(cfg: VideoVAEConfig) -> int:
    """Width of the decoder's first stage: its base width times every channel reduction that follows (the
    upsamplers' multipliers, default 1, and ``res_x_y``'s, default 2). 8x for every released LTX-2 / LTX-2.3 /
    LTX-2.5 VAE; ltx-core 1.0.0 always took 8x, 1.2.0 reads the multipliers."""
    factor = 1
    for name, params in cfg.decoder_blocks:
        if name in ("compress_time", "compress_space", "compress_all"):
            factor *= params.get("multiplier") or 1
        elif name == "res_x_y":
            factor *= params.get("multiplier") or 2
    return cfg.decoder_base_channels * factor


def _latent_outputs(cfg: VideoVAEConfig) -> int:
    if cfg.latent_log_var == "per_channel":
        return 2 * cfg.latent_channels
    if cfg.latent_log_var in ("uniform", "constant"):
        return cfg.latent_channels + 1
    return cfg.latent_channels


# -- the two halves ------------------------------------------------------------------------------------------------


class VideoEncoder(nn.Module):
    """Pixels ``[B,3,F,H,W]`` in [-1, 1] -> un-normalised latent means ``[B,128,F',H',W']``."""

    def __init__(self, config: VideoVAEConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.latent_channels = config.latent_channels
        channels = config.latent_channels  # the encoder's first width equals the latent width
        pad = config.encoder_spatial_padding_mode
        self.conv_in = FramePaddedConv3d(config.in_channels * config.patch_size**2, channels, spatial_padding_mode=pad)
        blocks = []
        for name, params in config.encoder_blocks:
            block, channels = _encoder_block(name, params, channels, config)
            blocks.append(block)
        self.down_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = make_norm(config.norm_layer, channels)
        self.conv_out = FramePaddedConv3d(channels, _latent_outputs(config), spatial_padding_mode=pad)
        # Chunked encoding carries each causal conv's last frames across chunks; that is exact only when every
        # operation is causal in time and no normalisation pools statistics over frames.
        self.can_stream = config.norm_layer == "pixel_norm" and all(
            name in ("res_x", "compress_time_res", "compress_space_res", "compress_all_res")
            for name, _ in config.encoder_blocks
        )
        self.time_strides = sum(1 for b in blocks if isinstance(b, SpaceToDepthDown) and b.stride[0] == 2)

    def forward(self, video: torch.Tensor, cache: CausalCache | None = None) -> torch.Tensor:
        """``cache``: pass the same dict for consecutive chunks of one video (chunks after the first hold a
        multiple of 8 frames) to encode it piece by piece exactly as in one call."""
        x = patchify_frames(video, self.patch_size)
        x = self.conv_in(x, True, cache)
        for block in self.down_blocks:
            if isinstance(block, (ResStage, SpaceToDepthDown)):
                x = block(x, causal=True, cache=cache)
            elif isinstance(block, ResBlock):
                x = block(x, True, None, cache)
            else:
                x = block(x, True, cache)
        x = self.conv_norm_out(x, inplace=True)
        x = nn.functional.silu(x, inplace=not (torch.is_grad_enabled() and x.requires_grad))  # training reads x
        x = self.conv_out(x, True, cache)
        means = x[:, :, : self.latent_channels]
        return means.transpose(1, 2).contiguous()


class VideoDecoder(nn.Module):
    """Un-normalised latents ``[B,128,F',H',W']`` -> pixels ``[B,3,8(F'-1)+1,32H',32W']`` (not clamped)."""

    def __init__(self, config: VideoVAEConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.causal = config.causal_decoder
        self.timestep_conditioning = config.timestep_conditioning
        pad = config.decoder_spatial_padding_mode
        channels = decoder_bottleneck_channels(config)
        self.conv_in = FramePaddedConv3d(config.latent_channels, channels, spatial_padding_mode=pad)
        blocks = []
        for name, params in reversed(config.decoder_blocks):
            block, channels = _decoder_block(name, params, channels, config)
            blocks.append(block)
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = make_norm(config.norm_layer, channels)
        self.conv_out = FramePaddedConv3d(
            channels, config.out_channels * config.patch_size**2, spatial_padding_mode=pad
        )
        if config.timestep_conditioning:
            self.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            self.last_time_embedder = TimestepEmbedder(2 * channels)
            self.last_scale_shift_table = nn.Parameter(torch.zeros(2, channels))

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor | None = None) -> torch.Tensor:
        """``timestep [B]`` in 0..1 (required by a timestep-conditioned decoder, ignored otherwise)."""
        x = latent.transpose(1, 2).contiguous()
        causal = self.causal
        scaled = None
        if self.timestep_conditioning:
            if timestep is None:
                raise ValueError("this decoder is timestep-conditioned: pass a timestep")
            scaled = timestep.to(x.dtype) * self.timestep_scale_multiplier.to(x.dtype)
        x = self.conv_in(x, causal)
        for block in self.up_blocks:
            if isinstance(block, ResStage):
                x = block(x, causal, scaled)
            elif isinstance(block, ResBlock):
                x = block(x, causal)
            else:
                x = block(x, causal)
        x = self.conv_norm_out(x, inplace=True)
        if scaled is not None:
            b = x.shape[0]
            embedding = self.last_time_embedder(scaled.flatten(), x.dtype).view(b, 2, -1)
            shift, scale = (self.last_scale_shift_table.to(x.dtype)[None] + embedding).unbind(1)
            x.mul_(1 + scale.view(b, 1, -1, 1, 1)).add_(shift.view(b, 1, -1, 1, 1))
        x = nn.functional.silu(x, inplace=not (torch.is_grad_enabled() and x.requires_grad))  # training reads x
        x = self.conv_out(x, causal)
        return unpatchify_frames(x, self.patch_size)


class LatentStatistics(nn.Module):
    """Per-channel mean and std of the latent means over the training data (``per_channel_statistics``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean-of-means", torch.zeros(channels))
        self.register_buffer("std-of-means", torch.ones(channels))

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (like.ndim - 2)
        mean = self.get_buffer("mean-of-means").to(like).view(shape)
        std = self.get_buffer("std-of-means").to(like).view(shape)
        return mean, std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw latent means -> the normalised latent the transformer works on (channel dim 1)."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return x * std + mean


# -- the VAE -------------------------------------------------------------------------------------------------------


NoiseSource = torch.Tensor | torch.Generator | None


class VideoVAE(nn.Module):
    """Encoder and/or decoder with the shared latent statistics; built from a :class:`VideoVAEConfig`.

    ``diffusion``: the decoder is LTX-2.5's diffusion decoder with this config (``config`` then describes the
    encoder and the latent); see :meth:`decode`.
    """

    def __init__(
        self,
        config: VideoVAEConfig,
        parts: tuple[str, ...] = PARTS,
        diffusion: DiffusionDecoderConfig | None = None,
    ):
        super().__init__()
        unknown = [p for p in parts if p not in PARTS]
        if unknown or not parts:
            raise ValueError(f"parts must be a non-empty subset of {PARTS}; got {parts}")
        if diffusion is not None and diffusion.latent_channels != config.latent_channels:
            raise ConfigError(
                f"the diffusion decoder reads {diffusion.latent_channels} latent channels but the encoder makes "
                f"{config.latent_channels}"
            )
        self.config = config
        self.diffusion_config = diffusion
        self.encoder = VideoEncoder(config) if "encoder" in parts else None
        if "decoder" not in parts:
            self.decoder = None
        else:
            self.decoder = DiffusionDecoder(diffusion) if diffusion is not None else VideoDecoder(config)
        self.per_channel_statistics = LatentStatistics(config.latent_channels)

    @property
    def is_diffusion(self) -> bool:
        """Whether the decoder is LTX-2.5's diffusion decoder (``decode`` then takes a generator, no timestep)."""
        return self.diffusion_config is not None

    @property
    def decoder_config(self) -> VideoVAEConfig | DiffusionDecoderConfig:
        """The config that sizes the decoder (what the tiling estimates read)."""
        return self.diffusion_config if self.diffusion_config is not None else self.config

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p for p in PARTS if getattr(self, p) is not None)

    def _require(self, part: str) -> nn.Module:
        module = getattr(self, part)
        if module is None:
            raise InputError(f"this video VAE was loaded without its {part}; load it with parts including {part!r}")
        return module

    @property
    def device(self) -> torch.device:
        return self.per_channel_statistics.get_buffer("mean-of-means").device

    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.parameters()).dtype

    # -- encoding ----------------------------------------------------------------------------------------------

    def check_video(self, video: torch.Tensor, name: str = "video") -> None:
        """Raise :class:`InputError` unless ``video`` is ``[B,3,8k+1,32m,32n]``."""
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise InputError(
                f"{name} must be [batch, {self.config.in_channels}, frames, height, width]; got {list(video.shape)}"
            )
        b, _, f, h, w = video.shape
        if b == 0 or f == 0:
            raise InputError(f"{name} is empty: shape {list(video.shape)}")
        if (f - 1) % TIME_COMPRESSION:
            lo, hi = nearest_frame_counts(f)
            raise InputError(f"{name} has {f} frames; the video VAE needs 8k+1 frames (nearest valid: {lo} or {hi})")
        for axis, size in (("height", h), ("width", w)):
            if size % SPACE_COMPRESSION or size == 0:
                lo, hi = nearest_sizes(size)
                raise InputError(f"{name} {axis} is {size}; it must be a multiple of 32 (nearest valid: {lo} or {hi})")

    def encode(self, video: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """``[B,3,8k+1,H,W]`` in [-1, 1] -> normalised latent ``[B,128,k+1,H/32,W/32]`` (model dtype and device).

        ``chunk_frames`` (a multiple of 8): encode that many frames at a time, carrying the causal state across
        chunks; the result equals a single call while memory is bounded by the chunk. Ignored for encoders whose
        normalisation spans frames (none released).
        """
        encoder = self._require("encoder")
        self.check_video(video)
        video = video.to(device=self.device, dtype=self.dtype)
        frames = video.shape[2]
        if chunk_frames is None or frames <= chunk_frames + 1 or not encoder.can_stream:
            return self.per_channel_statistics.normalize(encoder(video))
        return self.per_channel_statistics.normalize(torch.cat(list(self.encode_chunks(video, chunk_frames)), dim=2))

    def encode_chunks(self, video: torch.Tensor, chunk_frames: int) -> Iterator[torch.Tensor]:
        """Un-normalised latent means of ``video`` chunk by chunk (first chunk ``1 + chunk_frames`` frames)."""
        encoder = self._require("encoder")
        step = 2**encoder.time_strides
        if chunk_frames < step or chunk_frames % step:
            raise InputError(f"chunk_frames must be a positive multiple of {step}; got {chunk_frames}")
        cache: CausalCache = {}
        start, frames = 0, video.shape[2]
        while start < frames:
            stop = min(frames, start + chunk_frames + (1 if start == 0 else 0))
            yield encoder(video[:, :, start:stop].to(device=self.device, dtype=self.dtype), cache)
            start = stop

    # -- decoding ----------------------------------------------------------------------------------------------

    def check_latent(self, latent: torch.Tensor, name: str = "latent") -> None:
        channels = self.config.latent_channels
        if latent.ndim != 5 or latent.shape[1] != channels:
            raise InputError(f"{name} must be [batch, {channels}, frames, height, width]; got {list(latent.shape)}")
        if latent.numel() == 0:
            raise InputError(f"{name} is empty: shape {list(latent.shape)}")

    def prepare_latent(
        self,
        latent: torch.Tensor,
        timestep: float | torch.Tensor | None = None,
        noise: NoiseSource = None,
        noise_scale: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The decoder input (noise mixed in, statistics undone) and timestep ``[B]``, in model dtype/device.

        Only a timestep-conditioned decoder uses ``timestep`` (default 0.05) and mixes in noise:
        ``z = (1 - s) z + s n`` with ``s = noise_scale`` (default 0.025) and ``n`` the given tensor (latent shape)
        or drawn from the given generator (or the global one) with ``torch.randn(latent.shape)``.
        """
        self.check_latent(latent)
        decoder = self._require("decoder")
        z = latent.to(device=self.device, dtype=self.dtype)
        if not decoder.timestep_conditioning:
            return self.per_channel_statistics.denormalize(z), None
        scale = DECODE_NOISE_SCALE if noise_scale is None else float(noise_scale)
        if scale:
            if isinstance(noise, torch.Tensor):
                if noise.shape != latent.shape:
                    raise InputError(
                        f"noise must have the latent's shape {list(latent.shape)}; got {list(noise.shape)}"
                    )
                n = noise.to(device=z.device, dtype=z.dtype)
            else:  # drawn where the generator lives (a CPU generator gives the same noise on any device)
                where = noise.device if noise is not None else z.device
                n = torch.randn(z.shape, generator=noise, dtype=z.dtype, device=where).to(z.device)
            z = n * scale + (1.0 - scale) * z
        b = z.shape[0]
        if timestep is None:
            timestep = DECODE_TIMESTEP
        t = torch.as_tensor(timestep, dtype=z.dtype, device=z.device).flatten()
        t = t.expand(b) if t.numel() == 1 else t
        if t.shape != (b,):
            raise InputError(f"timestep must be a number or one value per sample ({b}); got shape {list(t.shape)}")
        return self.per_channel_statistics.denormalize(z), t

    def decode(
        self,
        latent: torch.Tensor,
        timestep: float | torch.Tensor | None = None,
        noise: NoiseSource = None,
        noise_scale: float | None = None,
    ) -> torch.Tensor:
        """Normalised latent ``[B,128,F',H',W']`` -> pixels ``[B,3,8(F'-1)+1,32H',32W']`` (about [-1, 1], not clamped),
        in one piece. See :meth:`prepare_latent` for the timestep and noise; tiled decoding is in ``tiling``.

        With a diffusion decoder, ``noise`` is the generator its noise is drawn from (or ``None``: the global one)
        and the result is float32; it runs the official decode (``diffusion_tiling``) as one tile."""
        if self.is_diffusion:
            from .tiling import decode  # it imports this module

            return decode(
                self, latent, None, timestep=timestep, noise=noise, noise_scale=noise_scale, retry_on_oom=False
            )
        z, t = self.prepare_latent(latent, timestep, noise, noise_scale)
        return self._require("decoder")(z, t)

    def diffusion_input(
        self, latent: torch.Tensor, timestep: object = None, noise_scale: object = None
    ) -> torch.Tensor:
        """The diffusion decoder's input (statistics undone, model dtype and device). It starts from its own noise
        at t = 1 and has no decode timestep or noise mix: those options are refused."""
        self.check_latent(latent)
        if timestep is not None or noise_scale is not None:
            raise InputError(
                "the LTX-2.5 diffusion decoder has no decode timestep or noise scale; leave them unset (its noise "
                "comes from the generator)"
            )
        return self.per_channel_statistics.denormalize(latent.to(device=self.device, dtype=self.dtype))


# -- fitting arbitrary videos to the VAE's grid -----------------------------------------------------------------

FIT_MODES = ("pad", "crop", "error")


@dataclass(frozen=True)
class VideoFit:
    """How a video was fitted to 8k+1 frames and sides that are multiples of 32, so the decode can undo it.

    ``pad`` repeats the last frame and the edge pixels (half on each side, the odd pixel at the bottom/right);
    ``crop`` drops trailing frames and trims the sides evenly (centred). ``top``/``left`` locate the original
    frame inside the fitted one (pad) or the fitted frame inside the original (crop).
    """

    mode: str
    frames: int
    height: int
    width: int
    fitted_frames: int
    fitted_height: int
    fitted_width: int
    top: int = 0
    left: int = 0

    @property
    def changed(self) -> bool:
        return (self.frames, self.height, self.width) != (self.fitted_frames, self.fitted_height, self.fitted_width)

    def describe(self) -> str:
        verb = "padded" if self.mode == "pad" else "cropped"
        return (
            f"{verb} {self.frames} frames of {self.width}x{self.height} to {self.fitted_frames} frames of "
            f"{self.fitted_width}x{self.fitted_height} (the video VAE needs 8k+1 frames and sides that are "
            "multiples of 32)"
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, values: Any) -> VideoFit | None:
        """The record a LATENT carries, or ``None`` when it is not a complete, consistent one (edited by hand or
        by another tool): then nothing is cropped, and the caller says so."""
        if not isinstance(values, dict) or set(values) != set(cls.__dataclass_fields__):
            return None
        numbers = [values[k] for k in cls.__dataclass_fields__ if k != "mode"]
        if values["mode"] not in FIT_MODES or not all(type(v) is int and 0 <= v < 2**31 for v in numbers):
            return None
        fit = cls(**values)
        inner, outer = (fit.height, fit.width), (fit.fitted_height, fit.fitted_width)
        if fit.mode == "crop":
            inner, outer = outer, inner
        if not (inner[0] + fit.top <= outer[0] and inner[1] + fit.left <= outer[1]):
            return None
        return fit

    def restore(self, video: torch.Tensor) -> torch.Tensor | None:
        """Undo a ``pad`` on decoded frames ``[..., F, H, W]`` (channel-first) when they still have the fitted
        size; ``None`` when they do not (the latent was resized or cut since)."""
        if self.mode != "pad" or tuple(video.shape[-3:]) != (self.fitted_frames, self.fitted_height, self.fitted_width):
            return None
        return video[..., : self.frames, self.top : self.top + self.height, self.left : self.left + self.width]


def fit_video(video: torch.Tensor, mode: str = "pad", name: str = "video") -> tuple[torch.Tensor, VideoFit]:
    """``[B,C,F,H,W]`` -> the same video with 8k+1 frames and sides that are multiples of 32, per ``mode``
    (:class:`VideoFit` documents the rule; ``error`` raises :class:`InputError` naming the nearest valid sizes)."""
    if mode not in FIT_MODES:
        raise InputError(f"fit mode is {mode!r}; expected one of {', '.join(FIT_MODES)}")
    if video.ndim != 5 or 0 in video.shape:
        raise InputError(
            f"{name} must be a non-empty [batch, channels, frames, height, width]; got {list(video.shape)}"
        )
    _, _, f, h, w = video.shape
    lo_f, hi_f = nearest_frame_counts(f)
    (lo_h, hi_h), (lo_w, hi_w) = nearest_sizes(h), nearest_sizes(w)
    if mode == "error" and (lo_f != f or lo_h != h or lo_w != w or h < SPACE_COMPRESSION or w < SPACE_COMPRESSION):
        nearest = [
            f"{label} {lo} or {hi}"
            for label, value, lo, hi in (("frames", f, lo_f, hi_f), ("width", w, lo_w, hi_w), ("height", h, lo_h, hi_h))
            if (lo, hi) != (value, value)
        ]
        raise InputError(
            f"{name} is {f} frames of {w}x{h}; the video VAE needs 8k+1 frames and sides that are multiples of 32 "
            f"(nearest valid: {', '.join(nearest)}); choose fit=pad or fit=crop to adjust automatically"
        )
    if mode == "crop":
        if h < SPACE_COMPRESSION or w < SPACE_COMPRESSION:
            raise InputError(f"{name} is {w}x{h}: too small to crop to a multiple of 32; use fit=pad")
        top, left = (h - lo_h) // 2, (w - lo_w) // 2
        fit = VideoFit(mode, f, h, w, lo_f, lo_h, lo_w, top, left)
        return video[:, :, :lo_f, top : top + lo_h, left : left + lo_w], fit
    fh = max(SPACE_COMPRESSION, -(-h // SPACE_COMPRESSION) * SPACE_COMPRESSION)
    fw = max(SPACE_COMPRESSION, -(-w // SPACE_COMPRESSION) * SPACE_COMPRESSION)
    top, left = (fh - h) // 2, (fw - w) // 2
    fit = VideoFit(mode, f, h, w, hi_f, fh, fw, top, left)
    if not fit.changed:
        return video, fit
    pad = (left, fw - w - left, top, fh - h - top, 0, hi_f - f)
    return torch.nn.functional.pad(video, pad, mode="replicate"), fit


def load_video_vae(
    checkpoint: Checkpoint | str | os.PathLike,
    parts: tuple[str, ...] = PARTS,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VideoVAE:
    """Build the video VAE (or only ``parts`` of it) from an official checkpoint, strictly."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint)
    only = tuple(f"{p}." for p in parts) + ("per_channel_statistics.",)
    return build_component(
        ckpt,
        "video_vae",
        lambda config: VideoVAE(config, parts),
        dtype=dtype,
        device=device,
        only=only,
        progress=progress,
    )


__all__ = [
    "DECODE_NOISE_SCALE",
    "DECODE_TIMESTEP",
    "FIT_MODES",
    "LatentStatistics",
    "PixelNorm",
    "VideoDecoder",
    "VideoEncoder",
    "VideoFit",
    "VideoVAE",
    "decoder_bottleneck_channels",
    "fit_video",
    "load_video_vae",
    "patchify_frames",
    "unpatchify_frames",
]
