"""Oracle step of the LSTM cell, written from docs/lstm.md on one row, float64."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.gates import split_gates
from rnngraph.runtime.oracle.activations import sigmoid


def lstm_step(cell: LSTM, p: Mapping[str, np.ndarray], x: np.ndarray, states: dict[str, np.ndarray],
              t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One LSTM step; ``x (input,)``, states h and c ``(hidden,)``.

        a_k = W_k x + R_k h_{t-1} + Wb_k + Rb_k                    for each stored gate k
        f   = σ(a_f [+ p_f ⊙ c_{t-1}])
        i   = 1 - f  (coupled)   or   σ(a_i [+ p_i ⊙ c_{t-1}])
        c_t = f ⊙ c_{t-1} + i ⊙ tanh(a_c)
        o   = σ(a_o [+ p_o ⊙ c_t])                                  the output peephole reads the new c_t
        h_t = o ⊙ tanh(c_t)
    """
    h_prev, c_prev = states["h"], states["c"]
    W = split_gates(p["W"], cell.gates)
    R = split_gates(p["R"], cell.gates)
    wb, rb = np.split(p["B"], 2)
    Wb, Rb = split_gates(wb, cell.gates), split_gates(rb, cell.gates)
    a = {k: W[k] @ x + R[k] @ h_prev + Wb[k] + Rb[k] for k in cell.gates}
    peep = split_gates(p["P"], cell.peephole_gates) if cell.peephole else {}
    zero = np.zeros_like(c_prev)

    f = sigmoid(a["f"] + peep.get("f", zero) * c_prev)
    i = 1.0 - f if cell.coupled else sigmoid(a["i"] + peep.get("i", zero) * c_prev)
    c = f * c_prev + i * np.tanh(a["c"])
    o = sigmoid(a["o"] + peep.get("o", zero) * c)
    h = o * np.tanh(c)
    return {"h": h, "c": c}, h


STEP = lstm_step
