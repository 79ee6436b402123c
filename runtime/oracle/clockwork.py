"""Oracle step of the Clockwork RNN, from docs/clockwork.md, on one row.

Written from the equations, group by group: each active group reads the input
and the groups at least as slow as itself (the block-upper-triangular rule,
taken here from the periods, not from the parameter mask); each inactive group
is copied unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.runtime.oracle.activations import activation


def clockwork_step(cell: Clockwork, p: Mapping[str, np.ndarray], x: np.ndarray, states: dict[str, np.ndarray],
                   t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Group i at step t (from 0):  t mod T_i = 0 ⇒ h^(i) = φ(W^(i) x + Σ_{T_j ≥ T_i} R^(i,j) h_{t-1}^(j) + b^(i)).

    `x` is ``(input,)``, ``states["h"]`` is ``(H,)``; returns the new state and y_t = h_t.
    """
    assert cell.periods is not None and cell.group_sizes is not None
    h_prev = states["h"]
    wb, rb = np.split(p["B"], 2)
    starts = np.cumsum((0, *cell.group_sizes))
    h = h_prev.copy()
    for i, period in enumerate(cell.periods):
        if t % period != 0:
            continue
        rows = slice(starts[i], starts[i + 1])
        pre = p["W"][rows] @ x + wb[rows] + rb[rows]
        for j, other in enumerate(cell.periods):
            if other >= period:
                cols = slice(starts[j], starts[j + 1])
                pre = pre + p["R"][rows, cols] @ h_prev[cols]
        h[rows] = activation(cell.activation, pre)
    return {"h": h}, h


STEP = clockwork_step
