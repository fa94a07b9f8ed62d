"""Latent files (``.ltx.safetensors``): whole LATENT dicts, video and optional audio, with every key they carry.

A LATENT dict holds more than its ``samples`` (frame rate, image conditions, noise masks, padding records), so a
file stores the dicts' structure as JSON in the safetensors metadata and their tensors beside it:

* ``metadata["format"]`` is :data:`FORMAT`;
* ``metadata["ltx_av_latents"]`` is ``{"video": node, "audio": node or null}``, where a node is a JSON scalar,
  ``{"__tensor__": name}``, ``{"__nested__": [tensor nodes]}`` (a nested tensor), ``{"__dict__": {key: node}}`` or
  ``{"__list__": [node, ...]}``;
* every tensor is stored once under its own name.

Writing never leaves a partial file: the file is written under a temporary name in the same folder and given its
final name only when complete, without replacing a file of that name. Reading goes through the pack's validated
safetensors reader and checks the whole layout, so a damaged, foreign or hand-made file is refused with an error
naming it, and the tensors returned own their memory (nothing stays mapped from the file).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import save_file

from .checkpoint import _DTYPES, SafetensorsFile
from .checks import fits_memory
from .errors import CheckpointError, InputError

FORMAT = "ltx-av-latents-1"
LAYOUT_KEY = "ltx_av_latents"
SUFFIX = ".ltx.safetensors"

# Nesting a LATENT dict may have (dicts in lists in dicts ...); real ones use 4.
MAX_DEPTH = 32
# A layout is the JSON of a few dicts; far more than this is not a file we wrote.
MAX_LAYOUT_CHARS = 16 * 2**20
_STORABLE = frozenset(_DTYPES.values())


@dataclass
class EncodedLatents:
    """What goes into a latent file: tensors by name (owning or read-only views of the inputs) and metadata."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


# -- encoding --------------------------------------------------------------------------------------------------


class _Encoder:
    def __init__(self, node: str):
        self.node = node
        self.tensors: dict[str, torch.Tensor] = {}
        self.storages: set[tuple[int, int]] = set()

    def value(self, value: Any, where: str, name: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            shown = where if len(where) <= 80 else where[:77] + "..."
            raise InputError(
                f"{self.node}: {shown} is nested more than {MAX_DEPTH} levels deep (a dict that contains itself?); "
                "a LATENT cannot be saved like that"
            )
        if isinstance(value, torch.Tensor):
            if getattr(value, "is_nested", False):
                parts = value.unbind()
                return {"__nested__": [self.tensor(t, f"{where}[{i}]", f"{name}/{i}") for i, t in enumerate(parts)]}
            return self.tensor(value, where, name)
        if isinstance(value, dict):
            bad = next((k for k in value if not isinstance(k, str)), None)
            if bad is not None:
                raise InputError(f"{self.node}: {where} has a key {bad!r} that is not text; it cannot be saved")
            return {
                "__dict__": {k: self.value(v, f"{where}[{k!r}]", f"{name}/{k}", depth + 1) for k, v in value.items()}
            }
        if isinstance(value, (list, tuple)):
            return {"__list__": [self.value(v, f"{where}[{i}]", f"{name}/{i}", depth + 1) for i, v in enumerate(value)]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise InputError(
            f"{self.node}: {where} holds a {type(value).__name__}, which a latent file cannot hold (it keeps tensors, "
            "numbers, text, lists and dicts)"
        )

    def tensor(self, value: torch.Tensor, where: str, name: str) -> dict[str, str]:
        if value.layout != torch.strided or value.is_meta or value.dtype not in _STORABLE:
            kind = value.dtype if value.dtype not in _STORABLE else ("meta" if value.is_meta else value.layout)
            raise InputError(
                f"{self.node}: {where} is a {kind} tensor, which a latent file cannot hold (dense tensors of "
                f"{', '.join(str(d).replace('torch.', '') for d in _DTYPES.values())})"
            )
        tensor = value.detach().cpu().contiguous()
        if tensor.numel():
            storage = tensor.untyped_storage()
            key = (storage.data_ptr(), storage.nbytes())
            # safetensors refuses tensors that share memory (the same tensor twice, a mask that is a view of the
            # samples): store such tensors as copies.
            if key in self.storages or storage.nbytes() != tensor.numel() * tensor.element_size():
                tensor = tensor.clone()
            else:
                self.storages.add(key)
        unique, n = name, 1
        while unique in self.tensors:
            n += 1
            unique = f"{name}#{n}"
        self.tensors[unique] = tensor
        return {"__tensor__": unique}


def encode_latents(video: dict, audio: dict | None = None, node: str = "LTXSaveLatent") -> EncodedLatents:
    """Turn LATENT dicts into what a latent file holds; refuses what cannot be stored (naming where it is)."""
    encoder = _Encoder(node)
    layout = {
        "video": encoder.value(video, "video_latent", "video", 0),
        "audio": encoder.value(audio, "audio_latent", "audio", 0),
    }
    text = json.dumps(layout)
    if len(text) > MAX_LAYOUT_CHARS:
        raise InputError(
            f"{node}: the latents' keys and values other than tensors take {len(text):,} characters of JSON; a "
            f"latent file holds at most {MAX_LAYOUT_CHARS:,}"
        )
    return EncodedLatents(encoder.tensors, {LAYOUT_KEY: text, "format": FORMAT})


# -- writing ---------------------------------------------------------------------------------------------------


def write_latents(folder: str, stem: str, encoded: EncodedLatents, node: str = "LTXSaveLatent") -> str:
    """Write ``encoded`` to ``folder/<stem>_NNNNN.ltx.safetensors`` (the first free number) and return its path.

    The folder must exist. The file appears complete or not at all; an existing file is never replaced. A disk
    error (disk full, no permission) raises :class:`InputError` after removing whatever was written.
    """
    counter = 1
    while True:
        path = os.path.join(folder, f"{stem}_{counter:05d}{SUFFIX}")
        if os.path.lexists(path):
            counter += 1
            continue
        temp = os.path.join(folder, f".{stem}_{counter:05d}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            save_file(encoded.tensors, temp, metadata=encoded.metadata)
            if _publish(temp, path):
                return path
        except OSError as e:
            raise InputError(
                f"{node}: could not write '{os.path.basename(path)}' in '{folder}': {e.strerror or e}; nothing was "
                "written (free some disk space, or check that the folder is writable)"
            ) from e
        finally:
            _remove(temp)
        counter += 1  # another writer took the name in the meantime


def _remove(path: str) -> None:
    try:
        if os.path.lexists(path):
            os.unlink(path)
    except OSError:
        pass


def _publish(temp: str, path: str) -> bool:
    """Give the finished ``temp`` file the name ``path`` unless a file of that name exists; True when done."""
    try:
        os.link(temp, path)  # atomic and never replaces
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        if os.path.lexists(path):
            return False
        os.replace(temp, path)
        return True


# -- reading ---------------------------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, file: SafetensorsFile, label: str):
        self.file = file
        self.label = label
        self.used: set[str] = set()

    def corrupt(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.label} is damaged or was not written by Save Latent (video + audio): {what}")

    def tensor_name(self, node: Any, where: str) -> str:
        if not (isinstance(node, dict) and set(node) == {"__tensor__"} and isinstance(node["__tensor__"], str)):
            raise self.corrupt(f"{where} should name a tensor")
        name = node["__tensor__"]
        if name not in self.file.tensors:
            raise self.corrupt(f"{where} names the tensor {_short(name)}, which the file does not hold")
        if name in self.used:
            raise self.corrupt(f"the tensor {_short(name)} is used twice")
        self.used.add(name)
        return name

    def names(self, node: Any, where: str, depth: int = 0) -> None:
        """Check a layout node (before any tensor is read)."""
        if depth > MAX_DEPTH:
            raise self.corrupt(f"{where} is nested more than {MAX_DEPTH} levels deep")
        if node is None or isinstance(node, (bool, int, float, str)):
            return
        if not isinstance(node, dict) or len(node) != 1:
            raise self.corrupt(f"{where} is a JSON {type(node).__name__} where the layout has a marked value")
        ((kind, body),) = node.items()
        if kind == "__tensor__":
            self.tensor_name(node, where)
        elif kind == "__nested__":
            if not isinstance(body, list) or not body:
                raise self.corrupt(f"{where} is a nested tensor without parts")
            for i, part in enumerate(body):
                self.tensor_name(part, f"{where}[{i}]")
        elif kind == "__dict__":
            if not isinstance(body, dict):
                raise self.corrupt(f"{where} should hold a JSON object")
            for k, v in body.items():
                self.names(v, f"{where}[{_short(k)}]", depth + 1)
        elif kind == "__list__":
            if not isinstance(body, list):
                raise self.corrupt(f"{where} should hold a JSON list")
            for i, v in enumerate(body):
                self.names(v, f"{where}[{i}]", depth + 1)
        else:
            raise self.corrupt(f"{where} has the unknown marker {_short(kind)}")

    def value(self, node: Any, where: str) -> Any:
        if not isinstance(node, dict):
            return node
        ((kind, body),) = node.items()
        if kind == "__tensor__":
            return self.file.read(body)
        if kind == "__nested__":
            parts = [self.file.read(p["__tensor__"]) for p in body]
            try:
                return torch.nested.nested_tensor(parts)
            except (RuntimeError, ValueError, TypeError) as e:
                raise self.corrupt(f"the parts of the nested tensor {where} do not fit together ({e})") from e
        if kind == "__dict__":
            return {k: self.value(v, f"{where}[{_short(k)}]") for k, v in body.items()}
        return [self.value(v, f"{where}[{i}]") for i, v in enumerate(body)]


def _short(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def read_latents(path: str, label: str | None = None, *, available: int | None = None) -> tuple[dict, dict | None]:
    """The (video, audio) LATENT dicts of a latent file; ``audio`` is ``None`` if none was saved.

    ``label`` names the file in errors (default: its name). With ``available`` (bytes of memory), a file whose
    tensors need more than the usable share of it is refused before anything is read.
    """
    label = label or f"'{os.path.basename(path)}'"
    file = SafetensorsFile(path)
    try:
        text = file.metadata.get(LAYOUT_KEY)
        if text is None:
            raise InputError(
                f"{label} was not written by Save Latent (video + audio) (it has no LTX-AV latent layout); load other latent "
                "files with ComfyUI's Load Latent"
            )
        if file.metadata.get("format") != FORMAT:
            raise CheckpointError(
                f"{label} is in latent format {_short(str(file.metadata.get('format')))}; this LTX-AV reads "
                f"{FORMAT!r} (a file from a newer LTX-AV?)"
            )
        decoder = _Decoder(file, label)
        if len(text) > MAX_LAYOUT_CHARS:
            raise decoder.corrupt(f"its layout is {len(text):,} characters long")
        try:
            layout = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise decoder.corrupt(
                "its layout is not valid JSON ("
                + ("nested too deeply" if isinstance(e, RecursionError) else str(e))
                + ")"
            ) from e
        if not isinstance(layout, dict) or "video" not in layout or set(layout) - {"video", "audio"}:
            raise decoder.corrupt("its layout should be a JSON object with 'video' and 'audio'")
        for part in ("video", "audio"):
            node = layout.get(part)
            if part == "audio" and node is None:
                continue
            body = node.get("__dict__") if isinstance(node, dict) else None
            if not isinstance(body, dict) or not isinstance(body.get("samples"), dict):
                raise decoder.corrupt(f"its {part} latent is not a LATENT (a dict with a 'samples' tensor)")
            decoder.names(node, part)
            if set(body["samples"]) not in ({"__tensor__"}, {"__nested__"}):
                raise decoder.corrupt(f"the 'samples' of its {part} latent is not a tensor")
        if available is not None:
            needed = sum(file.tensors[name].end - file.tensors[name].start for name in decoder.used)
            fits_memory(needed, available, label, advice="free memory, or load it where there is more")
        video = decoder.value(layout["video"], "video")
        audio = decoder.value(layout.get("audio"), "audio")
    finally:
        file.close()
    return video, audio
