"""Oracle step of the Echo State Network cell (docs/esn.md); its closed loop is in `esn_generate`.

Written from the equations in docs/, on one row, in float64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.esn import ESN


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


STEP = esn_step
