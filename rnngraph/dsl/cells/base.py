"""The cell contract.

A cell is one recurrent step, ``(states_{t-1}, x_t) -> (states_t, y_t)``, described
as data: hyperparameters, the names and shapes of its parameters, the names and
sizes of its states. It computes nothing itself: the compiler lowers it to ONNX
and the oracle steps it in NumPy, each from the equations in the cell's docstring.
A wrapper (`Recurrent`) owns time, padding, direction and initial states.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnngraph.dsl.checks import positive_int
from rnngraph.dsl.params import ParamSpec
from rnngraph.dsl.signature import Checked


@dataclass(frozen=True)
class Cell(metaclass=Checked):
    """Base of every cell. `hidden` is the size of the step output ``y_t``."""

    hidden: int

    #: prefix of auto-generated node names, e.g. ``lstm0``
    prefix = "cell"

    def __post_init__(self) -> None:
        positive_int(self.describe(), "hidden", self.hidden)

    @property
    def output_size(self) -> int:
        return self.hidden

    def state_sizes(self) -> dict[str, int]:
        """Recurrent states by name, each ``(batch, size)``; the first is the output state."""
        return {"h": self.hidden}

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        """Parameters by local name for an input of `input_size` features."""
        raise NotImplementedError(f"{type(self).__name__} must declare its parameters")

    def describe(self) -> str:
        return f"{type(self).__name__}(hidden={self.hidden!r})"
