"""1-to-N generation: one vector in, a runtime number of steps out (docs/vec2seq.md).

    v = Input("v", features=128, sequence=False)             # (batch, 128), e.g. image features
    n = Input("n", count=True)                               # int64 scalar, the number of steps N
    y = Generate(GRU(64), mode="every", readout=Dense(1000, "softmax"),
                 feedback="argmax", embedding=32)(v, n)      # (batch, n, 1000)
    model = Model(inputs=[v, n], outputs={"y": y})

N is an input of the exported model, not a constant of it: the same file
generates 1 or 10 000 steps, and its size does not depend on N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import boolean, one_of, positive_int
from rnngraph.dsl.layers import Dense, Layer
from rnngraph.dsl.params import ParamSpec
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, VECTOR, TensorSpec
from rnngraph.errors import ModelError, invalid

GENERATE_MODES = ("first", "every")
FEEDBACKS = ("none", "output", "argmax")


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """N(0, 1), PyTorch's `nn.Embedding` default."""
    return rng.standard_normal(shape)


@dataclass(frozen=True)
class Generate(Layer):
    """Runs `cell` for a runtime number of steps N from one vector `v` (1-to-N, docs/vec2seq.md).

    Inputs: ``v (batch, features)`` and ``steps``, an int64 scalar count input
    (``Input("n", count=True)``), N ≥ 0. Output: ``y (batch, N, out)`` where ``out`` is
    ``readout.units`` with a readout, else ``cell.output_size``; its time axis is named
    after the count input (``(batch, n, out)``). With ``tokens=True`` a second output
    ``(batch, N)`` int64 holds ``argmax(y_t)`` per step.

    Step t = 0 … N-1, with states s_{-1} = 0:

        a_t = v                              mode "every"
        a_t = v if t = 0 else 0              mode "first"
        x_t = a_t                            feedback "none"
        x_t = [a_t; f_t]                     otherwise, with
            f_t = y_{t-1}  (f_0 = 0)                         feedback "output"
            f_t = E[argmax y_{t-1}]                           feedback "argmax"
            f_0 = E[start]  or 0 when start is None
        s_t, h_t = cell(s_{t-1}, x_t)
        y_t = act(V h_t + c)                 readout = Dense(units, act); y_t = h_t without one

    ``argmax`` takes the first index of the largest value (NumPy's and ONNX ArgMax's rule).

    Parameters: the cell's, for an input of ``features + feedback size`` (the
    feedback size is ``out`` for "output", `embedding` for "argmax", else 0), with the
    cell's own names; the readout's as ``readout/W (units, hidden)`` and ``readout/b (units,)``;
    with feedback "argmax" the embedding ``embedding (units, embedding)``.
    """

    cell: Cell | None = None
    mode: str = "first"
    readout: Dense | None = None
    feedback: str = "none"
    #: size E of the embedding of the fed-back token (feedback "argmax" only)
    embedding: int | None = None
    #: token whose embedding step 0 reads (feedback "argmax" only); None: a zero vector
    start: int | None = None
    #: also output the argmax token ids ``(batch, N)`` int64 (needs a readout)
    tokens: bool = False

    prefix: ClassVar[str] = "generate"
    slots: ClassVar[tuple[str, ...]] = ("v", "steps")

    def __post_init__(self) -> None:
        super().__post_init__()
        where = self.describe()
        if not isinstance(self.cell, Cell):
            raise invalid(where, "cell", "a cell such as RNN(32), LSTM(32) or GRU(32)", self.cell)
        one_of(where, "mode", self.mode, GENERATE_MODES)
        one_of(where, "feedback", self.feedback, FEEDBACKS)
        if self.readout is not None and not isinstance(self.readout, Dense):
            raise invalid(where, "readout", "None or a Dense layer such as Dense(1000, 'softmax')", self.readout)
        boolean(where, "tokens", self.tokens)
        if self.feedback == "argmax":
            if self.readout is None:
                raise invalid(where, "readout", "a Dense layer (feedback='argmax' feeds back its argmax token)",
                              None, "Give readout=Dense(vocab, 'softmax').")
            if self.embedding is None:
                raise invalid(where, "embedding", "the size of the fed-back token's embedding (a positive "
                              "integer) with feedback='argmax'", None, "Give e.g. embedding=32.")
            positive_int(where, "embedding", self.embedding)
            vocab = self.readout.units
            if self.start is not None and (isinstance(self.start, bool) or not isinstance(self.start, int)
                                           or not 0 <= self.start < vocab):
                raise invalid(where, "start", f"None (step 0 reads a zero vector) or a token id in [0, {vocab})",
                              self.start)
        else:
            for name in ("embedding", "start"):
                if getattr(self, name) is not None:
                    raise invalid(where, name, "None unless feedback='argmax'", getattr(self, name),
                                  f"It is only used with feedback='argmax' (feedback is {self.feedback!r}).")
        if self.tokens and self.readout is None:
            raise invalid(where, "tokens", "False without a readout (token ids index the readout's units)",
                          self.tokens, "Give a readout=Dense(vocab, ...) or drop tokens=True.")

    # -- sizes ----------------------------------------------------------------
    @property
    def output_size(self) -> int:
        """Features of y_t: the readout's units, else the cell's output size."""
        assert self.cell is not None
        return self.readout.units if self.readout is not None else self.cell.output_size

    @property
    def feedback_size(self) -> int:
        """Features of f_t appended to the cell input (0 without feedback)."""
        if self.feedback == "output":
            return self.output_size
        if self.feedback == "argmax":
            assert self.embedding is not None
            return self.embedding
        return 0

    def cell_input_size(self, features: int) -> int:
        return features + self.feedback_size

    def title(self) -> str:
        assert self.cell is not None
        parts = [self.cell.describe(), f"mode={self.mode!r}"]
        if self.readout is not None:
            parts.append(f"readout={self.readout.title()}")
        if self.feedback != "none":
            parts.append(f"feedback={self.feedback!r}")
        return f"Generate({', '.join(parts)})"

    # -- graph ----------------------------------------------------------------
    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        v, steps = inputs["v"], inputs["steps"]
        self.expect("v", v, (VECTOR,))
        if steps.kind != SCALAR:
            raise ModelError(f"{self.describe()}: input `steps` must be a count, Input(name, count=True) "
                             f"(an int64 scalar), received {steps.describe()}.")
        y = TensorSpec(SEQUENCE, self.output_size, time=steps.time)
        if not self.tokens:
            return (y,)
        return y, TensorSpec(SEQUENCE, vocab=self.output_size, time=steps.time)

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        assert self.cell is not None
        specs = dict(self.cell.param_specs(self.cell_input_size(inputs["v"].features)))
        if self.readout is not None:
            hidden = TensorSpec(VECTOR, self.cell.output_size)
            for local, spec in self.readout.param_specs({"x": hidden}).items():
                specs[f"readout/{local}"] = spec
        if self.feedback == "argmax":
            assert self.readout is not None and self.embedding is not None
            specs["embedding"] = ParamSpec((self.readout.units, self.embedding), standard_normal,
                                           "embedding of the fed-back argmax token")
        return specs


def split_params(layer: Generate, features: int, p: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """A Generate node's parameters by owner: ``{"cell": …, "readout": …, "embedding": …}``."""
    assert layer.cell is not None
    cell = {k: p[k] for k in layer.cell.param_specs(layer.cell_input_size(features))}
    readout = {k[len("readout/"):]: v for k, v in p.items() if k.startswith("readout/")}
    out = {"cell": cell, "readout": readout}
    if "embedding" in p:
        out["embedding"] = {"E": p["embedding"]}
    return out


__all__ = ["FEEDBACKS", "GENERATE_MODES", "Generate", "split_params"]
