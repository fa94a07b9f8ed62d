"""Errors LTX-AV raises for things a user or a file controls.

Every message names what was given, what is allowed and, where there is one, the fix. Nodes let these
propagate unchanged so ComfyUI shows the text to the user.
"""


class LTXError(Exception):
    """Base class of every error LTX-AV raises on purpose."""


class CheckpointError(LTXError):
    """A model file cannot be used: wrong format, damaged, another model family, or keys that do not match."""


class ConfigError(LTXError):
    """The architecture config in a checkpoint's metadata is missing a value or holds one LTX-AV does not support."""


class InputError(LTXError, ValueError):
    """A tensor, size or option given to a node or function is outside what the model accepts."""
