"""Text nodes: load Gemma 3 + the LTX text path, and turn prompts into LTX conditioning.

``LTX_TEXT_ENCODER`` sockets carry a :class:`LTXTextEncoderHolder`. Loading is lazy: the loader node only checks
that the Gemma and the checkpoint fit together (headers, no weights); weights are read at the first encode. Every
encoded prompt is kept in a small cache keyed by the prompt and the encoder's identity, so encoding it again
(e.g. after switching back to an earlier prompt) neither reloads Gemma nor recomputes.

CONDITIONING produced here: ``[[video_context [1, T, Dv], {"ltx_audio_context": [1, T, Da], "ltx_text_path":
{"variant", "video_dim", "audio_dim", "checkpoint"}}]]`` (float32, on ComfyUI's intermediate device; T = 1024).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Any

import torch

from ..ltx_core import checks
from ..ltx_core.checkpoint import open_checkpoint
from ..ltx_core.config import LTX25
from ..ltx_core.errors import InputError
from ..ltx_core.gemma import TOKENIZER_FILES, GemmaEncoder, inspect_gemma, load_gemma
from ..ltx_core.gemma4_encoder import Gemma4Encoder, check_gemma_version, inspect_gemma4, load_gemma4
from ..ltx_core.text_encoder import (
    TextContexts,
    TextPath,
    check_gemma_fits,
    encode_prompts,
    load_ltx25_text_path,
    load_text_path,
)
from . import host
from .validation import checked, find_model_file, model_choices, register_socket

log = logging.getLogger("ltx_av.nodes.text")

CATEGORY = "LTX-AV/text"
GEMMA_FILE_SUFFIXES = (".safetensors", ".gguf")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
DEVICES = ("default", "cpu")
AFTER_ENCODING = ("offload to CPU", "keep loaded", "free")
AUTO = "auto"

# (encoder identity, prompt) -> (video [1, T, Dv], audio [1, T, Da]) on the CPU, most recent last.
_CONTEXT_CACHE: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
CACHE_SIZE = 32
# Where the checkpoint whose connectors encode the prompt lives: LTX-2 / 2.3 single files, LTX-2.5 transformers.
CHECKPOINT_FOLDERS = ("checkpoints", "diffusion_models")


# -- choices shown in the UI -------------------------------------------------------------------------------------


def _walk_text_encoders() -> tuple[list[str], list[str]]:
    """(Gemma sources: folders with a config.json, shown with a trailing '/', and single files; tokenizer folders)."""
    # (name, path) entries; host.unique_files keeps one name per real file or folder. host.walk enters each real
    # folder once, so symbolic-link loops end.
    sources, tokenizers = [], []
    for root in host.model_folders("text_encoders"):
        if not os.path.isdir(root):
            continue
        for folder, dirs, files in host.walk(root):
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            if any(f in files for f in TOKENIZER_FILES) and rel != ".":
                tokenizers.append((rel, folder))
            if "config.json" in files and rel != "." and any(f.endswith(".safetensors") for f in files):
                sources.append((rel + "/", folder))
                dirs[:] = [d for d in dirs if d == "tokenizer"]  # shards of a model folder are not sources
                continue
            for f in files:
                if f.lower().endswith(GEMMA_FILE_SUFFIXES):
                    sources.append((f if rel == "." else f"{rel}/{f}", os.path.join(folder, f)))
    return host.unique_files(sources), host.unique_files(tokenizers)


def _resolve(kind: str, name: str) -> str:
    """Absolute path of a file or folder chosen in a combo of ``kind``'s folders (nothing outside them)."""
    host.check_model_name(kind, name)
    for root in host.model_folders(kind):
        path = os.path.join(root, name.rstrip("/"))
        if os.path.exists(path):
            return path
    raise InputError(f"'{name}' was not found in the '{kind}' folders: {', '.join(host.model_folders(kind))}")


# -- the socket payload ------------------------------------------------------------------------------------------


class LTXTextEncoderHolder:
    """An LTX text encoder (Gemma 3 + the checkpoint's text projection and connectors; for LTX-2.5 its Gemma 4 with
    the projection bundled + the transformer file's connectors), loaded on first use.

    API for other nodes: ``encode(prompt) -> TextContexts`` (``[1, T, Dv]`` / ``[1, T, Da]`` float32, CPU),
    ``conditioning(prompt) -> CONDITIONING``, ``signature`` (the ``ltx_text_path`` dict), ``variant``,
    ``config`` (:class:`TextEncoderConfig`), ``release(mode)``.
    """

    def __init__(
        self,
        gemma_path: str,
        checkpoint_path: str,
        *,
        tokenizer_dir: str | None = None,
        gemma_device: str = "default",
        dtype: torch.dtype = torch.bfloat16,
    ):
        checkpoint = open_checkpoint(checkpoint_path)
        self.checkpoint_path = checkpoint.path
        self.checkpoint_name = checkpoint.name
        self.variant = checkpoint.variant_name
        self.config = checkpoint.component_config("text_encoder")
        # LTX-2.5 was trained with its own Gemma 4 (tokenizer and projection inside its file); the header check
        # refuses Gemma 3 and stock Gemma 4 here, before any weight is read.
        self.gemma4 = self.variant == LTX25
        if self.gemma4:
            if tokenizer_dir is not None:
                raise InputError(
                    "tokenizer: LTX-2.5's text encoder carries its own tokenizer; leave tokenizer on 'auto'"
                )
            self.source = inspect_gemma4(gemma_path)
            check_gemma_version(
                checkpoint.metadata,
                gemma_model_type=self.source.model_type,
                gemma_version=self.source.gemma_version,
                checkpoint_name=checkpoint.name,
                gemma_name=self.source.name,
            )
            self.num_hidden_states = self.source.config.num_hidden_states
        else:
            self.source = inspect_gemma(gemma_path, tokenizer_dir)
            check_gemma_fits(
                self.config, self.source.hidden_size, self.source.num_hidden_states, f"Gemma '{self.source.name}'"
            )
            self.num_hidden_states = self.source.num_hidden_states
        self.gemma_device = gemma_device
        self.dtype = dtype
        self.identity = (
            _file_identity(self.source.path),
            _file_identity(tokenizer_dir) if tokenizer_dir else None,
            _file_identity(self.checkpoint_path),
            str(dtype),
            gemma_device,
        )
        self.gemma: GemmaEncoder | Gemma4Encoder | None = None
        self.text_path: TextPath | None = None
        # What goes to the compute device (Gemma too unless gemma_device is "cpu"), as the host sees it.
        self.weights = host.ModuleWeights("LTXAVTextEncoder", [], host.compute_device(), host.offload_device())

    @property
    def signature(self) -> dict[str, Any]:
        """What the sampler checks before using conditioning from this encoder."""
        return {
            "variant": self.variant,
            "video_dim": self.config.video_dim,
            "audio_dim": self.config.audio_dim,
            "checkpoint": self.checkpoint_name,
        }

    def _devices(self) -> tuple[torch.device, torch.device]:
        compute = host.compute_device()
        return (torch.device("cpu") if self.gemma_device == "cpu" else compute), compute

    def _load(self) -> None:
        """Read what is missing, on the offload device; :meth:`encode` places it (ComfyUI makes room first)."""
        gemma_device, path_device = self._devices()
        offload = host.offload_device()
        loaded = False
        if self.gemma is None:
            bar = host.Progress(1)
            read = load_gemma4 if self.gemma4 else load_gemma
            self.gemma = read(self.source, dtype=self.dtype, device=offload, progress=bar.callback())
            loaded = True
        if self.text_path is None:
            bar = host.Progress(1)
            if self.gemma4:
                self.text_path = load_ltx25_text_path(
                    self.checkpoint_path, self.source, dtype=self.dtype, device=offload, progress=bar.callback()
                )
            else:
                self.text_path = load_text_path(
                    self.checkpoint_path, dtype=self.dtype, device=offload, progress=bar.callback()
                )
            loaded = True
        if self.weights.device != path_device:
            self.weights = host.ModuleWeights("LTXAVTextEncoder", [], path_device, offload)
        on_compute = [self.text_path] if gemma_device != path_device else [self.gemma.model, self.text_path]
        if loaded or self.weights.modules != on_compute:
            self.weights.set_modules(on_compute)
        if gemma_device != path_device:
            self.gemma.to(gemma_device)

    def encode(self, prompt: str, *, after: str = AFTER_ENCODING[0]) -> TextContexts:
        """One prompt -> its contexts (cached). ``after``: what to do with the models when they were needed.

        The tensors returned are the caller's own: a node downstream that edits them in place must not change what
        a later encode of the same prompt gives, so the cache hands out copies."""
        checks.text(prompt, "LTXTextEncode: text")
        key = (self.identity, prompt.strip())
        cached = _CONTEXT_CACHE.get(key)
        if cached is not None:
            _CONTEXT_CACHE.move_to_end(key)
            log.info("LTXTextEncode: prompt already encoded with this encoder; reusing it")
            return TextContexts(*(t.clone() for t in cached))
        self._load()
        bar = host.Progress(self.num_hidden_states - 1)
        try:
            # kept placed after: release(after) decides (with "keep loaded" ComfyUI may still unload it for room)
            with self.weights.in_use(keep=True):
                contexts = encode_prompts(self.gemma, self.text_path, [prompt], progress=bar.callback())
        except Exception as error:
            if host.is_out_of_memory(error):
                self.release("free")
                raise InputError(
                    "out of GPU memory while encoding the prompt; set the loader's 'gemma_device' to 'cpu' to keep "
                    "Gemma off the GPU"
                ) from error
            raise
        finally:
            self.release(after)
        result = (contexts.video.float().cpu(), contexts.audio.float().cpu())
        _CONTEXT_CACHE[key] = result
        while len(_CONTEXT_CACHE) > CACHE_SIZE:
            _CONTEXT_CACHE.popitem(last=False)
        return TextContexts(*(t.clone() for t in result))

    def conditioning(self, prompt: str, *, after: str = AFTER_ENCODING[0]) -> list:
        contexts = self.encode(prompt, after=after)
        device = host.intermediate_device()
        extras = {"ltx_audio_context": contexts.audio.to(device), "ltx_text_path": dict(self.signature)}
        return [[contexts.video.to(device), extras]]

    def release(self, mode: str) -> None:
        """``"keep loaded"``: nothing; ``"offload to CPU"``: move the models to the offload device; ``"free"``: drop
        them (they are read again from disk when needed)."""
        if mode == "keep loaded":
            return
        if mode == "free":
            self.gemma = None
            self.text_path = None
            self.weights.set_modules([])
        else:
            offload = host.offload_device()
            self.weights.park()
            for model in (self.gemma, self.text_path):
                if model is not None:
                    model.to(offload)
        host.free_memory()


def _file_identity(path: str) -> tuple[str, float]:
    real = os.path.realpath(path)
    try:
        return real, os.path.getmtime(real)
    except OSError:
        return real, 0.0


# -- nodes ---------------------------------------------------------------------------------------------------------


class LTXTextEncoderLoader:
    DISPLAY_NAME = "Load Text Encoder (Gemma)"
    DESCRIPTION = (
        "Gemma plus the LTX model's text projection and connectors. LTX-2 / LTX-2.3: Gemma 3 12B as a Hugging Face "
        "folder, a single .safetensors file or a GGUF file in 'text_encoders', with the checkpoint. LTX-2.5: its "
        "Gemma 4 file (gemma4-12b-with-proj-ltx-2.5-bf16.safetensors) with the transformer file from "
        "diffusion_models. Weights load at the first encode."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LTX_TEXT_ENCODER",)
    RETURN_NAMES = ("text_encoder",)
    FUNCTION = "load"
    FILE_INPUTS = ("gemma", "ckpt_name", "tokenizer")

    @classmethod
    def INPUT_TYPES(cls):
        sources, tokenizers = _walk_text_encoders()
        return {
            "required": {
                "gemma": (
                    sources or ["(put Gemma 3 in models/text_encoders)"],
                    {
                        "tooltip": "From the text_encoders folder. LTX-2 / 2.3: Gemma 3 12B, a Hugging Face folder "
                        "(shown with '/'), a .safetensors file or a .gguf file. LTX-2.5: "
                        "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"
                    },
                ),
                "ckpt_name": (
                    model_choices(CHECKPOINT_FOLDERS) or ["(put an LTX-2 checkpoint in models/checkpoints)"],
                    {
                        "tooltip": "whose text connectors to use: the LTX-2 / LTX-2.3 checkpoint, or the LTX-2.5 "
                        "transformer file (diffusion_models) the Load Model node loads"
                    },
                ),
                "tokenizer": (
                    [AUTO, *tokenizers],
                    {
                        "default": AUTO,
                        "tooltip": "folder with Gemma 3's tokenizer.json / tokenizer.model; 'auto' looks inside the "
                        "Gemma folder or GGUF, or beside a .safetensors file",
                    },
                ),
                "gemma_device": (
                    list(DEVICES),
                    {
                        "default": "default",
                        "tooltip": "where Gemma runs: 'default' = the GPU; 'cpu' keeps it off the GPU (slower, for "
                        "small GPUs). The LTX connectors always use the GPU",
                    },
                ),
                "dtype": (
                    list(DTYPES),
                    {"default": "bfloat16", "tooltip": "weight and compute precision (float16 overflows in Gemma 3)"},
                ),
            }
        }

    @checked
    def load(self, gemma, ckpt_name, tokenizer=AUTO, gemma_device="default", dtype="bfloat16"):
        if dtype not in DTYPES:
            raise InputError(f"LTXTextEncoderLoader: dtype '{dtype}' is not one of {', '.join(DTYPES)}")
        if gemma_device not in DEVICES:
            raise InputError(f"LTXTextEncoderLoader: gemma_device '{gemma_device}' is not one of {', '.join(DEVICES)}")
        node = "LTXTextEncoderLoader"
        paths = {}
        for name, kind, value in (("gemma", "text_encoders", gemma),) + (
            (("tokenizer", "text_encoders", tokenizer),) if tokenizer != AUTO else ()
        ):
            try:
                paths[name] = _resolve(kind, value)
            except InputError as e:
                raise InputError(f"{node}: {name}: {e}") from None
        paths["ckpt_name"] = find_model_file(node, "ckpt_name", CHECKPOINT_FOLDERS, ckpt_name)
        gemma_path, checkpoint_path, tokenizer_dir = paths["gemma"], paths["ckpt_name"], paths.get("tokenizer")
        holder = LTXTextEncoderHolder(
            gemma_path, checkpoint_path, tokenizer_dir=tokenizer_dir, gemma_device=gemma_device, dtype=DTYPES[dtype]
        )
        return (holder,)


class LTXTextEncode:
    DISPLAY_NAME = "Text Encode (prompt)"
    DESCRIPTION = (
        "Encode a prompt into LTX-2 conditioning (video and audio text contexts); use it for the positive or the "
        "negative prompt. Prompts longer than 1024 tokens are truncated (logged)."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": ("LTX_TEXT_ENCODER", {"tooltip": "from Load Text Encoder (Gemma)"}),
                "text": (
                    "STRING",
                    {"multiline": True, "dynamicPrompts": True, "tooltip": "the prompt; empty is allowed"},
                ),
                "after_encoding": (
                    list(AFTER_ENCODING),
                    {
                        "default": AFTER_ENCODING[0],
                        "tooltip": "what to do with Gemma and the connectors after encoding: move them to system "
                        "memory, keep them on the GPU for the next prompt, or free them",
                    },
                ),
            }
        }

    @checked
    def encode(self, text_encoder, text, after_encoding=AFTER_ENCODING[0]):
        if not isinstance(text_encoder, LTXTextEncoderHolder):
            raise InputError(
                f"LTXTextEncode: 'text_encoder' must come from Load Text Encoder (Gemma), got {type(text_encoder).__name__}"
            )
        if after_encoding not in AFTER_ENCODING:
            raise InputError(
                f"LTXTextEncode: after_encoding '{after_encoding}' is not one of {', '.join(AFTER_ENCODING)}"
            )
        checks.text(text, "LTXTextEncode: text")
        return (text_encoder.conditioning(text, after=after_encoding),)


register_socket("LTX_TEXT_ENCODER", LTXTextEncoderHolder, "the text encoder from Load Text Encoder (Gemma)")

NODES: tuple[type, ...] = (LTXTextEncoderLoader, LTXTextEncode)
