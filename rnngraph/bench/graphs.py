"""What an export costs apart from run time: graph size, file size, session creation, work per step.

- `graph_stats`: nodes (subgraphs included), Transposes, serialized bytes against the
  bytes of the model's parameters, whether the time axes are symbolic (so that the
  graph, the file and the session cannot depend on T);
- `step_nodes`: the nodes of every Scan / Loop body *after* onnxruntime's optimizer
  (its fusions change the count), read back from the optimized model onnxruntime
  writes (``SessionOptions.optimized_model_filepath``);
- `madds_per_step`: the multiply-adds of one step of one row, from the parameter shapes;
- `session_creation_s`: median seconds to create a `rnngraph.runtime.session.Session`
  from the file.
"""

from __future__ import annotations

import collections
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.bench.timing import median_of, ort_session
from rnngraph.dsl.model import Model

LOOP_OPS = ("Scan", "Loop")


@dataclass(frozen=True)
class GraphStats:
    nodes: int  # every node, bodies of Scan/Loop/If included
    top_nodes: int
    transposes: int  # Transposes of activations (a weight-layout Transpose is folded at load), bodies included
    file_bytes: int
    weight_bytes: int  # float32 bytes of the model's parameters
    symbolic_time: bool  # every sequence input's time axis (axis 1) is a named (dynamic) dimension

    @property
    def file_over_weights(self) -> float:
        """(file bytes − weight bytes) / weight bytes: what the graph adds on top of the weights."""
        return (self.file_bytes - self.weight_bytes) / max(self.weight_bytes, 1)


def activation_transposes(graph: Any) -> int:
    """Transposes of values computed when the graph runs (subgraphs included): a Transpose of an initializer is a
    weight layout, which onnxruntime folds into a constant when it loads the model (`by_batch`'s native branch)."""
    from rnngraph.compiler.prune import initializer_names

    weights = initializer_names(graph)

    def count(g: Any) -> int:
        n = 0
        for node in g.node:
            n += node.op_type == "Transpose" and node.input[0] not in weights
            for attr in node.attribute:
                n += sum(count(sub) for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs))
        return n

    return count(graph)


def graph_stats(model: Model, proto: object, params: Mapping[str, np.ndarray]) -> GraphStats:
    """The export `proto` of `model`: its size against the bytes of `params`, and its time axes."""
    from rnngraph.cli import op_histogram
    from rnngraph.dsl.tensor import SEQUENCE

    graph = proto.graph  # type: ignore[attr-defined]
    ops = op_histogram(graph)
    weight_bytes = sum(np.asarray(v).size * 4 for v in params.values())
    sequences = {name for name, spec in model.inputs.items() if spec.kind == SEQUENCE}
    time_dims = [i.type.tensor_type.shape.dim[1] for i in graph.input if i.name in sequences]
    return GraphStats(nodes=sum(ops.values()), top_nodes=len(graph.node), transposes=activation_transposes(graph),
                      file_bytes=len(proto.SerializeToString()),  # type: ignore[attr-defined]
                      weight_bytes=weight_bytes, symbolic_time=all(bool(d.dim_param) for d in time_dims))


@dataclass(frozen=True)
class LoopBody:
    op: str  # Scan or Loop
    name: str
    nodes: int  # nodes of the body itself (what runs every step; If branches count as one node)
    nested: int  # nodes inside the body's own subgraphs (If branches: not all run every step)
    ops: dict[str, int]


def step_nodes(model_bytes: bytes) -> list[LoopBody]:
    """Every Scan / Loop body of the model as onnxruntime runs it, after its graph optimizations."""
    import onnx

    from rnngraph.cli import op_histogram

    with tempfile.TemporaryDirectory(prefix="rnngraph-opt-") as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        ort_session(model_bytes, 1, optimized_path=path)
        optimized = onnx.load(path)
    bodies: list[LoopBody] = []

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            for attr in node.attribute:
                subgraphs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
                for sub in subgraphs:
                    if node.op_type in LOOP_OPS:
                        own = len(sub.node)
                        bodies.append(LoopBody(node.op_type, node.name, own, sum(op_histogram(sub).values()) - own,
                                               _top_ops(sub)))
                    walk(sub)

    walk(optimized.graph)
    return bodies


def _top_ops(graph: object) -> dict[str, int]:
    """Op types of the graph's own nodes (not of its subgraphs), sorted by name."""
    return dict(sorted(collections.Counter(n.op_type for n in graph.node).items()))  # type: ignore[attr-defined]


#: parameters that are looked up, not multiplied: embedding tables (named ``E`` by every layer that has one)
LOOKUP_PARAMS = ("E",)


def madds_per_step(model: Model) -> int:
    """Multiply-adds of one step of one row, counted from the parameter shapes.

    Every 2-D parameter (a weight matrix, applied once per step: input, recurrent,
    feedback and readout weights) contributes rows × columns; vectors (biases,
    peepholes) and embedding tables (lookups) contribute nothing. Dense counting:
    a Clockwork R (block triangular, the ladder form skips zero blocks) and a sparse
    ESN reservoir count in full; attention's per-source-position terms (scores and
    context over T positions) are not parameters and are left out, so attention
    models are under-counted.
    """
    total = 0
    for name, spec in model.param_specs().items():
        if len(spec.shape) == 2 and name.rsplit("/", 1)[-1] not in LOOKUP_PARAMS:
            total += int(spec.shape[0]) * int(spec.shape[1])
    return total


def session_creation_s(path: str, runs: int = 5) -> float:
    """Median seconds to create a checked `Session` from the file at `path` (one intra-op thread)."""
    from rnngraph.runtime.session import Session

    return median_of(lambda: Session(path, threads=1), runs, warmup=1)
