"""Every node checks all of its inputs before it does anything, from the node's own input declaration.

ComfyUI checks a widget's min/max only when the value is typed into the widget: a value from a link, from the API
or from a script reaches the node unchecked, and ``nan`` passes every min/max test. :func:`checked` wraps a node's
FUNCTION so that each call first checks every input against ``INPUT_TYPES`` (whole numbers, finite numbers in
range, booleans, valid text, combo choices) and every socket against the type it declares (an LTX-AV model from
the right loader, a LATENT dict with a tensor, an IMAGE tensor, ...). A refusal is an :class:`InputError` that
names the node, the input, what was given and what is allowed; nothing has been loaded, allocated or written.

Checks that need the values together (a frame index inside the video, a latent that fits the memory) stay in the
nodes, after these.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch

from ..ltx_core import checks
from ..ltx_core.errors import InputError, LTXError
from . import host

# socket type -> (check(value) -> bool, what the user should connect)
_SOCKETS: dict[str, tuple[Callable[[Any], bool], str]] = {}


def register_socket(kind: str, check: Callable[[Any], bool] | type, source: str) -> None:
    """Declare how a socket type is recognised: a class (isinstance) or a predicate, and where it comes from."""
    test = (lambda value, cls=check: isinstance(value, cls)) if isinstance(check, type) else check
    _SOCKETS[kind] = (test, source)


def is_latent(value: Any) -> bool:
    # newer ComfyUI may hold video + audio in one NestedTensor, which is not a torch.Tensor
    samples = value.get("samples") if isinstance(value, dict) else None
    return isinstance(samples, torch.Tensor) or getattr(samples, "is_nested", False) is True


def nested_part(value: Any, index: int) -> Any:
    """The video (0) or audio (-1) part of a NestedTensor (newer ComfyUI holds an LTX-2 video + audio latent, and
    its noise mask, in one: core LTXVConcatAVLatent); any other value as it is."""
    return value.unbind()[index] if getattr(value, "is_nested", False) else value


def is_audio_latent_shape(samples: Any) -> bool:
    """[batch, 8, frames, 16]: an LTX audio latent (ours, or core's LTXVEmptyLatentAudio / LTXVAudioVAEEncode)."""
    shape = getattr(samples, "shape", ())
    return len(shape) == 4 and shape[1] == 8 and shape[3] == 16


def _is_image(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim == 4


def _is_audio(value: Any) -> bool:
    return isinstance(value, dict) and "waveform" in value and "sample_rate" in value


def _is_conditioning(value: Any) -> bool:
    return isinstance(value, list)


register_socket("LATENT", is_latent, "a LATENT (a dict with a 'samples' tensor)")
register_socket("IMAGE", _is_image, "an IMAGE batch [frames, height, width, 3]")
register_socket("AUDIO", _is_audio, "an AUDIO (a dict with 'waveform' and 'sample_rate', e.g. from Load Audio)")
register_socket("CONDITIONING", _is_conditioning, "a CONDITIONING from Text Encode (prompt)")
register_socket("SIGMAS", lambda v: isinstance(v, torch.Tensor), "SIGMAS (a 1-D tensor of noise levels)")


def _got(value: Any) -> str:
    if value is None:
        return "nothing (None)"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))[:6]}"
    return checks.article(type(value).__name__)


def check_inputs(cls: type, values: dict[str, Any]) -> None:
    """Check ``values`` (name -> value, as the node's FUNCTION receives them) against ``cls.INPUT_TYPES()``."""
    node = cls.__name__
    spec = cls.INPUT_TYPES()
    files = set(getattr(cls, "FILE_INPUTS", ()))
    for section in ("required", "optional"):
        for name, declared in spec.get(section, {}).items():
            if name not in values:
                continue
            kind, options = declared[0], declared[1] if len(declared) > 1 else {}
            value = values[name]
            label = f"{node}: {name}"
            if value is None and section == "optional":
                continue
            if isinstance(kind, (list, tuple)):
                if name in files:
                    if not isinstance(value, str) or not value.strip():
                        got = "an empty name" if isinstance(value, str) else _got(value)
                        raise InputError(f"{label} must be a file name from the list; got {got}")
                    checks.text(value, label)
                else:
                    checks.choice(value, label, list(kind))
            elif kind == "INT":
                checks.integer(value, label, minimum=options.get("min"), maximum=options.get("max"))
            elif kind == "FLOAT":
                checks.number(value, label, minimum=options.get("min"), maximum=options.get("max"))
            elif kind == "BOOLEAN":
                checks.boolean(value, label)
            elif kind == "STRING":
                checks.text(value, label)
            elif kind in _SOCKETS:
                test, source = _SOCKETS[kind]
                if not test(value):
                    got = "nothing: connect it" if value is None else _got(value)
                    raise InputError(f"{label} must be {source}; got {got}")


def checked(function: Callable) -> Callable:
    """Decorate a node's FUNCTION: its inputs are checked (:func:`check_inputs`) before it runs."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def run(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop(next(iter(signature.parameters)))  # self
        node = type(self).__name__
        check_inputs(type(self), values)
        try:
            return function(self, *args, **kwargs)
        except LTXError as error:
            # Errors from the library (a damaged file, a bad tensor deep in a latent) name what they are about but
            # not the node; the user reading a log or a script's output should not have to guess which one.
            if str(error).startswith(f"{node}:"):
                raise
            named = type(error)(f"{node}: {error}")
            named.__cause__ = error.__cause__
            raise named.with_traceback(error.__traceback__) from error.__cause__

    return run


def model_choices(kinds: tuple[str, ...]) -> list[str]:
    """The files of several model folders as one combo list, by their plain names (what ComfyUI's frontend matches
    against a workflow's ``properties.models``, so a missing file is listed once, with its download). A file whose
    name an earlier kind already shows is listed as ``<kind>/<name>``."""
    names: list[str] = []
    for i, kind in enumerate(kinds):
        for name in host.list_models(kind):
            names.append(name if i == 0 or name not in names else f"{kind}/{name}")
    return names


def find_model_file(node: str, name_input: str, kinds: tuple[str, ...], name: str) -> str:
    """:func:`model_file` for a :func:`model_choices` value: a plain name from the first of ``kinds`` that has
    it, or ``<kind>/<name>`` from that kind's folders (also the form older workflows of this pack saved)."""
    kind, sep, rest = name.partition("/")
    if sep and kind in kinds and rest:
        try:
            return host.model_path(kind, rest)
        except FileNotFoundError:
            pass  # perhaps a sub-folder named like a kind: look the whole name up below
        except InputError as e:
            raise InputError(f"{node}: {name_input}: {e}") from None
    return model_file(node, name_input, kinds, name)


def model_file(node: str, name_input: str, kinds: tuple[str, ...], name: str) -> str:
    """The path of the model file a loader's combo names, looked up in ``kinds``' folders (nothing outside them);
    an :class:`InputError` naming the node, the input and the folders searched otherwise."""
    for kind in kinds:
        try:
            return host.model_path(kind, name)
        except FileNotFoundError:
            continue
        except InputError as e:
            raise InputError(f"{node}: {name_input}: {e}") from None
    folders = [f for kind in kinds for f in host.model_folders(kind)]
    raise InputError(
        f"{node}: {name_input} {name[:120]!r} was not found as a file in the {' or '.join(kinds)} folders "
        f"({', '.join(folders) or 'none configured'})"
    )


# -- which release made a latent ------------------------------------------------------------------------------------

# Latents made or sampled by LTX-AV record the release of the files that made them, so a model, a VAE or a latent
# of another release is refused by name instead of decoding into noise (LTX-2, 2.3 and 2.5 latents all have 128
# channels). Latents from elsewhere (core nodes, files) carry no record and are not checked.
RELEASE_KEY = "ltx_release"


def releases_of(holder: Any) -> frozenset[str]:
    """The releases a loaded model or VAE can belong to (an audio VAE file that names none fits LTX-2.3 and 2.5)."""
    releases = getattr(holder, "releases", None)
    if releases:
        return frozenset(releases)
    variant = getattr(holder, "variant", None)
    return frozenset((variant,)) if variant else frozenset()


def check_release(latent: dict, holder: Any, node: str, input_name: str, holder_input: str) -> frozenset[str]:
    """Refuse ``latent`` when the files that made it come from another release than ``holder``'s (the one named
    by ``holder_input``); the releases both fit otherwise (to record in what the node makes)."""
    mine = releases_of(holder)
    record = latent.get(RELEASE_KEY) if isinstance(latent, dict) else None
    if not isinstance(record, dict) or not mine:
        return mine
    listed = record.get("releases")
    theirs = frozenset(r for r in listed if isinstance(r, str)) if isinstance(listed, (list, tuple)) else frozenset()
    if not theirs or theirs & mine:
        return (theirs & mine) or mine
    made, file = " or ".join(sorted(theirs)), str(record.get("file", "?"))[:200]
    own, name = " or ".join(sorted(mine)), getattr(holder, "checkpoint", "?")
    raise InputError(
        f"{node}: {input_name} was made with '{file}' ({made}) but {holder_input} is '{name}' ({own}); the files of "
        f"one model must come from one release: load the {made} {holder_input.replace('_', ' ')} (or make the latent "
        f"with {own} files)"
    )


def record_release(latent: dict, releases: frozenset[str], file: str) -> dict:
    """``latent`` with the releases of the files that made it recorded (see :func:`check_release`)."""
    if releases:
        latent[RELEASE_KEY] = {"releases": sorted(releases), "file": file}
    return latent
