"""The classic RNN (and SRN) in PyTorch: h_t = φ(W x_t + R h_{t-1} + Wb + Rb)."""

from __future__ import annotations

import torch

from rnngraph.dsl.cells.rnn import RNN
from rnngraph.dsl.gates import RNN_GATES
from rnngraph.pytorch.cells.base import Params, States, TorchCell, activation, halves
from rnngraph.pytorch.cells.fused import kernel_weights, run_kernel


def project(cell: RNN, p: Params, x: torch.Tensor) -> torch.Tensor:
    """``W x_t + Wb + Rb`` for every step: ``(batch, time, hidden)``."""
    wb, rb = halves(p["B"])
    return x @ p["W"].T + (wb + rb)


def step(cell: RNN, p: Params, x_t: torch.Tensor, g_t: torch.Tensor, states: States,
         t: int | torch.Tensor) -> tuple[States, torch.Tensor]:
    h = activation(cell.activation, g_t + states["h"] @ p["R"].T)
    return {"h": h}, h


def exact(cell: RNN) -> bool:
    """PyTorch's kernels are tanh and relu RNNs; sigmoid has none."""
    return cell.activation in ("tanh", "relu")


def fused(cell: RNN, p: Params, x: torch.Tensor, lens: torch.Tensor, states: States) -> tuple[torch.Tensor, States]:
    y, (h,) = run_kernel(cell.activation, kernel_weights(p, RNN_GATES, RNN_GATES), x, lens, [states["h"]])
    return y, {"h": h}


TORCH_CELL = TorchCell(project, step, fused, exact)
