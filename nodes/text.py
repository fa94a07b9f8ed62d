"""text nodes."""

NODES: tuple[type, ...] = ()
