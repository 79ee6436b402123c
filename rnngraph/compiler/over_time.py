"""Reading a batch-first sequence ``y (batch, time, size)`` over each row's valid steps.

Padded steps of every sequence between layers hold 0 (the invariant of `LoweringContext`),
which the mean relies on:

    last   y[b, L_b - 1] forward      GatherND(y, L - 1, batch_dims=1)   (y[b, time - 1] unpadded)
           y[b, 0]       reverse      Gather(y, 0, axis=1)
    mean   Σ_t y[b, t] / L_b          a plain ReduceSum is the sum over valid steps
    max    max_{t < L_b} y[b, t]      padded steps set to −inf first (a 0 could beat negative values);
                                      NaN where a step is NaN (onnxruntime's ReduceMax may skip it)
"""

from __future__ import annotations

import numpy as np

from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.guards import propagate_nan
from rnngraph.compiler.idioms import reduce
from rnngraph.dsl.tensor import TensorSpec


def last_valid(ctx: LoweringContext, y: str, spec: TensorSpec, reverse: bool = False) -> str:
    """``(batch, size)``: the output of the last step processed, step ``L_b - 1`` forward or step 0 in reverse."""
    g = ctx.g
    if reverse or spec.lengths is None:
        return g.op("Gather", y, g.const("index", 0 if reverse else -1, "int64"), axis=1, name="last")
    lengths = spec.lengths
    index = ctx.cached(("last_index", lengths), lambda: g.unsqueeze(
        g.op("Sub", lengths, g.const("one", 1, "int64"), name=f"{lengths}/last_index"), [1]))
    return g.op("GatherND", y, index, batch_dims=1, name="last")


def masked_mean(ctx: LoweringContext, y: str, spec: TensorSpec) -> str:
    """``(batch, size)``: the mean of ``y`` over each row's valid steps."""
    g = ctx.g
    if spec.lengths is None:
        return reduce(g, "ReduceMean", y, [1], name="mean")
    lengths = spec.lengths
    count = ctx.cached(("lengths_f", lengths), lambda: g.cast(g.unsqueeze(lengths, [1]), "float",
                                                             name=f"{lengths}/float"))
    return g.op("Div", reduce(g, "ReduceSum", y, [1]), count, name="mean")


def masked_max(ctx: LoweringContext, y: str, spec: TensorSpec) -> str:
    """``(batch, size)``: the maximum of ``y`` over each row's valid steps."""
    g = ctx.g
    valid = ctx.valid(spec, y)
    if valid is None:
        return propagate_nan(g, y, reduce(g, "ReduceMax", y, [1], name="max"))
    floor = g.const("minus_inf", -np.inf)
    return propagate_nan(g, y, reduce(g, "ReduceMax", g.op("Where", valid, y, floor, name="valid_steps"), [1],
                                      name="max"))


def pool(ctx: LoweringContext, y: str, spec: TensorSpec, how: str) -> str:
    """``mean`` or ``max`` over each row's valid steps."""
    return masked_mean(ctx, y, spec) if how == "mean" else masked_max(ctx, y, spec)
