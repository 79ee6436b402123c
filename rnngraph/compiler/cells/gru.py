"""Lowering of the GRU cell (docs/gru.md): a lean Scan body, or ONNX's native ``GRU`` op.

Scan body (u_zr, u_h hoisted: ``X·Wᵀ`` plus the biases that sit outside the reset gate):

    z, r = split(σ(Gemm(h, R_zr, u_zr)))                        u_zr = X·W_zrᵀ + Wb_zr + Rb_zr
    n    = tanh(Gemm(r ⊙ h, R_h, u_h))                          linear_before_reset False, u_h = X·W_hᵀ + Wb_h + Rb_h
    n    = tanh(u_h + r ⊙ Gemm(h, R_h, Rb_h))                   linear_before_reset True,  u_h = X·W_hᵀ + Wb_h
    h_t  = n + z ⊙ (h − n)                                      = (1 − z) ⊙ n + z ⊙ h, one node less

Native: ONNX ``GRU`` (layout 0, transposes around it) with its ``linear_before_reset``
attribute, which has exactly the semantics of the cell's option.

`auto` picks the native op: it is faster than the Scan at every size measured
(benchmarks/lowering.py).
"""

from __future__ import annotations

from collections.abc import Mapping

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
from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.gates import reorder, split_gates, without

CANDIDATE = ("h",)


def hoist(g: GraphBuilder, cell: GRU, p: Mapping[str, np.ndarray], seq: SequenceInput, form: str) -> list[str]:
    """``u_zr (batch, time, 2H)`` and ``u_h (batch, time, H)``."""
    gates = without(cell.gates, *CANDIDATE)
    wb, rb = np.split(p["B"], 2)
    W = np.concatenate([reorder(p["W"], cell.gates, gates), reorder(p["W"], cell.gates, CANDIDATE)])
    order = (*gates, *CANDIDATE)
    hoisted_rb = np.array(reorder(rb, cell.gates, order))  # a copy: reorder may give a view of the params
    if cell.linear_before_reset:  # Rb_h is scaled by r inside the step and cannot be hoisted: 0 in its place
        hoisted_rb[len(gates) * cell.hidden:] = 0.0
    u = input_projection(g, seq, W, FoldedBias(reorder(wb, cell.gates, order), hoisted_rb))
    sizes = g.const("sizes", [len(gates) * cell.hidden, cell.hidden], "int64")
    return list(g.op_n("Split", u, sizes, axis=-1, outputs=2, name="x_gates"))


def step(body: GraphBuilder, cell: GRU, p: Mapping[str, np.ndarray], states: dict[str, str],
         inputs: list[str], form: str) -> tuple[dict[str, str], str]:
    h_prev = states["h"]
    u_zr, u_h = inputs
    gates = without(cell.gates, *CANDIDATE)
    label = "".join(gates)
    R_zr = body.const(f"R_{label}", reorder(p["R"], cell.gates, gates))
    pre_zr = body.op("Gemm", h_prev, R_zr, u_zr, transB=1, name=f"pre_{label}")
    zr = body.op("Sigmoid", pre_zr, name=f"gates_{label}")
    sizes = body.const("sizes", [cell.hidden] * len(gates), "int64")
    gate = dict(zip(gates, body.op_n("Split", zr, sizes, axis=1, outputs=len(gates), name=f"{label}_split"),
                    strict=True))
    R_h = body.const("R_h", reorder(p["R"], cell.gates, CANDIDATE))
    if cell.linear_before_reset:
        Rb_h = split_gates(np.split(p["B"], 2)[1], cell.gates)["h"]
        rec = body.op("Gemm", h_prev, R_h, body.const("Rb_h", Rb_h), transB=1, name="rec_h")
        pre = body.op("Add", u_h, body.op("Mul", gate["r"], rec, name="reset"), name="pre_h")
    else:
        reset = body.op("Mul", gate["r"], h_prev, name="reset")
        pre = body.op("Gemm", reset, R_h, u_h, transB=1, name="pre_h")
    n = body.op("Tanh", pre, name="n")
    h = blend(body, n, h_prev, gate["z"], name="h")
    return {"h": h}, h


def native(ctx: LoweringContext, cell: GRU, p: Mapping[str, np.ndarray], seq: SequenceInput,
           initial: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    g = ctx.g
    inputs = [
        time_major(ctx, seq.x), g.const("W", p["W"][None]), g.const("R", p["R"][None]), g.const("B", p["B"][None]),
        seq.lengths_i32 or "",
        g.unsqueeze(initial["h"], [0]) if initial and "h" in initial else "",
    ]
    while inputs[-1] == "":
        inputs.pop()
    y, y_h = g.op_n(
        "GRU", *inputs, outputs=2, name="gru", hidden_size=cell.hidden,
        direction="reverse" if seq.reverse else "forward",
        linear_before_reset=int(cell.linear_before_reset),
    )
    return from_native_outputs(ctx, y, {"h": y_h})


def on_cuda(cell: GRU) -> bool:
    """The CUDA provider runs the native GRU `native` emits (its linear_before_reset)."""
    return cuda.recurrent_runs_on_cuda("GRU", {"linear_before_reset": int(cell.linear_before_reset)})


LOWERING = CellLowering(hoist=hoist, step=step, native=native, prefer_native=True, native_on_cuda=on_cuda)
