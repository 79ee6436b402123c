"""Lowerings of the basic layers: inputs, Dense (Recurrent: see `wrappers`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.idioms import activate
from rnngraph.compiler.recurrent import SequenceInput
from rnngraph.dsl.layers import Dense, InputLayer
from rnngraph.dsl.model import Source
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec


@lowers(InputLayer)
def lower_input(ctx: LoweringContext, node: str, layer: InputLayer, sources: Mapping[str, Source]) -> tuple[str, ...]:
    """The graph input of the same name; a padded float sequence with its padded steps set to 0.

    Past a row's length the caller may have put anything, NaN included; the model must not
    read it (docs/README.md: the state is frozen there). The Scan's padding blend ``s + m·(new − s)`` and
    a product with the mask both turn a NaN there into NaN, so the padded steps are cleared
    once here, with `Where`, and every layer sees 0 there (the invariant of `LoweringContext`).
    """
    spec = layer.spec
    if spec.kind != SEQUENCE or spec.lengths is None or spec.is_tokens:
        return (node,)
    valid = ctx.valid(spec, node)
    assert valid is not None
    return (ctx.g.op("Where", valid, node, ctx.g.const("zero", 0.0), name="padding_cleared"),)


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


def dense(g: GraphBuilder, x: str, W: np.ndarray, b: np.ndarray, activation: str) -> str:
    """``act(x·Wᵀ + b)`` on the last axis of any rank, W ``(out, in)``; usable inside loop bodies too."""
    y = g.op("Add", g.op("MatMul", x, g.const("W_T", np.ascontiguousarray(W.T))), g.const("b", b), name="affine")
    return activate(g, y, activation)


def dense_step(g: GraphBuilder, h: str, W: np.ndarray, b: np.ndarray, activation: str) -> str:
    """``act(h·Wᵀ + b)`` for one step ``(batch, in)``: a Gemm, which onnxruntime fuses with the activation."""
    return activate(g, g.op("Gemm", h, g.const("W", W), g.const("b", b), transB=1, name="readout"), activation)


@lowers(Dense)
def lower_dense(ctx: LoweringContext, node: str, layer: Dense, sources: Mapping[str, Source]) -> tuple[str, ...]:
    p = ctx.node_params(node)
    x = ctx.value(sources["x"])
    y = dense(ctx.g, x, p["W"], p["b"], layer.activation)
    return (apply_mask(ctx, y, sources["x"].spec, x),)

# Recurrent (with Bidirectional and Stack) is lowered in rnngraph/compiler/wrappers.py.
