"""sampling nodes."""

NODES: tuple[type, ...] = ()
