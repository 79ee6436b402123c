"""Lowerings of the basic layers: inputs, Dense (Recurrent: see `wrappers`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.recurrent import SequenceInput
from rnngraph.dsl.layers import Dense, InputLayer
from rnngraph.dsl.model import Source
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec

ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


@lowers(InputLayer)
def lower_input(ctx: LoweringContext, node: str, layer: InputLayer, sources: Mapping[str, Source]) -> tuple[str, ...]:
    return (node,)  # the graph input of the same name


def sequence_input(ctx: LoweringContext, source: Source, reverse: bool = False) -> SequenceInput:
    x = ctx.value(source)
    return SequenceInput(x, source.spec, ctx.mask(source.spec, x), ctx.lengths_i32(source.spec), reverse)


def apply_mask(ctx: LoweringContext, value: str, spec: TensorSpec, like: str) -> str:
    """Zero the padded steps of a batch-first sequence (no-op for unpadded ones and vectors)."""
    if spec.kind != SEQUENCE or spec.lengths is None:
        return value
    mask = ctx.mask(spec, like)
    assert mask is not None
    return ctx.g.op("Mul", value, mask, name="masked")


def dense(ctx: LoweringContext, x: str, W: np.ndarray, b: np.ndarray, activation: str) -> str:
    """``act(x·Wᵀ + b)`` on the last axis; W is ``(out, in)``."""
    g = ctx.g
    y = g.op("Add", g.op("MatMul", x, g.const("W_T", np.ascontiguousarray(W.T))), g.const("b", b), name="affine")
    if activation == "softmax":
        return g.op("Softmax", y, axis=-1, name="softmax")
    if activation in ACTIVATIONS:
        return g.op(ACTIVATIONS[activation], y, name=activation)
    return y


@lowers(Dense)
def lower_dense(ctx: LoweringContext, node: str, layer: Dense, sources: Mapping[str, Source]) -> tuple[str, ...]:
    p = ctx.node_params(node)
    x = ctx.value(sources["x"])
    y = dense(ctx, x, p["W"], p["b"], layer.activation)
    return (apply_mask(ctx, y, sources["x"].spec, x),)

# Recurrent (with Bidirectional and Stack) is lowered in rnngraph/compiler/wrappers.py.
