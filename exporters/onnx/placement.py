"""Which nodes of an exported graph onnxruntime's CUDA provider would leave to the CPU, read from the file.

    predict_cuda(proto) -> [Placed(graph="", node="lstm0/lstm", op_type="LSTM", kind="fallback", reason=...), ...]

Every graph is visited: the main graph and the bodies of Scan, Loop and If nodes
(``graph`` names the nodes that hold a body, ``lstm0/scan/body``), each partitioned on its
own as onnxruntime does. `kind` is

- ``fallback``: the CUDA provider refuses the node (a recurrent option cuDNN lacks, an op
  or element type without a CUDA kernel: the rules in `rnngraph.compiler.cuda`);
- ``shape``: onnxruntime runs the node on the CPU on purpose, a small shape or index
  computation fed by values already in CPU memory (`rnngraph.compiler.cuda`, point 3);
- ``inexact``: not a CPU node but one the CUDA provider runs differently from ONNX's
  meaning (a reverse LSTM/GRU/RNN with lengths, `rnngraph.compiler.cuda.inexact_on_cuda`).

A prediction from onnxruntime's rules, without a GPU; `rnngraph.runtime.placement` reads
what a real CUDA session did.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import onnx
from onnx import helper, shape_inference

from rnngraph.compiler import cuda

FALLBACK, SHAPE, INEXACT = "fallback", "shape", "inexact"


@dataclass(frozen=True)
class Placed:
    """One node the CUDA provider would not run: where it is, what it is, and why."""

    graph: str
    node: str
    op_type: str
    kind: str
    reason: str

    def line(self) -> str:
        where = f"{self.graph}: " if self.graph else ""
        return f"{where}{self.op_type} {self.node!r} [{self.kind}] {self.reason}"


@dataclass
class _Types:
    """Element type names and initializer sizes of every value, in every graph of the model."""

    dtypes: dict[str, str]
    sizes: dict[str, int]

    @classmethod
    def of(cls, proto: onnx.ModelProto) -> _Types:
        inferred = shape_inference.infer_shapes(proto)
        found = cls({}, {})
        for graph in _graphs(inferred.graph):
            for info in [*graph.input, *graph.output, *graph.value_info]:
                if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type:
                    found.dtypes[info.name] = onnx.TensorProto.DataType.Name(info.type.tensor_type.elem_type)
            for init in graph.initializer:
                found.dtypes[init.name] = onnx.TensorProto.DataType.Name(init.data_type)
                size = 1
                for d in init.dims:
                    size *= d
                found.sizes[init.name] = size
        return found


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for body in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                yield from _graphs(body)


def predict_cuda(proto: onnx.ModelProto) -> list[Placed]:
    """The nodes of `proto` (every graph) that a CUDA session would run on the CPU, in graph order."""
    return list(_visit(proto.graph, "", _Types.of(proto)))


def fallbacks(proto: onnx.ModelProto) -> list[Placed]:
    """Only the nodes the CUDA provider refuses (kind ``fallback``), not the deliberate shape nodes."""
    return [p for p in predict_cuda(proto) if p.kind == FALLBACK]


def _visit(graph: onnx.GraphProto, where: str, types: _Types) -> Iterator[Placed]:
    refused: dict[int, str] = {}
    inexact: dict[int, str] = {}
    for index, node in enumerate(graph.node):
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute
                      if a.type not in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)}
        reason = cuda.kernel_fallback(node.op_type, node.domain, [types.dtypes.get(i) for i in node.input],
                                      attributes, list(node.input))
        if reason is not None:
            refused[index] = reason
        elif (differs := cuda.inexact_on_cuda(node.op_type, attributes, list(node.input))) is not None:
            inexact[index] = differs
    shape = _cpu_preferred(graph, refused, types)
    for index, node in enumerate(graph.node):
        if index in refused:
            yield Placed(where, node.name, node.op_type, FALLBACK, refused[index])
        elif index in inexact:
            yield Placed(where, node.name, node.op_type, INEXACT, inexact[index])
        elif index in shape:
            yield Placed(where, node.name, node.op_type, SHAPE,
                         "a small shape or index computation on values in CPU memory (onnxruntime's choice)")
        for attr in node.attribute:
            bodies = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for body in bodies:
                yield from _visit(body, "/".join(filter(None, (where, node.name, attr.name))), types)


def _cpu_preferred(graph: onnx.GraphProto, refused: Mapping[int, str], types: _Types) -> set[int]:
    """onnxruntime's CPU-preferred nodes of one graph, given the nodes the CUDA provider refused.

    Walks forward in graph order from values in CPU memory (the outputs of ``Shape`` and of
    refused nodes); a node moves to the CPU when each of its inputs is a CPU value, a graph
    input or a small initializer, and its CUDA kernel would not read that input from CPU
    memory anyway.
    """
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    graph_inputs = {i.name for i in graph.input} - {i.name for i in graph.initializer}
    cpu_values: set[str] = set()
    queue: list[int] = []

    def leave_on_cpu(index: int, outputs: list[str] | None = None) -> None:
        for name in graph.node[index].output if outputs is None else outputs:
            cpu_values.add(name)
            for consumer in consumers.get(name, ()):
                heapq.heappush(queue, consumer)

    for index, node in enumerate(graph.node):
        if index not in refused and node.op_type in cuda.CPU_OUTPUTS:
            leave_on_cpu(index, [node.output[i] for i in cuda.CPU_OUTPUTS[node.op_type] if i < len(node.output)])
    for index in refused:
        leave_on_cpu(index)
    seen: set[int] = set()
    chosen: set[int] = set()
    while queue:
        index = heapq.heappop(queue)
        if index in seen or index in refused:
            continue
        seen.add(index)
        node = graph.node[index]
        if _all_inputs_on_cpu(node, cpu_values, graph_inputs, types):
            chosen.add(index)
            leave_on_cpu(index)
    return chosen


def _all_inputs_on_cpu(node: onnx.NodeProto, cpu_values: set[str], graph_inputs: set[str], types: _Types) -> bool:
    read_on_cpu = cuda.CPU_INPUTS.get(node.op_type, ())
    for i, name in enumerate(node.input):
        if not name:  # onnxruntime sees an absent optional input as a value it does not hold on the CPU
            return False
        if types.dtypes.get(name) in ("FLOAT16", "BFLOAT16"):
            return False
        if types.sizes.get(name, cuda.SMALL_INITIALIZER + 1) <= cuda.SMALL_INITIALIZER or name in graph_inputs:
            continue
        if name not in cpu_values or i in read_on_cpu:
            return False
    return True
