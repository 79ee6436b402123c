"""Lowering of the classic RNN cell (and its alias SRN).

Scan step:   h_t = φ(Gemm(h_{t-1}, R, u_t))        u_t = W x_t + Wb + Rb, hoisted (Wb + Rb folded at load)
Native:      ONNX ``RNN`` (layout 0, transposes around it).

`auto`: which is faster depends on the batch size (measured here with
benchmarks/native_crossover.py, T=100, 1 thread): the native kernel costs little per step and much
per row, the Scan much per step (its per-node overhead) and little per row. The native op wins
while ``batch · hidden`` stays under about 160 for a padded sequence (the Scan then also blends
every state with the mask) and about 64 for an unpadded one; above that the Scan does, up to 2–6×.
So `auto` exports both, chosen by the batch when the graph runs (`rnngraph.compiler.by_batch`),
wherever the native op wins at batch 1; the Scan alone where it never does (hidden ≥ 160, or ≥ 64
unpadded).
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
    time_major,
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
    return native_op(ctx, cell, seq, initial, g.const("W", p["W"][None]), g.const("R", p["R"][None]),
                     g.const("B", p["B"][None]))


def native_beside_scan(ctx: LoweringContext, cell: RNN, p: Mapping[str, np.ndarray], seq: SequenceInput,
                       initial: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """The native op on the weights of the Scan in the same graph (`by_batch`): ``Wᵀ``, ``Wb`` and ``Rb`` as
    the hoist holds them, ``R`` as the step does; the layouts ONNX's op wants are derived from them in the
    graph (onnxruntime folds those nodes into constants when it loads the model), so no weight is
    stored twice."""
    g = ctx.g
    h = cell.hidden
    W_T = g.const("W_T", np.ascontiguousarray(p["W"].T))
    W = g.unsqueeze(g.op("Transpose", W_T, perm=[1, 0], name="W_layout"), [0])
    B = g.unsqueeze(g.op("Concat", g.const("Wb", p["B"][:h]), g.const("Rb", p["B"][h:]), axis=0, name="B_layout"),
                    [0])
    return native_op(ctx, cell, seq, initial, W, g.unsqueeze(g.const("R", p["R"]), [0]), B)


def native_op(ctx: LoweringContext, cell: RNN, seq: SequenceInput, initial: dict[str, str] | None, W: str, R: str,
              B: str) -> tuple[str, dict[str, str]]:
    """ONNX ``RNN`` over ``seq`` with its weights `W` ``(1, H, in)``, `R` ``(1, H, H)``, `B` ``(1, 2H)``."""
    g = ctx.g
    init_h = g.unsqueeze(initial["h"], [0]) if initial else ""
    y, y_h = g.op_n(
        "RNN", time_major(ctx, seq.x), W, R, B, seq.lengths_i32 or "", init_h,
        outputs=2, name="rnn", hidden_size=cell.hidden,
        activations=[ACTIVATIONS[cell.activation]],
        direction="reverse" if seq.reverse else "forward",
    )
    return from_native_outputs(ctx, y, {"h": y_h})


def on_cuda(cell: RNN) -> bool:
    """The CUDA provider runs the native RNN `native` emits (its activation)."""
    return cuda.recurrent_runs_on_cuda("RNN", {"activations": [ACTIVATIONS[cell.activation]]})


#: ``batch · hidden`` below which the native op is faster than the Scan (padded, unpadded), see the docstring
CROSSOVER = {True: 160, False: 64}


def native_batch_limit(cell: RNN, padded: bool) -> int:
    """The largest batch at which the native op is faster (0: never), from the measured crossover."""
    return CROSSOVER[padded] // cell.hidden


LOWERING = CellLowering(hoist=hoist, step=step, native=native, prefer_native=False, native_on_cuda=on_cuda,
                        native_batch_limit=native_batch_limit, native_beside_scan=native_beside_scan)
