"""Errors LTX-AV raises for things a user or a file controls.

Every message names what was given, what is allowed and, where there is one, the fix. Nodes let these
propagate unchanged so ComfyUI shows the text to the user.

ComfyUI labels an error with its class's module and name. Ours would read
``<install path>.ltx_core.errors.InputError`` (the pack is imported under its folder's path), so every class here
reports the short, stable module name ``ltx_av`` instead: the UI shows ``ltx_av.InputError: ...`` however the pack
was installed. ``ltx_av`` (the pip package) exports them under those names.
"""

LABEL = "ltx_av"


class LTXError(Exception):
    """Base class of every error LTX-AV raises on purpose."""


class CheckpointError(LTXError):
    """A model file cannot be used: wrong format, damaged, another model family, or keys that do not match."""


class ConfigError(LTXError):
    """The architecture config in a checkpoint's metadata is missing a value or holds one LTX-AV does not support."""


class InputError(LTXError, ValueError):
    """A tensor, size or option given to a node or function is outside what the model accepts."""


class TooLargeError(InputError):
    """A requested size needs more memory than the machine has; the message gives the size, the estimate and the
    memory available."""


for _error in (LTXError, CheckpointError, ConfigError, InputError, TooLargeError):
    _error.__module__ = LABEL
del _error
