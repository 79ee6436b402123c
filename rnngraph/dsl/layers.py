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
from rnngraph.dsl.signature import Checked
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, VECTOR, Node, Tensor, TensorSpec
from rnngraph.errors import ModelError, invalid

DENSE_ACTIVATIONS = ("none", "softmax", "sigmoid", "tanh", "relu")
#: the largest count a count input takes unless its `max` says otherwise
DEFAULT_COUNT_MAX = 10_000
#: the largest `max` a count may declare (an int64 the graph can hold, far beyond any memory)
COUNT_MAX_LIMIT = 2**62


@dataclass(frozen=True)
class Layer(metaclass=Checked):
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
    max: int | None = None,  # noqa: A002 - reads as the user writes it: Input("n", count=True, max=500)
    time: str = "time",
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
    - `max`: a count's largest value (default 10 000). The exported graph caps the count
      there (bare onnxruntime never runs away) and `Session.run` refuses a larger one.
    - `time`: the symbolic name of the time axis. Sequences of different lengths (a
      source and a target) need different names, e.g. ``time="tgt_time"``.
    """
    identifier("Input", "name", name)
    where = f"Input {name!r}"
    if count:
        if features is not None or tokens is not None:
            raise ModelError(f"{where}: a count input has no `features` or `tokens`; "
                             f"received features={features!r}, tokens={tokens!r}.")
        limit = DEFAULT_COUNT_MAX if max is None else max
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= COUNT_MAX_LIMIT:
            raise invalid(where, "max", "a positive integer up to 2**62 (the largest count accepted)", limit)
        # `time` names the axis this count measures, so that outputs generated for it have the
        # symbolic length `name`, e.g. (batch, n, features)
        out = InputLayer(name=name, spec=TensorSpec(SCALAR, time=name, count_max=limit))()
        assert isinstance(out, Tensor)
        return out
    if max is not None:
        raise ModelError(f"{where}: `max` bounds a count input (Input(name, count=True, max=...)); "
                         f"this input is not a count, received max={max!r}.")
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
    if sequence:
        identifier(where, "time", time)
    spec = TensorSpec(SEQUENCE if sequence else VECTOR, features or 0, tokens, lengths, time)
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


#: what a recurrent layer can return, in any combination (see `Recurrent`)
RETURNS = ("sequence", "last", "mean", "max", "state")


def returns_tuple(where: str, returns: object) -> tuple[str, ...]:
    """`returns` as a tuple of kinds; raises ModelError for unknown, empty or repeated kinds."""
    kinds = (returns,) if isinstance(returns, str) else returns
    expected = "one of " + ", ".join(repr(r) for r in RETURNS) + " or a tuple of them"
    if not isinstance(kinds, tuple) or not kinds or any(k not in RETURNS for k in kinds):
        raise invalid(where, "returns", expected, returns)
    if len(set(kinds)) != len(kinds):
        raise invalid(where, "returns", "each kind at most once", returns)
    return kinds


def returns_specs(returns: tuple[str, ...], x: TensorSpec, output_size: int,
                  state_sizes: list[int]) -> tuple[TensorSpec, ...]:
    """Output specs of a layer that runs over sequence `x`, in the order `returns` names them.

    ``sequence`` keeps the padding of `x`; the pooled kinds are vectors ``(batch, output_size)``;
    ``state`` expands to one vector per final state (sizes `state_sizes`).
    """
    seq = x.with_features(output_size)
    vector = TensorSpec(VECTOR, output_size)
    out: list[TensorSpec] = []
    for kind in returns:
        if kind == "sequence":
            out.append(seq)
        elif kind == "state":
            out.extend(TensorSpec(VECTOR, size) for size in state_sizes)
        else:
            out.append(vector)
    return tuple(out)


@dataclass(frozen=True)
class Recurrent(Layer):
    """Runs `cell` over the time axis of a sequence.

        (batch, time, input) -> (batch, time, cell.output_size)

    The states start at zero unless the optional input `initial_state` (a vector) is
    given. Its width says what it holds (see `initial_states`): the size of the
    cell's first state (its output state, ``h``) sets that state and the others (an
    LSTM's ``c``) start at zero, as docs/encoder-decoder.md has it for a decoder; the sum of all
    state sizes sets every state, concatenated in ``cell.state_sizes()`` order
    (``[h; c]`` for an LSTM), e.g. to resume from the final states of another run.
    With `lengths`, a row's state is frozen past its length and its outputs there
    are 0. `reverse=True` runs from each row's last valid step back to step 0
    (outputs stay aligned with the input steps), starting there from the initial state.

    `returns` picks the outputs, one kind or a tuple of kinds (outputs in that order):
    - ``sequence`` (default): ``y (batch, time, out)``, every step (N-to-N);
    - ``last``: ``(batch, out)``, the output of the last step processed — step
      ``lengths[b]-1`` of row b, or step 0 with `reverse` (N-to-1, docs/seq2vec.md);
    - ``mean`` / ``max``: ``(batch, out)``, the mean / elementwise max of y over each
      row's valid steps only: ``(1/L_b) Σ_{t<L_b} y_t`` and ``max_{t<L_b} y_t``;
    - ``state``: the final states, one ``(batch, size)`` output per entry of
      ``cell.state_sizes()`` in its order (``h``; ``h, c`` for an LSTM): the state
      after each row's last processed step, as an encoder hands to a decoder.

        enc = Recurrent(GRU(64), returns=("sequence", "last"))   # memory and context
        memory, context = enc(x)
    """

    cell: Cell | None = None
    reverse: bool = False
    returns: str | tuple[str, ...] = "sequence"

    slots: ClassVar[tuple[str, ...]] = ("x", "initial_state")
    optional_slots: ClassVar[tuple[str, ...]] = ("initial_state",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.cell, Cell):
            raise invalid(self.describe(), "cell", "a cell such as RNN(32), LSTM(32) or GRU(32, ...)", self.cell)
        if not isinstance(self.reverse, bool):
            raise invalid(self.describe(), "reverse", "True or False", self.reverse)
        returns_tuple(self.describe(), self.returns)

    @property
    def prefix(self) -> str:  # type: ignore[override]
        assert self.cell is not None
        return self.cell.prefix

    @property
    def returned(self) -> tuple[str, ...]:
        """`returns` as a tuple of kinds."""
        return returns_tuple(self.describe(), self.returns)

    def title(self) -> str:
        assert self.cell is not None
        extra = ", reverse" if self.reverse else ""
        if self.returns != "sequence":
            extra += f", returns={self.returns!r}"
        return f"{type(self).__name__}({self.cell.describe()}{extra})"

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x = inputs["x"]
        self.expect("x", x, (SEQUENCE,))
        assert self.cell is not None
        sizes = self.cell.state_sizes()
        if "initial_state" in inputs:
            init = inputs["initial_state"]
            self.expect("initial_state", init, (VECTOR,))
            self.initial_states(init.features)
        return returns_specs(self.returned, x, self.cell.output_size, list(sizes.values()))

    def initial_states(self, width: int) -> dict[str, int]:
        """The states an `initial_state` vector of `width` features sets, by name, in its column order.

        Raises ModelError unless `width` is the first state's size or the sum of all state sizes.
        """
        assert self.cell is not None
        sizes = self.cell.state_sizes()
        first, size = next(iter(sizes.items()))
        if width == size:
            return {first: size}
        if len(sizes) > 1 and width == sum(sizes.values()):
            return dict(sizes)
        every = ""
        if len(sizes) > 1:
            every = (f", or (batch, {sum(sizes.values())}), every state concatenated "
                     f"[{'; '.join(sizes)}]")
        raise ModelError(
            f"{self.describe()}: input `initial_state` must be a vector (batch, {size}), the first state "
            f"`{first}` of {self.cell.describe()}{every}; received a vector of {width} features. "
            f"Project it first, e.g. Dense({size}, activation='tanh')."
        )

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        assert self.cell is not None
        return self.cell.param_specs(inputs["x"].features)


__all__ = ["RETURNS", "SCALAR", "Dense", "Input", "InputLayer", "Layer", "Recurrent"]
