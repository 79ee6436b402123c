"""Weights to and from PyTorch and Keras layouts, for the RNN, LSTM and GRU cells.

rnngraph stores gate weights fused in ONNX's order (LSTM i, o, f, c; GRU z, r, h),
``W (gates*H, I)``, ``R (gates*H, H)``, ``B = [Wb; Rb] (2*gates*H,)``. The
converters below derive every permutation from the gate orders named in
`rnngraph.dsl.gates`; they need numpy only (pass PyTorch tensors from
``module.state_dict()``, or anything ``np.asarray`` reads).

    import torch
    lstm = torch.nn.LSTM(4, 7, batch_first=True)
    local = from_pytorch(rg.LSTM(7), lstm.state_dict())          # {"W", "R", "B"}
    params = set_node_params(model, model.init(0), "lstm0", local)

Which cell reads which weights (the option must match how they were trained):
- ``torch.nn.RNN(nonlinearity=...)`` -> ``RNN(H, activation=...)``;
  ``torch.nn.LSTM`` -> ``LSTM(H)``; ``torch.nn.GRU`` -> ``GRU(H, linear_before_reset=True)``.
- ``keras.layers.SimpleRNN`` -> ``RNN(H)``; ``keras.layers.LSTM`` (sigmoid recurrent
  activation, Keras 2+ default) -> ``LSTM(H)``; ``keras.layers.GRU(reset_after=True)``
  -> ``GRU(H, linear_before_reset=True)``, ``reset_after=False`` -> ``linear_before_reset=False``.
Peephole and coupled LSTMs have no PyTorch or Keras counterpart and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.cells.rnn import RNN
from rnngraph.dsl.gates import (
    KERAS_GRU,
    KERAS_LSTM,
    ONNX_GRU,
    ONNX_LSTM,
    PYTORCH_GRU,
    PYTORCH_LSTM,
    RNN_GATES,
    GateOrder,
    reorder,
)
from rnngraph.dsl.model import Model
from rnngraph.errors import ModelError, ParameterError

Arrays = dict[str, np.ndarray]


def _orders(cell: Cell, framework: str) -> tuple[GateOrder, GateOrder]:
    """(rnngraph's gate order, the framework's) for `cell`; refuses cells the framework has no layer for."""
    name = {"pytorch": "PyTorch", "keras": "Keras"}[framework]
    if isinstance(cell, LSTM):
        if cell.peephole or cell.coupled:
            raise ModelError(f"{cell.describe()}: {name} has no LSTM with peepholes or coupled gates; "
                             f"only a plain LSTM(hidden) converts to or from {name}.")
        return ONNX_LSTM, PYTORCH_LSTM if framework == "pytorch" else KERAS_LSTM
    if isinstance(cell, GRU):
        if framework == "pytorch" and not cell.linear_before_reset:
            raise ModelError(f"{cell.describe()}: torch.nn.GRU computes with linear_before_reset=True; "
                             f"use GRU({cell.hidden}, linear_before_reset=True) for PyTorch weights.")
        return ONNX_GRU, PYTORCH_GRU if framework == "pytorch" else KERAS_GRU
    if isinstance(cell, RNN):
        return RNN_GATES, RNN_GATES
    raise ModelError(f"{cell.describe()}: no {name} layout for this cell; the converters handle RNN, LSTM and GRU.")


def _float(value: object, what: str, ndim: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != ndim:
        raise ParameterError(f"{what}: expected a {ndim}-d array, received shape {array.shape}.")
    return array


def _check_rows(array: np.ndarray, rows: int, what: str, cell: Cell, axis: int = 0) -> None:
    if array.shape[axis] != rows:
        raise ParameterError(f"{what}: expected {rows} along axis {axis} for {cell.describe()}, "
                             f"received shape {array.shape}. Is the cell's hidden size or type the right one?")


def _local(W: np.ndarray, R: np.ndarray, wb: np.ndarray, rb: np.ndarray) -> Arrays:
    return {"W": W.astype(np.float32), "R": R.astype(np.float32),
            "B": np.concatenate([wb, rb]).astype(np.float32)}


# -- PyTorch ----------------------------------------------------------------------
def pytorch_keys(layer: int = 0, reverse: bool = False, prefix: str = "") -> dict[str, str]:
    """The state-dict keys of one layer and direction of ``torch.nn.RNN/LSTM/GRU``."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return {k: f"{prefix}{k}{suffix}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def from_pytorch(cell: Cell, state_dict: Mapping[str, object], *, layer: int = 0, reverse: bool = False,
                 prefix: str = "") -> Arrays:
    """rnngraph parameters ``{"W", "R", "B"}`` of `cell` from a torch RNN/LSTM/GRU state dict.

    `layer` and `reverse` pick ``weight_ih_l{layer}[_reverse]`` etc.; `prefix` is
    the module path in a larger state dict (``"encoder.rnn."``). A module built
    with ``bias=False`` has no bias keys: the biases are then zero.
    """
    ours, theirs = _orders(cell, "pytorch")
    keys = pytorch_keys(layer, reverse, prefix)
    if f"{prefix}weight_hr_l{layer}" in state_dict:
        raise ParameterError(f"{keys['weight_ih']}: LSTMs with proj_size are not supported (found weight_hr).")
    for role in ("weight_ih", "weight_hh"):
        if keys[role] not in state_dict:
            raise ParameterError(f"PyTorch state dict: missing `{keys[role]}`; it has {sorted(state_dict)}. "
                                 "Check `layer`, `reverse` and `prefix`.")
    rows = len(ours) * cell.hidden
    w_ih = _float(state_dict[keys["weight_ih"]], keys["weight_ih"], 2)
    w_hh = _float(state_dict[keys["weight_hh"]], keys["weight_hh"], 2)
    _check_rows(w_ih, rows, keys["weight_ih"], cell)
    _check_rows(w_hh, rows, keys["weight_hh"], cell)
    _check_rows(w_hh, cell.hidden, keys["weight_hh"], cell, axis=1)
    biases = []
    for role in ("bias_ih", "bias_hh"):
        b = _float(state_dict[keys[role]], keys[role], 1) if keys[role] in state_dict else np.zeros(rows)
        _check_rows(b, rows, keys[role], cell)
        biases.append(reorder(b, theirs, ours, what=keys[role]))
    return _local(reorder(w_ih, theirs, ours), reorder(w_hh, theirs, ours), *biases)


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


def from_keras(cell: Cell, weights: Sequence[object] | Mapping[str, object]) -> Arrays:
    """rnngraph parameters of `cell` from Keras ``SimpleRNN/LSTM/GRU`` weights.

    `weights` is ``layer.get_weights()`` (``[kernel, recurrent_kernel, bias]``,
    bias left out with ``use_bias=False``) or a mapping with those names.
    ``kernel (I, gates*H)``, ``recurrent_kernel (H, gates*H)``; bias ``(gates*H,)``,
    or ``(2, 3H)`` (input and recurrent biases) for ``GRU(reset_after=True)``.
    """
    ours, theirs = _orders(cell, "keras")
    named = dict(weights) if isinstance(weights, Mapping) else dict(zip(KERAS_NAMES, weights, strict=False))
    for role in KERAS_NAMES[:2]:
        if role not in named:
            raise ParameterError(f"Keras weights: missing `{role}`; expected [kernel, recurrent_kernel, bias].")
    rows = len(ours) * cell.hidden
    kernel = _float(named["kernel"], "kernel", 2)
    recurrent = _float(named["recurrent_kernel"], "recurrent_kernel", 2)
    _check_rows(kernel, rows, "kernel", cell, axis=1)
    _check_rows(recurrent, rows, "recurrent_kernel", cell, axis=1)
    _check_rows(recurrent, cell.hidden, "recurrent_kernel", cell, axis=0)
    reset_after = isinstance(cell, GRU) and cell.linear_before_reset
    if "bias" in named:
        bias = np.asarray(named["bias"], dtype=np.float64)
        expected = (2, rows) if reset_after else (rows,)
        if bias.shape != expected:
            hint = (" A (2, 3H) bias comes from GRU(reset_after=True): use linear_before_reset=True."
                    if bias.shape == (2, rows) else
                    " A (3H,) bias comes from GRU(reset_after=False): use linear_before_reset=False."
                    if isinstance(cell, GRU) and bias.shape == (rows,) else "")
            raise ParameterError(f"Keras bias: expected shape {expected} for {cell.describe()}, "
                                 f"received {bias.shape}.{hint}")
        wb, rb = (bias[0], bias[1]) if reset_after else (bias, np.zeros(rows))
    else:
        wb, rb = np.zeros(rows), np.zeros(rows)
    return _local(reorder(kernel, theirs, ours, axis=1).T, reorder(recurrent, theirs, ours, axis=1).T,
                  reorder(wb, theirs, ours), reorder(rb, theirs, ours))


def to_keras(cell: Cell, local: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """``[kernel, recurrent_kernel, bias]`` for Keras ``layer.set_weights`` from rnngraph parameters.

    Where Keras keeps one bias (all but ``GRU(reset_after=True)``) it gets ``Wb + Rb``.
    """
    ours, theirs = _orders(cell, "keras")
    W, R, wb, rb = _split_local(cell, local, len(ours))
    kernel = reorder(W, ours, theirs).T
    recurrent = reorder(R, ours, theirs).T
    if isinstance(cell, GRU) and cell.linear_before_reset:
        bias = np.stack([reorder(wb, ours, theirs), reorder(rb, ours, theirs)])
    else:
        bias = reorder(wb + rb, ours, theirs)
    return [np.ascontiguousarray(a, dtype=np.float32) for a in (kernel, recurrent, bias)]


# -- helpers ----------------------------------------------------------------------
def _split_local(cell: Cell, local: Mapping[str, np.ndarray],
                 gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    missing = [k for k in ("W", "R", "B") if k not in local]
    if missing:
        raise ParameterError(f"{cell.describe()}: parameters {missing} are missing; expected W, R and B.")
    rows = gates * cell.hidden
    W, R, B = (_float(local[k], k, n) for k, n in (("W", 2), ("R", 2), ("B", 1)))
    _check_rows(W, rows, "W", cell)
    _check_rows(R, rows, "R", cell)
    _check_rows(B, 2 * rows, "B", cell)
    wb, rb = np.split(B, 2)
    return W, R, wb, rb


def set_node_params(model: Model, params: Mapping[str, np.ndarray], node: str,
                    local: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of `params` with node `node`'s parameters replaced by `local` (checked against the model)."""
    specs = model.param_specs()
    out = dict(params)
    for name, value in local.items():
        key = f"{node}/{name}"
        if key not in specs:
            known = sorted({k.split("/")[0] for k in specs})
            raise ParameterError(f"model {model.name!r} has no parameter `{key}`; its nodes with parameters "
                                 f"are {known}.")
        out[key] = np.asarray(value, dtype=np.float32)
    model.check_params(out)
    return out


__all__ = ["from_keras", "from_pytorch", "pytorch_keys", "set_node_params", "to_keras", "to_pytorch"]
