"""Cell lowerings, one module per cell; each exposes `LOWERING`, named in its cell's registry entry."""
