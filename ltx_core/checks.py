"""Checks every entry point runs on what it is given, before any model or large allocation is touched.

Each check returns the value in the type the caller works with and raises :class:`InputError` (or
:class:`TooLargeError`) naming the input, what was given and what is allowed. ``name`` is how the user knows the
input: ``"LTXSampler: cfg_video"``, ``"--steps"``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .errors import InputError, TooLargeError

# Share of the reported free memory a single request may plan to use: the rest is for the estimate's error, the
# allocator's slack and whatever else runs at the same time.
MEMORY_SHARE = 0.8


def article(noun: str) -> str:
    """``"an int"``, ``"a str"``: a type or thing named with its article."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (None)"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    return article(type(value).__name__)


def number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
) -> float:
    """A finite real number (bools refused) within ``[minimum, maximum]`` and, if given, strictly above ``above``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number; got {_shown(value)}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number; got {value}")
    value = float(value)
    if above is not None and not value > above:
        raise InputError(f"{name} must be greater than {above:g}; got {value:g}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name} must be {_range(minimum, maximum)}; got {value:g}")
    return value


def integer(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number (an int, or a float without a fraction; bools refused) within ``[minimum, maximum]``."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number; got {_shown(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name} must be {_range(minimum, maximum)}; got {value}")
    return value


def _range(minimum: float | None, maximum: float | None) -> str:
    def shown(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    if minimum is not None and maximum is not None:
        return f"between {shown(minimum)} and {shown(maximum)}"
    if minimum is not None:
        return f"at least {shown(minimum)}"
    return f"at most {shown(maximum)}"


def choice(value: Any, name: str, allowed: tuple[str, ...] | list[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{name} is {_shown(value)}; expected one of {', '.join(repr(a) for a in allowed)}")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false; got {_shown(value)}")
    return value


def text(value: Any, name: str) -> str:
    """A string that encodes to UTF-8 (lone surrogates, legal in JSON, do not; tokenizers fail on them)."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string of text; got {_shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = value[e.start : e.end]
        raise InputError(
            f"{name} is not valid Unicode text: character {e.start} is {bad!r} (a lone surrogate, e.g. half of an "
            "emoji cut by a script); remove it or send the whole character"
        ) from None
    return value


def finite_tensor(value: Any, name: str) -> torch.Tensor:
    """A floating-point tensor without NaN or infinite entries."""
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name} must be a tensor; got {_shown(value)}")
    if not (value.is_floating_point() or value.is_complex()):
        return value
    bad = int((~torch.isfinite(value)).sum().item()) if value.numel() else 0
    if bad:
        raise InputError(
            f"{name} contains {bad} NaN or infinite value(s) out of {value.numel()} (a diverged sampler, a broken "
            "file or a node upstream that divided by zero); nothing sensible can come of it"
        )
    return value


def gib(nbytes: float) -> str:
    """``1.5 GiB`` / ``310 MiB``: a byte count as people read it."""
    if nbytes >= 2**40:
        return f"{nbytes / 2**40:.1f} TiB"
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"{nbytes / 2**20:.0f} MiB"


def fits_memory(needed: int, available: int, what: str, *, where: str = "memory", advice: str = "") -> None:
    """Refuse a request whose estimated ``needed`` bytes exceed :data:`MEMORY_SHARE` of ``available``.

    ``what`` names the request and its size (``"LTXVAEDecode: 7993 frames of 2048x2048"``); the error adds the
    estimate, the memory available and ``advice``.
    """
    if needed <= MEMORY_SHARE * available:
        return
    tail = f"; {advice}" if advice else ""
    raise TooLargeError(f"{what} needs about {gib(needed)} of {where}, but only {gib(available)} is available{tail}")


def tensor_bytes(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count * torch.empty((), dtype=dtype).element_size()
