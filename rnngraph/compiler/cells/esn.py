"""Lowering of the Echo State Network cell (docs/esn.md). There is no native ONNX op: Scan only.

Hoisted, once for all steps (one MatMul each):
    d_t = W_in[:, 1:] u_t + W_in[:, 0]                  (batch, time, N)   reservoir drive
    r_t = W_out[:, :K] u_t + b_out                      (batch, time, L)   readout of the input (if read)
Scan step:
    x̃ = Tanh(Gemm(x_prev, W, d_t) [→ Gemm(y_prev, W_back, ·)])
    x  = x_prev + a·(x̃ − x_prev)                        (just x̃ when a = 1)
    y  = Gemm(x, W_out_x, r_t) [→ Gemm(y_prev, W_out_y, ·)]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.idioms import blend
from rnngraph.compiler.recurrent import CellLowering, SequenceInput, input_projection
from rnngraph.dsl.cells.esn import ESN


def readout_blocks(cell: ESN, p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """W_out split into its column blocks by what they read: ``{"input": (L, K), "state": (L, N), …}``."""
    input_size = p["W_in"].shape[1] - 1
    blocks, start = {}, 0
    for read, size in cell.read_sizes(input_size).items():
        blocks[read] = p["W_out"][:, start:start + size]
        start += size
    return blocks


def hoist(g: GraphBuilder, cell: ESN, p: Mapping[str, np.ndarray], seq: SequenceInput, form: str) -> list[str]:
    drive = input_projection(g, seq, p["W_in"][:, 1:], p["W_in"][:, 0], name="drive")
    blocks = readout_blocks(cell, p)
    if "input" not in blocks:
        return [drive]
    return [drive, input_projection(g, seq, blocks["input"], p["b_out"], name="readout_in")]


def step(body: GraphBuilder, cell: ESN, p: Mapping[str, np.ndarray], states: dict[str, str],
         inputs: list[str], form: str) -> tuple[dict[str, str], str]:
    x_prev, y_prev = states["x"], states["y"]
    pre = body.op("Gemm", x_prev, body.const("W", p["W"]), inputs[0], transB=1, name="pre")
    if cell.feedback:
        pre = body.op("Gemm", y_prev, body.const("W_back", p["W_back"]), pre, transB=1, name="pre_back")
    x_new = body.op("Tanh", pre, name="x_tilde")
    if cell.leak != 1.0:
        x_new = blend(body, x_prev, x_new, body.const("leak", cell.leak), name="x")
    blocks = readout_blocks(cell, p)
    y = inputs[1] if "input" in blocks else body.const("b_out", p["b_out"])
    if "state" in blocks:
        y = body.op("Gemm", x_new, body.const("W_out_x", blocks["state"]), y, transB=1, name="y_state")
    if "output" in blocks:
        y = body.op("Gemm", y_prev, body.const("W_out_y", blocks["output"]), y, transB=1, name="y_out")
    if "state" not in blocks and "output" not in blocks:
        y = body.op("Identity", y, name="y")  # y is the hoisted scan input itself; a body must compute its outputs
    return {"y": y, "x": x_new}, y


LOWERING = CellLowering(hoist=hoist, step=step)
