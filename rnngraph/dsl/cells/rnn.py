"""The classic (Elman) RNN cell, docs/classic-rnn.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import one_of
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.registry import register_cell

RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid")


@dataclass(frozen=True)
class RNN(Cell):
    """Classic RNN cell.

        h_t = φ(W x_t + R h_{t-1} + Wb + Rb)          φ ∈ {tanh (default), relu, sigmoid}

    Parameters (ONNX ``RNN`` layout, one direction):
        W  (hidden, input)     input weights (the survey's U)
        R  (hidden, hidden)    recurrent weights (the survey's W)
        B  (2*hidden,)         [Wb; Rb]; only their sum matters
    """

    activation: str = "tanh"
    prefix = "rnn"

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self.describe(), "activation", self.activation, RNN_ACTIVATIONS)

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        h = self.hidden
        init = uniform(1.0 / math.sqrt(h))
        return {
            "W": ParamSpec((h, input_size), init, "input weights"),
            "R": ParamSpec((h, h), init, "recurrent weights"),
            "B": ParamSpec((2 * h,), init, "input and recurrent biases [Wb; Rb]"),
        }


@dataclass(frozen=True)
class SRN(RNN):
    """Simple Recurrent Network (Elman, docs/classic-rnn.md).

    The context units hold h_{t-1} with fixed weight 1 and feed the hidden layer
    at the next step, which is exactly the classic RNN: it lowers and computes
    like `RNN` and exists so that users find it by its name.
    """

    prefix = "srn"


Elman = SRN


register_cell(RNN, examples=(RNN(5), RNN(6, activation="sigmoid")),
              onnx="rnngraph.compiler.cells.rnn:LOWERING", oracle="rnngraph.runtime.oracle.rnn:STEP",
              torch="rnngraph.pytorch.cells.rnn:TORCH_CELL",
              interop="rnngraph.interop.layouts:RNN_LAYOUT")
register_cell(SRN, examples=(SRN(5, activation="relu"),),
              onnx="rnngraph.compiler.cells.rnn:LOWERING", oracle="rnngraph.runtime.oracle.rnn:STEP",
              torch="rnngraph.pytorch.cells.rnn:TORCH_CELL",
              interop="rnngraph.interop.layouts:RNN_LAYOUT")
