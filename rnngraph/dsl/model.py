"""`Model`: the validated graph of layer nodes between named inputs and outputs.

The graph is a `networkx.DiGraph` whose nodes are node names (``rnn0``, ``dense0``,
or the names users gave) with the `Node` in attribute ``node``; an edge
``src -> dst`` carries ``slot`` (the input slot of dst), ``index`` (the output of
src) and ``spec``. Names are assigned in a deterministic order (a depth-first walk
from the outputs, inputs first), so the same description always yields the same
names and therefore the same parameter and ONNX names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.dsl.layers import InputLayer
from rnngraph.dsl.params import ParamSpec, check_params, check_seed, init_params, load_params, save_params
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, Node, Tensor, TensorSpec
from rnngraph.errors import InputError, ModelError


@dataclass(frozen=True)
class Source:
    """Where a node input comes from: output `index` of node `node`."""

    node: str
    index: int
    spec: TensorSpec


class Model:
    """A recurrent model: named inputs, a graph of layers, named outputs.

    >>> x = Input("x", features=4)
    >>> model = Model(inputs=x, outputs={"y": Dense(3)(Recurrent(RNN(7))(x))})
    """

    def __init__(
        self,
        inputs: Tensor | Sequence[Tensor],
        outputs: Tensor | Mapping[str, Tensor],
        name: str = "model",
    ) -> None:
        self.name = name
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        outputs = {"y": outputs} if isinstance(outputs, Tensor) else dict(outputs)
        if not outputs:
            raise ModelError(f"model {name!r}: `outputs` is empty; give at least one output tensor.")
        for t in inputs:
            if not isinstance(t, Tensor) or not isinstance(t.node.layer, InputLayer):
                raise ModelError(f"model {name!r}: every entry of `inputs` must come from Input(...), received {t!r}.")
        for out_name, t in outputs.items():
            if not isinstance(out_name, str) or not out_name.isidentifier():
                raise ModelError(f"model {name!r}: output name {out_name!r} must be a valid identifier.")
            if not isinstance(t, Tensor):
                raise ModelError(f"model {name!r}: output {out_name!r} must be a rnngraph Tensor, received {t!r}.")

        self._names: dict[int, str] = {}
        self.graph = nx.DiGraph()
        order = self._walk(outputs.values())
        self._assign_names(order)
        self._order = [self._names[id(node)] for node in order]
        self._build_graph(order)
        self._check_inputs(inputs, order)

        self.inputs: dict[str, TensorSpec] = {}
        for t in inputs:
            assert t.node.layer.name is not None
            self.inputs[t.node.layer.name] = t.spec
        self.outputs: dict[str, Source] = {
            out_name: Source(self._names[id(t.node)], t.index, t.spec) for out_name, t in outputs.items()
        }
        self.lengths: dict[str, list[str]] = self._lengths_inputs()
        clash = set(self.outputs) & (set(self.inputs) | set(self.lengths))
        if clash:
            raise ModelError(f"model {name!r}: output names {sorted(clash)} are also input names; rename the outputs.")

    # -- construction -------------------------------------------------------
    @staticmethod
    def _walk(outputs: Iterable[Tensor]) -> list[Node]:
        """Nodes in dependency order (inputs of a node come before it)."""
        seen: set[int] = set()
        order: list[Node] = []

        def visit(node: Node) -> None:
            if id(node) in seen:
                return
            seen.add(id(node))
            for t in node.inputs.values():
                visit(t.node)
            order.append(node)

        for t in outputs:
            visit(t.node)
        return order

    def _assign_names(self, order: list[Node]) -> None:
        taken: dict[str, Node] = {}
        for node in order:
            explicit = node.layer.name
            if explicit is None:
                continue
            if explicit in taken:
                raise ModelError(
                    f"model {self.name!r}: two nodes are named {explicit!r} "
                    f"({taken[explicit].layer.describe()} and {node.layer.describe()}); node names must be unique. "
                    "A layer called twice is two nodes: give each call its own layer."
                )
            taken[explicit] = node
            self._names[id(node)] = explicit
        counters: dict[str, int] = {}
        for node in order:
            if id(node) in self._names:
                continue
            prefix = node.layer.prefix
            while True:
                candidate = f"{prefix}{counters.get(prefix, 0)}"
                counters[prefix] = counters.get(prefix, 0) + 1
                if candidate not in taken:
                    break
            taken[candidate] = node
            self._names[id(node)] = candidate

    def _build_graph(self, order: list[Node]) -> None:
        for node in order:
            self.graph.add_node(self._names[id(node)], node=node)
        for node in order:
            dst = self._names[id(node)]
            for slot, t in node.inputs.items():
                self.graph.add_edge(self._names[id(t.node)], dst, slot=slot, index=t.index, spec=t.spec)
        if not nx.is_directed_acyclic_graph(self.graph):  # unreachable through the functional API; kept as a guard
            cycle = nx.find_cycle(self.graph)
            raise ModelError(f"model {self.name!r}: the graph has a cycle {cycle}; recurrence belongs inside a cell.")

    def _check_inputs(self, inputs: list[Tensor], order: list[Node]) -> None:
        declared = {id(t.node) for t in inputs}
        names = [t.node.layer.name for t in inputs]
        dupes = sorted({n for n in names if names.count(n) > 1 and n is not None})
        if dupes:
            raise ModelError(f"model {self.name!r}: inputs {dupes} are listed twice in `inputs`.")
        for node in order:
            if isinstance(node.layer, InputLayer) and id(node) not in declared:
                raise ModelError(
                    f"model {self.name!r}: the outputs read input {node.layer.name!r}, "
                    "which is not listed in `inputs`; add it there."
                )
        used = {id(n) for n in order}
        for t in inputs:
            if id(t.node) not in used:
                raise ModelError(
                    f"model {self.name!r}: input {t.node.layer.name!r} is not used by any output; "
                    "remove it from `inputs` or connect it."
                )

    def _lengths_inputs(self) -> dict[str, list[str]]:
        """lengths input name -> the sequence inputs it pads."""
        out: dict[str, list[str]] = {}
        for name, spec in self.inputs.items():
            if spec.kind == SEQUENCE and spec.lengths is not None:
                if spec.lengths in self.inputs:
                    raise ModelError(
                        f"model {self.name!r}: input {name!r} names its lengths {spec.lengths!r}, "
                        "which is also the name of an input; choose another lengths name."
                    )
                owners = out.setdefault(spec.lengths, [])
                first = self.inputs[owners[0]] if owners else spec
                if first.time != spec.time:
                    # each length must be in 1..time of every sequence it pads
                    raise ModelError(
                        f"model {self.name!r}: inputs {owners[0]!r} (time axis {first.time!r}) and {name!r} "
                        f"(time axis {spec.time!r}) share the lengths input {spec.lengths!r}, but their time "
                        f"axes differ; give {name!r} its own, e.g. Input({name!r}, ..., "
                        f"lengths='{name}_lengths')."
                    )
                owners.append(name)
        return out

    # -- reading ------------------------------------------------------------
    def nodes(self) -> Iterator[tuple[str, Node]]:
        """(name, node) in a deterministic dependency order (every node after its inputs)."""
        for name in self._order:
            yield name, self.graph.nodes[name]["node"]

    def sources(self, name: str) -> dict[str, Source]:
        """The inputs of node `name` by slot."""
        out = {}
        for src, _, data in self.graph.in_edges(name, data=True):
            out[data["slot"]] = Source(src, data["index"], data["spec"])
        node: Node = self.graph.nodes[name]["node"]
        return {slot: out[slot] for slot in node.inputs}

    def param_specs(self) -> dict[str, ParamSpec]:
        """Every parameter of the model, ``"<node>/<param>" -> ParamSpec``."""
        specs: dict[str, ParamSpec] = {}
        for name, node in self.nodes():
            for local, spec in node.layer.param_specs(node.input_specs).items():
                specs[f"{name}/{local}"] = spec
        return specs

    def node_params(self, name: str, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The parameters of node `name` by local name."""
        prefix = name + "/"
        return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}

    def init(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Fresh parameters, reproducible from `seed` (float32)."""
        return init_params(self.param_specs(), seed)

    def check_params(self, params: Mapping[str, np.ndarray]) -> None:
        check_params(self.param_specs(), params)

    def save_params(self, params: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> None:
        self.check_params(params)
        save_params(params, path)

    def load_params(self, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
        return load_params(self.param_specs(), path)

    def count_params(self) -> int:
        return int(sum(int(np.prod(s.shape)) for s in self.param_specs().values()))

    def example_inputs(self, batch: int = 3, time: int = 5, seed: int = 0,
                       ragged: bool = True) -> dict[str, np.ndarray]:
        """Random inputs for this model: features ~ N(0, 1), token ids uniform, ragged lengths.

        With `ragged`, row 0 is full length and the others are drawn from ``1..time``.
        """
        rng = np.random.default_rng(check_seed(seed, InputError))
        feeds: dict[str, np.ndarray] = {}
        for name, spec in self.inputs.items():
            shape = [batch] + ([time] if spec.kind == SEQUENCE else [])
            if spec.kind == SCALAR:  # a runtime count of steps: generate `time` steps
                feeds[name] = np.array(time, dtype=np.int64)
            elif spec.is_tokens:
                assert spec.vocab is not None
                feeds[name] = rng.integers(0, spec.vocab, size=shape, dtype=np.int64)
            else:
                feeds[name] = rng.standard_normal(shape + [spec.features]).astype(np.float32)
        for lengths in self.lengths:
            lens = rng.integers(1, time + 1, size=batch) if ragged else np.full(batch, time)
            if batch:
                lens[0] = time
            feeds[lengths] = lens.astype(np.int64)
        return feeds

    # -- description (see rnngraph.dsl.description) ----------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model as a JSON-ready description (layers, cells with every option, names, wiring; no parameters)."""
        from rnngraph.dsl.description import to_dict

        return to_dict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The description as JSON text; also written to `path` when given. `Model.from_json` reads it back."""
        from rnngraph.dsl.description import to_json

        return to_json(self, path)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Model:
        from rnngraph.dsl.description import from_dict

        return from_dict(doc)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> Model:
        """The model described by `source`: JSON text (`to_json`'s output, or written by hand), or the path
        of a ``.json`` or ``.toml`` file."""
        from rnngraph.dsl.description import from_json, load_description

        if isinstance(source, os.PathLike) or not source.lstrip().startswith("{"):
            return load_description(source)
        return from_json(source)

    def summary(self) -> str:
        """A table of nodes, their output specs and parameter counts."""
        lines = [f"model {self.name!r}"]
        for name, node in self.nodes():
            n = sum(int(np.prod(s.shape)) for s in node.layer.param_specs(node.input_specs).values())
            outs = ", ".join(t.spec.describe() for t in node.outputs)
            lines.append(f"  {name:<14} {node.layer.title():<36} -> {outs}  params={n}")
        lines.append(f"  outputs: {', '.join(f'{k} <- {v.node}[{v.index}]' for k, v in self.outputs.items())}")
        lines.append(f"  total parameters: {self.count_params()}")
        return "\n".join(lines)
