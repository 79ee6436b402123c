"""The contract of a cell's PyTorch implementation, and the helpers every cell shares.

A cell's implementation is one `TorchCell`, named in the cell's ``register_cell(...,
torch="rnngraph.pytorch.cells.<cell>:TORCH_CELL")``. Like the oracle's step it is
written from the equations in the cell's docstring, but on a whole batch at once:

- ``project(cell, p, x)``: the part of every step that does not read the state,
  for all steps at once, ``x (batch, time, input) -> g (batch, time, G)`` (an input
  projection such as ``W x_t + Wb``); hoisted out of the time loop.
- ``step(cell, p, x_t, g_t, states, t)``: one step, ``x_t (batch, input)``, ``g_t
  (batch, G)``, ``states {name: (batch, size)}`` -> ``(new states, y_t (batch, out))``.
  ``t`` counts from 0 at each row's first processed step: a Python int when every row
  is at the same step, or an int64 tensor ``(batch,)`` when rows differ (closed-loop
  generation after priming rows of different lengths).
- ``fused(cell, p, x, lens, states)`` (optional, with ``exact(cell)``): the whole
  sequence through PyTorch's own kernel, used only for the options where that kernel
  computes exactly the cell's function. Returns ``(y (batch, time, out), final states)``,
  with y 0 past each row's length and the states frozen after each row's last step.

``p`` holds the cell's parameters by local name (``W``, ``R``, ``B``, …) as tensors in
rnngraph's (ONNX) layout, structural masks already applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

Params = Mapping[str, torch.Tensor]
States = dict[str, torch.Tensor]
Step = Callable[[Any, Params, torch.Tensor, torch.Tensor, States, "int | torch.Tensor"],
                tuple[States, torch.Tensor]]
Project = Callable[[Any, Params, torch.Tensor], torch.Tensor]
Fused = Callable[[Any, Params, torch.Tensor, torch.Tensor, States], tuple[torch.Tensor, States]]


@dataclass(frozen=True)
class TorchCell:
    """One cell's PyTorch implementation (see the module docstring)."""

    project: Project
    step: Step
    fused: Fused | None = None
    exact: Callable[[Any], bool] = lambda cell: False


def activation(name: str, a: torch.Tensor) -> torch.Tensor:
    """φ(a) for the activations cells and readouts name (``none`` and ``softmax`` are readout-only)."""
    if name == "tanh":
        return torch.tanh(a)
    if name == "relu":
        return torch.relu(a)
    if name == "sigmoid":
        return torch.sigmoid(a)
    if name == "softmax":
        return torch.softmax(a, dim=-1)
    if name == "none":
        return a
    raise ValueError(f"unknown activation {name!r}")


def gate_blocks(array: torch.Tensor, order: tuple[str, ...], dim: int = -1) -> dict[str, torch.Tensor]:
    """The equal gate blocks of a fused array along `dim`, by gate name."""
    return dict(zip(order, array.chunk(len(order), dim=dim), strict=True))


def halves(bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[Wb; Rb]`` -> ``(Wb, Rb)``."""
    wb, rb = bias.chunk(2)
    return wb, rb
