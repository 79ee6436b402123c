"""Lowering of the classic RNN cell (and its alias SRN).

Scan step:   h_t = φ(Gemm(h_{t-1}, R, u_t))        u_t = W x_t + Wb + Rb, hoisted (Wb + Rb folded at load)
Native:      ONNX ``RNN`` (layout 0, transposes around it).

`auto` picks the Scan: measured here, a hoisted Scan runs at 0.4–0.94× the time
of onnxruntime's native RNN kernel (benchmarks/lowering.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.compiler import cuda
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.idioms import ACTIVATIONS, activate
from rnngraph.compiler.recurrent import (
    CellLowering,
    FoldedBias,
    SequenceInput,
    from_native_outputs,
    input_projection,
    to_time_major,
)
from rnngraph.dsl.cells.rnn import RNN


def hoist(g: GraphBuilder, cell: RNN, p: Mapping[str, np.ndarray], seq: SequenceInput, form: str) -> list[str]:
    h = cell.hidden
    return [input_projection(g, seq, p["W"], FoldedBias(p["B"][:h], p["B"][h:]))]


def step(body: GraphBuilder, cell: RNN, p: Mapping[str, np.ndarray], states: dict[str, str],
         inputs: list[str], form: str) -> tuple[dict[str, str], str]:
    pre = body.op("Gemm", states["h"], body.const("R", p["R"]), inputs[0], transB=1, name="pre")
    h = activate(body, pre, cell.activation, name="h")
    return {"h": h}, h


def native(ctx: LoweringContext, cell: RNN, p: Mapping[str, np.ndarray], seq: SequenceInput,
           initial: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    g = ctx.g
    init_h = g.unsqueeze(initial["h"], [0]) if initial else ""
    y, y_h = g.op_n(
        "RNN", to_time_major(g, seq.x), g.const("W", p["W"][None]), g.const("R", p["R"][None]),
        g.const("B", p["B"][None]), seq.lengths_i32 or "", init_h,
        outputs=2, name="rnn", hidden_size=cell.hidden,
        activations=[ACTIVATIONS[cell.activation]],
        direction="reverse" if seq.reverse else "forward",
    )
    return from_native_outputs(g, y, {"h": y_h})


def on_cuda(cell: RNN) -> bool:
    """The CUDA provider runs the native RNN `native` emits (its activation)."""
    return cuda.recurrent_runs_on_cuda("RNN", {"activations": [ACTIVATIONS[cell.activation]]})


LOWERING = CellLowering(hoist=hoist, step=step, native=native, prefer_native=False, native_on_cuda=on_cuda)
