"""What every layer implementation shares: the environment of a forward pass, the layer registry,
and the one driver that owns time (`walk`).

A layer's implementation is ``fn(env, node, layer, sources) -> outputs``, registered with
``@implements(LayerType)`` (as the compiler's ``lowers`` and the oracle's ``evaluates``).
Cells are found through the cell registry (`rnngraph.dsl.registry`, backend ``torch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Layer
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.registry import implementation
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec
from rnngraph.errors import RnnGraphError
from rnngraph.pytorch.cells.base import Params, States, TorchCell


def cell_impl(cell: Cell) -> TorchCell:
    """The PyTorch implementation of `cell`, from the cell registry (backend ``torch``)."""
    impl: TorchCell = implementation(cell, "torch")
    return impl


@dataclass
class Env:
    """One forward pass: the model, its parameters by full name, the feeds, the values computed so far."""

    model: Model
    params: dict[str, torch.Tensor]
    feeds: dict[str, Any]
    values: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)

    def value(self, source: Source) -> torch.Tensor:
        return self.values[(source.node, source.index)]

    def lengths(self, spec: TensorSpec, time: int, batch: int, device: torch.device) -> torch.Tensor:
        """Valid steps per row ``(batch,)`` int64 of a sequence with `spec` (all `time` when unpadded)."""
        if spec.lengths is None:
            return torch.full((batch,), time, dtype=torch.int64, device=device)
        lens: torch.Tensor = self.feeds[spec.lengths]
        return lens

    def lengths_of(self, source: Source) -> torch.Tensor:
        x = self.value(source)
        return self.lengths(source.spec, x.shape[1], x.shape[0], x.device)

    def node_params(self, node: str) -> dict[str, torch.Tensor]:
        prefix = node + "/"
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}


Implementation = Callable[[Env, str, Any, Mapping[str, Source]], tuple[torch.Tensor, ...]]
IMPLEMENTATIONS: dict[type, Implementation] = {}


def implements(layer_type: type) -> Callable[[Implementation], Implementation]:
    """Register the PyTorch implementation of a layer type."""

    def register(fn: Implementation) -> Implementation:
        IMPLEMENTATIONS[layer_type] = fn
        return fn

    return register


def implementation_for(layer: Layer) -> Implementation:
    for klass in type(layer).__mro__:
        if klass in IMPLEMENTATIONS:
            return IMPLEMENTATIONS[klass]
    raise RnnGraphError(f"the PyTorch backend has no implementation of layer {type(layer).__name__}; "
                        "register one with @rnngraph.pytorch.core.implements(...).")


def sub_params(p: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in p.items() if k.startswith(prefix + "/")}


def valid_steps(lens: torch.Tensor, time: int) -> torch.Tensor:
    """``(batch, time)`` bool: step t of row b is valid iff t < lens[b]."""
    return torch.arange(time, device=lens.device)[None, :] < lens[:, None]


def zero_padding(spec: TensorSpec, y: torch.Tensor, lens: torch.Tensor | None) -> torch.Tensor:
    """A sequence with 0 at the steps of each row past its length (vectors unchanged)."""
    if spec.kind != SEQUENCE or lens is None:
        return y
    valid = valid_steps(lens, y.shape[1])
    return torch.where(valid.view(*valid.shape, *([1] * (y.dim() - 2))), y, torch.zeros((), dtype=y.dtype))


def flip_valid(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Each row's valid steps in reverse order, the padding left in place: step t <-> L_b - 1 - t.

    Its own inverse. A backward run is a forward run over the flipped rows, flipped back.
    """
    time = x.shape[1]
    t = torch.arange(time, device=x.device)[None, :]
    index = torch.where(t < lens[:, None], lens[:, None] - 1 - t, t)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


def zero_states(cell: Cell, batch: int, like: torch.Tensor) -> States:
    return {name: like.new_zeros((batch, size)) for name, size in cell.state_sizes().items()}


def step_once(cell: Cell, p: Params, x_t: torch.Tensor, states: States,
              t: int | torch.Tensor) -> tuple[States, torch.Tensor]:
    """One step of `cell` on ``x_t (batch, input)`` (the projection computed for this step alone)."""
    impl = cell_impl(cell)
    return impl.step(cell, p, x_t, impl.project(cell, p, x_t[:, None])[:, 0], states, t)


@dataclass
class Walked:
    """One run over a batch: outputs ``(batch, time, out)``, the last processed step's ``(batch, out)``,
    the final states ``(batch, size)`` in ``cell.state_sizes()`` order."""

    y: torch.Tensor
    last: torch.Tensor
    finals: list[torch.Tensor]


def walk(cell: Cell, p: Params, x: torch.Tensor, lens: torch.Tensor, reverse: bool = False,
         initial: Mapping[str, torch.Tensor] | None = None) -> Walked:
    """Run `cell` over each row b of ``x (batch, time, in)`` for its first ``lens[b]`` steps.

    Forward: steps 0 … L_b-1; backward: L_b-1 … 0, run as a forward pass over `flip_valid`
    rows (so the clock of every row starts at its own last valid step). Past a row's length
    its states are frozen and its outputs 0. `initial` sets some states ``(batch, size)``
    by name; the others start at 0. PyTorch's fused kernel runs where it is exact.
    """
    impl = cell_impl(cell)
    batch = x.shape[0]
    if reverse:
        x = flip_valid(x, lens)
    states = zero_states(cell, batch, x)
    states.update(initial or {})
    if impl.fused is not None and impl.exact(cell) and batch > 0:
        y, states = impl.fused(cell, p, x, lens, states)
    else:
        y, states = loop(impl, cell, p, x, lens, states)
    last = y[torch.arange(batch, device=y.device), lens - 1]
    if reverse:
        y = flip_valid(y, lens)
    return Walked(y, last, [states[name] for name in cell.state_sizes()])


def loop(impl: TorchCell, cell: Cell, p: Params, x: torch.Tensor, lens: torch.Tensor,
         states: States) -> tuple[torch.Tensor, States]:
    """The plain time loop: the projection hoisted, one `step` per time step, rows past their end frozen."""
    batch, time = x.shape[:2]
    g = impl.project(cell, p, x)
    valid = valid_steps(lens, time)
    padded = not bool(valid.all())
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    ys = []
    for t in range(time):
        new, y = impl.step(cell, p, x[:, t], g[:, t], states, t)
        if padded:
            m = valid[:, t, None]
            new = {k: torch.where(m, v, states[k]) for k, v in new.items()}
            y = torch.where(m, y, zero)
        states = new
        ys.append(y)
    y_all = torch.stack(ys, dim=1) if ys else x.new_zeros((batch, 0, cell.output_size))
    return y_all, states
