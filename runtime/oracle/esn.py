"""Oracle of the Echo State Network (SPEC §2.5): the cell step and the closed-loop `Generative` layer.

Written from the equations of SPEC.md, on one row, in float64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.esn import ESN
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.model import Source
from rnngraph.errors import InputError
from rnngraph.runtime.oracle.core import Env, evaluates, step_for
from rnngraph.runtime.oracle.layers import run_cell


def esn_step(cell: ESN, p: Mapping[str, np.ndarray], u: np.ndarray, states: dict[str, np.ndarray],
             t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """x̃ = tanh(W_in [1; u] + W x + W_back y);  x ← (1-a) x + a x̃;  y ← W_out [u; x; y_prev] + b_out."""
    x_prev, y_prev = states["x"], states["y"]
    drive = p["W_in"] @ np.concatenate(([1.0], u)) + p["W"] @ x_prev
    if cell.feedback:
        drive = drive + p["W_back"] @ y_prev
    x = (1.0 - cell.leak) * x_prev + cell.leak * np.tanh(drive)
    parts = {"input": u, "state": x, "output": y_prev}
    z = np.concatenate([parts[r] for r in ("input", "state", "output") if r in cell.reads])
    y = p["W_out"] @ z + p["b_out"]
    return {"y": y, "x": x}, y


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


STEP = esn_step
