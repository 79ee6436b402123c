"""`Generative`: prime a cell with a sequence, then run it closed-loop for a runtime number of steps.

    u = Input("u", features=1)                          # priming sequence (batch, time, 1)
    n = Input("steps", count=True)                      # int64 scalar
    generated, primed = Generative(ESN(300, outputs=1))(u, n)
    # generated (batch, steps, 1), primed (batch, time, 1)

This is the generative mode of the Echo State Network (docs/esn.md); it works with
any cell. Exported as one ONNX graph: a Scan over the priming sequence, then a
Loop whose trip count is the `steps` input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import boolean
from rnngraph.dsl.layers import Layer
from rnngraph.dsl.params import ParamSpec
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, TensorSpec
from rnngraph.errors import ModelError, invalid


@dataclass(frozen=True)
class Generative(Layer):
    """Closed-loop generation after priming (docs/esn.md, generative mode).

    Inputs: ``x`` the priming sequence ``(batch, time, K)`` (padded rows end at their
    own length), ``steps`` an int64 scalar (``Input(name, count=True)``), ``>= 0``.

    Priming runs the cell over each row's valid steps u(1..T_b), exactly as
    ``Recurrent(cell)`` does; its outputs y(1..T_b) are the second output. Then, from
    the row's state after its last valid step, ``steps`` more steps run, n = T_b+1 …
    T_b+steps, each on the previous output:

        u(n) = y(n-1)        with `feed_input` (a model trained to predict its next input; needs K = L)
        u(n) = 0             otherwise (the cell is driven by its own feedback, e.g. an ESN's W_back)

    The first output is y(T_b+1 … T_b+steps) ``(batch, steps, L)``. For a one-step
    predictor, y(T_b) (the last primed output) predicts u(T_b+1) and the generated
    outputs continue that series. Cells that read the step index see it continue
    from T_b. Parameters are the cell's, named as for ``Recurrent(cell)``: a driven
    and a generative model with the same node name share one parameter set.

    `feed_input` None means: True when K = L, else False.
    """

    cell: Cell | None = None
    feed_input: bool | None = None
    slots: ClassVar[tuple[str, ...]] = ("x", "steps")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.cell, Cell):
            raise invalid(self.describe(), "cell", "a cell such as ESN(300, outputs=1)", self.cell)
        if self.feed_input is not None:
            boolean(self.describe(), "feed_input", self.feed_input)

    @property
    def prefix(self) -> str:  # type: ignore[override]
        assert self.cell is not None
        return self.cell.prefix

    def title(self) -> str:
        assert self.cell is not None
        return f"Generative({self.cell.describe()})"

    def feeds_input(self, input_size: int) -> bool:
        """Whether generated steps take the previous output as their input."""
        assert self.cell is not None
        return input_size == self.cell.output_size if self.feed_input is None else self.feed_input

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x, steps = inputs["x"], inputs["steps"]
        self.expect("x", x, (SEQUENCE,))
        if steps.kind != SCALAR:
            raise ModelError(f"{self.describe()}: input `steps` must be a count, Input(name, count=True), "
                             f"received {steps.describe()}.")
        assert self.cell is not None
        out = self.cell.output_size
        if self.feed_input and x.features != out:
            raise invalid(self.describe(), "feed_input", f"False, since the input has {x.features} features and "
                          f"the cell outputs {out} (feeding outputs back as inputs needs equal sizes)", True)
        generated = TensorSpec(SEQUENCE, out, None, None, steps.time)  # the axis named after the count
        return generated, x.with_features(out)

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        assert self.cell is not None
        return self.cell.param_specs(inputs["x"].features)


__all__ = ["Generative"]
