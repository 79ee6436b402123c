"""One layer's weights to and from PyTorch and Keras layouts (RNN, LSTM and GRU cells).

rnngraph stores gate weights fused in ONNX's order (LSTM i, o, f, c; GRU z, r, h),
``W (gates*H, I)``, ``R (gates*H, H)``, ``B = [Wb; Rb] (2*gates*H,)``. Every permutation
is derived from the gate orders that each cell's registered `CellLayout` names.

The ``from_*`` converters return `LayerWeights`: the arrays ``{"W", "R", "B"}`` plus the
cell they were read for and the direction they run in (`reverse`), so that
`set_node_params` refuses forward weights in a backward slot, or weights read for
``GRU(linear_before_reset=True)`` in a ``linear_before_reset=False`` slot, instead of
computing something else without a word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.gates import reorder
from rnngraph.errors import ParameterError
from rnngraph.interop.layouts import layout

Arrays = dict[str, np.ndarray]


class LayerWeights(dict[str, np.ndarray]):
    """rnngraph parameters of one cell (``{"W", "R", "B"}``, float32), with where they came from.

    `cell` is the cell they were converted for, `reverse` whether they belong to a layer
    that runs backward over time, `source` a phrase for error messages.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], *, cell: Cell, reverse: bool, source: str) -> None:
        super().__init__(arrays)
        self.cell = cell
        self.reverse = reverse
        self.source = source


def as_array(value: object, what: str, ndim: int | None = None) -> np.ndarray:
    """`value` (a numpy array, a torch tensor, even one that requires grad) as a float64 array."""
    detach = getattr(value, "detach", None)
    if callable(detach):  # torch tensors: off the graph and onto the CPU before numpy reads them
        value = detach().cpu().numpy()
    elif not isinstance(value, np.ndarray) and callable(to_numpy := getattr(value, "numpy", None)):
        value = to_numpy()  # Keras variables, whose __array__ predates numpy 2's copy keyword
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{what}: expected an array of numbers, received {type(value).__name__} ({exc}).") from exc
    if ndim is not None and array.ndim != ndim:
        raise ParameterError(f"{what}: expected a {ndim}-d array, received shape {array.shape}.")
    return array


def _check_rows(array: np.ndarray, rows: int, what: str, cell: Cell, axis: int = 0) -> None:
    if array.shape[axis] != rows:
        raise ParameterError(f"{what}: expected {rows} along axis {axis} for {cell.describe()}, "
                             f"received shape {array.shape}. Is the cell's hidden size or type the right one?")


def _weights(cell: Cell, reverse: bool, source: str, W: np.ndarray, R: np.ndarray, wb: np.ndarray,
             rb: np.ndarray) -> LayerWeights:
    arrays = {"W": W.astype(np.float32), "R": R.astype(np.float32),
              "B": np.concatenate([wb, rb]).astype(np.float32)}
    return LayerWeights(arrays, cell=cell, reverse=reverse, source=source)


def _boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"invalid value for `{name}`: expected True or False, received {value!r}.")
    return value


# -- PyTorch ----------------------------------------------------------------------
def pytorch_keys(layer: int = 0, reverse: bool = False, prefix: str = "") -> dict[str, str]:
    """The state-dict keys of one layer and direction of ``torch.nn.RNN/LSTM/GRU``."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {k: f"{prefix}{k}{suffix}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def _state_dict(state_dict: object) -> Mapping[str, Any]:
    if isinstance(state_dict, Mapping):
        return state_dict
    kind = type(state_dict).__name__
    hint = ("an iterator such as module.named_parameters() is read once and holds trainable tensors only; "
            "pass module.state_dict()" if kind in ("generator", "list", "tuple", "zip", "map")
            else "pass module.state_dict(), or import the whole module with rnngraph.interop.import_pytorch(module)"
            if hasattr(state_dict, "state_dict") else "pass module.state_dict()")
    raise ParameterError(f"from_pytorch: expected a state dict (a mapping of names to tensors), "
                         f"received {kind}; {hint}.")


def from_pytorch(cell: Cell, state_dict: Mapping[str, object], *, layer: int = 0, reverse: bool = False,
                 prefix: str = "") -> LayerWeights:
    """rnngraph parameters ``{"W", "R", "B"}`` of `cell` from a torch RNN/LSTM/GRU state dict.

    `layer` and `reverse` pick ``weight_ih_l{layer}[_reverse]`` etc. (`reverse=True` reads
    the backward direction of a bidirectional module, and the result may then only fill a
    backward slot); `prefix` is the module path in a larger state dict (``"encoder.rnn."``).
    A module built with ``bias=False`` has no bias keys: the biases are then zero.
    """
    ours, theirs = _orders(cell, "pytorch")
    reverse = _boolean("reverse", reverse)
    state = _state_dict(state_dict)
    keys = pytorch_keys(layer, reverse, prefix)
    if f"{prefix}weight_hr_l{layer}" in state:
        raise ParameterError(f"{keys['weight_ih']}: LSTMs with proj_size are not supported (found weight_hr).")
    for role in ("weight_ih", "weight_hh"):
        if keys[role] not in state:
            raise ParameterError(f"PyTorch state dict: missing `{keys[role]}`; it has {sorted(state)}. "
                                 "Check `layer`, `reverse` and `prefix`.")
    rows = len(ours) * cell.hidden
    w_ih = as_array(state[keys["weight_ih"]], keys["weight_ih"], 2)
    w_hh = as_array(state[keys["weight_hh"]], keys["weight_hh"], 2)
    _check_rows(w_ih, rows, keys["weight_ih"], cell)
    _check_rows(w_hh, rows, keys["weight_hh"], cell)
    _check_rows(w_hh, cell.hidden, keys["weight_hh"], cell, axis=1)
    biases = []
    for role in ("bias_ih", "bias_hh"):
        b = as_array(state[keys[role]], keys[role], 1) if keys[role] in state else np.zeros(rows)
        _check_rows(b, rows, keys[role], cell)
        biases.append(reorder(b, theirs, ours, what=keys[role]))
    return _weights(cell, reverse, f"PyTorch `{keys['weight_ih']}`", reorder(w_ih, theirs, ours),
                    reorder(w_hh, theirs, ours), *biases)


def to_pytorch(cell: Cell, local: Mapping[str, np.ndarray], *, layer: int = 0, reverse: bool = False,
               prefix: str = "") -> Arrays:
    """A torch state dict (float32 arrays; ``torch.from_numpy`` them) from rnngraph parameters of `cell`."""
    ours, theirs = _orders(cell, "pytorch")
    keys = pytorch_keys(layer, reverse, prefix)
    W, R, wb, rb = _split_local(cell, local, len(ours))
    out = {"weight_ih": reorder(W, ours, theirs), "weight_hh": reorder(R, ours, theirs),
           "bias_ih": reorder(wb, ours, theirs), "bias_hh": reorder(rb, ours, theirs)}
    return {keys[role]: value.astype(np.float32) for role, value in out.items()}


# -- Keras ------------------------------------------------------------------------
KERAS_NAMES = ("kernel", "recurrent_kernel", "bias")


def _keras_named(weights: object) -> Mapping[str, object]:
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(KERAS_NAMES))
        if unknown:
            raise ParameterError(f"Keras weights: unknown names {unknown}; expected {list(KERAS_NAMES)}.")
        return weights
    if not isinstance(weights, Sequence) or isinstance(weights, (str, bytes)):
        raise ParameterError(f"Keras weights: expected layer.get_weights() (a list of arrays) or a mapping "
                             f"with names {list(KERAS_NAMES)}, received {type(weights).__name__}.")
    if len(weights) > len(KERAS_NAMES):
        raise ParameterError(
            f"Keras weights: received {len(weights)} arrays, but one layer has at most 3 "
            "[kernel, recurrent_kernel, bias]. A Bidirectional's get_weights() holds the forward layer's "
            "arrays, then the backward layer's: convert each on its own, "
            "from_keras(cell, bidi.forward_layer.get_weights()) and "
            "from_keras(cell, bidi.backward_layer.get_weights(), reverse=True), "
            "or import the whole model with rnngraph.interop.import_keras(model).")
    return dict(zip(KERAS_NAMES, weights, strict=False))


def from_keras(cell: Cell, weights: Sequence[object] | Mapping[str, object], *, reverse: bool = False) -> LayerWeights:
    """rnngraph parameters of `cell` from Keras ``SimpleRNN/LSTM/GRU`` weights.

    `weights` is ``layer.get_weights()`` (``[kernel, recurrent_kernel, bias]``,
    bias left out with ``use_bias=False``) or a mapping with those names.
    ``kernel (I, gates*H)``, ``recurrent_kernel (H, gates*H)``; bias ``(gates*H,)``,
    or ``(2, 3H)`` (input and recurrent biases) for ``GRU(reset_after=True)``.
    `reverse=True` marks weights of a layer that runs backward (``go_backwards=True``,
    a Bidirectional's ``backward_layer``): only a backward slot accepts them.
    """
    ours, theirs = _orders(cell, "keras")
    reverse = _boolean("reverse", reverse)
    named = _keras_named(weights)
    for role in KERAS_NAMES[:2]:
        if role not in named:
            raise ParameterError(f"Keras weights: missing `{role}`; expected [kernel, recurrent_kernel, bias].")
    rows = len(ours) * cell.hidden
    kernel = as_array(named["kernel"], "kernel", 2)
    recurrent = as_array(named["recurrent_kernel"], "recurrent_kernel", 2)
    _check_rows(kernel, rows, "kernel", cell, axis=1)
    _check_rows(recurrent, rows, "recurrent_kernel", cell, axis=1)
    _check_rows(recurrent, cell.hidden, "recurrent_kernel", cell, axis=0)
    two_biases = layout(cell, "keras").keras_two_biases(cell)
    if "bias" in named:
        bias = as_array(named["bias"], "bias")
        expected = (2, rows) if two_biases else (rows,)
        if bias.shape != expected:
            hint = (" A (2, 3H) bias comes from GRU(reset_after=True): use linear_before_reset=True."
                    if bias.shape == (2, rows) else
                    " A (3H,) bias comes from GRU(reset_after=False): use linear_before_reset=False."
                    if len(ours) == 3 and bias.shape == (rows,) else "")
            raise ParameterError(f"Keras bias: expected shape {expected} for {cell.describe()}, "
                                 f"received {bias.shape}.{hint}")
        wb, rb = (bias[0], bias[1]) if two_biases else (bias, np.zeros(rows))
    else:
        wb, rb = np.zeros(rows), np.zeros(rows)
    return _weights(cell, reverse, "Keras weights" + (" (reverse=True)" if reverse else " (reverse=False)"),
                    reorder(kernel, theirs, ours, axis=1).T, reorder(recurrent, theirs, ours, axis=1).T,
                    reorder(wb, theirs, ours), reorder(rb, theirs, ours))


def to_keras(cell: Cell, local: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, bias]`` for Keras ``layer.set_weights`` from rnngraph parameters.

    Where Keras keeps one bias (all but ``GRU(reset_after=True)``) it gets ``Wb + Rb``.
    """
    ours, theirs = _orders(cell, "keras")
    W, R, wb, rb = _split_local(cell, local, len(ours))
    kernel = reorder(W, ours, theirs).T
    recurrent = reorder(R, ours, theirs).T
    if layout(cell, "keras").keras_two_biases(cell):
        bias = np.stack([reorder(wb, ours, theirs), reorder(rb, ours, theirs)])
    else:
        bias = reorder(wb + rb, ours, theirs)
    return [np.ascontiguousarray(a, dtype=np.float32) for a in (kernel, recurrent, bias)]


# -- helpers ----------------------------------------------------------------------
def _orders(cell: Cell, framework: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(rnngraph's gate order, the framework's) for `cell`, from its registered layout."""
    found = layout(cell, framework)
    return found.gates, found.orders[framework]


def _split_local(cell: Cell, local: Mapping[str, np.ndarray],
                 gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    missing = [k for k in ("W", "R", "B") if k not in local]
    if missing:
        raise ParameterError(f"{cell.describe()}: parameters {missing} are missing; expected W, R and B.")
    rows = gates * cell.hidden
    W, R, B = (as_array(local[k], k, n) for k, n in (("W", 2), ("R", 2), ("B", 1)))
    _check_rows(W, rows, "W", cell)
    _check_rows(R, rows, "R", cell)
    _check_rows(B, 2 * rows, "B", cell)
    wb, rb = np.split(B, 2)
    return W, R, wb, rb


__all__ = ["KERAS_NAMES", "LayerWeights", "as_array", "from_keras", "from_pytorch", "pytorch_keys", "to_keras",
           "to_pytorch"]
