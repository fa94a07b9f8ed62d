"""Reading official LTX-2 / LTX-2.3 / LTX-2.5 ``.safetensors`` files.

A single-file ("monolith") checkpoint (LTX-2, LTX-2.3) holds every component under a top-level prefix;
:data:`COMPONENTS` is the whole translation table between file keys and our module keys. A file holding one
component, in the monolith's key layout or with bare module keys, is read the same way; that is how LTX-2.5 ships:

====================================================  =====================================================
``diffusion_models/ltx-2.5-22b-*-transformer-*``       ``model.diffusion_model.*`` (transformer + the text
                                                       connectors), config ``{"transformer": ...}``
``text_encoders/gemma4-12b-with-proj-ltx-2.5-*``       Gemma 4 (``model.*``, ...) + ``text_embedding_projection.*``,
                                                       its Hugging Face config in ``metadata["gemma_config"]``
``vae/ltx-2.5-video-vae(-conv)-*``                     bare ``encoder.*`` / ``decoder.*`` /
                                                       ``per_channel_statistics.*``, config ``{"vae": ...}``
``vae/ltx-2.5-audio-vae-*``                            ``audio_vae.*`` + ``vocoder.*``, config ``{"audio_vae",
                                                       "vocoder"}``
``latent_upscale_models/*``, ``model_patches/*``       upsampler (flat config), duration head (``duration_head.*``)
====================================================  =====================================================

Each file says which release it belongs to (:attr:`Checkpoint.variants`, :func:`identify`): from its config (the
transformer's layout, the video VAE's class, the vocoder, the Gemma version) and ``metadata["model_version"]``.
:func:`open_model_files` opens the files of one model together, checks that each holds what its slot needs and
that they come from one release (a file of another release is named next to the first one), and joins the LTX-2.5
text path, whose connectors ship in the transformer file and whose projection ships with Gemma 4.

Tensors are views of one private memory map of the file: loading in the stored dtype copies nothing, and a cast
releases the mapped pages of each tensor once its copy exists, so resident memory stays near the size of the
result. Float8 weights are upcast when they are read (to the requested dtype, bfloat16 by default), folding a
per-tensor ``weight_scale`` if the file has one; ``keep_float8=True`` keeps them as stored for modules that
upcast per layer at compute time. Pickle files are refused: unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

import torch

from .config import (
    DIFFUSION_VAE_CLASS,
    LTX2,
    LTX23,
    LTX25,
    VARIANTS,
    AudioVAEConfig,
    CheckpointConfig,
    TextEncoderConfig,
    TransformerConfig,
    VideoVAEConfig,
    VocoderConfig,
    is_newer_release,
    transformer_variant,
    variant_of_version,
    video_vae_class,
)
from .errors import CheckpointError, ConfigError, InputError, LTXError

log = logging.getLogger("ltx_av.checkpoint")

# component -> ((prefix in the file, prefix in our module), ...). A key belongs to the component with the longest
# matching file prefix, so the connectors (stored under the transformer's prefix) go to the text path.
COMPONENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "transformer": (("model.diffusion_model.", ""),),
    "text_encoder": (
        ("text_embedding_projection.", "text_embedding_projection."),
        ("model.diffusion_model.video_embeddings_connector.", "video_embeddings_connector."),
        ("model.diffusion_model.audio_embeddings_connector.", "audio_embeddings_connector."),
    ),
    "video_vae": (("vae.", ""),),
    "audio_vae": (("audio_vae.", ""),),
    "vocoder": (("vocoder.", ""),),
    # LTX-2.5's clip-length predictor (its own file in model_patches/).
    "duration_head": (("duration_head.", ""),),
    # Upsampler files are their own bare file (no prefix); they never share a file with the others.
    "upsampler": (),
    # The Gemma 4 weights (and tokenizer assets) of an LTX-2.5 text-encoder file, keys as stored; routed only in a
    # file that carries metadata["gemma_config"].
    "gemma": (),
}

TITLES = {
    "transformer": "transformer",
    "text_encoder": "text projection and connectors",
    "video_vae": "video VAE",
    "audio_vae": "audio VAE",
    "vocoder": "vocoder",
    "duration_head": "duration head",
    "upsampler": "latent upsampler",
    "gemma": "Gemma text encoder",
}

# Where each component's architecture lives in metadata["config"].
CONFIG_SECTIONS = {
    "transformer": "transformer",
    "text_encoder": "transformer",
    "video_vae": "vae",
    "audio_vae": "audio_vae",
    "vocoder": "vocoder",
    "duration_head": "duration_head",
    "upsampler": "upsampler",  # the whole flat config of an upsampler file
    "gemma": "gemma_config",  # metadata["gemma_config"], not a config section
}

# Components that have no typed config of ours (read by their own loaders, or not implemented).
_UNTYPED = ("upsampler", "duration_head", "gemma")

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
FLOAT8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
_MAX_HEADER_BYTES = 100 * 2**20
# The architecture config of a released file is a few kB of JSON; far more is a damaged or hostile file.
_MAX_CONFIG_CHARS = 2**20
_PAGE = mmap.PAGESIZE


@dataclass(frozen=True)
class TensorInfo:
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offsets in the file
    end: int


class SafetensorsFile:
    """The header of a ``.safetensors`` file, validated, and zero-copy tensors from a private memory map.

    Every field of the header is checked before anything is used: a damaged or hand-made file raises
    :class:`CheckpointError` naming it, never a ``TypeError`` from deep inside.
    """

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        self._map: mmap.mmap | None = None
        if os.path.isdir(path):
            raise CheckpointError(f"'{path}' is a folder, not a .safetensors file")
        try:
            self.size = os.path.getsize(path)
            with open(path, "rb") as f:
                prefix = f.read(9)
                _refuse_pickle_content(path, prefix, self.size)
                prefix = prefix[:8]
                f.seek(8)
                if len(prefix) < 8:
                    raise CheckpointError(
                        f"'{self.name}' is empty or truncated ({self.size} bytes): not a safetensors file"
                    )
                (header_len,) = struct.unpack("<Q", prefix)
                if header_len > min(_MAX_HEADER_BYTES, self.size - 8):
                    raise CheckpointError(
                        f"'{self.name}' is not a valid safetensors file: its header claims {header_len} bytes but "
                        f"the file has {self.size} (truncated download, or another format renamed to .safetensors?)"
                    )
                raw = f.read(header_len)
        except OSError as e:
            raise CheckpointError(f"cannot read '{path}': {e.strerror or e}") from e
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, huge integers, deep nesting
            reason = "nested too deeply" if isinstance(e, RecursionError) else _clip(str(e), 200)
            raise CheckpointError(
                f"'{self.name}' has a corrupt safetensors header ({reason}); re-download the file"
            ) from e
        if not isinstance(header, dict):
            raise CheckpointError(
                f"'{self.name}' has a corrupt safetensors header: a JSON {type(header).__name__} where the format "
                "has an object"
            )
        self.metadata: dict[str, str] = self._metadata(header.pop("__metadata__", None))
        self.data_start = 8 + header_len
        self.tensors: dict[str, TensorInfo] = {}
        for key, entry in header.items():
            self.tensors[key] = self._tensor_info(key, entry, self.data_start)
        self._check_overlaps()

    def _corrupt(self, what: str) -> CheckpointError:
        return CheckpointError(f"'{self.name}' has a corrupt safetensors header: {what}; re-download the file")

    def _metadata(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._corrupt(f"'__metadata__' is a JSON {type(value).__name__}, where the format has an object")
        bad = next(((k, v) for k, v in value.items() if not isinstance(v, str)), None)
        if bad is not None:
            raise self._corrupt(
                f"metadata entry '{_clip(bad[0])}' is a JSON {type(bad[1]).__name__}; metadata values are text"
            )
        return value

    def _tensor_info(self, key: str, entry: Any, data_start: int) -> TensorInfo:
        name = _clip(key)
        if not isinstance(entry, dict):
            raise self._corrupt(f"the entry of tensor '{name}' is a JSON {type(entry).__name__}, not an object")
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in entry]
        if missing:
            raise self._corrupt(f"the entry of tensor '{name}' lacks {', '.join(missing)}")
        dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype_name, str):
            raise self._corrupt(f"tensor '{name}' has dtype {_clip(repr(dtype_name))}, which is not a dtype name")
        if dtype_name not in _DTYPES:
            raise CheckpointError(
                f"'{self.name}': tensor '{name}' has dtype {_clip(dtype_name)}, which LTX-AV cannot read "
                f"(supported: {', '.join(_DTYPES)})"
            )
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise self._corrupt(f"tensor '{name}' has shape {_clip(repr(shape))}; a shape is a list of sizes >= 0")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
            raise self._corrupt(
                f"tensor '{name}' has data_offsets {_clip(repr(offsets))}; expected [begin, end] byte offsets >= 0"
            )
        dtype = _DTYPES[dtype_name]
        begin, end = offsets
        numel = 1
        for d in shape:
            numel *= d
        if end < begin or end - begin != numel * dtype.itemsize:
            raise self._corrupt(
                f"tensor '{name}' of shape {_clip(repr(shape))} ({dtype_name}) spans bytes {begin}..{end}, "
                f"which is not its size"
            )
        if data_start + end > self.size:
            raise CheckpointError(
                f"'{self.name}' is truncated: tensor '{name}' needs bytes up to {data_start + end:,} but the file "
                f"has {self.size:,} (an incomplete download? re-download the file)"
            )
        return TensorInfo(dtype, tuple(shape), data_start + begin, data_start + end)

    def _check_overlaps(self) -> None:
        spans = sorted((info.start, info.end, key) for key, info in self.tensors.items() if info.end > info.start)
        for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise self._corrupt(f"tensors '{_clip(first)}' and '{_clip(second)}' claim the same bytes")

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            with open(self.path, "rb") as f:
                # ACCESS_COPY: a private, writable view. Pages come from the page cache until written, and torch
                # needs a writable buffer to wrap without copying.
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        return self._map

    def tensor(self, key: str) -> torch.Tensor:
        """The stored tensor, sharing memory with the file mapping."""
        info = self.tensors[key]
        if info.end == info.start:
            return torch.empty(info.shape, dtype=info.dtype)
        count = (info.end - info.start) // info.dtype.itemsize
        if info.start % info.dtype.itemsize:  # unaligned data cannot be viewed in place
            data = bytearray(self._mapped()[info.start : info.end])
            return torch.frombuffer(data, dtype=info.dtype, count=count).reshape(info.shape)
        return torch.frombuffer(self._mapped(), dtype=info.dtype, count=count, offset=info.start).reshape(info.shape)

    def read(self, key: str) -> torch.Tensor:
        """A copy of the stored tensor that owns its memory (it outlives :meth:`close` and changes to the file)."""
        info = self.tensors[key]
        with open(self.path, "rb") as f:
            f.seek(info.start)
            data = bytearray(f.read(info.end - info.start))
        if len(data) != info.end - info.start:
            raise CheckpointError(f"'{self.name}' changed while it was read (tensor '{_clip(key)}' is cut short)")
        if not data:
            return torch.empty(info.shape, dtype=info.dtype)
        return torch.frombuffer(data, dtype=info.dtype).reshape(info.shape)

    @property
    def nbytes(self) -> int:
        return sum(info.end - info.start for info in self.tensors.values())

    def release(self, key: str) -> None:
        """Drop the mapped pages of a tensor that has been copied elsewhere (they are re-read if touched again)."""
        info = self.tensors[key]
        first = (info.start + _PAGE - 1) // _PAGE * _PAGE
        last = info.end // _PAGE * _PAGE
        if last > first and self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED, first, last - first)

    def close(self) -> None:
        """Unmap the file (tensors from :meth:`tensor` must not be used afterwards; those from :meth:`read` may)."""
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # views still exported: leave the mapping to the garbage collector
                pass
            else:
                self._map = None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _clip(text: str, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refuse_pickle_content(path: str, prefix: bytes, size: int | None = None) -> None:
    # Zip archives (torch.save since 1.6) start with PK; raw pickles with the PROTO opcode 0x80. A safetensors header
    # length can begin with the same two bytes (0x4B50, 0x0380, ...): its JSON header then opens with '{' at byte 8.
    if len(prefix) >= 9 and prefix[8:9] == b"{" and size is not None:
        (header_len,) = struct.unpack("<Q", prefix[:8])
        if header_len <= size - 8:
            return
    if prefix[:2] == b"PK" or (len(prefix) > 1 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5):
        raise CheckpointError(
            f"'{os.path.basename(path)}' is a pickle (PyTorch .ckpt/.pt) file despite its name. LTX-AV never unpickles "
            "model files because that can run arbitrary code; use the official .safetensors release."
        )


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Open an LTX-2 / LTX-2.3 checkpoint (a monolith or a file with one component) or an LTX-2.5 component file
    without reading its tensors."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"a checkpoint must be given as a file path; got a {type(path).__name__}")
    return Checkpoint(os.fspath(path))


class Checkpoint:
    """One ``.safetensors`` file: its metadata, typed component configs and lazily loaded state dicts."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix in PICKLE_SUFFIXES:
            raise CheckpointError(
                f"'{self.name}' is a pickle checkpoint ({suffix}). LTX-AV loads only .safetensors files, because "
                "unpickling can run arbitrary code; download the official .safetensors release instead."
            )
        if suffix == ".gguf":
            raise CheckpointError(
                f"'{self.name}' is a GGUF file; LTX-2 model checkpoints are read from .safetensors files "
                "(GGUF is accepted only for the Gemma text encoder)."
            )
        if os.path.isdir(path):
            raise CheckpointError(
                f"checkpoint '{path}' is a folder; expected the official LTX-2 / LTX-2.3 single-file .safetensors "
                "checkpoint (only the Gemma text encoder may be given as a folder)"
            )
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint file '{path}' does not exist")
        self.file = SafetensorsFile(path)
        self.metadata = self.file.metadata
        self.model_version = self.metadata.get("model_version")
        # LTX-2.5 text-encoder files carry Gemma 4's Hugging Face config instead of an architecture config; the
        # transformer file names the Gemma it was trained with.
        self.gemma_config: dict[str, Any] | None = self._read_json("gemma_config")
        self.gemma_source: dict[str, Any] | None = self._read_json("gemma_source_checkpoint")
        self.raw_config = self._read_config()
        self.routes = self._route_keys()
        self._check_family()
        self.variants = self._identify_variants()
        self.variant = _label(self.variants)
        self._configs: dict[str, Any] = {}

    # -- metadata ------------------------------------------------------------------------------------------

    def _read_json(self, key: str, limit_hint: str = "") -> dict[str, Any] | None:
        """A metadata entry holding a JSON object (``None`` if absent); a damaged one names the file and key."""
        text = self.metadata.get(key)
        if text is None:
            return None
        if len(text) > _MAX_CONFIG_CHARS:
            raise CheckpointError(
                f"'{self.name}': metadata '{key}' is {len(text):,} characters long; {limit_hint}"
                f"(at most {_MAX_CONFIG_CHARS:,} are read)"
            )
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, integers of thousands of digits, deep nesting
            reason = "nested too deeply" if isinstance(e, RecursionError) else _clip(str(e), 200)
            raise CheckpointError(f"'{self.name}': metadata '{key}' is not valid JSON ({reason})") from e
        if not isinstance(value, dict):
            raise CheckpointError(
                f"'{self.name}': metadata '{key}' should be a JSON object, found {type(value).__name__}"
            )
        return value

    def _read_config(self) -> dict[str, Any]:
        config = self._read_json("config", "an LTX-2 architecture config is a few thousand ")
        if config is not None:
            return config
        if self.gemma_config is not None:
            return {}  # an LTX-2.5 text-encoder file: its architecture is the Gemma config
        raise CheckpointError(
            f"'{self.name}' has no architecture config: its safetensors metadata lacks the 'config' entry that "
            "official LTX-2 / LTX-2.3 / LTX-2.5 files carry. Files converted by other tools (e.g. diffusers folders) "
            "are not supported; use the official .safetensors files."
        )

    @property
    def variant_name(self) -> str:
        return self.variant or "LTX-2 family"

    # -- keys ----------------------------------------------------------------------------------------------

    def _route_keys(self) -> dict[str, dict[str, str]]:
        """component -> {module key: file key} for every key with a known top-level prefix."""
        rules = sorted(
            (
                (file_prefix, module_prefix, comp)
                for comp, pairs in COMPONENTS.items()
                for file_prefix, module_prefix in pairs
            ),
            key=lambda r: -len(r[0]),
        )
        routes: dict[str, dict[str, str]] = {}
        bare_vocoder = any(k.startswith("bwe_generator.") for k in self.file.tensors)
        for key in self.file.tensors:
            if bare_vocoder:
                break
            for file_prefix, module_prefix, comp in rules:
                if key.startswith(file_prefix):
                    routes.setdefault(comp, {})[module_prefix + key[len(file_prefix) :]] = key
                    break
            else:
                if self.gemma_config is not None:
                    routes.setdefault("gemma", {})[key] = key
        return routes

    @property
    def is_bare(self) -> bool:
        """True for a file of one component stored with bare module keys (no top-level prefix)."""
        return not self.routes

    @property
    def components(self) -> tuple[str, ...]:
        """The components this file holds, in :data:`COMPONENTS` order (for a bare file: the one it looks like)."""
        if self.is_bare:
            guess = _guess_bare_component(self.file.tensors)
            return (guess,) if guess else ()
        return tuple(c for c in COMPONENTS if c in self.routes)

    def _check_family(self) -> None:
        keys = self.file.tensors
        sample = ", ".join(list(keys)[:3])
        transformer = self.routes.get("transformer", {})
        if self.is_bare and _guess_bare_component(keys) is None:
            diffusers = any(k.startswith(("proj_in.", "time_embed.", "audio_proj_in.")) for k in keys)
            if diffusers:
                raise CheckpointError(
                    f"'{self.name}' is in the diffusers key layout; LTX-AV reads the official single-file "
                    "checkpoints (keys 'model.diffusion_model.*', 'vae.*', ...)."
                )
            raise CheckpointError(
                f"'{self.name}' does not look like an LTX-2 / LTX-2.3 checkpoint or an LTX-2.5 component file: none "
                f"of its {len(keys)} tensors start with {', '.join(repr(p) for p in _FILE_PREFIXES)} (first keys: "
                f"{sample})"
            )
        looks_video_only = (
            (transformer or self.is_bare)
            and _has_any(keys, "patchify_proj.weight")
            and not _has_any(keys, "audio_patchify_proj.weight")
        )
        if looks_video_only:
            raise CheckpointError(
                f"'{self.name}' is an LTX-Video (0.9.x) checkpoint: its transformer has no audio stream. LTX-AV runs "
                "LTX-2, LTX-2.3 and LTX-2.5; load LTX-Video files with ComfyUI's core LTXV nodes."
            )
        if is_newer_release(self.model_version):
            raise CheckpointError(
                f"'{self.name}' is model version {self.model_version}; LTX-AV supports LTX-2, LTX-2.3 and LTX-2.5 "
                "(model versions up to 2.5.x)."
            )
        gemma = self.gemma_config
        if gemma is not None and _gemma_family(gemma) not in ("gemma3", "gemma4"):
            raise CheckpointError(
                f"'{self.name}' is a text encoder of model_type {_clip(repr(gemma.get('model_type')))}; LTX-2 and "
                "LTX-2.3 use Gemma 3, LTX-2.5 its own Gemma 4 (gemma4-12b-with-proj-ltx-2.5)"
            )

    # -- release -------------------------------------------------------------------------------------------

    def _identify_variants(self) -> frozenset[str]:
        """The releases this file can belong to: what each part it holds allows (in order of trust: transformer,
        text encoder, video VAE, vocoder, duration head), narrowed by ``model_version``. Empty: nothing in the file
        tells, e.g. a convolutional video VAE or an upsampler without a ``model_version``."""
        held = set(self.components)
        evidence: list[tuple[str, frozenset[str]]] = []
        section = self.raw_config.get("transformer")
        if held & {"transformer", "text_encoder"} and isinstance(section, Mapping) and section:
            found = transformer_variant(section)
            # An LTX-2.3-shaped section is also what an LTX-2.5 file with LTX-2.3 values would hold.
            evidence.append(("transformer", frozenset({LTX23, LTX25}) if found == LTX23 else frozenset({found})))
        if self.gemma_config is not None:
            gemma4 = _gemma_family(self.gemma_config) == "gemma4"
            evidence.append(("text encoder", frozenset({LTX25}) if gemma4 else frozenset({LTX2, LTX23})))
        if self.gemma_source is not None:
            evidence.append(("text encoder", frozenset({LTX25})))  # the Gemma 4 version it was trained with
        vae = self.raw_config.get("vae")
        if "video_vae" in held and isinstance(vae, Mapping) and video_vae_class(vae) == DIFFUSION_VAE_CLASS:
            evidence.append(("video VAE", frozenset({LTX25})))
        vocoder = self.raw_config.get("vocoder")
        if "vocoder" in held and isinstance(vocoder, Mapping) and vocoder:
            evidence.append(("vocoder", frozenset({LTX23, LTX25}) if "bwe" in vocoder else frozenset({LTX2})))
        if "duration_head" in held:
            evidence.append(("duration head", frozenset({LTX25})))
        variants = frozenset(VARIANTS)
        for part, allowed in evidence:
            if variants & allowed:
                variants &= allowed
            else:
                log.warning(
                    "%s: its %s belongs to %s but the rest of the file to %s; using the rest",
                    self.name,
                    part,
                    _versions(allowed),
                    _versions(variants),
                )
        by_version = variant_of_version(self.model_version)
        if by_version is not None:
            if not evidence or by_version in variants:
                return frozenset({by_version})
            log.warning(
                "%s: metadata model_version %r disagrees with its config, which describes %s; using the config",
                self.name,
                self.model_version,
                _versions(variants),
            )
        return variants if evidence else frozenset()

    @property
    def role(self) -> str:
        """What the file is: ``"checkpoint"`` (a monolith of several parts) or the one part an LTX-2.5 file (or
        a single-component file of any release) holds: ``transformer``, ``text_encoder`` (Gemma + projection),
        ``video_vae``, ``audio_vae`` (with its vocoder), ``vocoder``, ``upsampler``, ``duration_head``."""
        held = set(self.components)
        if "transformer" in held and held & {"video_vae", "audio_vae", "vocoder"}:
            return "checkpoint"
        for role in ("transformer", "gemma", "text_encoder", "video_vae", "audio_vae", "vocoder", "upsampler"):
            if role in held:
                return "text_encoder" if role == "gemma" else role
        return "duration_head" if "duration_head" in held else "unknown"

    @property
    def video_decoder(self) -> str | None:
        """``"diffusion"`` (LTX-2.5's NADiffusionDecoder) or ``"conv"`` for a file with a video VAE, else None."""
        if "video_vae" not in self.components:
            return None
        vae = self.raw_config.get("vae")
        return "diffusion" if isinstance(vae, Mapping) and video_vae_class(vae) == DIFFUSION_VAE_CLASS else "conv"

    @property
    def identity(self) -> FileIdentity:
        return FileIdentity(
            path=self.path,
            name=self.name,
            role=self.role,
            components=self.components,
            variants=self.variants,
            model_version=self.model_version,
            video_decoder=self.video_decoder,
            gemma_version=_gemma_version(self),
        )

    def keys(self, component: str) -> list[str]:
        """Module keys of a component (relative to the component's module)."""
        return list(self._route(component))

    def shapes(self, component: str) -> dict[str, tuple[int, ...]]:
        return {k: self.file.tensors[f].shape for k, f in self._route(component).items()}

    def dtypes(self, component: str) -> dict[str, torch.dtype]:
        return {k: self.file.tensors[f].dtype for k, f in self._route(component).items()}

    def _route(self, component: str) -> dict[str, str]:
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; expected one of {', '.join(COMPONENTS)}")
        if self.is_bare:
            found = _guess_bare_component(self.file.tensors)
            if found != component:
                raise CheckpointError(
                    f"'{self.name}' holds a {TITLES.get(found, 'different model')}, not a {TITLES[component]}"
                )
            return {k: k for k in self.file.tensors}
        route = self.routes.get(component)
        if not route:
            held = ", ".join(TITLES[c] for c in self.components) or "nothing LTX-AV can use"
            raise CheckpointError(f"'{self.name}' ({self.variant_name}) has no {TITLES[component]}; it holds: {held}")
        return route

    # -- configs -------------------------------------------------------------------------------------------

    def config_section(self, component: str) -> Mapping[str, Any]:
        if component == "gemma":
            if self.gemma_config is None:
                raise CheckpointError(f"'{self.name}' has no 'gemma_config' metadata: it holds no Gemma text encoder")
            return self.gemma_config
        if component == "text_encoder" and "transformer" not in self.raw_config and self.gemma_config is not None:
            raise CheckpointError(
                f"'{self.name}' holds the LTX-2.5 text projection, whose connectors and config ship in the "
                "transformer file (diffusion_models/ltx-2.5-*-transformer-*.safetensors); open both together with "
                "open_model_files(transformer=..., text_encoder=...)"
            )
        if component == "duration_head":
            # Every value has a default in the reference, so an absent or empty section is a usable config.
            section = self.raw_config.get("duration_head")
            return section if isinstance(section, Mapping) else {}
        name = CONFIG_SECTIONS[component]
        section = self.raw_config.get(name)
        nested = any(key in self.raw_config for key in set(CONFIG_SECTIONS.values()))
        if section is None and not nested and len(self.components) == 1:
            # A file of one component may carry that component's config as the whole object.
            section = self.raw_config
        if not isinstance(section, Mapping) or not section:
            raise CheckpointError(
                f"'{self.name}' has no '{name}' section in its metadata config, so the {TITLES[component]} "
                "architecture is unknown"
            )
        return section

    def component_config(self, component: str) -> Any:
        """The typed config of one component; :class:`CheckpointError` names the file if it is unusable."""
        if component not in self._configs:
            section = self.config_section(component)
            try:
                if component == "transformer":
                    cfg = TransformerConfig.from_dict(section, self.model_version)
                elif component == "text_encoder":
                    cfg = TextEncoderConfig.from_dict(
                        section,
                        self._projection_shape(),
                        gemma_hidden_size=_gemma_hidden_size(self.gemma_config),
                        model_version=self.model_version,
                    )
                elif component in ("duration_head", "gemma"):
                    cfg = dict(section)  # read by their own loaders
                elif component == "video_vae":
                    cfg = VideoVAEConfig.from_dict(section)
                elif component == "audio_vae":
                    cfg = AudioVAEConfig.from_dict(section)
                elif component == "upsampler":
                    from .upsampler import UpsamplerConfig  # the upsampler module imports this one

                    cfg = UpsamplerConfig.from_dict(section)
                else:
                    cfg = VocoderConfig.from_dict(section)
            except ConfigError as e:
                raise CheckpointError(f"'{self.name}' ({self.variant_name}): {e}") from e
            self._configs[component] = cfg
        return self._configs[component]

    def _projection_shape(self) -> tuple[int, ...] | None:
        shapes = self.shapes("text_encoder") if "text_encoder" in self.components else {}
        for key in (
            "text_embedding_projection.aggregate_embed.weight",
            "text_embedding_projection.video_aggregate_embed.weight",
        ):
            if key in shapes:
                return shapes[key]
        return None

    @property
    def config(self) -> CheckpointConfig:
        """Configs of every component the file holds."""
        fields = {c: self.component_config(c) for c in self.components if c not in _UNTYPED}
        return CheckpointConfig(variant=self.variant, model_version=self.model_version, **fields)

    # -- tensors -------------------------------------------------------------------------------------------

    def state_dict(
        self,
        component: str,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        *,
        only: Iterable[str] | None = None,
        keep_float8: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """A component's tensors under our module keys.

        ``dtype``: cast floating tensors to it (``None`` keeps the stored dtype). ``only``: module-key prefixes
        to keep (e.g. ``("decoder.", "per_channel_statistics.")``). ``progress(done, total)`` is called per tensor.
        """
        route = self._route(component)
        if only is not None:
            prefixes = tuple(only)
            route = {k: f for k, f in route.items() if k.startswith(prefixes)}
        device = torch.device(device) if device is not None else torch.device("cpu")
        scales = {k[: -len("_scale")]: f for k, f in route.items() if k.endswith(".weight_scale")}
        out: dict[str, torch.Tensor] = {}
        total = len(route)
        for done, (key, file_key) in enumerate(route.items(), 1):
            if key.endswith((".weight_scale", ".input_scale")):
                continue
            stored = self.file.tensor(file_key)
            scale_key = scales.get(key)
            if stored.dtype in FLOAT8_DTYPES and not (keep_float8 and scale_key is None):
                tensor = stored.to(device=device, dtype=torch.float32)
                if scale_key is not None:
                    tensor = tensor * self.file.tensor(scale_key).to(device=device, dtype=torch.float32)
                tensor = tensor.to(dtype or torch.bfloat16)
            elif dtype is not None and stored.is_floating_point() and stored.dtype not in FLOAT8_DTYPES:
                tensor = stored.to(device=device, dtype=dtype)
            else:
                tensor = stored.to(device=device)
            if tensor is not stored:  # a copy exists now; let the kernel drop the mapped pages
                self.file.release(file_key)
            out[key] = tensor
            if progress is not None:
                progress(done, total)
        if scales:
            log.info(
                "%s: folded %d float8 weight scales into the %s weights", self.name, len(scales), TITLES[component]
            )
        return out

    def __repr__(self) -> str:
        return f"Checkpoint({self.name!r}, {self.variant_name}, components={list(self.components)})"


_FILE_PREFIXES = tuple(p for pairs in COMPONENTS.values() for p, _ in pairs[:1])


def _has_any(keys: Iterable[str], suffix: str) -> bool:
    return any(k.endswith(suffix) for k in keys)


def _guess_bare_component(keys: Mapping[str, TensorInfo]) -> str | None:
    """Which component a file of bare module keys holds (used to route it and to word errors)."""
    if "transformer_blocks.0.attn1.to_q.weight" in keys or "audio_patchify_proj.weight" in keys:
        return "transformer"
    if any(k.startswith(("text_embedding_projection.", "video_embeddings_connector.")) for k in keys):
        return "text_encoder"
    for key in ("decoder.conv_in.conv.weight", "encoder.conv_in.conv.weight"):
        if key in keys:
            return "video_vae" if len(keys[key].shape) == 5 else "audio_vae"
    if "conv_pre.weight" in keys or any(k.startswith("bwe_generator.") for k in keys):
        return "vocoder"
    if any(k.startswith(("initial_conv.", "post_upsample_res_blocks.", "final_conv.")) for k in keys):
        return "upsampler"
    return None


def _gemma_family(config: Mapping[str, Any]) -> str:
    """``"gemma3"`` / ``"gemma4"`` from a Hugging Face ``model_type`` (``gemma4_unified``, ``gemma3_text``, ...)."""
    kind = config.get("model_type")
    kind = kind if isinstance(kind, str) else ""
    for family in ("gemma3", "gemma4"):
        if kind.startswith(family):
            return family
    return kind


def _gemma_hidden_size(config: Mapping[str, Any] | None) -> int | None:
    """The text model's hidden width from a Gemma config (nested ``text_config`` or flat), if it says."""
    if config is None:
        return None
    text = config.get("text_config")
    for source in (text if isinstance(text, Mapping) else {}, config):
        value = source.get("hidden_size")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _gemma_version(ckpt: Checkpoint) -> str | None:
    """The Gemma version a text-encoder file is, or the one a transformer file was trained with."""
    for source in (ckpt.gemma_config, ckpt.gemma_source):
        value = (source or {}).get("gemma_version")
        if isinstance(value, str):
            return value
    return None


def _label(variants: frozenset[str]) -> str | None:
    """One release name for messages and defaults: the only one, or LTX-2.3 for parts LTX-2.5 kept unchanged (its
    audio VAE and vocoder), as files before LTX-2.5 were read; ``None`` when nothing tells."""
    if len(variants) == 1:
        return next(iter(variants))
    return LTX23 if variants == {LTX23, LTX25} else None


def _versions(variants: frozenset[str]) -> str:
    if not variants or len(variants) == len(VARIANTS):
        return "an unknown release"
    return " or ".join(v for v in VARIANTS if v in variants)


@dataclass(frozen=True)
class FileIdentity:
    """What one model file is, read from its header alone.

    ``role``: see :attr:`Checkpoint.role`. ``variants``: the releases it can belong to (one for a file that says;
    LTX-2.3 *and* LTX-2.5 for an audio VAE that gives no ``model_version``; empty when nothing tells).
    ``video_decoder``: ``"conv"`` / ``"diffusion"`` for a file with a video VAE. ``gemma_version``: the Gemma of a
    text-encoder file, or the one a transformer file expects (``"gemma4-12b-ltx-v1"`` for LTX-2.5).
    """

    path: str
    name: str
    role: str
    components: tuple[str, ...]
    variants: frozenset[str]
    model_version: str | None
    video_decoder: str | None = None
    gemma_version: str | None = None

    @property
    def variant(self) -> str | None:
        return _label(self.variants)

    @property
    def release(self) -> str:
        """The release for a message: ``"LTX-2.5"``, ``"LTX-2.3 or LTX-2.5"``, ``"an unknown release"``."""
        return _versions(self.variants)

    def describe(self) -> str:
        title = "checkpoint" if self.role == "checkpoint" else TITLES.get(self.role, self.role)
        if self.role == "text_encoder" and "gemma" in self.components:
            title = "text encoder"
        if self.video_decoder == "diffusion":
            title += " (diffusion decoder)"
        return f"'{self.name}' ({self.release} {title})"


def identify(path: str | os.PathLike) -> FileIdentity:
    """Which release and which part a ``.safetensors`` file is, from its header (no tensor is read)."""
    return open_checkpoint(path).identity


def check_same_release(files: Iterable[Checkpoint | FileIdentity]) -> frozenset[str]:
    """The releases every file can belong to; :class:`CheckpointError` naming two files that cannot belong to
    one release (e.g. an LTX-2.5 transformer with the video VAE of an LTX-2.3 checkpoint). Files that do not tell
    their release (no evidence) fit any."""
    ids = [f.identity if isinstance(f, Checkpoint) else f for f in files]
    common = frozenset(VARIANTS)
    told: list[FileIdentity] = []
    for current in ids:
        if not current.variants:
            continue
        if not common & current.variants:
            other = next(t for t in told if not t.variants & current.variants)
            raise CheckpointError(
                f"{current.describe()} and {other.describe()} come from different releases, and the files of one "
                f"model must come from one release: use the {other.release} {_slot_title(current.role)} in place "
                f"of '{current.name}' (or the {current.release} counterparts of the other files)"
            )
        common &= current.variants
        told.append(current)
    return common


def _slot_title(role: str) -> str:
    if role == "checkpoint":
        return "checkpoint"
    return "text encoder" if role == "text_encoder" else TITLES.get(role, role)


# What each slot of open_model_files needs the file to hold (any one of them).
_SLOT_COMPONENTS = {
    "transformer": ("transformer",),
    "text_encoder": ("gemma", "text_encoder"),
    "video_vae": ("video_vae",),
    "audio_vae": ("audio_vae",),
    "upsampler": ("upsampler",),
    "duration_head": ("duration_head",),
}


class JoinedComponent:
    """One component whose tensors lie in several files, read like a :class:`Checkpoint` (``build_component``
    accepts it). LTX-2.5's text path: the connectors and their config ship in the transformer file, the projection
    in the text-encoder file; the Gemma config there gives the width the projection reads."""

    def __init__(self, component: str, parts: tuple[Checkpoint, ...], config: Any, variant_name: str):
        self.component = component
        self.parts = parts
        self.name = " + ".join(p.name for p in parts)
        self.path = self.name
        self.variant_name = variant_name
        self._config = config
        seen: dict[str, str] = {}
        for part in parts:
            for key in part.keys(component):
                if key in seen:
                    raise CheckpointError(
                        f"'{part.name}' and '{seen[key]}' both hold '{_clip(key)}' of the {TITLES[component]}; "
                        "give each part once"
                    )
                seen[key] = part.name

    def _check(self, component: str) -> None:
        if component != self.component:
            raise CheckpointError(f"{self.name} joins the {TITLES[self.component]}, not the {TITLES[component]}")

    def component_config(self, component: str) -> Any:
        self._check(component)
        return self._config

    def keys(self, component: str) -> list[str]:
        self._check(component)
        return [k for part in self.parts for k in part.keys(component)]

    def shapes(self, component: str) -> dict[str, tuple[int, ...]]:
        self._check(component)
        return {k: v for part in self.parts for k, v in part.shapes(component).items()}

    def state_dict(self, component: str, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        self._check(component)
        out: dict[str, torch.Tensor] = {}
        for part in self.parts:
            out.update(part.state_dict(component, *args, **kwargs))
        return out


class ModelFiles:
    """The files of one model, opened together: an LTX-2 / LTX-2.3 monolith, or LTX-2.5's split files, each
    checked to hold its part and to belong to one release (:func:`open_model_files`).

    :meth:`source` gives what ``build_component`` reads a component from: the file that holds it, or for LTX-2.5's
    text path a :class:`JoinedComponent` of the transformer and text-encoder files.
    """

    def __init__(self, files: Mapping[str, Checkpoint]):
        self.files = dict(files)
        self.variants = check_same_release(self.files.values())
        self.variant = _label(self.variants)

    @property
    def variant_name(self) -> str:
        return self.variant or "LTX-2 family"

    def source(self, component: str) -> Checkpoint | JoinedComponent:
        """The file (or joined files) to build ``component`` from; :class:`CheckpointError` if none holds it."""
        if component == "text_encoder":
            return self._text_path()
        holders = [c for c in self._ordered() if component in c.components]
        if not holders:
            given = ", ".join(c.identity.describe() for c in self.files.values()) or "no files"
            raise CheckpointError(f"none of the given files holds the {TITLES.get(component, component)} ({given})")
        return holders[0]

    def _ordered(self) -> list[Checkpoint]:
        # A part's own slot first (a monolith given as the transformer also holds a video VAE).
        return sorted(self.files.values(), key=lambda c: c.role == "checkpoint")

    def _text_path(self) -> Checkpoint | JoinedComponent:
        parts = [c for c in self._ordered() if "text_encoder" in c.components]
        if not parts:
            raise CheckpointError("none of the given files holds the text projection and connectors")
        with_config = [c for c in parts if isinstance(c.raw_config.get("transformer"), Mapping)]
        unique = list(dict.fromkeys(parts))
        if len(unique) == 1:
            return unique[0]
        if not with_config:
            raise CheckpointError(
                f"{' and '.join(c.name for c in unique)} hold parts of the text path but none has the transformer "
                "config that describes it"
            )
        host = with_config[0]
        projection = next((c for c in unique if c._projection_shape() is not None), None)
        gemma = next((c.gemma_config for c in unique if c.gemma_config is not None), None)
        try:
            config = TextEncoderConfig.from_dict(
                host.config_section("text_encoder"),
                projection._projection_shape() if projection is not None else None,
                gemma_hidden_size=_gemma_hidden_size(gemma),
                model_version=host.model_version,
            )
        except ConfigError as e:
            raise CheckpointError(f"{' + '.join(c.name for c in unique)} ({self.variant_name}): {e}") from e
        return JoinedComponent("text_encoder", tuple(unique), config, self.variant_name)


def open_model_files(
    *,
    checkpoint: str | os.PathLike | Checkpoint | None = None,
    transformer: str | os.PathLike | Checkpoint | None = None,
    text_encoder: str | os.PathLike | Checkpoint | None = None,
    video_vae: str | os.PathLike | Checkpoint | None = None,
    audio_vae: str | os.PathLike | Checkpoint | None = None,
    upsampler: str | os.PathLike | Checkpoint | None = None,
    duration_head: str | os.PathLike | Checkpoint | None = None,
) -> ModelFiles:
    """Open the files of one model: a ``checkpoint`` (monolith) and/or one file per part (LTX-2.5's split
    release; any part may also come from a monolith). Each file must hold its slot's part, and all must belong to
    one release: :class:`CheckpointError` names the file and what it is otherwise."""
    given = {
        "checkpoint": checkpoint,
        "transformer": transformer,
        "text_encoder": text_encoder,
        "video_vae": video_vae,
        "audio_vae": audio_vae,
        "upsampler": upsampler,
        "duration_head": duration_head,
    }
    files: dict[str, Checkpoint] = {}
    for slot, value in given.items():
        if value is None:
            continue
        ckpt = value if isinstance(value, Checkpoint) else open_checkpoint(value)
        wanted = _SLOT_COMPONENTS.get(slot)
        if wanted is not None and not set(wanted) & set(ckpt.components):
            title = "text encoder" if slot == "text_encoder" else TITLES[slot]
            raise CheckpointError(
                f"{ckpt.identity.describe()} was given as the {title} but holds no {title} "
                f"(it holds: {', '.join(TITLES[c] for c in ckpt.components) or 'nothing LTX-AV can use'})"
            )
        files[slot] = ckpt
    if not files:
        raise InputError("open_model_files needs at least one file")
    return ModelFiles(files)


# ---------------------------------------------------------------------------------------------------------------
# Putting a state dict into a module


M = TypeVar("M", bound=torch.nn.Module)


def check_keys(
    module: torch.nn.Module,
    shapes: Mapping[str, tuple[int, ...]],
    *,
    component: str,
    source: str,
    variant: str,
) -> None:
    """Raise one :class:`CheckpointError` listing missing, unexpected and wrong-shape keys, if there are any."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    wrong = [(k, expected[k], tuple(shapes[k])) for k in expected if k in shapes and tuple(shapes[k]) != expected[k]]
    if not (missing or unexpected or wrong):
        return
    counts = []
    details = []
    if missing:
        counts.append(f"{len(missing)} missing")
        details.append("missing: " + _first(missing))
    if unexpected:
        counts.append(f"{len(unexpected)} unexpected")
        details.append("unexpected: " + _first(unexpected))
    if wrong:
        counts.append(f"{len(wrong)} with the wrong shape")
        details.append("wrong shape: " + _first([f"{k} expected {list(e)} found {list(f)}" for k, e, f in wrong]))
    raise CheckpointError(
        f"{variant} {TITLES.get(component, component)} from '{os.path.basename(source)}' does not match the "
        f"architecture in its config: {', '.join(counts)} of {len(expected)} expected tensors. " + "; ".join(details)
    )


def _first(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" (and {len(items) - n} more)" if len(items) > n else "")


def load_strict(
    module: M,
    state_dict: Mapping[str, torch.Tensor],
    *,
    component: str,
    source: str,
    variant: str,
    device: torch.device | str | None = None,
) -> M:
    """Put ``state_dict`` into ``module`` (typically built on the meta device), refusing any key mismatch.

    Tensors are assigned, not copied. Modules with buffers computed rather than stored implement
    ``init_computed_buffers(device)``, which is called afterwards; anything still on the meta device is an error.
    """
    check_keys(
        module, {k: tuple(v.shape) for k, v in state_dict.items()}, component=component, source=source, variant=variant
    )
    module.load_state_dict(state_dict, strict=True, assign=True)
    device = torch.device(device) if device is not None else next(iter(state_dict.values())).device
    for sub in module.modules():
        init = getattr(sub, "init_computed_buffers", None)
        if init is not None:
            init(device)
    never_filled = [n for n, t in chain(module.named_parameters(), module.named_buffers()) if t.is_meta]
    if never_filled:
        raise CheckpointError(
            f"{variant} {TITLES.get(component, component)} from '{os.path.basename(source)}': "
            f"{len(never_filled)} tensors were never filled: {_first(never_filled)}"
        )
    module.requires_grad_(False)
    return module.eval()


# ---------------------------------------------------------------------------------------------------------------
# The config against the file, before anything is built

# Repeated modules a config sizes, per component: (module-key prefix of the numbered modules, config key, count).
# A count that disagrees with the numbered modules the file holds means the config does not describe this file;
# building from it could create any number of blocks (``num_layers: 1e9``), so it is refused first.


def _repeated_modules(component: str, config: Any) -> list[tuple[str, str, int]]:
    if component == "transformer":
        return [("transformer_blocks", "transformer.num_layers", config.num_layers)]
    if component == "text_encoder":
        return [
            (
                "video_embeddings_connector.transformer_1d_blocks",
                "transformer.connector_num_layers",
                config.video_connector.num_layers,
            ),
            (
                "audio_embeddings_connector.transformer_1d_blocks",
                "transformer.audio_connector_num_layers",
                config.audio_connector.num_layers,
            ),
        ]
    if component == "video_vae":
        return [
            ("encoder.down_blocks", "vae.encoder_blocks (entries)", len(config.encoder_blocks)),
            ("decoder.up_blocks", "vae.decoder_blocks (entries)", len(config.decoder_blocks)),
        ]
    if component == "audio_vae":
        levels = len(config.ch_mult)
        return [
            ("encoder.down", "audio_vae.model.params.ddconfig.ch_mult (entries)", levels),
            ("decoder.up", "audio_vae.model.params.ddconfig.ch_mult (entries)", levels),
        ]
    if component == "vocoder":
        found = []
        stages = (("", "vocoder", config.generator),)
        if config.bwe is not None:
            stages = (("vocoder.", "vocoder.vocoder", config.generator), ("bwe_generator.", "vocoder.bwe", config.bwe))
        for prefix, section, generator in stages:
            count = len(generator.upsample_rates)
            found.append((prefix + "ups", f"{section}.upsample_rates (entries)", count))
            found.append(
                (
                    prefix + "resblocks",
                    f"{section}.upsample_rates x {section}.resblock_kernel_sizes (entries)",
                    count * len(generator.resblock_kernel_sizes),
                )
            )
        return found
    if component == "upsampler":
        return [
            ("res_blocks", "config.num_blocks_per_stage", config.num_blocks_per_stage),
            ("post_upsample_res_blocks", "config.num_blocks_per_stage", config.num_blocks_per_stage),
        ]
    return []


def _numbered(keys: Iterable[str], prefix: str) -> int:
    """How many numbered modules ``prefix.N.*`` the keys hold (the highest index + 1; 0 for none)."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    indices = [int(m.group(1)) for k in keys if (m := pattern.match(k))]
    return max(indices) + 1 if indices else 0


def check_config_against_file(ckpt: Checkpoint, component: str, config: Any, only: Iterable[str] | None = None) -> None:
    """Refuse a config whose repeated-module counts differ from the numbered modules in the file's header.

    ``only``: module-key prefixes that will be loaded; counts of other parts are not compared.
    """
    keys = ckpt.keys(component)
    prefixes = tuple(only) if only is not None else None
    for prefix, key, expected in _repeated_modules(component, config):
        if prefixes is not None and not (prefix + ".").startswith(prefixes):
            continue
        found = _numbered(keys, prefix)
        if found != expected:
            raise CheckpointError(
                f"'{ckpt.name}' ({ckpt.variant_name}): config key '{key}' says {expected:,} but the file holds "
                f"{found:,} numbered '{prefix}.N' modules of its {TITLES[component]}; the config does not describe "
                "this file's tensors (a damaged or hand-edited config?)"
            )


# How many parameters and buffers a factory may register per tensor of the file (plus a fixed allowance) before
# the build is stopped: modules also hold computed, unsaved buffers, but never a multiple of the stored tensors.
_BUILD_TENSORS_PER_FILE_TENSOR = 2
_BUILD_TENSORS_ALLOWANCE = 256


@contextmanager
def _bounded_build(limit: int, stop: Callable[[int], Exception]) -> Iterator[None]:
    """Count parameters and buffers registered by this thread; raise ``stop(limit)`` once more than ``limit``."""
    thread = threading.get_ident()
    count = 0

    def hook(module: torch.nn.Module, name: str, tensor: Any) -> None:
        nonlocal count
        if tensor is not None and threading.get_ident() == thread:
            count += 1
            if count > limit:
                raise stop(limit)

    register = torch.nn.modules.module
    handles = (
        register.register_module_parameter_registration_hook(hook),
        register.register_module_buffer_registration_hook(hook),
    )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _build_on_meta(ckpt: Checkpoint, component: str, factory: Callable[[Any], M], config: Any) -> M:
    stored = len(ckpt.keys(component))
    limit = _BUILD_TENSORS_PER_FILE_TENSOR * stored + _BUILD_TENSORS_ALLOWANCE

    def stop(limit: int) -> CheckpointError:
        return CheckpointError(
            f"'{ckpt.name}' ({ckpt.variant_name}): the {TITLES[component]} its config describes has more than "
            f"{limit:,} tensors, but the file stores {stored:,} for it; the config does not describe this file "
            "(a damaged or hand-edited config?)"
        )

    try:
        with _bounded_build(limit, stop), torch.device("meta"):
            return factory(config)
    except ConfigError as e:  # a value the factory checks itself (an unknown VAE block, ...): name the file
        raise CheckpointError(f"'{ckpt.name}' ({ckpt.variant_name}): {e}") from e
    except LTXError:
        raise
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as e:
        raise CheckpointError(
            f"'{ckpt.name}' ({ckpt.variant_name}): cannot build the {TITLES[component]} its config describes "
            f"({type(e).__name__}: {_clip(str(e), 200)}); the config holds sizes no network has"
        ) from e


def build_component(
    checkpoint: Checkpoint | JoinedComponent | str | os.PathLike,
    component: str,
    factory: Callable[[Any], M],
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    only: Iterable[str] | None = None,
    keep_float8: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> M:
    """Build ``factory(config)`` on the meta device and fill it from the checkpoint, strictly.

    The config is compared with the file's tensor inventory before anything is built (repeated-module counts,
    then a bound on the tensors the build may create), and keys and shapes are checked against the file header
    before any tensor is read.
    """
    ckpt = checkpoint if isinstance(checkpoint, (Checkpoint, JoinedComponent)) else open_checkpoint(checkpoint)
    config = ckpt.component_config(component)
    only = tuple(only) if only is not None else None
    check_config_against_file(ckpt, component, config, only)
    module = _build_on_meta(ckpt, component, factory, config)
    shapes = ckpt.shapes(component)
    shapes = {k: v for k, v in shapes.items() if not k.endswith((".weight_scale", ".input_scale"))}
    if only is not None:
        shapes = {k: v for k, v in shapes.items() if k.startswith(only)}
    check_keys(module, shapes, component=component, source=ckpt.path, variant=ckpt.variant_name)
    log.info("loading %s %s from %s", ckpt.variant_name, TITLES[component], ckpt.name)
    sd = ckpt.state_dict(component, dtype, device, only=only, keep_float8=keep_float8, progress=progress)
    return load_strict(module, sd, component=component, source=ckpt.path, variant=ckpt.variant_name, device=device)
