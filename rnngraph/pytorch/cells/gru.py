"""The GRU cell in PyTorch, both placements of the reset gate.

    z = σ(W_z x + Wb_z + R_z h + Rb_z);   r = σ(W_r x + Wb_r + R_r h + Rb_r)
    n = tanh(W_h x + Wb_h + R_h (r ⊙ h) + Rb_h)          linear_before_reset=False
    n = tanh(W_h x + Wb_h + r ⊙ (R_h h + Rb_h))          linear_before_reset=True
    h_t = (1 - z) ⊙ n + z ⊙ h

``linear_before_reset=True`` is exactly ``nn.GRU``'s cell and runs on PyTorch's fused
kernel (gate blocks re-stacked from ONNX's z, r, h to PyTorch's r, z, n by name).
"""

from __future__ import annotations

import torch

from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.gates import PYTORCH_GRU
from rnngraph.pytorch.cells.base import Params, States, TorchCell, gate_blocks, halves
from rnngraph.pytorch.cells.fused import kernel_weights, run_kernel


def project(cell: GRU, p: Params, x: torch.Tensor) -> torch.Tensor:
    """``W x_t + Wb`` for every step: ``(batch, time, 3·hidden)`` (Rb joins inside the step)."""
    wb, _ = halves(p["B"])
    return x @ p["W"].T + wb


def step(cell: GRU, p: Params, x_t: torch.Tensor, g_t: torch.Tensor, states: States,
         t: int | torch.Tensor) -> tuple[States, torch.Tensor]:
    h_prev = states["h"]
    _, rb = halves(p["B"])
    g = gate_blocks(g_t, cell.gates)
    R = gate_blocks(p["R"], cell.gates, dim=0)
    Rb = gate_blocks(rb, cell.gates)
    if cell.linear_before_reset:
        rec = gate_blocks(h_prev @ p["R"].T + rb, cell.gates)
        z = torch.sigmoid(g["z"] + rec["z"])
        r = torch.sigmoid(g["r"] + rec["r"])
        n = torch.tanh(g["h"] + r * rec["h"])
    else:
        z = torch.sigmoid(g["z"] + h_prev @ R["z"].T + Rb["z"])
        r = torch.sigmoid(g["r"] + h_prev @ R["r"].T + Rb["r"])
        n = torch.tanh(g["h"] + (r * h_prev) @ R["h"].T + Rb["h"])
    h = (1.0 - z) * n + z * h_prev
    return {"h": h}, h


def exact(cell: GRU) -> bool:
    return cell.linear_before_reset


def fused(cell: GRU, p: Params, x: torch.Tensor, lens: torch.Tensor, states: States) -> tuple[torch.Tensor, States]:
    weights = kernel_weights(p, cell.gates, PYTORCH_GRU)
    y, (h,) = run_kernel("gru", weights, x, lens, [states["h"]])
    return y, {"h": h}


TORCH_CELL = TorchCell(project, step, fused, exact)
