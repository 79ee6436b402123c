"""The LSTM cell in PyTorch, with peepholes and coupled (CIFG) gates.

    a_k = W_k x_t + Wb_k + Rb_k + R_k h_{t-1}          k over the stored gates (`cell.gates`)
    f   = σ(a_f [+ p_f ⊙ c_{t-1}]);   i = 1 - f (coupled) or σ(a_i [+ p_i ⊙ c_{t-1}])
    c_t = f ⊙ c_{t-1} + i ⊙ tanh(a_c);   o = σ(a_o [+ p_o ⊙ c_t]);   h_t = o ⊙ tanh(c_t)

Without peepholes and coupling this is exactly ``nn.LSTM``'s cell, so that case runs on
PyTorch's fused kernel, the gate blocks re-stacked from ONNX's order (i, o, f, c) to
PyTorch's (i, f, g, o) by name.
"""

from __future__ import annotations

import torch

from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.gates import PYTORCH_LSTM
from rnngraph.pytorch.cells.base import Params, States, TorchCell, gate_blocks, halves
from rnngraph.pytorch.cells.fused import kernel_weights, run_kernel


def project(cell: LSTM, p: Params, x: torch.Tensor) -> torch.Tensor:
    """``W x_t + Wb + Rb`` for every step: ``(batch, time, gates·hidden)``."""
    wb, rb = halves(p["B"])
    return x @ p["W"].T + (wb + rb)


def step(cell: LSTM, p: Params, x_t: torch.Tensor, g_t: torch.Tensor, states: States,
         t: int | torch.Tensor) -> tuple[States, torch.Tensor]:
    h_prev, c_prev = states["h"], states["c"]
    a = gate_blocks(g_t + h_prev @ p["R"].T, cell.gates)
    peep = gate_blocks(p["P"], cell.peephole_gates) if cell.peephole else {}
    f = torch.sigmoid(a["f"] + peep["f"] * c_prev if "f" in peep else a["f"])
    if cell.coupled:
        i = 1.0 - f
    else:
        i = torch.sigmoid(a["i"] + peep["i"] * c_prev if "i" in peep else a["i"])
    c = f * c_prev + i * torch.tanh(a["c"])
    o = torch.sigmoid(a["o"] + peep["o"] * c if "o" in peep else a["o"])
    h = o * torch.tanh(c)
    return {"h": h, "c": c}, h


def exact(cell: LSTM) -> bool:
    return not cell.peephole and not cell.coupled


def fused(cell: LSTM, p: Params, x: torch.Tensor, lens: torch.Tensor, states: States) -> tuple[torch.Tensor, States]:
    weights = kernel_weights(p, cell.gates, PYTORCH_LSTM)
    y, (h, c) = run_kernel("lstm", weights, x, lens, [states["h"], states["c"]])
    return y, {"h": h, "c": c}


TORCH_CELL = TorchCell(project, step, fused, exact)
