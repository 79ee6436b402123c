"""The Echo State Network cell in PyTorch.

    x̃(n) = tanh(W_in [1; u(n)] + W x(n-1) [+ W_back y(n-1)])
    x(n)  = (1 - a) x(n-1) + a x̃(n)
    y(n)  = W_out [u(n); x(n); y(n-1)] + b_out          (the parts in `cell.reads`)

W_in, W and W_back are fixed (`TorchModel` holds them as buffers, not parameters);
W_out and b_out are trainable parameters.
"""

from __future__ import annotations

import torch

from rnngraph.dsl.cells.esn import ESN, READS
from rnngraph.pytorch.cells.base import Params, States, TorchCell


def project(cell: ESN, p: Params, x: torch.Tensor) -> torch.Tensor:
    """``W_in [1; u(n)]`` for every step: ``(batch, time, N)``."""
    W_in = p["W_in"]
    return x @ W_in[:, 1:].T + W_in[:, 0]


def step(cell: ESN, p: Params, u: torch.Tensor, g_t: torch.Tensor, states: States,
         t: int | torch.Tensor) -> tuple[States, torch.Tensor]:
    x_prev, y_prev = states["x"], states["y"]
    drive = g_t + x_prev @ p["W"].T
    if cell.feedback:
        drive = drive + y_prev @ p["W_back"].T
    x = (1.0 - cell.leak) * x_prev + cell.leak * torch.tanh(drive)
    parts = {"input": u, "state": x, "output": y_prev}
    z = torch.cat([parts[r] for r in READS if r in cell.reads], dim=-1)
    y = z @ p["W_out"].T + p["b_out"]
    return {"y": y, "x": x}, y


TORCH_CELL = TorchCell(project, step)
