"""Latent files: ``LTXSaveLatent`` / ``LTXLoadLatent`` keep whole LATENT dicts (video + audio, every key they carry).

Core SaveLatent keeps only ``samples``; these keep frame rates, image conditions, noise masks and padding records
too, in one ``.ltx.safetensors`` file under ``output/latents`` (the format: :mod:`ltx_core.latent_file`).

Both nodes stay inside that folder: names are relative, without ``..``, and must still be inside it once symbolic
links are resolved. Everything is checked before a folder is created or a file is opened.
"""

from __future__ import annotations

import logging
import os
import re

import torch

from ..ltx_core import checks
from ..ltx_core.errors import InputError, LTXError
from ..ltx_core.latent_file import SUFFIX, encode_latents, read_latents, write_latents
from . import host
from .sampling import _latent_dict
from .validation import checked

log = logging.getLogger("ltx_av.nodes.latent_files")

LATENT_SUFFIX = SUFFIX
LATENT_FOLDER = "latents"

# File systems allow 255 bytes per name; a saved name adds "_NNNNN.ltx.safetensors" (and its temporary name a
# little more), so a prefix's last part is kept well below.
MAX_PREFIX_NAME_BYTES = 200
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return "nothing (None)" if value is None else f"a {type(value).__name__}"


def _root() -> str:
    """The latents folder, symbolic links resolved (it may itself be a link: that is the user's choice)."""
    return os.path.realpath(os.path.join(host.output_directory(), LATENT_FOLDER))


def _parts(value: object, label: str, example: str) -> list[str]:
    """The components of a relative name inside the latents folder; refuses anything that could leave it."""
    if not isinstance(value, str):
        raise InputError(f"{label} must be text such as {example!r}; got {_shown(value)}")
    checks.text(value, label)
    if not value.strip():
        raise InputError(f"{label} is empty; give a name such as {example!r}")
    bad = _CONTROL.search(value)
    if bad:
        raise InputError(
            f"{label} contains the control character {bad.group()!r} at position {bad.start()}; names in "
            "output/latents are plain text"
        )
    if os.path.isabs(value) or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise InputError(
            f"{label} {_shown(value)} is an absolute path; give a name inside output/latents such as {example!r}"
        )
    parts = re.split(r"[/\\]", value) if os.sep == "\\" else value.split("/")
    if ".." in parts:
        raise InputError(
            f"{label} {_shown(value)} contains '..', which points outside the output folder; names stay inside "
            f"output/latents (sub-folders are fine: {example!r})"
        )
    if len(value.encode("utf-8")) > MAX_PATH_BYTES:
        raise InputError(f"{label} is {len(value.encode('utf-8'))} bytes long; at most {MAX_PATH_BYTES} are allowed")
    long = next((p for p in parts if len(p.encode("utf-8")) > MAX_NAME_BYTES), None)
    if long is not None:
        raise InputError(
            f"{label} has a part of {len(long.encode('utf-8'))} bytes ({_shown(long)}); file systems allow "
            f"{MAX_NAME_BYTES} per name"
        )
    if parts[-1] in ("", "."):
        return parts  # a name that ends with a folder: the caller says what it expected
    return [p for p in parts if p not in ("", ".")]


def _inside(root: str, path: str, label: str, value: str) -> str:
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise InputError(
            f"{label} {_shown(value)} points outside the output folder (a symbolic link leads to '{real}'); "
            "only files inside output/latents are used"
        )
    return real


def _prefix(filename_prefix: object) -> tuple[str, list[str], str]:
    """(latents folder, sub-folders to create or use, file stem) of LTXSaveLatent's ``filename_prefix``."""
    label = "LTXSaveLatent: filename_prefix"
    parts = _parts(filename_prefix, label, "ltx_av")
    if parts[-1] in ("", "."):
        raise InputError(
            f"{label} {_shown(filename_prefix)} ends with a folder; give a file name after the last '/', "
            "e.g. 'run/ltx_av'"
        )
    stem = parts[-1]
    if len(stem.encode("utf-8")) > MAX_PREFIX_NAME_BYTES:
        raise InputError(
            f"{label} {_shown(filename_prefix)} has a file name part of {len(stem.encode('utf-8'))} bytes; at "
            f"most {MAX_PREFIX_NAME_BYTES} are allowed (the counter and '{SUFFIX}' are added to it)"
        )
    root = _root()
    _inside(root, os.path.join(root, *parts), label, filename_prefix)
    return root, parts[:-1], stem


def _make_folders(folder: str) -> list[str]:
    """Create ``folder`` and whichever of its parents are missing; returns those created, outermost first."""
    missing = []
    path = folder
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    created: list[str] = []
    try:
        for path in reversed(missing):
            os.mkdir(path)
            created.append(path)
    except OSError as e:
        _remove_folders(created)
        what = "a file of that name is in the way" if isinstance(e, (FileExistsError, NotADirectoryError)) else None
        raise InputError(
            f"LTXSaveLatent: cannot create the folder '{path}' for filename_prefix: {what or e.strerror or e}; "
            "nothing was written"
        ) from e
    return created


def _remove_folders(created: list[str]) -> None:
    for path in reversed(created):
        try:
            os.rmdir(path)
        except OSError:
            break


def _load_path(file: object) -> str:
    """The real path of LTXLoadLatent's ``file``, which must be a latent file inside output/latents."""
    label = "LTXLoadLatent: file"
    example = f"ltx_av_00001{SUFFIX}"
    parts = _parts(file, label, example)
    if not file.endswith(SUFFIX):
        raise InputError(f"{label} {_shown(file)} is not a latent file; expected a name ending in {SUFFIX}")
    root = _root()
    real = _inside(root, os.path.join(root, *parts), label, file)
    if os.path.isdir(real):
        raise InputError(f"{label} {_shown(file)} is a folder; expected a {SUFFIX} file in it")
    if not os.path.isfile(real):
        raise InputError(f"{label} {_shown(file)} was not found in '{root}'")
    return real


def _latent_files() -> list[str]:
    root = _root()
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(LATENT_SUFFIX) and os.path.commonpath([root, os.path.realpath(path)]) == root:
                found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found)


class LTXSaveLatent:
    DISPLAY_NAME = "Save Latent (video + audio)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = (
        "Saves a video latent and optionally its audio latent to output/latents/<prefix>_NNNNN.ltx.safetensors with "
        "every key they carry (frame rate, image conditions, noise masks, padding records), which core Save Latent "
        "drops. Load them with Load Latent (video + audio)."
    )
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_latent": ("LATENT", {"tooltip": "The video latent to save."}),
                "filename_prefix": (
                    "STRING",
                    {
                        "default": "ltx_av",
                        "tooltip": "File name prefix inside output/latents (may start with folders).",
                    },
                ),
            },
            "optional": {"audio_latent": ("LATENT", {"tooltip": "Its audio latent, saved in the same file."})},
        }

    @checked
    def save(self, video_latent, filename_prefix: str = "ltx_av", audio_latent=None):
        node = "LTXSaveLatent"
        video = _latent_dict(video_latent, node, "video_latent")
        audio = None if audio_latent is None else _latent_dict(audio_latent, node, "audio_latent")
        root, folders, stem = _prefix(filename_prefix)
        encoded = encode_latents(video, audio, node)  # everything is checked before anything is created
        folder = os.path.join(root, *folders)
        created = _make_folders(folder)
        try:
            path = write_latents(folder, stem, encoded, node)
        except BaseException:
            _remove_folders(created)
            raise
        log.info("%s: wrote %s", node, path)
        return {"ui": {"text": [os.path.relpath(path, root).replace(os.sep, "/")]}}


class LTXLoadLatent:
    DISPLAY_NAME = "Load Latent (video + audio)"
    CATEGORY = "LTX-AV/latent"
    DESCRIPTION = "Loads latents saved by Save Latent (video + audio) in output/latents, with every key they carried."
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("video_latent", "audio_latent")
    OUTPUT_TOOLTIPS = ("The saved video latent.", "The saved audio latent (None if none was saved).")
    FUNCTION = "load"
    FILE_INPUTS = ("file",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"file": (_latent_files(), {"tooltip": "A file from output/latents."})}}

    @classmethod
    def IS_CHANGED(cls, file):
        try:
            stat = os.stat(_load_path(file))
        except (LTXError, OSError, ValueError):
            return float("nan")  # never equal: the node runs and reports the problem
        return f"{stat.st_mtime_ns}:{stat.st_size}"

    @checked
    def load(self, file: str):
        path = _load_path(file)
        label = f"LTXLoadLatent: file {_shown(file)}"
        return read_latents(path, label, available=host.available_memory(torch.device("cpu")))


NODES: tuple[type, ...] = (LTXSaveLatent, LTXLoadLatent)
