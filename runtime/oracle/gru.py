"""Oracle step of the GRU cell, written from docs/gru.md on one row, float64."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.gates import split_gates
from rnngraph.runtime.oracle.activations import sigmoid


def gru_step(cell: GRU, p: Mapping[str, np.ndarray], x: np.ndarray, states: dict[str, np.ndarray],
             t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One GRU step; ``x (input,)``, state h ``(hidden,)``.

        z   = σ(W_z x + R_z h_{t-1} + Wb_z + Rb_z)
        r   = σ(W_r x + R_r h_{t-1} + Wb_r + Rb_r)
        n   = tanh(W_h x + R_h (r ⊙ h_{t-1}) + Wb_h + Rb_h)         linear_before_reset False
        n   = tanh(W_h x + r ⊙ (R_h h_{t-1} + Rb_h) + Wb_h)         linear_before_reset True
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    """
    h_prev = states["h"]
    W = split_gates(p["W"], cell.gates)
    R = split_gates(p["R"], cell.gates)
    wb, rb = np.split(p["B"], 2)
    Wb, Rb = split_gates(wb, cell.gates), split_gates(rb, cell.gates)

    z = sigmoid(W["z"] @ x + R["z"] @ h_prev + Wb["z"] + Rb["z"])
    r = sigmoid(W["r"] @ x + R["r"] @ h_prev + Wb["r"] + Rb["r"])
    if cell.linear_before_reset:
        n = np.tanh(W["h"] @ x + r * (R["h"] @ h_prev + Rb["h"]) + Wb["h"])
    else:
        n = np.tanh(W["h"] @ x + R["h"] @ (r * h_prev) + Wb["h"] + Rb["h"])
    h = (1.0 - z) * n + z * h_prev
    return {"h": h}, h


STEP = gru_step
