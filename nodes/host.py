"""The one place that talks to ComfyUI.

Every host service the pack uses goes through these functions: devices, GPU memory, interrupts, progress, model
folders and output folders. Inside ComfyUI they call its public modules; anywhere else (tests, ``python -m ltx_av``)
they fall back to plain PyTorch, folders under ``LTX_AV_MODELS_DIR`` / ``LTX_AV_OUTPUT_DIR`` (default ``./models``
and ``./output``) and a listener the caller may install.

We never import ``comfy.*`` ourselves: importing ``comfy.model_management`` outside ComfyUI's own start-up can
crash on machines without a GPU driver. Inside ComfyUI those modules are loaded before any pack, so we look them
up in ``sys.modules`` when a service is used.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
    """Bytes a new allocation on ``device`` can use: ComfyUI's free-memory figure, else what the device (or, for the
    CPU, the system's MemAvailable) reports.

    Inside ComfyUI, while no node of ours is computing (size checks before weights are placed), this adds what
    ComfyUI's loaded models hold on that device: it unloads them when ours make room, so they are no reason to
    refuse. While a node of ours holds its weights (budgets planned after placing them), only what is free now
    counts."""
    device = torch.device(device)
    mm = _comfy("comfy.model_management")
    if mm is not None and hasattr(mm, "get_free_memory"):
        free = int(mm.get_free_memory(device))
        return free + (_reclaimable(mm, device) if not DeviceWeights.holding else 0)
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


def _reclaimable(mm: Any, device: torch.device) -> int:
    """Bytes ComfyUI's loaded models hold on ``device`` that it unloads when asked for room (none on the CPU, where
    unloading frees nothing; ours only when no node is computing with them)."""
    if device == torch.device("cpu") or not callable(getattr(mm, "loaded_models", None)):
        return 0
    ours = tuple(_patcher_types.values())
    total = 0
    for patcher in mm.loaded_models():
        try:
            if patcher is None or torch.device(patcher.load_device) != device:
                continue
            if isinstance(patcher, ours):
                weights = patcher._weights()
                if weights is None or weights._holds:
                    continue
            total += max(0, int(patcher.loaded_size()))
        except Exception:  # a model of a kind we do not know how to read: count nothing for it
            continue
    return total


def is_out_of_memory(error: BaseException) -> bool:
    mm = _comfy("comfy.model_management")
    oom_types: tuple[type, ...] = (torch.OutOfMemoryError,)
    if mm is not None and hasattr(mm, "OOM_EXCEPTION"):
        oom_types += (mm.OOM_EXCEPTION,)
    return isinstance(error, oom_types)


# -- weights on the compute device, shared with ComfyUI's model management -----------------------------------------
#
# ComfyUI keeps its own models (checkpoints, VAEs, upscalers...) on the GPU until something it knows about needs the
# room. The pack places its weights itself (float8 storage and block streaming are ours), so every set of them is a
# DeviceWeights, and inside ComfyUI (feature-detected; 0.3.64 and 0.33 have all of it):
#
# * registered: a comfy.model_patcher.ModelPatcher subclass stands for the weights (its model is an empty handle
#   module, its sizes are our byte counts) and comfy.model_management.load_models_gpu([it]) places them. Core first
#   frees our bytes x 1.1 plus its inference reserve on that device (unloading its own models), then calls
#   partially_load, which places ours. When core later needs room, its free_memory calls partially_unload / detach,
#   which park ours on the offload device, unless a node is computing with them at that moment.
# * otherwise (no usable ModelPatcher): comfy.model_management.free_memory(bytes + extra_reserved_memory(), device)
#   before placing, as 0.3.64's own upscaler node does.
#
# Either way a node parks its weights again when it is done (the text encoder's "keep loaded" excepted: those stay,
# and ComfyUI can unload them). Outside ComfyUI weights are placed and parked as before and nothing else happens.


def make_room(device: torch.device, bytes_needed: int) -> None:
    """Ask ComfyUI to unload its own models from ``device`` until ``bytes_needed`` (plus its reserve) are free.

    Does nothing outside ComfyUI, for the CPU (as ComfyUI does for its own loads), or on a host without
    ``free_memory``."""
    mm = _comfy("comfy.model_management")
    device = torch.device(device)
    if mm is None or not callable(getattr(mm, "free_memory", None)) or device == torch.device("cpu"):
        return
    reserve = mm.extra_reserved_memory() if callable(getattr(mm, "extra_reserved_memory", None)) else 0
    mm.free_memory(int(bytes_needed) + int(reserve), device)


def module_bytes(modules: Iterable[torch.nn.Module]) -> int:
    """Bytes of the parameters and buffers of ``modules`` as they are stored now (what ``.to(device)`` moves)."""
    return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))


class DeviceWeights:
    """One set of weights the pack moves between the offload device and the compute device itself.

    Subclasses say how many bytes the weights take on the compute device once placed (:meth:`device_bytes`),
    whether they are there (:meth:`is_placed`) and how to move them (:meth:`_place`, :meth:`_park`). Callers use
    :meth:`place`, :meth:`park` and :meth:`in_use`; inside ComfyUI these make room first and let ComfyUI unload the
    weights when it needs the memory (see the comment above).
    """

    holding = 0  # weights of any kind held by a node now (see available_memory)

    def __init__(self, name: str, device: torch.device, offload_device: torch.device):
        self.name = name  # an identifier: ComfyUI's log says "Requested to load <name>"
        self.device = torch.device(device)
        self.offload_device = torch.device(offload_device)
        self._holds = 0  # nodes computing with the weights now: ComfyUI may not unload them
        self._placing = False  # our own load_models_gpu call is running: only then does partially_load place
        self._patcher: Any = None  # the registration with ComfyUI, made at the first placement there

    # -- what a kind of weights implements ---------------------------------------------------------------------

    def device_bytes(self) -> int:
        raise NotImplementedError

    def is_placed(self) -> bool:
        raise NotImplementedError

    def _place(self) -> None:
        raise NotImplementedError

    def _park(self) -> None:
        raise NotImplementedError

    # -- for the nodes -----------------------------------------------------------------------------------------

    def place(self, working_bytes: int = 0) -> None:
        """Put the weights on the compute device, making room for them (and ``working_bytes``) first; nothing when
        they are there."""
        if not self.is_placed():
            self._acquire(working_bytes)

    def park(self) -> None:
        """Move the weights to the offload device and release the compute device's cached memory."""
        if self.is_placed():
            self._park()
            free_memory(self.device)

    @contextmanager
    def in_use(self, working_bytes: int = 0, *, keep: bool = False) -> Iterator[None]:
        """``with weights.in_use(): ...``: placed for one node's computation (ComfyUI does not unload them meanwhile)
        and parked when the outermost use ends, unless ``keep`` (then ComfyUI may unload them when it needs room).
        Inside ComfyUI they are registered with its model management at each use, as core does for its models."""
        self._holds += 1
        DeviceWeights.holding += 1
        try:
            if self._holds == 1:
                self._acquire(working_bytes)
            yield
        finally:
            self._holds -= 1
            DeviceWeights.holding -= 1
            if self._holds == 0 and not keep:
                self.park()

    # -- the host's side ---------------------------------------------------------------------------------------

    def _acquire(self, working_bytes: int) -> None:
        mm = _comfy("comfy.model_management")
        patcher = self._registration() if mm is not None else None
        if patcher is not None:
            self._placing = True
            try:
                _load_models(mm, patcher, working_bytes)
            finally:
                self._placing = False
        if self.is_placed():
            return
        if mm is None:
            free_memory(self.device)
        else:  # no registration (or the host did not call back): ask for the room ourselves
            make_room(self.device, self.device_bytes() + working_bytes)
        self._place_or_park()

    def _place_or_park(self) -> None:
        try:
            self._place()
        except BaseException:
            # Half-placed weights would hold device memory no one accounts for.
            try:
                self._park()
            except Exception:
                log.exception("could not park %s after a failed placement", self.name)
            raise

    def _evict(self) -> None:
        """ComfyUI unloads the weights to make room for something else."""
        if self._holds:
            log.warning(
                "ComfyUI asked to unload %s while a node computes with it; it stays on %s", self.name, self.device
            )
            return
        if not self.is_placed():
            return
        log.info(
            "ComfyUI unloaded %s (%.2f GB on %s) to make room; it returns when next used",
            self.name,
            self.device_bytes() / 2**30,
            self.device,
        )
        self._park()

    def _registration(self) -> Any | None:
        kind = _patcher_type()
        if kind is None:
            return None
        if type(self._patcher) is not kind:
            try:
                self._patcher = kind(self)
            except Exception as error:  # a host whose ModelPatcher cannot be built this way
                log.warning("%s is not registered with ComfyUI's model management: %s", self.name, error)
                return None
        return self._patcher

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, {self.device}, placed={self.is_placed()})"


class ModuleWeights(DeviceWeights):
    """DeviceWeights made of plain modules that move with ``.to(device)`` (VAEs, vocoder, upsampler, text encoder)."""

    def __init__(
        self,
        name: str,
        modules: Iterable[torch.nn.Module],
        device: torch.device,
        offload_device: torch.device,
    ):
        super().__init__(name, device, offload_device)
        self.modules: list[torch.nn.Module] = []
        self._placed = False
        self.set_modules(modules)

    def set_modules(self, modules: Iterable[torch.nn.Module | None]) -> None:
        """The modules now (e.g. after a part was loaded on the offload device); placed again at the next use."""
        self.modules = [m for m in modules if m is not None]
        self._placed = False

    def device_bytes(self) -> int:
        return module_bytes(self.modules)

    def is_placed(self) -> bool:
        return self._placed

    def _place(self) -> None:
        for module in self.modules:
            module.to(self.device)
        self._placed = True

    def _park(self) -> None:
        self._placed = False
        for module in self.modules:
            module.to(self.offload_device)


def _load_models(mm: Any, patcher: Any, working_bytes: int) -> None:
    """``load_models_gpu([patcher])`` with our whole weights on the device (``force_full_load`` where the host has
    it: core's partial loading does not apply to weights we place ourselves)."""
    kwargs: dict[str, Any] = {"memory_required": int(working_bytes)}
    try:
        if "force_full_load" in inspect.signature(mm.load_models_gpu).parameters:
            kwargs["force_full_load"] = True
    except (TypeError, ValueError):
        pass
    mm.load_models_gpu([patcher], **kwargs)


_PATCHER_METHODS = (
    "model_size",
    "loaded_size",
    "current_loaded_device",
    "partially_load",
    "partially_unload",
    "detach",
)
_patcher_types: dict[type, type] = {}
_handle_types: dict[str, type] = {}


def _patcher_type() -> type | None:
    """Our ModelPatcher subclass for this host, or None when it lacks what the registration needs."""
    mm = _comfy("comfy.model_management")
    base = getattr(_comfy("comfy.model_patcher"), "ModelPatcher", None)
    if mm is None or not callable(getattr(mm, "load_models_gpu", None)) or not isinstance(base, type):
        return None
    if not all(callable(getattr(base, name, None)) for name in _PATCHER_METHODS):
        return None
    if base not in _patcher_types:
        _patcher_types[base] = _make_patcher_type(base)
    return _patcher_types[base]


def _handle(name: str) -> torch.nn.Module:
    """An empty module whose class carries the weights' name (what ComfyUI's log lines show)."""
    if name not in _handle_types:
        _handle_types[name] = type(name, (torch.nn.Module,), {"__doc__": f"Stands for LTX-AV's {name} in ComfyUI."})
    return _handle_types[name]()


def _make_patcher_type(base: type) -> type:
    class LTXAVPatcher(base):  # type: ignore[misc, valid-type]
        """Stands for one :class:`DeviceWeights` in ComfyUI's list of loaded models.

        ComfyUI reads our sizes and calls back to place (only during our own load) or to unload (park). It never
        touches our tensors: its model is an empty handle, so nothing else it does to a model applies to them."""

        def __init__(self, weights: DeviceWeights):
            self._weights = weakref.ref(weights)  # first: the base constructor may ask for the size
            super().__init__(_handle(weights.name), weights.device, weights.offload_device)

        def model_size(self) -> int:
            weights = self._weights()
            # Parked weights weigh nothing here: a host path that re-loads every registered model must not make
            # room for ours, which only the pack places (see partially_load).
            if weights is None or not (weights._placing or weights.is_placed()):
                return 0
            return weights.device_bytes()

        def loaded_size(self) -> int:
            weights = self._weights()
            return weights.device_bytes() if weights is not None and weights.is_placed() else 0

        def current_loaded_device(self) -> torch.device:
            weights = self._weights()
            return self.load_device if weights is not None and weights.is_placed() else self.offload_device

        def partially_load(self, device_to, extra_memory=0, force_patch_weights=False) -> int:
            weights = self._weights()
            # Only the pack's own placement puts the weights on the device (core re-loads "currently used" models
            # in some paths; ours are placed when a node of ours needs them).
            if weights is None or not weights._placing or weights.is_placed():
                return 0
            weights._place_or_park()
            return weights.device_bytes()

        def partially_unload(self, device_to, memory_to_free=0, *args, **kwargs) -> int:
            return 0  # all or nothing: ComfyUI then detaches (unloads) the model

        def detach(self, unpatch_all=True):
            weights = self._weights()
            # unpatch_all=False: core is re-registering the same model or collecting this object, not asking for room
            if unpatch_all and weights is not None:
                weights._evict()
            return self.model

    return LTXAVPatcher


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
    """Add the folder kinds core ComfyUI may lack (``latent_upscale_models`` before ComfyUI 0.4,
    ``model_patches`` for LTX-2.5's duration head)."""
    fp = _comfy("folder_paths")
    if fp is None:
        return
    # setdefault: keep the host's own definition where it has one. Unlike add_model_folder_path, this gives the
    # new kind an extension filter, so stray files do not show up in the list.
    for kind in ("latent_upscale_models", "model_patches"):
        fp.folder_names_and_paths.setdefault(kind, ([os.path.join(fp.models_dir, kind)], set(MODEL_SUFFIXES)))


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
