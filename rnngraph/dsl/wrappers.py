"""Topologies over cells: bidirectional (docs/bidirectional.md) and deep, stacked layers (docs/deep.md).

    h = Bidirectional(RNN(32), merge="concat")(x)             # (batch, time, 64)
    v = Bidirectional(RNN(32), returns="last")(x)              # (batch, 64) = [h→_T; h←_1]
    h = Stack([GRU(32), Bidirectional(RNN(16)), RNN(32)], residual=True)(x)

Like `Recurrent`, these layers only describe: the compiler and the oracle each
implement them. Both take `returns` as `Recurrent` does (``sequence``, ``last``,
``mean``, ``max``, ``state`` or a tuple of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import one_of
from rnngraph.dsl.layers import Layer, Recurrent, returns_specs, returns_tuple
from rnngraph.dsl.params import ParamSpec
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec
from rnngraph.errors import ModelError, invalid

MERGES = ("concat", "sum", "mul", "ave")


@dataclass(frozen=True)
class Bidirectional(Layer):
    """A forward and a backward run over the same sequence, merged step by step (docs/bidirectional.md).

        h→_t = fw(h→_{t-1}, x_t)        t = 0 … L_b-1
        h←_t = bw(h←_{t+1}, x_t)        t = L_b-1 … 0   (each row starts at its own last valid step)
        y_t  = merge(h→_t, h←_t)        merge ∈ {concat [a; b], sum a + b, mul a ⊙ b, ave (a + b)/2}

    `cell` is one cell (the backward run gets its own copy of its parameters) or a
    pair ``(forward, backward)`` of any two cells. ``concat`` gives
    ``fw.output_size + bw.output_size`` features; the other merges need equal sizes.

    `returns` as in `Recurrent`; ``last`` is ``merge(h→_{L_b-1}, h←_0)`` — for
    ``concat`` the final state ``[h→_T; h←_1]`` of docs/bidirectional.md; ``mean``/``max`` pool the
    merged sequence over valid steps; ``state`` gives the forward run's final states,
    then the backward run's (each ``(batch, size)``, in ``state_sizes()`` order).
    Parameters are those of each cell under ``fw/`` and ``bw/`` (``birnn0/fw/W``).
    """

    cell: Cell | tuple[Cell, Cell] | None = None
    merge: str = "concat"
    returns: str | tuple[str, ...] = "sequence"

    def __post_init__(self) -> None:
        super().__post_init__()
        cells = self.cell if isinstance(self.cell, tuple) else (self.cell, self.cell)
        if len(cells) != 2 or not all(isinstance(c, Cell) for c in cells):
            raise invalid(self.describe(), "cell", "a cell such as RNN(32), or a pair (forward cell, backward cell)",
                          self.cell)
        one_of(self.describe(), "merge", self.merge, MERGES)
        fw, bw = cells
        assert isinstance(fw, Cell) and isinstance(bw, Cell)
        if self.merge != "concat" and fw.output_size != bw.output_size:
            raise invalid(self.describe(), "merge",
                          "'concat' when the forward and backward outputs differ in size "
                          f"({fw.describe()}: {fw.output_size}, {bw.describe()}: {bw.output_size})",
                          self.merge, "Use merge='concat' or cells with the same output size.")
        returns_tuple(self.describe(), self.returns)

    @property
    def forward(self) -> Cell:
        cell = self.cell[0] if isinstance(self.cell, tuple) else self.cell
        assert isinstance(cell, Cell)
        return cell

    @property
    def backward(self) -> Cell:
        cell = self.cell[1] if isinstance(self.cell, tuple) else self.cell
        assert isinstance(cell, Cell)
        return cell

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return "bi" + self.forward.prefix

    @property
    def returned(self) -> tuple[str, ...]:
        return returns_tuple(self.describe(), self.returns)

    @property
    def output_size(self) -> int:
        fw, bw = self.forward.output_size, self.backward.output_size
        return fw + bw if self.merge == "concat" else fw

    def final_state_sizes(self) -> dict[str, int]:
        """Final states by name, forward run first: ``fw/h``, ``bw/h`` (``fw/h, fw/c, bw/h, bw/c`` for LSTMs)."""
        return {f"{d}/{name}": size for d, cell in (("fw", self.forward), ("bw", self.backward))
                for name, size in cell.state_sizes().items()}

    def title(self) -> str:
        cells = self.forward.describe() if self.forward == self.backward else (
            f"{self.forward.describe()}, {self.backward.describe()}")
        extra = f", returns={self.returns!r}" if self.returns != "sequence" else ""
        return f"Bidirectional({cells}, merge={self.merge!r}{extra})"

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x = inputs["x"]
        self.expect("x", x, (SEQUENCE,))
        return returns_specs(self.returned, x, self.output_size, list(self.final_state_sizes().values()))

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        n_in = inputs["x"].features
        return {f"{d}/{name}": spec for d, cell in (("fw", self.forward), ("bw", self.backward))
                for name, spec in cell.param_specs(n_in).items()}


#: what a Stack holds: a cell (run forward), a Recurrent (e.g. reversed) or a Bidirectional
StackItem = Cell | Recurrent | Bidirectional


def item_width(layer: Recurrent | Bidirectional) -> int:
    if isinstance(layer, Bidirectional):
        return layer.output_size
    assert layer.cell is not None
    return layer.cell.output_size


def item_state_sizes(layer: Recurrent | Bidirectional) -> dict[str, int]:
    if isinstance(layer, Bidirectional):
        return layer.final_state_sizes()
    assert layer.cell is not None
    return layer.cell.state_sizes()


@dataclass(frozen=True)
class Stack(Layer):
    """Deep RNN: layer l reads the output sequence of layer l-1 (docs/deep.md).

        h^(0) = x
        h^(l) = layer_l(h^(l-1))                   (+ h^(l-1) where layer l is residual)
        y     = h^(L)                              (batch, time, width of the top layer)

    `layers` holds, bottom first, any mix of cells (run forward), ``Recurrent(cell,
    reverse=True)`` and ``Bidirectional(...)`` configurations: they are not called
    on tensors, the stack runs them. Each is named ``l<i>`` (or by its own `name`),
    so parameters read ``stack0/l0/W``, ``stack0/l1/fw/W``.

    `residual`: False, True (every layer above the first: ``h^(l) = layer_l(h^(l-1)) +
    h^(l-1)``), or a tuple of layer indices (0 included, when its width equals the
    input's; the input's steps past a row's length count as 0, so the sum is 0 there
    like every sequence). A residual layer must keep the width of its input; anything
    else is a ModelError.

    `returns` as in `Recurrent`, applied to the top layer; ``state`` gives the
    final states of every layer, bottom first (a Bidirectional's forward then backward).
    """

    layers: tuple[StackItem, ...] = ()
    residual: bool | tuple[int, ...] = False
    returns: str | tuple[str, ...] = "sequence"
    prefix: ClassVar[str] = "stack"
    _items: tuple[tuple[str, Recurrent | Bidirectional], ...] = field(default=(), init=False, repr=False,
                                                                        compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        where = self.describe()
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(self.layers))
        if not isinstance(self.layers, tuple) or not self.layers:
            raise invalid(where, "layers", "a non-empty list of cells, Recurrent(...) or Bidirectional(...)",
                          self.layers)
        items: list[tuple[str, Recurrent | Bidirectional]] = []
        for i, item in enumerate(self.layers):
            layer = Recurrent(item) if isinstance(item, Cell) else item
            if not isinstance(layer, (Recurrent, Bidirectional)):
                raise invalid(where, f"layers[{i}]", "a cell, Recurrent(...) or Bidirectional(...)", item)
            if layer.returned != ("sequence",):
                raise invalid(where, f"layers[{i}].returns", "'sequence' (the layer above reads every step)",
                              layer.returns, "Give `returns` to the Stack itself; it applies to the top layer.")
            local = layer.name or f"l{i}"
            if local in (n for n, _ in items):
                raise invalid(where, f"layers[{i}].name", "a name no other layer of the stack has", local)
            items.append((local, layer))
        object.__setattr__(self, "_items", tuple(items))
        if isinstance(self.residual, list):
            object.__setattr__(self, "residual", tuple(self.residual))
        n = len(items)
        if not isinstance(self.residual, bool) and not (
                isinstance(self.residual, tuple)
                and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in self.residual)):
            raise invalid(where, "residual", f"True, False or a tuple of layer indices in 0..{n - 1}", self.residual)
        for i in self.residual_layers():
            if i > 0:
                self._check_residual(i, item_width(items[i - 1][1]))
        returned = returns_tuple(where, self.returns)
        if "last" in returned and n - 1 in self.residual_layers() and isinstance(items[-1][1], Bidirectional):
            # its last output merges two different steps (L_b - 1 forward, 0 backward): no one step of
            # the residual input lines up with it
            raise ModelError(
                f"{where}: returns='last' is undefined when the top layer ({items[-1][0]}) is a residual "
                "Bidirectional; take the last output of a Stack without that residual connection, or "
                "returns='mean' / 'max'."
            )

    def items(self) -> tuple[tuple[str, Recurrent | Bidirectional], ...]:
        """``(local name, layer)`` bottom first; bare cells appear as ``Recurrent(cell)``."""
        return self._items

    def residual_layers(self) -> tuple[int, ...]:
        """Indices of the layers that add their input to their output."""
        if self.residual is True:
            return tuple(range(1, len(self._items)))
        if self.residual is False:
            return ()
        assert isinstance(self.residual, tuple)
        return tuple(sorted(set(self.residual)))

    def _check_residual(self, i: int, width_in: int) -> None:
        local, layer = self._items[i]
        width_out = item_width(layer)
        if width_in != width_out:
            raise ModelError(
                f"{self.describe()}: the residual connection around layer {i} ({local}: {layer.title()}) needs equal "
                f"input and output widths, received input {width_in} and output {width_out}. Make the widths equal "
                "or leave that layer out of `residual` (e.g. residual=(2, 3))."
            )

    @property
    def returned(self) -> tuple[str, ...]:
        return returns_tuple(self.describe(), self.returns)

    @property
    def output_size(self) -> int:
        return item_width(self._items[-1][1])

    def final_state_sizes(self) -> dict[str, int]:
        """Final states of every layer by name, bottom first: ``l0/h``, ``l1/fw/h``, ``l1/bw/h`` …"""
        return {f"{local}/{name}": size for local, layer in self._items
                for name, size in item_state_sizes(layer).items()}

    def title(self) -> str:
        parts = [layer.title() for _, layer in self._items]
        extra = f", residual={self.residual!r}" if self.residual else ""
        extra += f", returns={self.returns!r}" if self.returns != "sequence" else ""
        return f"Stack([{', '.join(parts)}]{extra})"

    def infer(self, inputs: dict[str, TensorSpec]) -> tuple[TensorSpec, ...]:
        x = inputs["x"]
        self.expect("x", x, (SEQUENCE,))
        if 0 in self.residual_layers():
            self._check_residual(0, x.features)
        return returns_specs(self.returned, x, self.output_size, list(self.final_state_sizes().values()))

    def param_specs(self, inputs: dict[str, TensorSpec]) -> dict[str, ParamSpec]:
        specs: dict[str, ParamSpec] = {}
        spec = inputs["x"]
        for local, layer in self._items:
            for name, p in layer.param_specs({"x": spec}).items():
                specs[f"{local}/{name}"] = p
            spec = spec.with_features(item_width(layer))
        return specs


__all__ = ["MERGES", "Bidirectional", "Stack"]
