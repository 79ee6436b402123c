"""Oracle step of the classic RNN (and SRN), on one row."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.rnn import RNN
from rnngraph.runtime.oracle.activations import activation


def rnn_step(cell: RNN, p: Mapping[str, np.ndarray], x: np.ndarray, states: dict[str, np.ndarray],
             t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """h_t = φ(W x_t + R h_{t-1} + Wb + Rb)   (docs/classic-rnn.md)."""
    h_prev = states["h"]
    wb, rb = np.split(p["B"], 2)
    h = activation(cell.activation, p["W"] @ x + p["R"] @ h_prev + wb + rb)
    return {"h": h}, h


STEP = rnn_step
