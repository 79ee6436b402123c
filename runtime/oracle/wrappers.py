"""Oracle evaluators of Recurrent, Bidirectional and Stack (docs/seq2vec.md, docs/bidirectional.md, docs/deep.md).

Plain loops over rows, each over its own valid steps ``0 … L_b - 1``, written from
docs/README.md: a layer's output past a row's length is 0, ``last`` is the output of the
last step the run processed (step ``L_b - 1`` forward, step 0 backward), ``mean`` and
``max`` read the valid steps only, and a backward run starts at the row's own last
valid step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Recurrent
from rnngraph.dsl.model import Source
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.runtime.oracle.core import Env, evaluates
from rnngraph.runtime.oracle.layers import run_row


@dataclass
class Walked:
    """One layer run over a batch: outputs ``(batch, time, out)``, last outputs ``(batch, out)``, final states."""

    y: np.ndarray
    last: np.ndarray
    finals: list[np.ndarray]


def walk(cell: Cell, p: Mapping[str, np.ndarray], x: np.ndarray, lens: np.ndarray, reverse: bool,
         initial: Mapping[str, np.ndarray] | None = None, stepped: Callable[[int], Any] = lambda n: None) -> Walked:
    """Run `cell` over each row b of ``x (batch, time, in)`` for its first ``lens[b]`` steps.

    Forward: steps 0, 1, …, L-1. Backward: steps L-1, …, 0 (not from the padded end).
    `initial` gives some states' starts ``(batch, size)`` by name; the others start at 0.
    `stepped(n)` is told each row's n steps once they have run (progress of long runs).
    """
    batch, time = x.shape[:2]
    sizes = cell.state_sizes()
    y = np.zeros((batch, time, cell.output_size))
    last = np.zeros((batch, cell.output_size))
    finals = {name: np.zeros((batch, size)) for name, size in sizes.items()}
    for b in range(batch):
        steps = list(range(lens[b]))
        if reverse:
            steps.reverse()
        start = {name: np.zeros(size) for name, size in sizes.items()}
        for name, value in (initial or {}).items():
            start[name] = np.array(value[b], dtype=np.float64)
        ys, states = run_row(cell, p, x[b, steps], start)
        stepped(len(steps))
        for k, t in enumerate(steps):
            y[b, t] = ys[k]
        last[b] = ys[-1]  # the step processed last
        for name in sizes:
            finals[name][b] = states[name]
    return Walked(y, last, list(finals.values()))


def split_initial(layer: Recurrent, value: np.ndarray) -> dict[str, np.ndarray]:
    """`initial_state` ``(batch, width)`` cut into the states it sets (h only, or all: docs/encoder-decoder.md)."""
    given = layer.initial_states(value.shape[1])
    cuts = np.cumsum(list(given.values()))[:-1]
    return dict(zip(given, np.split(value, cuts, axis=1), strict=True))


def combine(how: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if how == "concat":
        return np.concatenate([a, b], axis=-1)
    if how == "sum":
        return a + b
    if how == "mul":
        return a * b
    if how == "ave":
        return (a + b) / 2.0
    raise ValueError(f"unknown merge {how!r}")


def mean_over_valid(y: np.ndarray, lens: np.ndarray) -> np.ndarray:
    return np.stack([y[b, : lens[b]].mean(axis=0) for b in range(y.shape[0])]) if len(lens) else y[:, 0] * 0


def max_over_valid(y: np.ndarray, lens: np.ndarray) -> np.ndarray:
    return np.stack([y[b, : lens[b]].max(axis=0) for b in range(y.shape[0])]) if len(lens) else y[:, 0] * 0


def answer(returned: tuple[str, ...], walked: Walked, lens: np.ndarray) -> tuple[np.ndarray, ...]:
    out: list[np.ndarray] = []
    for kind in returned:
        if kind == "sequence":
            out.append(walked.y)
        elif kind == "last":
            out.append(walked.last)
        elif kind == "mean":
            out.append(mean_over_valid(walked.y, lens))
        elif kind == "max":
            out.append(max_over_valid(walked.y, lens))
        else:
            out.extend(walked.finals)
    return tuple(out)


def sub_params(p: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1:]: v for k, v in p.items() if k.startswith(prefix + "/")}


def walk_bidirectional(layer: Bidirectional, p: Mapping[str, np.ndarray], x: np.ndarray, lens: np.ndarray,
                       stepped: Callable[[int], Any] = lambda n: None) -> Walked:
    """y_t = merge(h→_t, h←_t); last = merge(h→ at step L-1, h← at step 0)."""
    fw = walk(layer.forward, sub_params(p, "fw"), x, lens, reverse=False, stepped=stepped)
    bw = walk(layer.backward, sub_params(p, "bw"), x, lens, reverse=True, stepped=stepped)
    return Walked(combine(layer.merge, fw.y, bw.y), combine(layer.merge, fw.last, bw.last), fw.finals + bw.finals)


def inputs_of(env: Env, sources: Mapping[str, Source]) -> tuple[np.ndarray, np.ndarray]:
    x = env.value(sources["x"])
    return x, env.lengths(sources["x"].spec, x.shape[1], x.shape[0])


@evaluates(Recurrent)
def eval_recurrent(env: Env, node: str, layer: Recurrent, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    assert layer.cell is not None
    x, lens = inputs_of(env, sources)
    initial = split_initial(layer, env.value(sources["initial_state"])) if "initial_state" in sources else None
    walked = walk(layer.cell, env.node_params(node), x, lens, layer.reverse, initial, env.stepped)
    return answer(layer.returned, walked, lens)


@evaluates(Bidirectional)
def eval_bidirectional(env: Env, node: str, layer: Bidirectional,
                       sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    x, lens = inputs_of(env, sources)
    return answer(layer.returned, walk_bidirectional(layer, env.node_params(node), x, lens, env.stepped), lens)


@evaluates(Stack)
def eval_stack(env: Env, node: str, layer: Stack, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    """h^(l) = layer_l(h^(l-1)) [+ h^(l-1)]; the top layer's outputs, every layer's final states."""
    h, lens = inputs_of(env, sources)
    p = env.node_params(node)
    residual = set(layer.residual_layers())
    finals: list[np.ndarray] = []
    for i, (local, item) in enumerate(layer.items()):
        if isinstance(item, Bidirectional):
            walked = walk_bidirectional(item, sub_params(p, local), h, lens, env.stepped)
        else:
            assert item.cell is not None
            walked = walk(item.cell, sub_params(p, local), h, lens, item.reverse, stepped=env.stepped)
        if i in residual:
            y = walked.y + h
            # the last step processed: L-1 forward, 0 backward (a residual Bidirectional top has no `last`)
            reverse = isinstance(item, Recurrent) and item.reverse
            last = np.array([y[b, 0 if reverse else lens[b] - 1] for b in range(len(lens))]).reshape(walked.last.shape)
            walked = Walked(y, last, walked.finals)
        finals += walked.finals
        h = walked.y
    return answer(layer.returned, Walked(h, walked.last, finals), lens)
