"""model nodes."""

NODES: tuple[type, ...] = ()
