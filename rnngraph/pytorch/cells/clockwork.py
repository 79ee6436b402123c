"""The Clockwork RNN in PyTorch: only the groups whose clock ticks at step t are updated.

    active (t mod T_i = 0):  h_t^(i) = φ(W^(i) x_t + Wb^(i) + Rb^(i) + (R ⊙ M)^(i) h_{t-1})
    inactive:                h_t^(i) = h_{t-1}^(i)

``p["R"]`` arrives already multiplied by the block mask M (`rnngraph.pytorch.TorchModel`
multiplies every masked parameter by its mask buffer in the forward pass), so the
entries outside the mask get zero gradient and never act. When every row is at the same
step (an int ``t``) only the active rows of R are multiplied, so a step costs work in
proportion to the active groups; with a per-row step (a tensor ``t``) the update is
computed for every unit and kept where the row's clock ticks.
"""

from __future__ import annotations

import numpy as np
import torch

from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.pytorch.cells.base import Params, States, TorchCell, activation, halves


def project(cell: Clockwork, p: Params, x: torch.Tensor) -> torch.Tensor:
    """``W x_t + Wb + Rb`` for every step: ``(batch, time, hidden)``."""
    wb, rb = halves(p["B"])
    return x @ p["W"].T + (wb + rb)


def step(cell: Clockwork, p: Params, x_t: torch.Tensor, g_t: torch.Tensor, states: States,
         t: int | torch.Tensor) -> tuple[States, torch.Tensor]:
    h_prev = states["h"]
    periods = cell.unit_periods()
    if isinstance(t, torch.Tensor):
        unit = torch.as_tensor(periods, device=t.device)
        ticks = (t[:, None] % unit[None, :]) == 0
        h = torch.where(ticks, activation(cell.activation, g_t + h_prev @ p["R"].T), h_prev)
        return {"h": h}, h
    active = np.flatnonzero(t % periods == 0)
    if len(active) == cell.hidden:
        h = activation(cell.activation, g_t + h_prev @ p["R"].T)
    else:
        rows = torch.as_tensor(active, device=h_prev.device)
        pre = g_t.index_select(1, rows) + h_prev @ p["R"].index_select(0, rows).T
        h = h_prev.index_copy(1, rows, activation(cell.activation, pre))
    return {"h": h}, h


TORCH_CELL = TorchCell(project, step)
