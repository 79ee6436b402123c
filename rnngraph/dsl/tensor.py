"""Symbolic tensors and the nodes that produce them.

A `Tensor` is a value that exists only in a model description: it knows the
node that produces it and its `TensorSpec` (kind, feature size, dtype). Calling
a layer on tensors makes a `Node`; `Model` later walks the nodes back from its
outputs into a graph.

Shapes by kind (batch and time are always dynamic):
- ``sequence``: ``(batch, time, features)`` float, or ``(batch, time)`` int64 token ids.
- ``vector``:   ``(batch, features)`` float, or ``(batch,)`` int64 token ids.
- ``scalar``:   ``()`` int64, a runtime count such as a number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rnngraph.dsl.layers import Layer

SEQUENCE = "sequence"
VECTOR = "vector"
SCALAR = "scalar"


@dataclass(frozen=True)
class TensorSpec:
    """What a symbolic tensor holds.

    `features` is the last axis of a float tensor; token tensors (`vocab` set)
    have no feature axis. `lengths` names the model input (int64, `(batch,)`)
    that says how many steps of each row of a sequence are valid; `None` means
    every row is `time` steps long. `time` names the symbolic time axis.
    """

    kind: str
    features: int = 0
    vocab: int | None = None
    lengths: str | None = None
    time: str = "time"
    #: a symbolic name for the last axis when its size is only known at run time (attention
    #: weights ``(batch, steps, time)`` end in the source's time axis); `features` is then 0
    feature_axis: str | None = None
    #: a count's largest value (``scalar`` only): the exported graph caps the count there and a
    #: session refuses more (`Input(name, count=True, max=...)`)
    count_max: int | None = None

    @property
    def dtype(self) -> str:
        return "int64" if self.vocab is not None or self.kind == SCALAR else "float32"

    @property
    def is_tokens(self) -> bool:
        return self.vocab is not None

    def dims(self) -> list[str | int]:
        """Symbolic shape, e.g. ``["batch", "time", 7]``."""
        if self.kind == SCALAR:
            return []
        dims: list[str | int] = ["batch"]
        if self.kind == SEQUENCE:
            dims.append(self.time)
        if not self.is_tokens:
            dims.append(self.feature_axis or self.features)
        return dims

    def with_features(self, features: int) -> TensorSpec:
        return replace(self, features=features, vocab=None, feature_axis=None)

    def describe(self) -> str:
        shape = ", ".join(str(d) for d in self.dims())
        return f"{self.kind} ({shape}) {self.dtype}"


@dataclass(eq=False)
class Node:
    """One call of a layer: the layer and the tensors it was called on, by slot name."""

    layer: Layer
    inputs: dict[str, Tensor]
    outputs: tuple[Tensor, ...] = field(default=())

    @property
    def input_specs(self) -> dict[str, TensorSpec]:
        return {slot: t.spec for slot, t in self.inputs.items()}


@dataclass(frozen=True, eq=False)
class Tensor:
    """A symbolic value: output `index` of `node`."""

    node: Node
    index: int
    spec: TensorSpec

    def __repr__(self) -> str:
        return f"Tensor({self.node.layer.describe()}[{self.index}]: {self.spec.describe()})"

    def __iter__(self) -> Any:  # pragma: no cover - guard against accidental unpacking
        raise TypeError("a rnngraph Tensor is symbolic and cannot be iterated")
