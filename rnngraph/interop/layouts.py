"""What the PyTorch and Keras converters need to know of each cell, registered with the cell.

Each cell type that has a framework counterpart names one `CellLayout` in its
``register_cell(..., interop="rnngraph.interop.layouts:<ATTR>")`` call. The converters
find it with ``registry.implementation(cell, "interop")``, so a cell without one
(Clockwork, ESN) is refused by the registry in words, never guessed at.

A layout holds:
- the gate orders: rnngraph's storage order (ONNX's) and each framework's fused order,
  from which every permutation is derived (`rnngraph.dsl.gates`);
- which of the cell's options a framework can compute (`refusal`);
- the framework layer it corresponds to, and how to read a cell out of a built
  layer's options (`cell_from_pytorch`, `cell_from_keras`), used by the one-call imports.

Framework objects are read by duck typing (attributes, ``get_config()``), so this
module needs neither torch nor keras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rnngraph.dsl import registry
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.cells.rnn import RNN, RNN_ACTIVATIONS
from rnngraph.dsl.gates import (
    KERAS_GRU,
    KERAS_LSTM,
    ONNX_GRU,
    ONNX_LSTM,
    PYTORCH_GRU,
    PYTORCH_LSTM,
    RNN_GATES,
    GateOrder,
)
from rnngraph.errors import ModelError

FRAMEWORKS = {"pytorch": "PyTorch", "keras": "Keras"}
#: where each framework's layer classes live (checked along the class's MRO, so subclasses count)
MODULE_PREFIX = {"pytorch": "torch.", "keras": "keras."}


@dataclass(frozen=True)
class CellLayout:
    """How one rnngraph cell type maps onto PyTorch's and Keras' layers and fused weights."""

    #: rnngraph's storage order of the gate blocks (ONNX's)
    gates: GateOrder
    #: framework -> the order its fused weights stack the gates in
    orders: Mapping[str, GateOrder]
    #: framework -> the layer class name (``torch.nn.LSTM`` is "LSTM", ``keras.layers.SimpleRNN`` "SimpleRNN")
    layers: Mapping[str, str]
    #: ``(cell, framework) -> reason`` the framework cannot compute this cell's options, or None
    refusal: Callable[[Cell, str], str | None]
    #: the cell a built ``torch.nn`` layer computes (its options checked)
    cell_from_pytorch: Callable[[Any], Cell]
    #: the cell a built Keras layer computes (its options checked)
    cell_from_keras: Callable[[Any], Cell]
    #: True where Keras keeps separate input and recurrent biases, a (2, gates*H) array
    keras_two_biases: Callable[[Cell], bool] = lambda cell: False


def layout(cell: Cell, framework: str) -> CellLayout:
    """The registered layout of `cell`, after checking that `framework` can compute its options.

    Raises `UnsupportedCellError` for a cell registered without ``interop=`` and ModelError
    for options the framework lacks (peepholes, PyTorch's GRU with the reset before the matrix).
    """
    try:
        found: CellLayout = registry.implementation(cell, "interop")
    except registry.UnsupportedCellError as exc:
        raise registry.UnsupportedCellError(f"{cell.describe()} has no {FRAMEWORKS[framework]} counterpart to "
                                            f"convert weights to or from: {exc}") from exc
    reason = found.refusal(cell, framework)
    if reason:
        raise ModelError(f"{cell.describe()}: {reason}")
    return found


def layout_for_layer(layer: object, framework: str) -> CellLayout | None:
    """The layout whose framework layer class `layer` is (or derives from), if any registered cell has one."""
    prefix = MODULE_PREFIX[framework]
    names = {(k.__name__, k.__module__.startswith(prefix)) for k in type(layer).__mro__}
    for entry in registry.entries():
        if "interop" in entry.implementations:
            candidate: CellLayout = registry.implementation(entry.cell_type, "interop")
            if (candidate.layers[framework], True) in names:
                return candidate
    return None


def _keras_option(config: Mapping[str, Any], key: str) -> Any:
    """A Keras layer option as its name (activations are serialized as strings or dicts)."""
    value = config.get(key)
    if isinstance(value, dict):  # {"class_name": ..., "config": {"name": "tanh"}} in some Keras versions
        value = value.get("config", {}).get("name", value.get("class_name"))
    return value


def _check_gate_activations(layer: Any, config: Mapping[str, Any], cell: str) -> None:
    """Keras lets gated layers change their activations; rnngraph's LSTM and GRU compute with Keras' defaults."""
    for key, expected in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        value = _keras_option(config, key)
        if value != expected:
            raise ModelError(f"Keras layer {layer.name!r}: {key}={value!r} has no rnngraph counterpart; expected "
                             f"{expected!r}. rnngraph's {cell} computes the gates with sigmoid and the candidate "
                             "with tanh.")


# -- RNN ----------------------------------------------------------------------------
def _rnn_refusal(cell: Cell, framework: str) -> str | None:
    assert isinstance(cell, RNN)
    if framework == "keras" or cell.activation in ("tanh", "relu"):
        return None
    return (f"torch.nn.RNN computes with nonlinearity 'tanh' or 'relu', not {cell.activation!r}; "
            "only those RNN cells convert to or from PyTorch.")


def _rnn_from_pytorch(module: Any) -> Cell:
    return RNN(int(module.hidden_size), activation=str(module.nonlinearity))


def _rnn_from_keras(layer: Any) -> Cell:
    config = layer.get_config()
    activation = _keras_option(config, "activation")
    if activation not in RNN_ACTIVATIONS:
        raise ModelError(f"Keras layer {layer.name!r}: SimpleRNN(activation={activation!r}) has no rnngraph "
                         f"counterpart; RNN cells compute with one of {RNN_ACTIVATIONS}.")
    return RNN(int(config["units"]), activation=activation)


RNN_LAYOUT = CellLayout(
    gates=RNN_GATES, orders={"pytorch": RNN_GATES, "keras": RNN_GATES},
    layers={"pytorch": "RNN", "keras": "SimpleRNN"}, refusal=_rnn_refusal,
    cell_from_pytorch=_rnn_from_pytorch, cell_from_keras=_rnn_from_keras,
)


# -- LSTM ---------------------------------------------------------------------------
def _lstm_refusal(cell: Cell, framework: str) -> str | None:
    assert isinstance(cell, LSTM)
    if cell.peephole or cell.coupled:
        name = FRAMEWORKS[framework]
        return (f"{name} has no LSTM with peepholes or coupled gates; "
                f"only a plain LSTM(hidden) converts to or from {name}.")
    return None


def _lstm_from_pytorch(module: Any) -> Cell:
    if getattr(module, "proj_size", 0):
        raise ModelError(f"torch.nn.LSTM(proj_size={module.proj_size}) projects h through weight_hr, which no "
                         "rnngraph cell computes; import LSTMs built without proj_size.")
    return LSTM(int(module.hidden_size))


def _lstm_from_keras(layer: Any) -> Cell:
    config = layer.get_config()
    _check_gate_activations(layer, config, "LSTM")
    return LSTM(int(config["units"]))


LSTM_LAYOUT = CellLayout(
    gates=ONNX_LSTM, orders={"pytorch": PYTORCH_LSTM, "keras": KERAS_LSTM},
    layers={"pytorch": "LSTM", "keras": "LSTM"}, refusal=_lstm_refusal,
    cell_from_pytorch=_lstm_from_pytorch, cell_from_keras=_lstm_from_keras,
)


# -- GRU ----------------------------------------------------------------------------
def _gru_refusal(cell: Cell, framework: str) -> str | None:
    assert isinstance(cell, GRU)
    if framework == "pytorch" and not cell.linear_before_reset:
        return (f"torch.nn.GRU computes with linear_before_reset=True; "
                f"use GRU({cell.hidden}, linear_before_reset=True) for PyTorch weights.")
    return None


def _gru_from_pytorch(module: Any) -> Cell:
    return GRU(int(module.hidden_size), linear_before_reset=True)


def _gru_from_keras(layer: Any) -> Cell:
    config = layer.get_config()
    _check_gate_activations(layer, config, "GRU")
    return GRU(int(config["units"]), linear_before_reset=bool(config.get("reset_after", True)))


def _gru_two_biases(cell: Cell) -> bool:
    assert isinstance(cell, GRU)
    return cell.linear_before_reset


GRU_LAYOUT = CellLayout(
    gates=ONNX_GRU, orders={"pytorch": PYTORCH_GRU, "keras": KERAS_GRU},
    layers={"pytorch": "GRU", "keras": "GRU"}, refusal=_gru_refusal,
    cell_from_pytorch=_gru_from_pytorch, cell_from_keras=_gru_from_keras, keras_two_biases=_gru_two_biases,
)

__all__ = ["FRAMEWORKS", "GRU_LAYOUT", "LSTM_LAYOUT", "RNN_LAYOUT", "CellLayout", "layout", "layout_for_layer"]
