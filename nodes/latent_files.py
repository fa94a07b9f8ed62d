"""Latent files: ``LTXSaveLatent`` / ``LTXLoadLatent`` keep whole LATENT dicts (video + audio, every key they carry).

Core SaveLatent keeps only ``samples``; these keep frame rates, image conditions, noise masks and padding records
too, in one ``.ltx.safetensors`` file under ``output/latents``.
"""

from __future__ import annotations

import json
import logging
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..ltx_core.errors import InputError
from . import host
from .sampling import _latent_dict

log = logging.getLogger("ltx_av.nodes.latent_files")

LATENT_SUFFIX = ".ltx.safetensors"
LATENT_FOLDER = "latents"


# -- encoding --------------------------------------------------------------------------------------------------


def _encode_value(value, path: str, tensors: dict[str, torch.Tensor]):
    """A LATENT value -> JSON-able structure; tensors are stored under their key path."""
    if isinstance(value, torch.Tensor):
        if getattr(value, "is_nested", False):
            return {"__nested__": [_encode_value(t, f"{path}/{i}", tensors) for i, t in enumerate(value.unbind())]}
        tensors[path] = value.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise InputError(f"LTXSaveLatent: {path} has non-string keys; cannot be saved")
        return {"__dict__": {k: _encode_value(v, f"{path}/{k}", tensors) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"__list__": [_encode_value(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InputError(f"LTXSaveLatent: {path} holds a {type(value).__name__}, which cannot be saved")


def _decode_value(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__nested__" in value:
            return torch.nested.nested_tensor([_decode_value(v, tensors) for v in value["__nested__"]])
        if "__dict__" in value:
            return {k: _decode_value(v, tensors) for k, v in value["__dict__"].items()}
        if "__list__" in value:
            return [_decode_value(v, tensors) for v in value["__list__"]]
    return value


def save_latents(path: str, video: dict, audio: dict | None = None) -> str:
    """Write whole LATENT dicts (every key, conditions included) to one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    layout = {"video": _encode_value(video, "video", tensors), "audio": _encode_value(audio, "audio", tensors)}
    save_file(tensors, path, metadata={"ltx_av_latents": json.dumps(layout), "format": "ltx-av-latents-1"})
    return path


def load_latents(path: str) -> tuple[dict, dict | None]:
    with safe_open(path, "pt") as f:
        metadata = f.metadata() or {}
        if "ltx_av_latents" not in metadata:
            raise InputError(f"LTXLoadLatent: '{path}' was not written by LTX-AV Save Latent")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    layout = json.loads(metadata["ltx_av_latents"])
    return _decode_value(layout["video"], tensors), _decode_value(layout.get("audio"), tensors)


def _latent_files() -> list[str]:
    root = os.path.join(host.output_directory(), LATENT_FOLDER)
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(LATENT_SUFFIX):
                found.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return sorted(found)


class LTXSaveLatent:
    DISPLAY_NAME = "LTX-AV Save Latent (video + audio)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = (
        "Saves a video latent and optionally its audio latent to output/latents/<prefix>_NNNNN.ltx.safetensors with "
        "every key they carry (frame rate, image conditions, noise masks, padding records), which core Save Latent "
        "drops. Load them with LTX-AV Load Latent."
    )
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_latent": ("LATENT", {"tooltip": "The video latent to save."}),
                "filename_prefix": ("STRING", {"default": "ltx_av", "tooltip": "File name prefix (may hold folders)."}),
            },
            "optional": {"audio_latent": ("LATENT", {"tooltip": "Its audio latent, saved in the same file."})},
        }

    def save(self, video_latent, filename_prefix: str = "ltx_av", audio_latent=None):
        node = "LTXSaveLatent"
        video = _latent_dict(video_latent, node, "video_latent")
        audio = None if audio_latent is None else _latent_dict(audio_latent, node, "audio_latent")
        root = os.path.realpath(os.path.join(host.output_directory(), LATENT_FOLDER))
        prefix = os.path.realpath(os.path.join(root, filename_prefix or "ltx_av"))
        if os.path.commonpath([root, prefix]) != root:
            raise InputError(f"{node}: filename_prefix {filename_prefix!r} points outside the output folder")
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        counter = 1
        while os.path.exists(f"{prefix}_{counter:05d}{LATENT_SUFFIX}"):
            counter += 1
        path = save_latents(f"{prefix}_{counter:05d}{LATENT_SUFFIX}", video, audio)
        log.info("%s: wrote %s", node, path)
        return {"ui": {"text": [os.path.relpath(path, root)]}}


class LTXLoadLatent:
    DISPLAY_NAME = "LTX-AV Load Latent (video + audio)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = "Loads latents saved by LTX-AV Save Latent (output/latents), with every key they carried."
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("video_latent", "audio_latent")
    OUTPUT_TOOLTIPS = ("The saved video latent.", "The saved audio latent (None if none was saved).")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"file": (_latent_files(), {"tooltip": "A file from output/latents."})}}

    @classmethod
    def IS_CHANGED(cls, file):
        path = os.path.join(host.output_directory(), LATENT_FOLDER, file)
        return os.path.getmtime(path) if os.path.exists(path) else float("nan")

    def load(self, file: str):
        path = os.path.join(host.output_directory(), LATENT_FOLDER, file)
        if not os.path.isfile(path):
            raise InputError(f"LTXLoadLatent: file '{file}' was not found in {os.path.dirname(path)}")
        return load_latents(path)


NODES: tuple[type, ...] = (LTXSaveLatent, LTXLoadLatent)
