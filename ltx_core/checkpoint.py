"""Reading official LTX-2 / LTX-2.3 ``.safetensors`` checkpoints.

A single-file ("monolith") checkpoint holds every component under a top-level prefix; :data:`COMPONENTS` is the
whole translation table between file keys and our module keys. A file holding one component, in the monolith's
key layout or with bare module keys, is read the same way.

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
    AudioVAEConfig,
    CheckpointConfig,
    TextEncoderConfig,
    TransformerConfig,
    VideoVAEConfig,
    VocoderConfig,
    detect_variant,
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
    # Upsampler files are their own bare file (no prefix); they never share a file with the others.
    "upsampler": (),
}

TITLES = {
    "transformer": "transformer",
    "text_encoder": "text projection and connectors",
    "video_vae": "video VAE",
    "audio_vae": "audio VAE",
    "vocoder": "vocoder",
    "upsampler": "latent upsampler",
}

# Where each component's architecture lives in metadata["config"].
CONFIG_SECTIONS = {
    "transformer": "transformer",
    "text_encoder": "transformer",
    "video_vae": "vae",
    "audio_vae": "audio_vae",
    "vocoder": "vocoder",
    "upsampler": "upsampler",  # the whole flat config of an upsampler file
}

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
    """Open an LTX-2 / LTX-2.3 checkpoint (a monolith or a file with one component) without reading its tensors."""
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
        self.raw_config = self._read_config()
        self.routes = self._route_keys()
        self.variant = detect_variant(self.raw_config, self.model_version)
        self._check_family()
        self._configs: dict[str, Any] = {}
        if self.variant and self.model_version and detect_variant({}, self.model_version) not in (None, self.variant):
            log.warning(
                "%s: metadata model_version %r disagrees with its config, which describes %s; using the config",
                self.name,
                self.model_version,
                self.variant,
            )

    # -- metadata ------------------------------------------------------------------------------------------

    def _read_config(self) -> dict[str, Any]:
        text = self.metadata.get("config")
        if text is None:
            raise CheckpointError(
                f"'{self.name}' has no architecture config: its safetensors metadata lacks the 'config' entry that "
                "official LTX-2 / LTX-2.3 files carry. Files converted by other tools (e.g. diffusers folders) are "
                "not supported; use the official single-file checkpoint."
            )
        if len(text) > _MAX_CONFIG_CHARS:
            raise CheckpointError(
                f"'{self.name}': metadata 'config' is {len(text):,} characters long; an LTX-2 architecture config "
                f"is a few thousand (at most {_MAX_CONFIG_CHARS:,} are read)"
            )
        try:
            config = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, integers of thousands of digits, deep nesting
            reason = "nested too deeply" if isinstance(e, RecursionError) else _clip(str(e), 200)
            raise CheckpointError(f"'{self.name}': metadata 'config' is not valid JSON ({reason})") from e
        if not isinstance(config, dict):
            raise CheckpointError(
                f"'{self.name}': metadata 'config' should be a JSON object, found {type(config).__name__}"
            )
        return config

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
                f"'{self.name}' does not look like an LTX-2 / LTX-2.3 checkpoint: none of its {len(keys)} tensors "
                f"start with {', '.join(repr(p) for p in _FILE_PREFIXES)} (first keys: {sample})"
            )
        looks_video_only = (
            (transformer or self.is_bare)
            and _has_any(keys, "patchify_proj.weight")
            and not _has_any(keys, "audio_patchify_proj.weight")
        )
        if looks_video_only:
            raise CheckpointError(
                f"'{self.name}' is an LTX-Video (0.9.x) checkpoint: its transformer has no audio stream. LTX-AV runs "
                "LTX-2 and LTX-2.3; load LTX-Video files with ComfyUI's core LTXV nodes."
            )
        if self.model_version and self.model_version.startswith(("2.5", "3")):
            raise CheckpointError(
                f"'{self.name}' is model version {self.model_version}; LTX-AV supports LTX-2 and LTX-2.3 "
                "(LTX-2.5 needs Gemma 4 and a newer architecture)."
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
                    cfg = TransformerConfig.from_dict(section)
                elif component == "text_encoder":
                    cfg = TextEncoderConfig.from_dict(section, self._projection_shape())
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
        fields = {c: self.component_config(c) for c in self.components if c != "upsampler"}
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
    checkpoint: Checkpoint | str | os.PathLike,
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
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint)
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
