"""Filling a model's parameters node by node, with checks, and a report of what was never filled.

    loader = ParamsLoader(model)
    loader.set("enc/fw", from_pytorch(cell, sd))
    loader.set("enc/bw", from_pytorch(cell, sd, reverse=True))
    loader.unset_nodes()           # ["dense0"]: nothing filled it yet
    params = loader.params()       # ParameterError naming dense0; params(rest=model.init(0)) keeps those

A node path names the parameters of one cell or layer: a model node (``enc``, ``dense0``),
then, inside a `Stack`, a layer (``stack0/l1``) and, inside a `Bidirectional`, a
direction (``enc/fw``, ``stack0/l1/bw``). Weights from `from_pytorch` / `from_keras`
(`LayerWeights`) carry their cell and direction; a slot that runs the other way
(``Recurrent(reverse=True)``, a ``bw`` half) or holds another cell refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Layer, Recurrent
from rnngraph.dsl.model import Model
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.errors import ParameterError
from rnngraph.interop.weights import LayerWeights, as_array


def node_of(name: str) -> str:
    """The node path of parameter `name` (``"stack0/l1/fw/W"`` -> ``"stack0/l1/fw"``)."""
    return name.rpartition("/")[0]


def slot_cell(model: Model, path: str) -> tuple[Cell, bool] | None:
    """``(cell, reverse)`` of the recurrent slot at node path `path`; None for other layers (Dense, …)."""
    head, *rest = path.split("/")
    if head not in model.graph:
        return None
    layer: Layer = model.graph.nodes[head]["node"].layer
    if isinstance(layer, Stack) and rest:
        items = dict(layer.items())
        if rest[0] not in items:
            return None
        layer, rest = items[rest[0]], rest[1:]
    if isinstance(layer, Bidirectional) and rest in (["fw"], ["bw"]):
        return (layer.forward, False) if rest == ["fw"] else (layer.backward, True)
    if isinstance(layer, Recurrent) and not rest:
        assert layer.cell is not None
        return layer.cell, layer.reverse
    return None


class ParamsLoader:
    """Fills the parameters of `model` one node at a time and tracks which were filled.

    Every `set` is checked at once: the node path exists, names and shapes match, and
    weights converted by `from_pytorch` / `from_keras` fit the slot's cell and direction.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.specs = model.param_specs()
        self.values: dict[str, np.ndarray] = {}

    def nodes(self) -> list[str]:
        """Every node path that holds parameters, in the model's order."""
        return list(dict.fromkeys(node_of(name) for name in self.specs))

    def set(self, node: str, local: Mapping[str, object]) -> ParamsLoader:
        """Fill node `node` with `local` (``{"W": ..., "R": ..., "B": ...}``); returns self."""
        if not isinstance(local, Mapping):
            raise ParameterError(f"parameters for `{node}`: expected a mapping of names to arrays, "
                                 f"received {type(local).__name__}.")
        if node not in self.nodes():
            raise ParameterError(f"model {self.model.name!r} has no node `{node}` with parameters; its nodes with "
                                 f"parameters are {self.nodes()}.")
        if isinstance(local, LayerWeights):
            self._check_slot(node, local)
        for name, value in local.items():
            key = f"{node}/{name}"
            if key not in self.specs:
                expected = sorted(k.rpartition("/")[2] for k in self.specs if node_of(k) == node)
                raise ParameterError(f"model {self.model.name!r} has no parameter `{key}`; node `{node}` holds "
                                     f"{expected}.")
            array = as_array(value, f"parameter `{key}`")
            if array.shape != tuple(self.specs[key].shape):
                raise ParameterError(f"parameter `{key}`: expected shape {tuple(self.specs[key].shape)}, "
                                     f"received {array.shape}.")
            self.values[key] = array.astype(np.float32)
        return self

    def _check_slot(self, node: str, local: LayerWeights) -> None:
        slot = slot_cell(self.model, node)
        if slot is None:
            raise ParameterError(f"`{node}` is not a recurrent layer, but these are weights of "
                                 f"{local.cell.describe()} ({local.source}).")
        cell, reverse = slot
        if cell != local.cell:
            raise ParameterError(f"`{node}` holds {cell.describe()}, but these weights were converted for "
                                 f"{local.cell.describe()} ({local.source}); convert them for {cell.describe()}.")
        if reverse != local.reverse:
            runs, read = ("backward", "forward") if reverse else ("forward", "backward")
            raise ParameterError(f"`{node}` runs {runs} over time, but these are the {read} direction's weights "
                                 f"({local.source}); read them with reverse={reverse}.")

    def unset(self) -> list[str]:
        """Parameter names that no `set` filled."""
        return [name for name in self.specs if name not in self.values]

    def unset_nodes(self) -> list[str]:
        """Node paths with at least one parameter that no `set` filled."""
        return list(dict.fromkeys(node_of(name) for name in self.unset()))

    def params(self, rest: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Every parameter of the model. Unset ones come from `rest` (e.g. ``model.init(0)``);
        without it an unset node is a ParameterError that names it."""
        missing = self.unset()
        if missing and rest is None:
            raise ParameterError(
                f"model {self.model.name!r}: nodes {self.unset_nodes()} were never set (parameters {missing}); "
                "set them, or pass rest=model.init(seed) to keep initial values for them.")
        out = {**{k: np.asarray(v, dtype=np.float32) for k, v in (rest or {}).items()}, **self.values}
        self.model.check_params(out)
        return {name: out[name] for name in self.specs}


def set_node_params(model: Model, params: Mapping[str, np.ndarray], node: str,
                    local: Mapping[str, object]) -> dict[str, np.ndarray]:
    """A copy of `params` with node `node`'s parameters replaced by `local` (checked as `ParamsLoader.set`)."""
    out = dict(params)
    out.update(ParamsLoader(model).set(node, local).values)
    model.check_params(out)
    return out


__all__ = ["ParamsLoader", "node_of", "set_node_params", "slot_cell"]
