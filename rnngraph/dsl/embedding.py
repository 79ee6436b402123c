"""`Embedding`: token ids to dense vectors (the input side of docs/encoder-decoder.md, docs/attention.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnngraph.dsl.checks import positive_int
from rnngraph.dsl.layers import Layer
from rnngraph.dsl.params import Initializer, ParamSpec
from rnngraph.dsl.tensor import SEQUENCE, VECTOR, TensorSpec
from rnngraph.errors import ModelError


def normal(scale: float) -> Initializer:
    """N(0, scale²) draws (PyTorch's embeddings use N(0, 1); a smaller scale keeps tanh cells unsaturated)."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(0.0, scale, size=shape)

    return draw


@dataclass(frozen=True)
class Embedding(Layer):
    """Looks up one row of a table per token id.

        y[b, t] = E[ids[b, t]]          ids (batch, time) int64 -> y (batch, time, dim)
        y[b]    = E[ids[b]]             ids (batch,) int64      -> y (batch, dim)

    Parameter: E ``(vocab, dim)``. The input's ids must lie in ``[0, vocab)``: its
    declared vocabulary (``Input(..., tokens=n)``) may not exceed `vocab`. On a
    padded sequence the output past a row's length is 0, like every sequence.
    """

    vocab: int = 0
    dim: int = 0
    prefix: ClassVar[str] = "embedding"

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int(self.describe(), "vocab", self.vocab)
        positive_int(self.describe(), "dim", self.dim)

    def title(self) -> str:
        return f"Embedding({self.vocab}, {self.dim})"

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x = inputs["x"]
        self.expect("x", x, (SEQUENCE, VECTOR), tokens=True)
        assert x.vocab is not None
        if x.vocab > self.vocab:
            raise ModelError(
                f"{self.describe()}: input `x` holds ids in [0, {x.vocab}), but the table has only {self.vocab} "
                f"rows; use Embedding({x.vocab}, {self.dim}) or declare the input with tokens={self.vocab}."
            )
        return (x.with_features(self.dim),)

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        return {"E": ParamSpec((self.vocab, self.dim), normal(0.5), "embedding table, one row per token id")}


__all__ = ["Embedding", "normal"]
