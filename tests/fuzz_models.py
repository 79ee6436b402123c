"""Hypothesis strategies for random rnngraph models: every registered cell, every option, every topology.

A drawn `Case` is a model, its parameter seed, feeds (ragged lengths, NaN in every padded
step of every float sequence input), the lowering and the opset. `verify` runs each case a
second time with a NaN in a valid step too (`rnngraph.verify.nan_feeds`: the NaN rule). The cells come from the one
cell registry (`rnngraph.dsl.registry`): each registered example is re-sized to random sizes
(1–24) where its type allows, so a newly registered cell is fuzzed without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.dsl import registry
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.decoder import CONTEXTS, POOLS, USES
from rnngraph.dsl.generate import FEEDBACKS, GENERATE_MODES
from rnngraph.dsl.layers import DENSE_ACTIVATIONS, RETURNS
from rnngraph.dsl.tensor import SEQUENCE
from rnngraph.dsl.wrappers import MERGES
from rnngraph.exporters.onnx import MIN_OPSET, max_opset
from rnngraph.verify import model_cells

LOWERINGS = ("auto", "scan", "native")
TOPOLOGIES = ("recurrent", "bidirectional", "stack", "generate", "generative", "decoder")
SIZES = st.integers(1, 24)
Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass(frozen=True)
class Case:
    """One fuzzed model and everything needed to run it on both sides."""

    topology: str
    model: rg.Model
    seed: int
    feeds: dict[str, np.ndarray]
    lowering: str
    opset: int

    def describe(self) -> str:
        return (f"topology {self.topology}, lowering {self.lowering}, opset {self.opset}, seed {self.seed}, "
                f"feeds {{{', '.join(f'{k}: {np.shape(v)}' for k, v in self.feeds.items())}}}\n"
                f"{self.model.summary()}")


# -- cells --------------------------------------------------------------------------------
def clockwork(draw: Draw, example: rg.Clockwork) -> rg.Clockwork:
    groups = draw(st.integers(1, 3))
    sizes = tuple(draw(st.lists(st.integers(1, 8), min_size=groups, max_size=groups)))
    periods = tuple(draw(st.lists(st.integers(1, 9), min_size=groups, max_size=groups, unique=True)))
    return rg.Clockwork(sum(sizes), periods=periods, group_sizes=sizes, activation=example.activation)


def esn(draw: Draw, example: rg.ESN) -> rg.ESN:
    return replace(example, hidden=draw(SIZES), outputs=draw(st.integers(1, 6)),
                   density=draw(st.sampled_from((0.2, 0.5, 1.0))), leak=draw(st.sampled_from((0.3, 1.0))))


#: cell types whose sizes are more than `hidden`; every other cell is re-sized through `hidden`
RESIZERS: dict[type, Callable[[Draw, Any], Cell]] = {rg.Clockwork: clockwork, rg.ESN: esn}


@st.composite
def cells(draw: Draw) -> Cell:
    """A registered cell example with random sizes (its options as the example has them)."""
    example = draw(st.sampled_from(registry.examples()))
    resize = next((f for t, f in RESIZERS.items() if isinstance(example, t)), None)
    if resize is not None:
        return resize(draw, example)
    return replace(example, hidden=draw(SIZES))


def returns(draw: Draw) -> tuple[str, ...]:
    return tuple(draw(st.lists(st.sampled_from(RETURNS), min_size=1, max_size=3, unique=True)))


def outputs_of(result: Any) -> dict[str, rg.Tensor]:
    return {f"y{i}": t for i, t in enumerate(result if isinstance(result, tuple) else (result,))}


# -- topologies ---------------------------------------------------------------------------
def recurrent(draw: Draw) -> rg.Model:
    cell = draw(cells())
    x = rg.Input("x", features=draw(SIZES))
    inputs = [x]
    initial = None
    if draw(st.booleans()):
        sizes = cell.state_sizes()
        width = draw(st.sampled_from(sorted({next(iter(sizes.values())), sum(sizes.values())})))
        initial = rg.Input("s0", features=width, sequence=False)
        inputs.append(initial)
    layer = rg.Recurrent(cell, reverse=draw(st.booleans()), returns=returns(draw))
    outs = outputs_of(layer(x, initial_state=initial) if initial is not None else layer(x))
    if draw(st.booleans()):
        seq = next(t for t in outs.values() if t.spec.kind == SEQUENCE) if "sequence" in layer.returns else None
        if seq is not None:
            outs["readout"] = rg.Dense(draw(SIZES), activation=draw(st.sampled_from(DENSE_ACTIVATIONS)))(seq)
    return rg.Model(inputs, outs)


def bidirectional(draw: Draw) -> rg.Model:
    fw = draw(cells())
    pair = draw(st.booleans())
    bw = draw(cells()) if pair else fw
    merge = draw(st.sampled_from(MERGES)) if fw.output_size == bw.output_size else "concat"
    x = rg.Input("x", features=draw(SIZES))
    layer = rg.Bidirectional((fw, bw) if pair else fw, merge=merge, returns=returns(draw))
    return rg.Model(x, outputs_of(layer(x)))


def stack(draw: Draw) -> rg.Model:
    features = draw(SIZES)
    items: list[Any] = []
    residual: list[int] = []
    width = features
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(("cell", "reverse", "bidirectional")))
        cell = draw(cells())
        if kind == "cell":
            item: Any = cell
            out = cell.output_size
        elif kind == "reverse":
            item = rg.Recurrent(cell, reverse=True)
            out = cell.output_size
        else:
            merge = draw(st.sampled_from(MERGES))
            item = rg.Bidirectional(cell, merge=merge)
            out = 2 * cell.output_size if merge == "concat" else cell.output_size
        if out == width and draw(st.booleans()):
            residual.append(i)
        items.append(item)
        width = out
    kinds = returns(draw)
    if residual and residual[-1] == len(items) - 1 and isinstance(items[-1], rg.Bidirectional):
        # refused by design: a residual Bidirectional's last output merges two different steps
        kinds = tuple(k for k in kinds if k != "last") or ("sequence",)
    x = rg.Input("x", features=features)
    layer = rg.Stack(items, residual=tuple(residual), returns=kinds)
    return rg.Model(x, outputs_of(layer(x)))


def generate(draw: Draw) -> rg.Model:
    cell = draw(cells())
    feedback = draw(st.sampled_from(FEEDBACKS))
    readout = rg.Dense(draw(SIZES), activation=draw(st.sampled_from(DENSE_ACTIVATIONS))) \
        if feedback == "argmax" or draw(st.booleans()) else None
    extra: dict[str, Any] = {}
    if feedback == "argmax":
        extra = {"embedding": draw(SIZES), "start": draw(st.sampled_from((None, 0)))}
    tokens = readout is not None and draw(st.booleans())
    v = rg.Input("v", features=draw(SIZES), sequence=False)
    n = rg.Input("n", count=True)
    layer = rg.Generate(cell, mode=draw(st.sampled_from(GENERATE_MODES)), readout=readout, feedback=feedback,
                        tokens=tokens, **extra)
    return rg.Model([v, n], outputs_of(layer(v, n)))


def generative(draw: Draw) -> rg.Model:
    cell = draw(cells())
    feed = draw(st.booleans())
    features = cell.output_size if feed else draw(SIZES)
    u = rg.Input("u", features=features)
    n = rg.Input("steps", count=True)
    generated, primed = rg.Generative(cell, feed_input=feed)(u, n)
    return rg.Model([u, n], {"generated": generated, "primed": primed})


def decoder(draw: Draw) -> rg.Model:
    src_vocab, tgt_vocab = draw(st.integers(3, 12)), draw(st.integers(3, 12))
    src = rg.Input("src", tokens=src_vocab)
    enc_hidden = draw(SIZES)
    memory = rg.Recurrent(rg.GRU(enc_hidden, linear_before_reset=True))(rg.Embedding(src_vocab, draw(SIZES))(src))
    cell = draw(cells())
    score = draw(st.sampled_from((None, "additive", "dot", "general")))
    if score == "dot" and next(iter(cell.state_sizes().values())) != enc_hidden:
        score = "general"
    attention = None if score is None else rg.Attention(score, units=draw(SIZES) if score == "additive" else None)
    context = draw(st.sampled_from((*CONTEXTS, None) if attention is not None else CONTEXTS))
    dec = rg.Decoder(cell, attention=attention, context=context, use=draw(st.sampled_from(USES)),
                     pool=draw(st.sampled_from(POOLS)), readout=rg.Dense(tgt_vocab, "softmax"),
                     embedding=draw(SIZES), bos=1, eos=2, pad=0, max_len=draw(st.integers(1, 8)))
    tgt = rg.Input("tgt", tokens=tgt_vocab, time="tgt_time", lengths="tgt_lengths")
    outputs = {f"tf{i}": t for i, t in enumerate(outputs_of(dec.teacher_forced(memory, tgt)).values())}
    inputs = [src, tgt]
    n = None
    if draw(st.booleans()):
        n = rg.Input("max_len", count=True)
        inputs.append(n)
    greedy = dec.greedy(memory, n)
    outputs |= {f"gr{i}": t for i, t in enumerate(greedy)}
    return rg.Model(inputs, outputs)


BUILDERS: dict[str, Callable[[Draw], rg.Model]] = {
    "recurrent": recurrent, "bidirectional": bidirectional, "stack": stack,
    "generate": generate, "generative": generative, "decoder": decoder,
}


def cell_names(model: rg.Model) -> list[str]:
    return sorted({type(c).__name__ for c in model_cells(model)})


def nan_padding(model: rg.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """NaN in every padded step of every float sequence input: padding must never be read."""
    out = dict(feeds)
    for name, spec in model.inputs.items():
        if spec.kind != SEQUENCE or spec.dtype != "float32" or spec.lengths is None:
            continue
        x = out[name].copy()
        steps = np.arange(x.shape[1])[None, :]
        x[steps >= out[spec.lengths][:, None]] = np.nan
        out[name] = x
    return out


@st.composite
def cases(draw: Draw, topologies: tuple[str, ...] = TOPOLOGIES) -> Case:
    topology = draw(st.sampled_from(topologies))
    model = BUILDERS[topology](draw)
    seed = draw(st.integers(0, 2**16))
    batch, time = draw(st.integers(1, 5)), draw(st.integers(1, 40))
    if topology in ("generate", "generative", "decoder"):
        time = min(time, 12)  # counts = time steps too; keep the Python oracle quick
    feeds = nan_padding(model, model.example_inputs(batch, time, seed, ragged=True))
    lowering = draw(st.sampled_from(LOWERINGS))
    opset = draw(st.integers(MIN_OPSET, max_opset()))
    return Case(topology, model, seed, feeds, lowering, opset)
