"""Gate orders, named once per framework, and reordering of fused gate arrays.

LSTM and GRU weights are stored fused: the blocks of every gate stacked along
one axis (``W (gates*hidden, input)``, ``B (2*gates*hidden,)``). Frameworks
stack them in different orders. Each order is written down here, once, by gate
name; every permutation is derived from two names, never typed as a tuple of
indices.

Gate names (as docs/lstm.md and docs/gru.md write them):
- LSTM: ``i`` input, ``o`` output, ``f`` forget, ``c`` cell candidate
  (PyTorch calls it ``g``).
- GRU: ``z`` update, ``r`` reset, ``h`` candidate (PyTorch calls it ``n``).

    >>> permutation(PYTORCH_LSTM, ONNX_LSTM)
    (0, 3, 1, 2)
    >>> reorder(np.arange(8), PYTORCH_LSTM, ONNX_LSTM)   # 4 gates of 2 units
    array([0, 1, 6, 7, 2, 3, 4, 5])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnngraph.errors import ParameterError

GateOrder = tuple[str, ...]

#: ONNX ``LSTM`` (and rnngraph's storage layout), the conventions of docs/README.md
ONNX_LSTM: GateOrder = ("i", "o", "f", "c")
#: ONNX ``LSTM`` peephole input ``P``: one block per peephole gate
ONNX_LSTM_PEEPHOLES: GateOrder = ("i", "o", "f")
#: ONNX ``GRU`` (and rnngraph's storage layout)
ONNX_GRU: GateOrder = ("z", "r", "h")

#: the classic RNN has one block, the same in every framework
RNN_GATES: GateOrder = ("h",)

#: torch.nn.LSTM ``weight_ih_l0`` etc.: i, f, g, o
PYTORCH_LSTM: GateOrder = ("i", "f", "c", "o")
#: torch.nn.GRU: r, z, n
PYTORCH_GRU: GateOrder = ("r", "z", "h")

#: keras.layers.LSTM ``kernel`` columns: i, f, c, o
KERAS_LSTM: GateOrder = ("i", "f", "c", "o")
#: keras.layers.GRU ``kernel`` columns: z, r, h
KERAS_GRU: GateOrder = ("z", "r", "h")


def without(order: GateOrder, *gates: str) -> GateOrder:
    """`order` with `gates` left out, the rest in the same relative order.

    The coupled LSTM stores ``without(ONNX_LSTM, "i") == ("o", "f", "c")``.
    """
    missing = [g for g in gates if g not in order]
    if missing:
        raise ValueError(f"gates {missing} are not in the order {order}")
    return tuple(g for g in order if g not in gates)


def permutation(src: GateOrder, dst: GateOrder) -> tuple[int, ...]:
    """For each gate of `dst`, its block index in `src` (`dst` may leave gates of `src` out)."""
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"gate orders must name each gate once, received {src} and {dst}")
    missing = [g for g in dst if g not in src]
    if missing:
        raise ValueError(f"gates {missing} of {dst} are not in {src}")
    return tuple(src.index(g) for g in dst)


def split_gates(array: np.ndarray, order: GateOrder, axis: int = 0, what: str = "array") -> dict[str, np.ndarray]:
    """The blocks of a fused array by gate name; `axis` must hold ``len(order)`` equal blocks."""
    array = np.asarray(array)
    n = len(order)
    if array.ndim == 0 or array.shape[axis] % n:
        raise ParameterError(
            f"{what}: axis {axis} must hold {n} equal gate blocks {order}, received shape {array.shape}."
        )
    return dict(zip(order, np.split(array, n, axis=axis), strict=True))


def join_gates(blocks: dict[str, np.ndarray], order: GateOrder, axis: int = 0) -> np.ndarray:
    """Stack the named blocks along `axis` in `order`."""
    return np.concatenate([blocks[g] for g in order], axis=axis)


def reorder(array: np.ndarray, src: GateOrder, dst: GateOrder, axis: int = 0, what: str = "array") -> np.ndarray:
    """Re-stack the gate blocks of `array` from order `src` to order `dst` along `axis`.

    ``(…, len(src)*H, …) -> (…, len(dst)*H, …)``; gates of `src` absent from `dst` are dropped.
    """
    array = np.asarray(array)
    n = len(src)
    if array.ndim == 0 or array.shape[axis] % n:
        raise ParameterError(
            f"{what}: axis {axis} must hold {n} equal gate blocks {src}, received shape {array.shape}."
        )
    block = array.shape[axis] // n
    index = np.concatenate([np.arange(k * block, (k + 1) * block) for k in permutation(src, dst)])
    return np.take(array, index, axis=axis)


def reorder_bias(bias: np.ndarray, src: GateOrder, dst: GateOrder, what: str = "bias") -> np.ndarray:
    """Reorder a fused ONNX bias ``[Wb; Rb]`` (``2*gates*H``): each half on its own."""
    bias = np.asarray(bias)
    if bias.ndim != 1 or bias.shape[0] % 2:
        raise ParameterError(f"{what}: expected a vector [Wb; Rb] of even length, received shape {bias.shape}.")
    halves: Sequence[np.ndarray] = np.split(bias, 2)
    return np.concatenate([reorder(half, src, dst, what=what) for half in halves])


__all__ = [
    "KERAS_GRU", "KERAS_LSTM", "ONNX_GRU", "ONNX_LSTM", "ONNX_LSTM_PEEPHOLES", "PYTORCH_GRU", "PYTORCH_LSTM",
    "RNN_GATES", "GateOrder", "join_gates", "permutation", "reorder", "reorder_bias", "split_gates", "without",
]
