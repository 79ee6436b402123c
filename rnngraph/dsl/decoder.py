"""`Decoder`: the N-to-M half of an encoder-decoder (docs/encoder-decoder.md), optional attention (docs/attention.md).

The encoder is any recurrent stack; its output sequence ``memory (batch, T, H)``
(with the source's `lengths`) is what the decoder reads.

Context ``c`` (computed once per row, over the row's valid steps only):
    last         c = h_{L-1}                              (L = the row's length)
    last_dense   c = act(Wc h_{L-1} + bc)                 Wc (C, H), C = `context_units`
    all_dense    c = act(Wc pool(h_0..h_{L-1}) + bc)      pool ∈ {mean, max}
    None         no context (only with attention)

`use` of the context:
    init         s_0 = c when sizes match, else s_0 = Wi c + bi (a linear projection);
                 only the cell's first (output) state; an LSTM's cell state starts at 0
    every        c is concatenated to the decoder input at every step

Step i = 0, 1, … (y_{-1} is the target's first token, BOS when decoding greedily):
    a_i = attend(s_{i-1}, memory)                         (with attention, see `Attention`)
    x_i = [E[y_{i-1}]; c (use=every); a_i (attention)]
    s_i = cell(s_{i-1}, x_i)
    o_i = act(V [s_i; a_i] + b)                           (a_i only with attention)

Parameters of a decoder node (by local name): ``E (vocab, embedding)``; ``context/W``,
``context/b`` (dense contexts); ``init/W``, ``init/b`` (use=init with C ≠ S);
``attention/*`` (see `Attention`); ``cell/*`` (the cell's own, for its input size);
``readout/W (vocab, S + H·attention)``, ``readout/b``.

Two ways to run it, each a node of the model (see `teacher_forced` and `greedy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

from rnngraph.dsl.attention import Attention
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import one_of, positive_int
from rnngraph.dsl.embedding import normal
from rnngraph.dsl.layers import DENSE_ACTIVATIONS, Dense, Layer
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.signature import Checked
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, Tensor, TensorSpec
from rnngraph.errors import ModelError, invalid

CONTEXTS = ("last", "last_dense", "all_dense")
USES = ("init", "every")
POOLS = ("mean", "max")
#: the time axis of greedily decoded outputs
STEPS_AXIS = "steps"


@dataclass(frozen=True)
class Decoder(metaclass=Checked):
    """A decoder configuration; call `teacher_forced` or `greedy` on an encoder's memory.

    - `cell`: any cell; `attention`: an `Attention` or None.
    - `context`, `use`, `pool`, `context_units` (default: the size of the cell's first
      state), `context_activation`: see the module docstring.
    - `readout`: ``Dense(vocab, activation)``; its units are the target vocabulary.
    - `embedding`: size of the target-token embedding.
    - `bos`, `eos`, `pad`: token ids (model constants) for greedy decoding; `max_len`: its
      default number of steps (a runtime `Input(..., count=True)` can override it).
    """

    cell: Cell | None = None
    attention: Attention | None = None
    context: str | None = "last"
    use: str = "init"
    pool: str = "mean"
    context_units: int | None = None
    context_activation: str = "tanh"
    readout: Dense | None = None
    embedding: int = 32
    bos: int = 1
    eos: int = 2
    pad: int = 0
    max_len: int = 40

    def __post_init__(self) -> None:
        where = "Decoder"
        if not isinstance(self.cell, Cell):
            raise invalid(where, "cell", "a cell such as RNN(32), LSTM(32) or GRU(32)", self.cell)
        if self.attention is not None and not isinstance(self.attention, Attention):
            raise invalid(where, "attention", "an Attention(...) or None", self.attention)
        if self.context is None:
            if self.attention is None:
                raise invalid(where, "context", "one of 'last', 'last_dense', 'all_dense' (None only with attention)",
                              None, "Without attention and context the decoder would never read the source.")
        else:
            one_of(where, "context", self.context, CONTEXTS)
        one_of(where, "use", self.use, USES)
        one_of(where, "pool", self.pool, POOLS)
        one_of(where, "context_activation", self.context_activation, DENSE_ACTIVATIONS)
        if self.context_units is not None:
            positive_int(where, "context_units", self.context_units)
        if not isinstance(self.readout, Dense):
            raise invalid(where, "readout", "a Dense(vocab, activation) layer, e.g. Dense(8000, 'softmax')",
                          self.readout)
        positive_int(where, "embedding", self.embedding)
        positive_int(where, "max_len", self.max_len)
        for name in ("bos", "eos", "pad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab:
                raise invalid(where, name, f"a token id in [0, {self.vocab}) (the readout's units)", value)

    # -- sizes ---------------------------------------------------------------
    @property
    def vocab(self) -> int:
        assert self.readout is not None
        return self.readout.units

    @property
    def state_size(self) -> int:
        """S, the size of the cell's first (output) state: the attention query and init target."""
        assert self.cell is not None
        return next(iter(self.cell.state_sizes().values()))

    def context_size(self, memory: int) -> int:
        if self.context is None:
            return 0
        if self.context == "last":
            return memory
        return self.context_units or self.state_size

    def needs_init_projection(self, memory: int) -> bool:
        return self.context is not None and self.use == "init" and self.context_size(memory) != self.state_size

    def cell_input_size(self, memory: int) -> int:
        every = self.context_size(memory) if self.use == "every" else 0
        return self.embedding + every + (memory if self.attention is not None else 0)

    def readout_input_size(self, memory: int) -> int:
        assert self.cell is not None
        return self.cell.output_size + (memory if self.attention is not None else 0)

    def param_specs(self, memory: int) -> dict[str, ParamSpec]:
        """Parameters by local name for a memory of `memory` features."""
        assert self.cell is not None
        specs = {"E": ParamSpec((self.vocab, self.embedding), normal(0.5), "target token embedding")}
        if self.context in ("last_dense", "all_dense"):
            c = self.context_size(memory)
            init = uniform(1.0 / math.sqrt(memory))
            specs["context/W"] = ParamSpec((c, memory), init, "context projection")
            specs["context/b"] = ParamSpec((c,), init, "context bias")
        if self.needs_init_projection(memory):
            c = self.context_size(memory)
            init = uniform(1.0 / math.sqrt(c))
            specs["init/W"] = ParamSpec((self.state_size, c), init, "context to initial state")
            specs["init/b"] = ParamSpec((self.state_size,), init, "initial state bias")
        if self.attention is not None:
            for local, spec in self.attention.param_specs(self.state_size, memory).items():
                specs[f"attention/{local}"] = spec
        for local, spec in self.cell.param_specs(self.cell_input_size(memory)).items():
            specs[f"cell/{local}"] = spec
        n_in = self.readout_input_size(memory)
        init = uniform(1.0 / math.sqrt(n_in))
        specs["readout/W"] = ParamSpec((self.vocab, n_in), init, "readout weights V")
        specs["readout/b"] = ParamSpec((self.vocab,), init, "readout bias")
        return specs

    def describe(self) -> str:
        assert self.cell is not None
        att = f", {self.attention.describe()}" if self.attention else ""
        return f"Decoder({self.cell.describe()}{att}, context={self.context!r}, use={self.use!r})"

    # -- building model nodes -----------------------------------------------------
    def teacher_forced(self, memory: Tensor, tgt: Tensor, *, name: str | None = None) -> Tensor | tuple[Tensor, ...]:
        """Decode with the given decoder inputs `tgt` ``(batch, M)`` token ids (BOS y_1 … y_{M-1}).

        Returns ``scores (batch, M, vocab)`` (the readout output at each step; 0 past
        the row's target length) and, with attention, also ``weights (batch, M, T)``.
        """
        return TeacherForced(decoder=self, name=name)(memory, tgt)

    def greedy(self, memory: Tensor, max_len: Tensor | None = None, *,
               name: str | None = None) -> tuple[Tensor, ...]:
        """Decode greedily inside the graph, from BOS until every row emitted EOS or `max_len` steps ran.

        `max_len`: None for the model constant ``self.max_len``, or a runtime count
        ``Input("max_len", count=True)``. Returns ``tokens (batch, steps)`` int64,
        ``scores (batch, steps, vocab)`` and, with attention, ``weights (batch, steps, T)``.
        After a row has emitted EOS its tokens are `pad` and its scores and weights 0.
        """
        out = GreedyDecode(decoder=self, name=name)(memory, max_len=max_len)  # type: ignore[arg-type]
        assert isinstance(out, tuple)
        return out


@dataclass(frozen=True)
class DecoderLayer(Layer):
    """A model node that runs a `Decoder`; shared checks and parameters of both modes."""

    decoder: Decoder | None = None
    prefix: ClassVar[str] = "decoder"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.decoder, Decoder):
            raise invalid(self.describe(), "decoder", "a Decoder(...)", self.decoder)

    @property
    def dec(self) -> Decoder:
        assert self.decoder is not None
        return self.decoder

    def title(self) -> str:
        return f"{type(self).__name__}({self.dec.describe()})"

    def check_memory(self, memory: TensorSpec) -> None:
        self.expect("memory", memory, (SEQUENCE,))
        if self.dec.attention is not None:
            self.dec.attention.check(self.describe(), self.dec.state_size, memory.features)

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        return self.dec.param_specs(inputs["memory"].features)

    def weights_spec(self, rows: TensorSpec, memory: TensorSpec) -> TensorSpec:
        """Attention weights ``(batch, steps of rows, time of memory)``."""
        return replace(rows.with_features(0), feature_axis=memory.time)


@dataclass(frozen=True)
class TeacherForced(DecoderLayer):
    """Decoder fed the given target tokens. Outputs: scores[, attention weights]."""

    slots: ClassVar[tuple[str, ...]] = ("memory", "tgt")

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        memory, tgt = inputs["memory"], inputs["tgt"]
        self.check_memory(memory)
        self.expect("tgt", tgt, (SEQUENCE,), tokens=True)
        if tgt.vocab != self.dec.vocab:
            raise ModelError(
                f"{self.describe()}: input `tgt` holds ids of a vocabulary of {tgt.vocab}, but the decoder's readout "
                f"has {self.dec.vocab} units; declare Input(..., tokens={self.dec.vocab}) or change the readout."
            )
        if tgt.time == memory.time:
            raise ModelError(
                f"{self.describe()}: `tgt` and `memory` share the time axis name {tgt.time!r}, so every target would "
                "need the source's length; give the target its own, e.g. Input('tgt', tokens=..., time='tgt_time', "
                "lengths='tgt_lengths')."
            )
        if tgt.lengths is not None and tgt.lengths == memory.lengths:
            raise ModelError(
                f"{self.describe()}: `tgt` and `memory` share the lengths input {tgt.lengths!r}, but a target has "
                "lengths of its own; give it another name, e.g. Input('tgt', ..., lengths='tgt_lengths')."
            )
        scores = tgt.with_features(self.dec.vocab)
        if self.dec.attention is None:
            return (scores,)
        return scores, self.weights_spec(tgt, memory)


@dataclass(frozen=True)
class GreedyDecode(DecoderLayer):
    """Decoder fed its own argmax tokens. Outputs: tokens, scores[, attention weights]."""

    slots: ClassVar[tuple[str, ...]] = ("memory", "max_len")
    optional_slots: ClassVar[tuple[str, ...]] = ("max_len",)

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        memory = inputs["memory"]
        self.check_memory(memory)
        if "max_len" in inputs and inputs["max_len"].kind != SCALAR:
            raise ModelError(f"{self.describe()}: input `max_len` must be a count, Input('max_len', count=True); "
                             f"received {inputs['max_len'].describe()}.")
        tokens = TensorSpec(SEQUENCE, 0, self.dec.vocab, None, STEPS_AXIS)
        scores = TensorSpec(SEQUENCE, self.dec.vocab, None, None, STEPS_AXIS)
        if self.dec.attention is None:
            return tokens, scores
        return tokens, scores, self.weights_spec(scores, memory)


__all__ = ["CONTEXTS", "POOLS", "STEPS_AXIS", "USES", "Decoder", "DecoderLayer", "GreedyDecode", "TeacherForced"]
