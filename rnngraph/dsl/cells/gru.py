"""The GRU cell, docs/gru.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.gates import ONNX_GRU, GateOrder
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.registry import register_cell
from rnngraph.errors import invalid


@dataclass(frozen=True)
class GRU(Cell):
    """Gated recurrent unit (Cho et al. 2014), in the ONNX/PyTorch convention.

        z_t = σ(W_z x_t + R_z h_{t-1} + Wb_z + Rb_z)
        r_t = σ(W_r x_t + R_r h_{t-1} + Wb_r + Rb_r)
        n_t = tanh(W_h x_t + R_h (r_t ⊙ h_{t-1}) + Wb_h + Rb_h)        linear_before_reset=False
        n_t = tanh(W_h x_t + r_t ⊙ (R_h h_{t-1} + Rb_h) + Wb_h)        linear_before_reset=True
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}                           y_t = h_t

    `linear_before_reset` is a required keyword, because frameworks disagree on
    where the reset gate acts and weights trained one way are wrong the other way:
    - ``False``: the reset gate scales h_{t-1} before the recurrent matrix. ONNX's
      default, Cho et al.'s original GRU, Keras ``GRU(reset_after=False)`` (Keras 1
      and TF1's default).
    - ``True``: the reset gate scales the recurrent projection (bias Rb_h included)
      after the matrix. PyTorch ``nn.GRU``, cuDNN, Keras ``GRU(reset_after=True)``
      (the TF2 default).

    Parameters, ONNX ``GRU`` layout (one direction), H = hidden, I = input:
        W  (3H, I)   input weights, gate blocks in the order z, r, h
        R  (3H, H)   recurrent weights, same order
        B  (6H,)     [Wb; Rb], each in the order z, r, h. With linear_before_reset
                     Rb_h sits inside r_t ⊙ (…), so Wb_h and Rb_h are not interchangeable.

    State: h ``(batch, hidden)``, zero at the start.
    """

    linear_before_reset: bool = field(kw_only=True)
    prefix = "gru"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.linear_before_reset, bool):
            raise invalid(
                self.describe(), "linear_before_reset", "True or False", self.linear_before_reset,
                "Use True for weights from PyTorch, cuDNN or Keras GRU(reset_after=True); "
                "False for ONNX's default, Cho et al. or Keras GRU(reset_after=False).",
            )

    @property
    def gates(self) -> GateOrder:
        """Gate blocks of W, R and each half of B, in storage order."""
        return ONNX_GRU

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        h, n = self.hidden, len(self.gates)
        init = uniform(1.0 / math.sqrt(h))
        order = ", ".join(self.gates)
        return {
            "W": ParamSpec((n * h, input_size), init, f"input weights, gates {order}"),
            "R": ParamSpec((n * h, h), init, f"recurrent weights, gates {order}"),
            "B": ParamSpec((2 * n * h,), init, f"biases [Wb; Rb], gates {order} in each half"),
        }

    def describe(self) -> str:
        return f"GRU(hidden={self.hidden!r}, linear_before_reset={self.linear_before_reset!r})"


register_cell(GRU, examples=(GRU(5, linear_before_reset=True), GRU(5, linear_before_reset=False)),
              onnx="rnngraph.compiler.cells.gru:LOWERING", oracle="rnngraph.runtime.oracle.gru:STEP",
              torch="rnngraph.pytorch.cells.gru:TORCH_CELL",
              interop="rnngraph.interop.layouts:GRU_LAYOUT")
