"""Oracle evaluators of the basic layers: inputs, Dense (Recurrent: see `wrappers`); `run_cell`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Dense, InputLayer
from rnngraph.dsl.model import Source
from rnngraph.runtime.oracle.activations import dense_activation
from rnngraph.runtime.oracle.core import Env, evaluates, is_sequence, step_for


@evaluates(InputLayer)
def eval_input(env: Env, node: str, layer: InputLayer, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    """The feed; a padded float sequence is 0 past each row's length (docs/README.md: outputs there are 0),
    whatever the caller put there, NaN included."""
    x = env.feeds[node]
    spec = layer.spec
    if not is_sequence(spec) or spec.lengths is None or spec.is_tokens:
        return (x,)
    lens = env.lengths(spec, x.shape[1], x.shape[0])
    out = x.copy()
    for b in range(x.shape[0]):
        out[b, lens[b]:] = 0.0
    return (out,)


def zero_padding(env: Env, spec_source: Source, y: np.ndarray) -> np.ndarray:
    """Zero the steps of each row past its length (sequences only)."""
    if not is_sequence(spec_source.spec):
        return y
    batch, time = y.shape[:2]
    lens = env.lengths(spec_source.spec, time, batch)
    out = y.copy()
    for b in range(batch):
        out[b, lens[b]:] = 0.0
    return out


@evaluates(Dense)
def eval_dense(env: Env, node: str, layer: Dense, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    p = env.node_params(node)
    x = env.value(sources["x"])
    y = dense_activation(layer.activation, x @ p["W"].T + p["b"])
    return (zero_padding(env, sources["x"], y),)


def run_row(cell: Cell, p: Mapping[str, np.ndarray], xs: np.ndarray,
            initial: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Step `cell` over the rows of `xs` (steps, in) in order; returns ys (steps, out) and final states."""
    step = step_for(cell)
    states = dict(initial) if initial is not None else {k: np.zeros(n) for k, n in cell.state_sizes().items()}
    ys = np.zeros((xs.shape[0], cell.output_size))
    for t in range(xs.shape[0]):
        states, ys[t] = step(cell, p, xs[t], states, t)
    return ys, states


def run_cell(env: Env, cell: Cell, p: Mapping[str, np.ndarray], source: Source, reverse: bool = False,
             initial: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run `cell` over a batch-first sequence, each row over its own valid steps.

    Returns ``y (batch, time, out)`` (0 past each row's length) and the final
    states ``{name: (batch, size)}`` (the state after each row's last valid step).
    With `reverse`, row b runs from step lengths[b]-1 down to 0.
    """
    x = env.value(source)
    batch, time = x.shape[:2]
    lens = env.lengths(source.spec, time, batch)
    y = np.zeros((batch, time, cell.output_size))
    finals = {k: np.zeros((batch, n)) for k, n in cell.state_sizes().items()}
    for b in range(batch):
        order = np.arange(lens[b])[::-1] if reverse else np.arange(lens[b])
        row_initial = {k: v[b] for k, v in initial.items()} if initial is not None else None
        ys, states = run_row(cell, p, x[b, order], row_initial)
        env.stepped(len(order))
        y[b, order] = ys
        for k, v in states.items():
            finals[k][b] = v
    return y, finals

# Recurrent (with Bidirectional and Stack) is evaluated in runtime/oracle/wrappers.py.
