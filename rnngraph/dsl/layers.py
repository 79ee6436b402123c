"""Layers: frozen dataclasses that, called on symbolic tensors, add a node.

    x = Input("x", features=16)               # (batch, time, 16)
    h = Recurrent(RNN(32))(x)                 # (batch, time, 32)
    y = Dense(10, activation="softmax")(h)    # (batch, time, 10)

A layer declares its input slots, infers its output specs from its input specs
(raising ModelError when they do not fit) and declares its parameters. It
computes nothing: the compiler and the oracle each implement it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import identifier, one_of, positive_int
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, VECTOR, Node, Tensor, TensorSpec
from rnngraph.errors import ModelError, invalid

DENSE_ACTIVATIONS = ("none", "softmax", "sigmoid", "tanh", "relu")


@dataclass(frozen=True)
class Layer:
    """Base of every layer. `name` is optional; `Model` names unnamed nodes `<prefix><n>`."""

    name: str | None = field(default=None, kw_only=True)

    prefix: ClassVar[str] = "layer"
    #: input slots in positional order; those in `optional_slots` may be omitted
    slots: ClassVar[tuple[str, ...]] = ("x",)
    optional_slots: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.name is not None:
            identifier(type(self).__name__, "name", self.name)

    def __call__(self, *args: Tensor, **kwargs: Tensor) -> Tensor | tuple[Tensor, ...]:
        inputs = self._bind(args, kwargs)
        specs = self.infer({slot: t.spec for slot, t in inputs.items()})
        node = Node(self, inputs)
        node.outputs = tuple(Tensor(node, i, spec) for i, spec in enumerate(specs))
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def _bind(self, args: tuple[Tensor, ...], kwargs: dict[str, Tensor]) -> dict[str, Tensor]:
        where = self.describe()
        if len(args) > len(self.slots):
            raise ModelError(f"{where}: takes at most {len(self.slots)} inputs {self.slots}, received {len(args)}.")
        inputs = dict(zip(self.slots, args, strict=False))
        for slot, value in kwargs.items():
            if slot not in self.slots:
                raise ModelError(f"{where}: unknown input `{slot}`; expected one of {self.slots}.")
            if slot in inputs:
                raise ModelError(f"{where}: input `{slot}` given twice.")
            if value is not None:
                inputs[slot] = value
        for slot in self.slots:
            if slot not in inputs and slot not in self.optional_slots:
                raise ModelError(f"{where}: missing input `{slot}`.")
        for slot, value in inputs.items():
            if not isinstance(value, Tensor):
                raise ModelError(
                    f"{where}: input `{slot}` must be a rnngraph Tensor (from Input or a layer), "
                    f"received {type(value).__name__}."
                )
        return {slot: inputs[slot] for slot in self.slots if slot in inputs}

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        raise NotImplementedError

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        """Parameters by local name, given the input specs; none by default."""
        return {}

    def describe(self) -> str:
        """How errors refer to this layer: its name, else its class."""
        return self.name or type(self).__name__

    def title(self) -> str:
        """One line for summaries, e.g. ``Recurrent(LSTM(hidden=32))``."""
        return type(self).__name__

    # helpers for `infer`
    def expect(self, slot: str, spec: TensorSpec, kinds: tuple[str, ...], tokens: bool = False) -> None:
        """Raise unless `spec` is of one of `kinds` and holds floats (or token ids if `tokens`)."""
        if spec.kind not in kinds or spec.is_tokens != tokens:
            what = " or ".join(kinds) + (" of token ids" if tokens else " of features")
            raise ModelError(f"{self.describe()}: input `{slot}` must be a {what}, received {spec.describe()}.")


@dataclass(frozen=True)
class InputLayer(Layer):
    """A named model input; made by `Input(...)`."""

    spec: TensorSpec = field(default_factory=lambda: TensorSpec(SEQUENCE))
    prefix: ClassVar[str] = "input"
    slots: ClassVar[tuple[str, ...]] = ()

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        return (self.spec,)


def Input(  # noqa: N802 - reads like a layer, as in Keras
    name: str,
    features: int | None = None,
    *,
    tokens: int | None = None,
    sequence: bool = True,
    lengths: str | None = "lengths",
    count: bool = False,
) -> Tensor:
    """A model input named `name`.

    - ``Input("x", features=16)``: float sequence ``(batch, time, 16)``.
    - ``Input("src", tokens=8000)``: token-id sequence ``(batch, time)`` int64, ids in ``[0, 8000)``.
    - ``sequence=False``: one vector per row, ``(batch, features)``.
    - `lengths`: name of the optional int64 ``(batch,)`` input giving each row's valid
      steps (``1..time``); ``None`` for sequences that are never padded. Two sequence
      inputs with separate padding need two names, e.g. ``lengths="tgt_lengths"``.
    - ``count=True``: a runtime int64 scalar ``()``, a number of steps (``>= 0``),
      e.g. ``Input("n", count=True)`` for a generated length.
    """
    identifier("Input", "name", name)
    where = f"Input {name!r}"
    if count:
        if features is not None or tokens is not None:
            raise ModelError(f"{where}: a count input has no `features` or `tokens`; "
                             f"received features={features!r}, tokens={tokens!r}.")
        out = InputLayer(name=name, spec=TensorSpec(SCALAR))()
        assert isinstance(out, Tensor)
        return out
    if (features is None) == (tokens is None):
        raise ModelError(f"{where}: give exactly one of `features` (float input) or `tokens` (token ids), "
                         f"received features={features!r}, tokens={tokens!r}.")
    if features is not None:
        positive_int(where, "features", features)
    if tokens is not None:
        positive_int(where, "tokens", tokens)
    if not sequence:
        lengths = None
    elif lengths is not None:
        identifier(where, "lengths", lengths)
        if lengths == name:
            raise invalid(where, "lengths", f"a name other than the input's own ({name!r})", lengths)
    spec = TensorSpec(SEQUENCE if sequence else VECTOR, features or 0, tokens, lengths)
    out = InputLayer(name=name, spec=spec)()
    assert isinstance(out, Tensor)
    return out


@dataclass(frozen=True)
class Dense(Layer):
    """Affine map with an activation, applied at every step of a sequence or to a vector.

        y = act(V x + c)           act ∈ {none, softmax, sigmoid, tanh, relu}; softmax over features

    Parameters: W ``(units, input)``, b ``(units,)``. On a padded sequence the
    output past a row's length is 0, like every sequence in rnngraph.
    """

    units: int = 0
    activation: str = "none"
    prefix: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int(self.describe(), "units", self.units)
        one_of(self.describe(), "activation", self.activation, DENSE_ACTIVATIONS)

    def title(self) -> str:
        return f"Dense({self.units}, {self.activation})"

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x = inputs["x"]
        self.expect("x", x, (SEQUENCE, VECTOR))
        return (x.with_features(self.units),)

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        n_in = inputs["x"].features
        init = uniform(1.0 / math.sqrt(n_in))
        return {
            "W": ParamSpec((self.units, n_in), init, "weights"),
            "b": ParamSpec((self.units,), init, "bias"),
        }


@dataclass(frozen=True)
class Recurrent(Layer):
    """Runs `cell` over the time axis of a sequence.

        (batch, time, input) -> (batch, time, cell.output_size)

    The state starts at zero. With `lengths`, a row's state is frozen past its
    length and its outputs there are 0. `reverse=True` runs from each row's last
    valid step back to step 0 (outputs stay aligned with the input steps).
    """

    cell: Cell | None = None
    reverse: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.cell, Cell):
            raise invalid(self.describe(), "cell", "a cell such as RNN(32), LSTM(32) or GRU(32, ...)", self.cell)

    @property
    def prefix(self) -> str:  # type: ignore[override]
        assert self.cell is not None
        return self.cell.prefix

    def title(self) -> str:
        assert self.cell is not None
        return f"{type(self).__name__}({self.cell.describe()}{', reverse' if self.reverse else ''})"

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x = inputs["x"]
        self.expect("x", x, (SEQUENCE,))
        assert self.cell is not None
        return (x.with_features(self.cell.output_size),)

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        assert self.cell is not None
        return self.cell.param_specs(inputs["x"].features)


__all__ = ["SCALAR", "Dense", "Input", "InputLayer", "Layer", "Recurrent"]
