"""Oracle steps of the cells, each from the equations of SPEC.md §2, on one row."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.rnn import RNN
from rnngraph.runtime.oracle.core import steps


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def activation(name: str, a: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "sigmoid":
        return sigmoid(a)
    raise ValueError(f"unknown activation {name!r}")


@steps(RNN)
def rnn_step(cell: RNN, p: Mapping[str, np.ndarray], x: np.ndarray, states: dict[str, np.ndarray],
             t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """h_t = φ(W x_t + R h_{t-1} + Wb + Rb)   (SPEC §1.1)."""
    h_prev = states["h"]
    wb, rb = np.split(p["B"], 2)
    h = activation(cell.activation, p["W"] @ x + p["R"] @ h_prev + wb + rb)
    return {"h": h}, h
