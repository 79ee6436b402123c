"""Lowering of `Embedding`: one ``Gather`` of the table rows by token id."""

from __future__ import annotations

from collections.abc import Mapping

from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.layers import apply_mask
from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.model import Source


@lowers(Embedding)
def lower_embedding(ctx: LoweringContext, node: str, layer: Embedding,
                    sources: Mapping[str, Source]) -> tuple[str, ...]:
    """``E[ids]``: ``(batch, time) -> (batch, time, dim)`` or ``(batch,) -> (batch, dim)``; padded steps 0."""
    g = ctx.g
    table = g.const("E", ctx.node_params(node)["E"])
    y = g.op("Gather", table, ctx.value(sources["x"]), axis=0, name="lookup")
    return (apply_mask(ctx, y, sources["x"].spec, y),)
