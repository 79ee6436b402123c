"""Lowering of 1-to-N generation (docs/vec2seq.md) to one ONNX ``Loop`` whose trip count is the count input.

    Loop(M = n, cond = "", states…, f_0) -> states_N…, f_N, ys (n, batch, out)

The body runs one full cell step (`step_once`'s contract: the cell's own hoist and
step, so every registered cell works, Clockwork's clock included: its step index
is the loop's iteration counter). What does not depend on the step is computed
once before the loop, in one of three ways (`InputPlan`):

- no feedback: the cell's hoisted input for ``v`` (and, for mode "first", for the
  zero input of steps 1…N-1) is computed outside; the body only selects it.
- feedback, and the cell's input weights are plain columns (RNN, LSTM, GRU; see `input_columns`):
  ``x_t = [a_t; f_t]`` splits the input projection into ``A_v a_t + A_f f_t + c``;
  ``D = A_v v`` is computed outside (``hoist(p_v, v) - hoist(p_v, 0)``), the body
  projects only the small feedback ``f_t`` and adds D (every step, or step 0 only).
- otherwise (cells that read the step index, unusual parameter layouts): the body
  builds ``x_t`` and runs the cell's whole hoist on it.

The readout runs in the body only when feedback needs ``y_t``; without feedback it
is one MatMul over all steps after the loop. The graph size does not depend on N.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.layers import dense, dense_step
from rnngraph.compiler.loop import LoopBody
from rnngraph.compiler.recurrent import BoundCell, SequenceInput, bind, step_once
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.generate import Generate, split_params
from rnngraph.dsl.model import Source
from rnngraph.dsl.tensor import VECTOR, TensorSpec


def hoist_on(g: GraphBuilder, bound: BoundCell, p: Mapping[str, np.ndarray], x: str) -> list[str]:
    """The cell's step-independent input work for one ``(batch, in)`` input."""
    return bound.hoist(g, p, SequenceInput(x, TensorSpec(VECTOR, 0), None, None))


def input_columns(cell: Cell, input_size: int) -> list[str] | None:
    """Parameters that are pure input weights, one column per input feature, or None if others depend on it.

    Found by asking the cell for its parameters at two input sizes: every parameter
    that changes must have exactly one column per input feature on its last axis
    (``W (gates·h, in)`` of RNN, LSTM, GRU, Clockwork). A parameter with other
    columns beside the input's (an ESN's ``W_in (N, 1+K)``, ``W_out (L, K+N+L)``)
    does not say where the input's columns are, so such a cell is not split.
    """
    now, wider = cell.param_specs(input_size), cell.param_specs(input_size + 1)
    names = []
    for name, spec in now.items():
        a, b = spec.shape, wider[name].shape
        if a == b:
            continue
        if len(a) == 0 or a[:-1] != b[:-1] or a[-1] != input_size or b[-1] != input_size + 1:
            return None
        names.append(name)
    return names or None


@dataclass
class InputPlan:
    """How the body gets the cell's hoisted inputs for step t (see the module docstring)."""

    bound: BoundCell
    p: Mapping[str, np.ndarray]
    mode: str
    v: str
    #: "select" (no feedback), "split" (feedback, projection split), "full" (hoist in the body)
    kind: str = "full"
    p_feedback: Mapping[str, np.ndarray] = field(default_factory=dict)
    u_every: list[str] = field(default_factory=list)  # hoist(v), or D = A_v v when split
    u_zero: list[str] = field(default_factory=list)   # hoist(0) for mode "first" (select)
    zero_input: str = ""                                # (batch, features) zeros for mode "first" (full)

    def at(self, body: GraphBuilder, feedback: str | None, is_first: str | None,
           first_f: str | None) -> tuple[list[str] | None, str | None]:
        """``(u_t, None)`` ready for the cell's step, or ``(None, x_t)`` for `step_once`."""
        if self.kind == "select":
            if self.mode == "every":
                return list(self.u_every), None
            assert is_first is not None
            return [body.op("Where", is_first, u1, u0, name=f"u{k}_t")
                    for k, (u1, u0) in enumerate(zip(self.u_every, self.u_zero, strict=True))], None
        if self.kind == "split":
            assert feedback is not None
            u_f = hoist_on(body, self.bound, self.p_feedback, feedback)
            if self.mode == "every":
                d = list(self.u_every)
            else:
                assert first_f is not None
                d = [body.op("Mul", dk, first_f, name=f"d{k}_t") for k, dk in enumerate(self.u_every)]
            return [body.op("Add", uf, dk, name=f"u{k}_t") for k, (uf, dk) in enumerate(zip(u_f, d, strict=True))], None
        if self.mode == "every":
            a = self.v
        else:
            assert is_first is not None
            a = body.op("Where", is_first, self.v, self.zero_input, name="a_t")
        x = a if feedback is None else body.op("Concat", a, feedback, axis=-1, name="x_t")
        return None, x


def plan_inputs(ctx: LoweringContext, layer: Generate, bound: BoundCell, p: Mapping[str, np.ndarray], v: str,
                features: int) -> InputPlan:
    g = ctx.g
    cell: Cell = bound.cell
    plan = InputPlan(bound, p, layer.mode, v)
    fb = layer.feedback_size
    zeros_v = g.zeros_state(v, features) if layer.mode == "first" or fb else ""
    if bound.needs_step_index:
        plan.zero_input = zeros_v
        return plan
    if fb == 0:
        plan.kind = "select"
        with g.scope("hoist_v"):
            plan.u_every = hoist_on(g, bound, p, v)
        if layer.mode == "first":
            with g.scope("hoist_zero"):
                plan.u_zero = hoist_on(g, bound, p, zeros_v)
        return plan
    columns = input_columns(cell, features + fb)
    if columns is None:
        plan.zero_input = zeros_v
        return plan
    plan.kind = "split"
    p_v, p_f = dict(p), dict(p)
    for name in columns:  # x_t = [a_t; f_t]: the first `features` columns read a_t, the rest f_t
        p_v[name] = p[name][..., :features]
        p_f[name] = p[name][..., features:]
    plan.p_feedback = p_f
    with g.scope("hoist_v"):
        with_v = hoist_on(g, bound, p_v, v)
    with g.scope("hoist_zero"):
        without_v = hoist_on(g, bound, p_v, zeros_v)
    plan.u_every = [g.op("Sub", a, b, name=f"A_v{k}") for k, (a, b) in enumerate(zip(with_v, without_v, strict=True))]
    return plan


@lowers(Generate)
def lower_generate(ctx: LoweringContext, node: str, layer: Generate, sources: Mapping[str, Source]) -> tuple[str, ...]:
    g = ctx.g
    cell = layer.cell
    assert cell is not None
    bound = bind(ctx, cell)
    ctx.paths[node] = "loop"
    v, count = ctx.value(sources["v"]), ctx.value(sources["steps"])
    features = sources["v"].spec.features
    params = split_params(layer, features, ctx.node_params(node))
    p, p_out = params["cell"], params["readout"]
    sizes = cell.state_sizes()
    fb = layer.feedback_size
    in_body_readout = layer.readout is not None and layer.feedback != "none"

    plan = plan_inputs(ctx, layer, bound, p, v, features)
    loop = LoopBody(g, "loop", "loop", clock_start=lambda: g.zeros_state(v, 1))  # the clock: step t
    states = loop.carry_all({name: g.zeros_state(v, size) for name, size in sizes.items()}, sizes)
    f_prev = loop.carry("feedback", initial_feedback(g, layer, params, v), [None, fb]) if fb else None
    body = loop.b
    is_first = first_f = None
    if layer.mode == "first":
        is_first = body.op("Equal", loop.iteration(), body.const("zero", 0, "int64"), name="is_first")
        first_f = body.cast(is_first, "float", name="first") if plan.kind == "split" else None
    u, x = plan.at(body, f_prev, is_first, first_f)
    if u is not None:
        new_states, h = bound.step(body, p, states, u)
    else:
        assert x is not None
        new_states, h = step_once(ctx, loop, cell, p, states, x)
    loop.update(new_states)
    if in_body_readout:
        assert layer.readout is not None
        y_t = dense_step(body, h, p_out["W"], p_out["b"], layer.readout.activation)
    else:
        y_t = h
    if fb:
        loop.update({"feedback": next_feedback(body, layer, params, y_t)})
    loop.emit("y", y_t, layer.output_size if in_body_readout else cell.output_size)
    y = loop.run_loop(count, g.dim(v, 0)).stacked["y"]
    if layer.readout is not None and not in_body_readout:  # hoisted: one MatMul over all steps
        y = dense(g, y, p_out["W"], p_out["b"], layer.readout.activation)
    if not layer.tokens:
        return (y,)
    return y, g.op("ArgMax", y, axis=-1, keepdims=0, name="tokens")


def initial_feedback(g: GraphBuilder, layer: Generate, params: Mapping[str, Mapping[str, np.ndarray]],
                     v: str) -> str:
    """f_0 ``(batch, feedback size)``: zeros, or the embedding of the start token."""
    zeros = g.zeros_state(v, layer.feedback_size)
    if layer.feedback == "argmax" and layer.start is not None:
        return g.op("Add", zeros, g.const("start", params["embedding"]["E"][layer.start]), name="feedback0")
    return zeros


def next_feedback(body: GraphBuilder, layer: Generate, params: Mapping[str, Mapping[str, np.ndarray]],
                  y_t: str) -> str:
    """f_{t+1}: y_t itself, or the embedding of argmax(y_t) (first index of the maximum)."""
    if layer.feedback == "output":
        return y_t
    token = body.op("ArgMax", y_t, axis=-1, keepdims=0, name="token")
    return body.op("Gather", body.const("E", params["embedding"]["E"]), token, axis=0, name="feedback")
