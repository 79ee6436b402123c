"""Lowering of the LSTM cell (docs/lstm.md): a lean Scan body, or ONNX's native ``LSTM`` op.

Scan. The gates are computed in activation groups, each one ``Gemm(h, R_group, u_group)``
followed by its activation, so that onnxruntime fuses the pair; the group's input
projection ``u = X·W_groupᵀ + Wb + Rb`` is hoisted out of the loop (one MatMul for
all groups, split into one scan input per group). Groups, by option:

    plain             σ(i, o, f)                   tanh(c)
    peephole          σ(i, f) + P⊙c_{t-1}           tanh(c)     σ(o) + p_o⊙c_t
    coupled           σ(o, f)                      tanh(c)
    coupled+peephole  σ(f) + p_f⊙c_{t-1}            tanh(c)     σ(o) + p_o⊙c_t

(the output gate waits for c_t only when its peephole reads it). The coupled
update is written ``c_t = g + f ⊙ (c_{t-1} − g)``, which equals
``f ⊙ c_{t-1} + (1 − f) ⊙ g`` with one node less.

Native. ONNX ``LSTM`` (layout 0, transposes around it); peepholes go to its P input
(order i, o, f). Coupled cells use ``input_forget=1``. ONNX does not say which of
the two gates that attribute derives; onnxruntime computes ``f = 1 − i`` from the
input gate, another runtime might compute ``i = 1 − f``. Both are exact here:
the forget-gate weights go to the f slot unchanged and, negated, to the i slot,
since ``σ(−a) = 1 − σ(a)``: either way ``f = σ(a_f)`` and ``i = 1 − f``
(tests/test_lstm.py checks it against the oracle).

`auto` picks the native op: it is faster than the Scan at every size measured
(benchmarks/lowering.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.compiler import cuda
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.idioms import blend
from rnngraph.compiler.recurrent import (
    CellLowering,
    FoldedBias,
    SequenceInput,
    from_native_outputs,
    input_projection,
    time_major,
)
from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.gates import ONNX_LSTM, ONNX_LSTM_PEEPHOLES, GateOrder, join_gates, reorder, split_gates, without


@dataclass(frozen=True)
class Group:
    """Gates computed together: ``act(Gemm(h, R_gates, u_gates [+ P_gates ⊙ state]))``."""

    gates: GateOrder
    activation: str
    #: the cell state its peephole term reads: "c_prev" (c_{t-1}), "c" (c_t), or None
    peephole: str | None = None


def groups(cell: LSTM) -> list[Group]:
    """The activation groups of `cell`, in the order their scan inputs are hoisted."""
    if not cell.peephole:
        return [Group(without(cell.gates, "c"), "Sigmoid"), Group(("c",), "Tanh")]
    return [Group(without(cell.gates, "o", "c"), "Sigmoid", "c_prev"), Group(("c",), "Tanh"),
            Group(("o",), "Sigmoid", "c")]


def hoist(g: GraphBuilder, cell: LSTM, p: Mapping[str, np.ndarray], seq: SequenceInput, form: str) -> list[str]:
    """``u_group = X·W_groupᵀ + Wb_group + Rb_group`` for every group, ``(batch, time, |group|·H)`` each."""
    wb, rb = np.split(p["B"], 2)
    parts = groups(cell)
    W = np.concatenate([reorder(p["W"], cell.gates, part.gates) for part in parts])
    wb, rb = (np.concatenate([reorder(bias, cell.gates, part.gates) for part in parts]) for bias in (wb, rb))
    b = FoldedBias(wb, rb)
    u = input_projection(g, seq, W, b)
    sizes = [len(part.gates) * cell.hidden for part in parts]
    return list(g.op_n("Split", u, g.const("sizes", sizes, "int64"), axis=-1, outputs=len(parts), name="x_gates"))


def group_gates(body: GraphBuilder, cell: LSTM, p: Mapping[str, np.ndarray], part: Group, h_prev: str, u_t: str,
             state: str | None) -> dict[str, str]:
    """The gate values of one group, ``(batch, H)`` each, by gate name."""
    label = "".join(part.gates)
    c_in = u_t
    if part.peephole is not None:
        assert state is not None
        tiled = state if len(part.gates) == 1 else body.op("Concat", *[state] * len(part.gates), axis=1,
                                                          name=f"{part.peephole}_x{len(part.gates)}")
        P = body.const(f"P_{label}", reorder(p["P"], cell.peephole_gates, part.gates))
        c_in = body.op("Add", u_t, body.op("Mul", tiled, P, name=f"peep_{label}"), name=f"u_{label}_peep")
    R = body.const(f"R_{label}", reorder(p["R"], cell.gates, part.gates))
    pre = body.op("Gemm", h_prev, R, c_in, transB=1, name=f"pre_{label}")
    value = body.op(part.activation, pre, name=f"gates_{label}")
    if len(part.gates) == 1:
        return {part.gates[0]: value}
    sizes = body.const("sizes", [cell.hidden] * len(part.gates), "int64")
    split = body.op_n("Split", value, sizes, axis=1, outputs=len(part.gates), name=f"{label}_split")
    return dict(zip(part.gates, split, strict=True))


def step(body: GraphBuilder, cell: LSTM, p: Mapping[str, np.ndarray], states: dict[str, str],
         inputs: list[str], form: str) -> tuple[dict[str, str], str]:
    h_prev, c_prev = states["h"], states["c"]
    parts = list(zip(groups(cell), inputs, strict=True))
    gate: dict[str, str] = {}
    for part, u_t in parts:
        if part.peephole != "c":
            gate.update(group_gates(body, cell, p, part, h_prev, u_t, c_prev))
    if cell.coupled:  # c_t = f c_{t-1} + (1 - f) g = g + f (c_{t-1} - g)
        c = blend(body, gate["c"], c_prev, gate["f"], name="c")
    else:
        c = body.op("Add", body.op("Mul", gate["f"], c_prev, name="forget"),
                    body.op("Mul", gate["i"], gate["c"], name="write"), name="c")
    for part, u_t in parts:
        if part.peephole == "c":
            gate.update(group_gates(body, cell, p, part, h_prev, u_t, c))
    h = body.op("Mul", gate["o"], body.op("Tanh", c, name="tanh_c"), name="h")
    return {"h": h, "c": c}, h


def native_weights(cell: LSTM, p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """W, R, B (and P) in ONNX's four-gate layout; a coupled cell's i slot holds its negated f weights."""

    def four_gates(array: np.ndarray, order: GateOrder, onnx_order: GateOrder) -> np.ndarray:
        blocks = split_gates(array, order)
        if cell.coupled:  # σ(-a_f) = 1 - σ(a_f): the input gate of a runtime computing i itself
            blocks["i"] = -blocks["f"]
        return join_gates(blocks, onnx_order)

    wb, rb = np.split(p["B"], 2)
    out = {
        "W": four_gates(p["W"], cell.gates, ONNX_LSTM),
        "R": four_gates(p["R"], cell.gates, ONNX_LSTM),
        "B": np.concatenate([four_gates(wb, cell.gates, ONNX_LSTM), four_gates(rb, cell.gates, ONNX_LSTM)]),
    }
    if cell.peephole:
        out["P"] = four_gates(p["P"], cell.peephole_gates, ONNX_LSTM_PEEPHOLES)
    return out


def native(ctx: LoweringContext, cell: LSTM, p: Mapping[str, np.ndarray], seq: SequenceInput,
           initial: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    g = ctx.g
    weights = native_weights(cell, p)
    initial = initial or {}
    inputs = [
        time_major(ctx, seq.x),
        g.const("W", weights["W"][None]), g.const("R", weights["R"][None]), g.const("B", weights["B"][None]),
        seq.lengths_i32 or "",
        g.unsqueeze(initial["h"], [0]) if "h" in initial else "",
        g.unsqueeze(initial["c"], [0]) if "c" in initial else "",
        g.const("P", weights["P"][None]) if cell.peephole else "",
    ]
    while inputs[-1] == "":
        inputs.pop()
    y, y_h, y_c = g.op_n(
        "LSTM", *inputs, outputs=3, name="lstm", hidden_size=cell.hidden,
        direction="reverse" if seq.reverse else "forward",
        input_forget=1 if cell.coupled else None,
    )
    return from_native_outputs(ctx, y, {"h": y_h, "c": y_c})


def on_cuda(cell: LSTM) -> bool:
    """The CUDA provider runs the native LSTM `native` emits (its input_forget and P input)."""
    return cuda.recurrent_runs_on_cuda("LSTM", {"input_forget": int(cell.coupled)}, cell.peephole)


LOWERING = CellLowering(hoist=hoist, step=step, native=native, prefer_native=True, native_on_cuda=on_cuda)
