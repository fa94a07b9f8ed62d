"""video nodes."""

NODES: tuple[type, ...] = ()
