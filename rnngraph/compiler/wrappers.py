"""Lowerings of the layers that run cells over time: Recurrent, Bidirectional, Stack.

Each direction of each layer is one `run_cell` (Scan or native op, chosen per
cell); what a layer returns is read off its output sequence ``y (batch, time, out)``
after the loop (`rnngraph.compiler.over_time`: last, mean, max over each row's valid
steps), so nothing here adds work inside a loop body and the graph size does not
depend on the sequence length; ``state`` is the final states of the Scan (or native
op), frozen at each row's last processed step.

Consecutive native layers (in a `Stack`, a `Bidirectional`'s two directions, or any chain)
share one time-major conversion: ONNX's LSTM/GRU/RNN read and write ``(time, batch, ·)``,
each native output keeps its time-major twin (`recurrent.batch_first`), the merge of two
directions and a residual Add are computed on the twins when both have one
(`recurrent.pointwise`), and the batch-first Transposes that nothing reads are dropped from
the graph (`rnngraph.compiler.prune`): one Transpose in, one out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.over_time import last_valid, pool
from rnngraph.compiler.recurrent import SequenceInput, pointwise, run_cell
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Recurrent
from rnngraph.dsl.model import Source
from rnngraph.dsl.tensor import TensorSpec
from rnngraph.dsl.wrappers import Bidirectional, Stack


@dataclass
class Ran:
    """A layer after its loops: the output sequence, how to read its last step, its final states in order."""

    y: str
    last: Callable[[], str]
    finals: list[str]


def merge(g: GraphBuilder, how: str, a: str, b: str) -> str:
    """Combine forward and backward outputs on the last axis (docs/bidirectional.md)."""
    if how == "concat":
        return g.op("Concat", a, b, axis=-1, name="merge")
    if how == "sum":
        return g.op("Add", a, b, name="merge")
    if how == "mul":
        return g.op("Mul", a, b, name="merge")
    return g.op("Mul", g.op("Add", a, b), g.const("half", 0.5), name="merge")


def outputs_for(ctx: LoweringContext, returned: tuple[str, ...], ran: Ran, spec: TensorSpec) -> tuple[str, ...]:
    """The layer's outputs in the order its `returns` names them; `spec` is that of the sequence run over."""
    out: list[str] = []
    for kind in returned:
        if kind == "sequence":
            out.append(ran.y)
        elif kind == "last":
            out.append(ran.last())
        elif kind == "state":
            out.extend(ran.finals)
        else:
            out.append(pool(ctx, ran.y, spec, kind))
    return tuple(out)


def run_direction(ctx: LoweringContext, node: str, cell: Cell, p: Mapping[str, np.ndarray], x: str, spec: TensorSpec,
                  reverse: bool, initial: dict[str, str] | None = None) -> Ran:
    """One cell over ``x`` in one direction."""
    seq = SequenceInput(x, spec, ctx.mask(spec, x), ctx.lengths_i32(spec), reverse)
    y, finals = run_cell(ctx, node, cell, p, seq, initial)
    return Ran(y, lambda: last_valid(ctx, y, spec, reverse), list(finals.values()))


def run_recurrent(ctx: LoweringContext, node: str, layer: Recurrent, p: Mapping[str, np.ndarray], x: str,
                  spec: TensorSpec, initial_state: tuple[str, int] | None = None) -> Ran:
    """`initial_state` is the ONNX value of the layer's `initial_state` input and its width."""
    assert layer.cell is not None
    initial = None
    if initial_state is not None:
        value, width = initial_state
        given = layer.initial_states(width)  # the first state, or every state concatenated
        g = ctx.g
        if len(given) == 1:
            initial = {next(iter(given)): value}
        else:
            parts = g.op_n("Split", value, g.const("split", list(given.values()), "int64"), axis=1,
                         outputs=len(given), name="initial_split")
            initial = dict(zip(given, parts, strict=True))
        initial.update({name: g.zeros_state(x, size) for name, size in layer.cell.state_sizes().items()
                        if name not in initial})
    return run_direction(ctx, node, layer.cell, p, x, spec, layer.reverse, initial)


def run_bidirectional(ctx: LoweringContext, node: str, layer: Bidirectional, p: Mapping[str, np.ndarray], x: str,
                      spec: TensorSpec) -> Ran:
    g = ctx.g
    runs = []
    for direction, cell, reverse in (("fw", layer.forward, False), ("bw", layer.backward, True)):
        local = {k[len(direction) + 1:]: v for k, v in p.items() if k.startswith(direction + "/")}
        with g.scope(direction):
            runs.append(run_direction(ctx, f"{node}/{direction}", cell, local, x, spec, reverse))
    fw, bw = runs

    def last() -> str:
        return merge(g, layer.merge, fw.last(), bw.last())

    y = pointwise(ctx, lambda a, b: merge(g, layer.merge, a, b), fw.y, bw.y)
    return Ran(y, last, fw.finals + bw.finals)


def run_item(ctx: LoweringContext, node: str, layer: Recurrent | Bidirectional, p: Mapping[str, np.ndarray], x: str,
             spec: TensorSpec) -> Ran:
    if isinstance(layer, Bidirectional):
        return run_bidirectional(ctx, node, layer, p, x, spec)
    return run_recurrent(ctx, node, layer, p, x, spec)


@lowers(Recurrent)
def lower_recurrent(ctx: LoweringContext, node: str, layer: Recurrent,
                    sources: Mapping[str, Source]) -> tuple[str, ...]:
    spec = sources["x"].spec
    init = sources.get("initial_state")
    initial = (ctx.value(init), init.spec.features) if init is not None else None
    ran = run_recurrent(ctx, node, layer, ctx.node_params(node), ctx.value(sources["x"]), spec, initial)
    return outputs_for(ctx, layer.returned, ran, spec)


@lowers(Bidirectional)
def lower_bidirectional(ctx: LoweringContext, node: str, layer: Bidirectional,
                        sources: Mapping[str, Source]) -> tuple[str, ...]:
    spec = sources["x"].spec
    ran = run_bidirectional(ctx, node, layer, ctx.node_params(node), ctx.value(sources["x"]), spec)
    return outputs_for(ctx, layer.returned, ran, spec)


@lowers(Stack)
def lower_stack(ctx: LoweringContext, node: str, layer: Stack, sources: Mapping[str, Source]) -> tuple[str, ...]:
    """Each layer reads the sequence below it; residual layers add it to their output (both 0 past L_b)."""
    g = ctx.g
    p = ctx.node_params(node)
    spec, h = sources["x"].spec, ctx.value(sources["x"])
    residual = set(layer.residual_layers())
    finals: list[str] = []
    ran: Ran | None = None
    for i, (local, item) in enumerate(layer.items()):
        params = {k[len(local) + 1:]: v for k, v in p.items() if k.startswith(local + "/")}
        with g.scope(local):
            ran = run_item(ctx, f"{node}/{local}", item, params, h, spec)
            if i in residual:
                # a residual Bidirectional top layer cannot return `last` (the DSL refuses it)
                y = pointwise(ctx, lambda a, b: g.op("Add", a, b, name="residual"), ran.y, h)
                reverse = isinstance(item, Recurrent) and item.reverse
                ran = Ran(y, functools.partial(last_valid, ctx, y, spec, reverse), ran.finals)
        finals += ran.finals
        h = ran.y
    assert ran is not None
    return outputs_for(ctx, layer.returned, Ran(ran.y, ran.last, finals), spec)
