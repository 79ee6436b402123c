"""The oracle's activation functions, by the names the DSL uses (cell steps, Dense, readouts)."""

from __future__ import annotations

import numpy as np


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


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dense_activation(name: str, a: np.ndarray) -> np.ndarray:
    """A Dense layer's activation: any cell activation, ``softmax`` over the last axis, or ``none``."""
    if name == "none":
        return a
    if name == "softmax":
        return softmax(a)
    return activation(name, a)
