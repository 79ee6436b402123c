"""The LSTM cell, docs/lstm.md, with optional peepholes and coupled (CIFG) gates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import boolean
from rnngraph.dsl.gates import ONNX_LSTM, ONNX_LSTM_PEEPHOLES, GateOrder, without
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.registry import register_cell


@dataclass(frozen=True)
class LSTM(Cell):
    """Long short-term memory cell (Hochreiter & Schmidhuber; peepholes: Gers & Schmidhuber).

        i_t = σ(W_i x_t + R_i h_{t-1} + b_i [+ p_i ⊙ c_{t-1}])
        f_t = σ(W_f x_t + R_f h_{t-1} + b_f [+ p_f ⊙ c_{t-1}])
        g_t = tanh(W_c x_t + R_c h_{t-1} + b_c)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        o_t = σ(W_o x_t + R_o h_{t-1} + b_o [+ p_o ⊙ c_t])
        h_t = o_t ⊙ tanh(c_t)                                 y_t = h_t

    Options (any combination):
    - ``peephole=True``: the bracketed terms. The output gate's peephole reads
      the new cell state c_t, the others c_{t-1}, as in ONNX.
    - ``coupled=True`` (CIFG, "forget and input gates decided together"): the
      forget gate is learned and ``i_t = 1 - f_t``, so
      ``c_t = f_t ⊙ c_{t-1} + (1 - f_t) ⊙ g_t``; the input gate has no weights.

    Parameters, ONNX ``LSTM`` layout (one direction), H = hidden, I = input:
        W  (4H, I)   input weights, gate blocks in the order i, o, f, c
        R  (4H, H)   recurrent weights, same order
        B  (8H,)     [Wb; Rb], each in the order i, o, f, c; only Wb + Rb matters
        P  (3H,)     peephole weights p_i, p_o, p_f (only with ``peephole``)
    With ``coupled`` the input gate's blocks are left out and the ONNX order of
    the rest is kept: W (3H, I) and R (3H, H) in the order o, f, c, B (6H,),
    P (2H,) in the order o, f. (`gates` and `peephole_gates` name the orders.)

    States: h and c, each ``(batch, hidden)``, zero at the start.
    """

    peephole: bool = False
    coupled: bool = False
    prefix = "lstm"

    def __post_init__(self) -> None:
        super().__post_init__()
        boolean(self.describe(), "peephole", self.peephole)
        boolean(self.describe(), "coupled", self.coupled)

    @property
    def gates(self) -> GateOrder:
        """Gate blocks of W, R and each half of B, in storage order."""
        return without(ONNX_LSTM, "i") if self.coupled else ONNX_LSTM

    @property
    def peephole_gates(self) -> GateOrder:
        """Blocks of P in storage order (empty without peepholes)."""
        if not self.peephole:
            return ()
        return without(ONNX_LSTM_PEEPHOLES, "i") if self.coupled else ONNX_LSTM_PEEPHOLES

    def state_sizes(self) -> dict[str, int]:
        return {"h": self.hidden, "c": self.hidden}

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        h, n = self.hidden, len(self.gates)
        init = uniform(1.0 / math.sqrt(h))
        order = ", ".join(self.gates)
        specs = {
            "W": ParamSpec((n * h, input_size), init, f"input weights, gates {order}"),
            "R": ParamSpec((n * h, h), init, f"recurrent weights, gates {order}"),
            "B": ParamSpec((2 * n * h,), init, f"biases [Wb; Rb], gates {order} in each half"),
        }
        if self.peephole:
            specs["P"] = ParamSpec((len(self.peephole_gates) * h,), init,
                                   f"peephole weights, gates {', '.join(self.peephole_gates)}")
        return specs

    def describe(self) -> str:
        options = "".join(f", {name}=True" for name in ("peephole", "coupled") if getattr(self, name) is True)
        return f"LSTM(hidden={self.hidden!r}{options})"


register_cell(LSTM, examples=(LSTM(5), LSTM(5, peephole=True), LSTM(5, coupled=True),
                              LSTM(6, peephole=True, coupled=True)),
              onnx="rnngraph.compiler.cells.lstm:LOWERING", oracle="rnngraph.runtime.oracle.lstm:STEP",
              torch="rnngraph.pytorch.cells.lstm:TORCH_CELL",
              interop="rnngraph.interop.layouts:LSTM_LAYOUT")
