"""Oracle of `Generative` (the ESN's generative mode, docs/esn.md): prime over the input, then run closed-loop."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.model import Source
from rnngraph.errors import InputError
from rnngraph.runtime.oracle.core import Env, evaluates, step_for
from rnngraph.runtime.oracle.layers import run_cell


@evaluates(Generative)
def eval_generative(env: Env, node: str, layer: Generative, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    """Prime over each row's valid steps, then run `steps` closed-loop steps from the row's final state.

    Closed loop: the input of each generated step is the previous output (`feed_input`)
    or zeros; the step index continues from the row's length.
    """
    cell = layer.cell
    assert cell is not None
    p = env.node_params(node)
    primed, finals = run_cell(env, cell, p, sources["x"])
    n_steps = int(env.value(sources["steps"]))
    if n_steps < 0:
        raise InputError(f"oracle: `{sources['steps'].node}` must be a count >= 0 of steps to generate, "
                         f"received {n_steps}.")
    batch, time = primed.shape[:2]
    if time == 0 and batch > 0:
        raise InputError(f"oracle: `{sources['x'].node}` has time 0; generation continues from each row's last "
                         "primed step, so the priming needs at least one step.")
    lens = env.lengths(sources["x"].spec, time, batch)
    in_size = sources["x"].spec.features
    step = step_for(cell)
    feed = layer.feeds_input(in_size)
    generated = np.zeros((batch, n_steps, cell.output_size))
    for b in range(batch):
        states = {k: v[b].copy() for k, v in finals.items()}
        y = primed[b, lens[b] - 1]
        for k in range(n_steps):
            u = y if feed else np.zeros(in_size)
            states, y = step(cell, p, u, states, int(lens[b]) + k)
            generated[b, k] = y
    return generated, primed
