"""audio nodes."""

NODES: tuple[type, ...] = ()
