"""Reading a standalone LTX-2.5 video VAE file into :class:`~.video_vae.VideoVAE`.

LTX-2.5 ships its video VAE as a file of its own, with either decoder: ``vae/ltx-2.5-video-vae-bf16`` (the diffusion
decoder, ``vae._class_name = "CausalDiffusionVAE"``) or ``vae/ltx-2.5-video-vae-conv-bf16`` (the convolutional one,
``"CausalVideoAutoencoder"``). Keys are bare (``encoder.*``, ``decoder.*``, ``per_channel_statistics.*``; a ``vae.``
prefix is accepted too), the architecture is JSON in the ``config`` metadata entry under ``vae``:

- diffusion: ``{"_class_name", "model_output_type", "encoder": {"blocks", "out_channels", "patch_size",
  "latent_log_var", "norm_layer", "spatial_padding_mode", ...}, "decoder": {"stage_channels", "stage_depths",
  "stage_kernels", "upsamples", "stage5_kernel", "head_dim", "timestep_scale_multiplier",
  "default_num_inference_steps", ...}}`` (:class:`~.diffusion_decoder.DiffusionDecoderConfig`);
- convolutional: the flat LTX-2 / LTX-2.3 layout (``encoder_blocks``, ``decoder_blocks``, ...), the encoder possibly
  nested as above.

The 2.5 encoder is the 2.3 encoder's architecture with other block settings (a last ``compress_all_res`` that keeps
its width, a constant log-variance channel) and needs nothing new. As in ltx-core 1.2.0, a coarse preview head
some diffusion files carry (``decoder.coarse_*``) is never read; static gates on the diffusion blocks are loaded
when the file has them. Loading is strict otherwise: missing, unexpected or wrong-shape tensors are an error.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch

from .checkpoint import SafetensorsFile, check_keys, load_strict
from .config import VideoVAEConfig
from .diffusion_decoder import DiffusionDecoderConfig
from .errors import CheckpointError, ConfigError, InputError
from .video_vae import PARTS, VideoVAE

log = logging.getLogger("ltx_av.video_vae_file")

DIFFUSION_CLASS = "CausalDiffusionVAE"
CONV_CLASS = "CausalVideoAutoencoder"
VARIANT = "LTX-2.5"
_IGNORED = ("decoder.coarse_",)  # the diffusion file's preview head, unused by the official decode


def video_vae_configs(
    vae: Mapping[str, Any], static_gates: bool = False
) -> tuple[VideoVAEConfig, DiffusionDecoderConfig | None]:
    """The configs of a 2.5 ``vae`` section: the encoder / convolutional VAE, and the diffusion decoder's when the
    class is ``CausalDiffusionVAE``."""
    if not isinstance(vae, Mapping):
        raise ConfigError(f"config section 'vae' should be a JSON object, found {type(vae).__name__}")
    kind = vae.get("_class_name", CONV_CLASS)
    if kind not in (CONV_CLASS, DIFFUSION_CLASS):
        raise ConfigError(f"config key 'vae._class_name' is {kind!r}; expected {CONV_CLASS!r} or {DIFFUSION_CLASS!r}")
    values = _flat_encoder(vae)
    if kind == DIFFUSION_CLASS:
        diffusion = DiffusionDecoderConfig.from_vae_config(vae, static_gates)
        # No convolutional decoder: its block list stays empty (a placeholder passes VideoVAEConfig's own check).
        values.setdefault("out_channels", diffusion.out_channels)
        config = VideoVAEConfig.from_dict({**values, "decoder_blocks": [["res_x", 1]]})
        return replace(config, decoder_blocks=()), diffusion
    return VideoVAEConfig.from_dict(values), None


def _flat_encoder(vae: Mapping[str, Any]) -> dict[str, Any]:
    """The section with a nested ``encoder`` (``blocks``, ``out_channels``) moved to the flat LTX-2 keys."""
    values = {k: v for k, v in vae.items() if k not in ("encoder", "decoder")}
    encoder = vae.get("encoder")
    if encoder is None:
        return values
    if not isinstance(encoder, Mapping):
        raise ConfigError(f"config key 'vae.encoder' should be a JSON object, found {type(encoder).__name__}")
    renames = {"blocks": "encoder_blocks", "out_channels": "latent_channels", "encoder_blocks": "encoder_blocks"}
    for key in ("dims", "in_channels", "patch_size", "norm_layer", "latent_log_var"):
        if key in encoder:
            if key in values and values[key] != encoder[key]:
                raise ConfigError(
                    f"config keys 'vae.{key}' ({values[key]!r}) and 'vae.encoder.{key}' ({encoder[key]!r}) disagree"
                )
            values[key] = encoder[key]
    for key, flat in renames.items():
        if key in encoder:
            values[flat] = encoder[key]
    if "spatial_padding_mode" in encoder:
        # The encoder's padding; the diffusion decoder has none and a flat conv decoder keeps the flat key.
        values.setdefault("spatial_padding_mode", encoder["spatial_padding_mode"])
    return values


def _read_vae_section(file: SafetensorsFile) -> Mapping[str, Any]:
    text = file.metadata.get("config")
    if text is None:
        raise CheckpointError(
            f"'{file.name}' has no architecture config: its safetensors metadata lacks the 'config' entry that the "
            "official LTX-2.5 video VAE files carry"
        )
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"'{file.name}': metadata 'config' is not valid JSON") from e
    vae = config.get("vae") if isinstance(config, dict) else None
    if not isinstance(vae, Mapping) or not vae:
        raise CheckpointError(f"'{file.name}' has no 'vae' section in its metadata config; it is not a video VAE file")
    return vae


def _module_keys(file: SafetensorsFile) -> dict[str, str]:
    """module key -> file key, with an optional ``vae.`` prefix split off and the ignored tensors left out."""
    prefixed = any(k.startswith("vae.") for k in file.tensors)
    out = {}
    for key in file.tensors:
        name = key[4:] if prefixed and key.startswith("vae.") else key
        if not name.startswith(_IGNORED):
            out[name] = key
    return out


def _numbered(keys: Mapping[str, str], pattern: str) -> int:
    found = [int(m.group(1)) for k in keys if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def _check_counts(file: SafetensorsFile, keys: Mapping[str, str], config: VideoVAEConfig, diffusion: Any) -> None:
    """Refuse a config whose repeated modules differ from the file's, before building anything from it."""
    checks = [(r"encoder\.down_blocks\.(\d+)\.", "vae.encoder blocks", len(config.encoder_blocks), "encoder.")]
    if diffusion is not None:
        checks.append(
            (r"decoder\.diff_blocks\.(\d+)\.", "vae.decoder.stage_depths[4]", diffusion.stage_depths[4], "decoder.")
        )
        for i in range(4):
            pattern = rf"decoder\.det_stages\.{i}\.(\d+)\."
            checks.append((pattern, f"vae.decoder.stage_depths[{i}]", diffusion.stage_depths[i], "decoder."))
    else:
        checks.append((r"decoder\.up_blocks\.(\d+)\.", "vae.decoder_blocks", len(config.decoder_blocks), "decoder."))
    for pattern, key, expected, part in checks:
        if not any(k.startswith(part) for k in keys):
            continue
        found = _numbered(keys, pattern)
        if found != expected:
            raise CheckpointError(
                f"'{file.name}': config key '{key}' says {expected} but the file holds {found}; the config does not "
                "describe this file's tensors (a damaged or hand-edited config?)"
            )


def load_video_vae_file(
    path: str | os.PathLike,
    parts: tuple[str, ...] = PARTS,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VideoVAE:
    """Build the VAE of an LTX-2.5 video VAE file (or only ``parts`` of it), strictly."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"a video VAE file must be given as a path; got a {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"video VAE file '{path}' does not exist")
    file = SafetensorsFile(path)
    keys = _module_keys(file)
    if not any(k.startswith(("encoder.", "decoder.")) for k in keys):
        raise CheckpointError(f"'{file.name}' holds no video VAE tensors (no 'encoder.*' or 'decoder.*' keys)")
    vae = _read_vae_section(file)
    gates = "decoder.diff_blocks.0.gate_msa" in keys
    try:
        config, diffusion = video_vae_configs(vae, gates)
    except ConfigError as e:
        raise CheckpointError(f"'{file.name}' ({VARIANT}): {e}") from e
    only = tuple(f"{p}." for p in parts) + ("per_channel_statistics.",)
    selected = {k: f for k, f in keys.items() if k.startswith(only)}
    _check_counts(file, selected, config, diffusion)
    try:
        with torch.device("meta"):
            module = VideoVAE(config, parts, diffusion)
    except ConfigError as e:
        raise CheckpointError(f"'{file.name}' ({VARIANT}): {e}") from e
    except (RuntimeError, ValueError, OverflowError, MemoryError) as e:
        raise CheckpointError(
            f"'{file.name}' ({VARIANT}): cannot build the video VAE its config describes ({type(e).__name__}: {e})"
        ) from e
    shapes = {k: file.tensors[f].shape for k, f in selected.items()}
    check_keys(module, shapes, component="video_vae", source=path, variant=VARIANT)
    kind = "diffusion" if diffusion is not None else "convolutional"
    log.info("loading the %s video VAE (%s decoder) from %s", VARIANT, kind, file.name)
    target = torch.device(device) if device is not None else torch.device("cpu")
    state = {}
    for done, (key, file_key) in enumerate(selected.items(), 1):
        stored = file.tensor(file_key)
        cast = dtype if dtype is not None and stored.is_floating_point() else stored.dtype
        tensor = stored.to(device=target, dtype=cast)
        if tensor is not stored:
            file.release(file_key)
        state[key] = tensor
        if progress is not None:
            progress(done, len(selected))
    return load_strict(module, state, component="video_vae", source=path, variant=VARIANT, device=target)


__all__ = ["CONV_CLASS", "DIFFUSION_CLASS", "load_video_vae_file", "video_vae_configs"]
