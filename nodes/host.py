"""The one place that talks to ComfyUI.

Every host service the pack uses goes through these functions: devices, interrupts, progress, model folders and
output folders. Inside ComfyUI they call its public modules; anywhere else (tests, ``python -m ltx_av``) they fall
back to plain PyTorch, folders under ``LTX_AV_MODELS_DIR`` / ``LTX_AV_OUTPUT_DIR`` (default ``./models`` and
``./output``) and a listener the caller may install.

We never import ``comfy.*`` ourselves: importing ``comfy.model_management`` outside ComfyUI's own start-up can
crash on machines without a GPU driver. Inside ComfyUI those modules are loaded before any pack, so we look them
up in ``sys.modules`` when a service is used.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import torch

from ..ltx_core.errors import InputError

log = logging.getLogger("ltx_av.host")

MODEL_SUFFIXES = (".safetensors",)

# Model folders the pack reads, with the sub-folder used outside ComfyUI.
FOLDER_KINDS = ("checkpoints", "text_encoders", "latent_upscale_models", "vae", "diffusion_models")


def _comfy(name: str) -> Any | None:
    return sys.modules.get(name)


def in_comfyui() -> bool:
    """True when running inside a ComfyUI server process."""
    return _comfy("comfy.model_management") is not None and _comfy("folder_paths") is not None


# -- devices -----------------------------------------------------------------------------------------------------


def compute_device() -> torch.device:
    """Where models run: ComfyUI's torch device, else CUDA if available, else the CPU."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    """Where idle weights wait: ComfyUI's offload device, else the CPU."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.unet_offload_device()
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    """Where node outputs (IMAGE, LATENT, AUDIO tensors) live between nodes."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        return mm.intermediate_device()
    return torch.device("cpu")


def free_memory(device: torch.device | None = None) -> None:
    """Ask the host to release cached memory (after an out-of-memory error, or before a big allocation)."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.soft_empty_cache()
    elif torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.empty_cache()


def available_memory(device: torch.device) -> int:
    """Bytes a new allocation on ``device`` can use now: ComfyUI's free-memory figure, else what the device (or,
    for the CPU, the system's MemAvailable) reports."""
    device = torch.device(device)
    mm = _comfy("comfy.model_management")
    if mm is not None and hasattr(mm, "get_free_memory"):
        return int(mm.get_free_memory(device))
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def is_out_of_memory(error: BaseException) -> bool:
    mm = _comfy("comfy.model_management")
    oom_types: tuple[type, ...] = (torch.OutOfMemoryError,)
    if mm is not None and hasattr(mm, "OOM_EXCEPTION"):
        oom_types += (mm.OOM_EXCEPTION,)
    return isinstance(error, oom_types)


# -- interrupts and progress ---------------------------------------------------------------------------------------


class Interrupted(Exception):
    """Raised between steps when the user asked to stop (outside ComfyUI; inside, ComfyUI's own exception)."""


_interrupt_requested = False


def request_interrupt() -> None:
    """Ask the running loop to stop at its next check (used by the CLI and tests outside ComfyUI)."""
    global _interrupt_requested
    _interrupt_requested = True


def check_interrupt() -> None:
    """Raise if the user asked to stop. Call between model calls and tiles."""
    global _interrupt_requested
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()
        return
    if _interrupt_requested:
        _interrupt_requested = False
        raise Interrupted("interrupted by the user")


ProgressListener = Callable[[int, int, Any], None]
_listener: ProgressListener | None = None


def set_progress_listener(listener: ProgressListener | None) -> None:
    """Outside ComfyUI, receive ``(value, total, preview_image_or_None)`` for every progress update."""
    global _listener
    _listener = listener


class Progress:
    """Progress of one long node operation; also checks for interrupts on every update."""

    def __init__(self, total: int):
        self.total = max(int(total), 1)
        self.value = 0
        utils = _comfy("comfy.utils")
        self._bar = utils.ProgressBar(self.total) if utils is not None and in_comfyui() else None

    def update(self, steps: int = 1, preview: Any | None = None) -> None:
        """Advance by ``steps``; ``preview`` is an optional PIL image shown in the UI."""
        self.set(self.value + steps, preview)

    def set(self, value: int, preview: Any | None = None) -> None:
        self.value = min(int(value), self.total)
        if self._bar is not None:
            shown = ("JPEG", preview, 512) if preview is not None else None
            self._bar.update_absolute(self.value, self.total, shown)
        elif _listener is not None:
            _listener(self.value, self.total, preview)
        check_interrupt()

    def callback(self) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback for ``ltx_core`` loops that sets this bar."""

        def report(done: int, total: int) -> None:
            self.total = max(int(total), 1)
            self.set(done)

        return report


# -- model and output folders --------------------------------------------------------------------------------------


def _fallback_models_dir() -> str:
    return os.path.abspath(os.environ.get("LTX_AV_MODELS_DIR", "models"))


def register_model_folders() -> None:
    """Add the folder kinds core ComfyUI may lack (``latent_upscale_models`` before ComfyUI 0.4)."""
    fp = _comfy("folder_paths")
    if fp is None:
        return
    # setdefault: keep the host's own definition where it has one. Unlike add_model_folder_path, this gives the
    # new kind an extension filter, so stray files do not show up in the list.
    fp.folder_names_and_paths.setdefault(
        "latent_upscale_models",
        ([os.path.join(fp.models_dir, "latent_upscale_models")], set(MODEL_SUFFIXES)),
    )


def model_folders(kind: str) -> list[str]:
    """Folders searched for a model kind (``checkpoints``, ``text_encoders``, ...)."""
    fp = _comfy("folder_paths")
    if fp is not None:
        try:
            return list(fp.get_folder_paths(kind))
        except KeyError:
            return []
    return [os.path.join(_fallback_models_dir(), kind)]


def walk(folder: str):
    """``os.walk(folder, followlinks=True)`` that enters each real folder once, so a symbolic link to an ancestor
    (a loop) or to a folder already listed is skipped. Sub-folders are visited in name order, real ones before
    links, so a file is first met under its own name."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort(key=lambda d: (os.path.islink(os.path.join(root, d)), d))
        yield root, dirs, sorted(files)


def unique_files(entries: list[tuple[str, str]]) -> list[str]:
    """The names of ``(name, path)`` entries, one per real file (links to the same file, loops), sorted.

    Of several names for one file the one reached without links wins, then the shortest, then the first in order.
    """
    best: dict[str, tuple[bool, int, str]] = {}
    for name, path in entries:
        real = os.path.realpath(path) if path else name
        rank = (bool(path) and real != os.path.abspath(path), name.count("/"), name)
        if real not in best or rank < best[real]:
            best[real] = rank
    return sorted(rank[2] for rank in best.values())


def list_models(kind: str, suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> list[str]:
    """Model files of a kind, as names relative to their folder (what a combo input shows), each real file once."""
    fp = _comfy("folder_paths")
    if fp is not None:
        try:
            names = fp.get_filename_list(kind)
        except KeyError:
            names = []
        names = [n for n in names if n.lower().endswith(suffixes)]
        return unique_files([(n, fp.get_full_path(kind, n) or "") for n in names])
    entries = []
    for folder in model_folders(kind):
        for root, _, files in walk(folder):
            for f in files:
                if f.lower().endswith(suffixes):
                    path = os.path.join(root, f)
                    entries.append((os.path.relpath(path, folder).replace(os.sep, "/"), path))
    return unique_files(entries)


def check_model_name(kind: str, name: object) -> str:
    """A model name as a combo gives it: text, relative to the folder, without '..' (nothing outside it is read)."""
    if not isinstance(name, str) or not name.strip():
        got = repr(name) if isinstance(name, str) else type(name).__name__
        raise InputError(f"model name must be a file name from the '{kind}' folders; got {got}")
    parts = name.replace("\\", "/").split("/")
    if "\0" in name or os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise InputError(
            f"model name {name[:80]!r} is not a name inside the '{kind}' folders (absolute paths, '..' and NUL "
            "characters are refused); choose a file from the list"
        )
    return name


def model_path(kind: str, name: str) -> str:
    """Absolute path of a model file chosen in a combo; a clear error lists where we looked."""
    fp = _comfy("folder_paths")
    if fp is not None:
        path = fp.get_full_path(kind, name)
        if path:
            return path
    else:
        check_model_name(kind, name)
        for folder in model_folders(kind):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    raise FileNotFoundError(
        f"model file '{name}' was not found in the '{kind}' folders: {', '.join(model_folders(kind)) or '(none)'}"
    )


def output_directory() -> str:
    fp = _comfy("folder_paths")
    if fp is not None:
        return fp.get_output_directory()
    return os.path.abspath(os.environ.get("LTX_AV_OUTPUT_DIR", "output"))


def temp_directory() -> str:
    fp = _comfy("folder_paths")
    if fp is not None:
        return fp.get_temp_directory()
    return os.path.join(output_directory(), "temp")
