"""Oracle of 1-to-N generation (docs/vec2seq.md): a plain Python loop per row and per step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.generate import Generate, split_params
from rnngraph.dsl.model import Source
from rnngraph.errors import InputError
from rnngraph.runtime.oracle.activations import dense_activation
from rnngraph.runtime.oracle.core import Env, evaluates, step_for


@evaluates(Generate)
def eval_generate(env: Env, node: str, layer: Generate, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    """``y (batch, N, out)`` (and the argmax ids ``(batch, N)`` with `tokens`) from ``v (batch, features)``.

    Under `run_forced` (the near-tie comparison of `rnngraph.verify`) the token of step t
    of row b is the given one instead of the argmax (and is what feedback "argmax" feeds
    back); y is left in `env.scores` either way.
    """
    cell = layer.cell
    assert cell is not None
    v = env.value(sources["v"])
    count = np.asarray(env.value(sources["steps"]))
    if count.ndim != 0 or count < 0:
        raise InputError(f"oracle: `{sources['steps'].node}` must be a non-negative integer scalar, "
                         f"received {count!r}.")
    steps = int(count)
    batch, features = v.shape
    p = split_params(layer, features, env.node_params(node))
    step = step_for(cell)
    y = np.zeros((batch, steps, layer.output_size))
    ids = np.zeros((batch, steps), dtype=np.int64)
    for b in range(batch):
        states = {name: np.zeros(size) for name, size in cell.state_sizes().items()}
        f = first_feedback(layer, p)
        for t in range(steps):
            a = v[b] if layer.mode == "every" or t == 0 else np.zeros(features)
            x = a if f is None else np.concatenate([a, f])
            states, h = step(cell, p["cell"], x, states, t)
            y_t = h if layer.readout is None else dense_activation(
                layer.readout.activation, p["readout"]["W"] @ h + p["readout"]["b"])
            y[b, t] = y_t
            ids[b, t] = env.token(node, b, t, y_t)
            if layer.feedback == "output":
                f = y_t
            elif layer.feedback == "argmax":
                f = p["embedding"]["E"][ids[b, t]]
    env.scores[node] = y
    return (y, ids) if layer.tokens else (y,)


def first_feedback(layer: Generate, p: Mapping[str, Mapping[str, np.ndarray]]) -> np.ndarray | None:
    """f_0: zeros for "output", E[start] (or zeros) for "argmax", None without feedback."""
    if layer.feedback == "none":
        return None
    if layer.feedback == "argmax" and layer.start is not None:
        return np.array(p["embedding"]["E"][layer.start])
    return np.zeros(layer.feedback_size)
