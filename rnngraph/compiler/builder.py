"""One small builder through which every ONNX node and initializer is emitted.

Names are scoped (``rnn0/W``, ``rnn0/scan/Gemm``) and made unique with a
counter, in emission order, so the same model always exports the same names.
A body builder (for a Scan or Loop) shares the name registry of its parent: no
name inside a body shadows one outside it.

Every float value of an export has one type, the export's (`ExportOptions.dtype`): the
builder knows it (`float_dtype`) and the lowerings name it ``"float"`` (`FLOAT`) wherever
they give a dtype (`const`, `cast`, `filled`, `value_info`, inputs and outputs). A float64
builder refuses ``"float32"``: a value that name would give could not meet the float64
ones (onnxruntime types every node's inputs strictly), so a lowering that names it is a bug.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper

from rnngraph.errors import ExportError

DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64,
          "int32": TensorProto.INT32, "bool": TensorProto.BOOL, "float16": TensorProto.FLOAT16}
#: the export's float type, whichever it is (`GraphBuilder.float_dtype`)
FLOAT = "float"
#: the float types the compiler exports in (float16 is a post-processing of float32: exporters/onnx/precision.py)
FLOAT_DTYPES = ("float32", "float64")

Dim = str | int | None


def value_info(name: str, dtype: str, dims: Sequence[Dim] | None) -> ValueInfoProto:
    """A typed value (a concrete dtype; `GraphBuilder.value_info` also takes ``"float"``); `dims` None means
    unknown rank, a None dim means unknown size."""
    return helper.make_tensor_value_info(name, DTYPES[dtype], None if dims is None else list(dims))


def compiler_dtype(dsl_dtype: str) -> str:
    """The compiler's name for a DSL tensor type: the DSL's float tensors (``"float32"``) take the export's
    float type (``"float"``); ``"int64"`` stays."""
    return FLOAT if dsl_dtype == "float32" else dsl_dtype


#: initializers above this size are deferred by a builder that defers (see `GraphBuilder`)
DEFER_BYTES = 4096


def tensor_skeleton(name: str, array: np.ndarray) -> TensorProto:
    """A TensorProto with the name, type and shape of `array` and no data yet (see `fill_deferred`)."""
    tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
    tensor.dims.extend(array.shape)
    return tensor


def fill_deferred(graph: GraphProto, deferred: dict[str, np.ndarray]) -> None:
    """Give the deferred initializers of `graph` (and of every Scan/Loop/If body in it) their data.

    Each array leaves `deferred` as its bytes enter the graph, so the two together never hold a
    weight twice.
    """
    for tensor in graph.initializer:
        if tensor.name in deferred:
            tensor.raw_data = deferred.pop(tensor.name).tobytes()
    for node in graph.node:
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                fill_deferred(body, deferred)


class GraphBuilder:
    """Emits nodes and initializers with scoped, deterministic names.

    With `deferred` (a dict shared by the builder and its bodies), initializers above
    `DEFER_BYTES` are emitted without their data, which waits in `deferred` by name until
    `fill_deferred` puts it into the finished model. protobuf copies a message each time it
    goes into another (a body into its Scan node, a graph into its model), so weights emitted
    inline would be held two or three times while a large model is assembled.
    """

    def __init__(self, opset: int, registry: set[str] | None = None, scope: Sequence[str] = (),
                 deferred: dict[str, np.ndarray] | None = None, float_dtype: str = "float32") -> None:
        if float_dtype not in FLOAT_DTYPES:
            raise ValueError(f"a graph computes in one of {FLOAT_DTYPES}, not {float_dtype!r}")
        self.opset = opset
        self.deferred = deferred
        #: the type of every float value: what ``"float"`` names (`resolve`)
        self.float_dtype = float_dtype
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.inputs: list[ValueInfoProto] = []
        self.outputs: list[ValueInfoProto] = []
        self._names = registry if registry is not None else set()
        self._scope: list[str] = list(scope)
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    # -- names --------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def fresh(self, base: str) -> str:
        """A new unique name ``<scope>/<base>`` (``_1``, ``_2`` … appended on reuse)."""
        stem = "/".join([*self._scope, base])
        name, n = stem, 0
        while name in self._names:
            n += 1
            name = f"{stem}_{n}"
        self._names.add(name)
        return name

    def claim(self, name: str) -> str:
        """Reserve an exact name (graph inputs and outputs); it must be free."""
        if name in self._names:
            raise ValueError(f"name {name!r} is already used in this graph")
        self._names.add(name)
        return name

    # -- types --------------------------------------------------------------
    def resolve(self, dtype: str) -> str:
        """The concrete dtype `dtype` names here: ``"float"`` is `float_dtype`; ``"float32"`` is refused in a
        float64 graph (module docstring)."""
        if dtype == FLOAT:
            return self.float_dtype
        if dtype == "float32" and self.float_dtype != "float32":
            raise ExportError(f"a lowering names 'float32' in a {self.float_dtype} export (a bug in rnngraph): "
                              "lowerings name the export's float type 'float' (rnngraph.compiler.builder.FLOAT).")
        return dtype

    def value_info(self, name: str, dtype: str, dims: Sequence[Dim] | None) -> ValueInfoProto:
        """`value_info` with ``"float"`` resolved (a Scan or Loop body's inputs and outputs)."""
        return value_info(name, self.resolve(dtype), dims)

    # -- emission -----------------------------------------------------------
    def op(self, op_type: str, *inputs: str, name: str | None = None, output: str | None = None,
           **attrs: Any) -> str:
        """Emit one node with one output; returns the output's name (`output`, else the node's name).

        An attribute given as None is left out.
        """
        return self._emit(op_type, inputs, 1 if output is None else [output], name, attrs)[0]

    def op_n(self, op_type: str, *inputs: str, outputs: int | Sequence[str], name: str | None = None,
             **attrs: Any) -> tuple[str, ...]:
        """Emit one node with several outputs: a count (names derived from the node's) or explicit names."""
        return self._emit(op_type, inputs, outputs, name, attrs)

    def _emit(self, op_type: str, inputs: Sequence[str], outputs: int | Sequence[str], name: str | None,
              attrs: dict[str, Any]) -> tuple[str, ...]:
        node_name = self.fresh(name or op_type)
        if isinstance(outputs, int):
            out_names = [node_name] if outputs == 1 else [self.fresh(f"{name or op_type}:{i}") for i in range(outputs)]
        else:
            out_names = list(outputs)
        kept = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), out_names, name=node_name, **kept))
        return tuple(out_names)

    def cast(self, x: str, dtype: str, name: str | None = None) -> str:
        """``Cast`` to a dtype named as everywhere in rnngraph (``"float"``, ``"int64"``, …, see `DTYPES`)."""
        dtype = self.resolve(dtype)
        return self.op("Cast", x, to=DTYPES[dtype], name=name or f"to_{dtype}")

    def const(self, base: str, value: np.ndarray | np.generic | float | int | Sequence[int],
              dtype: str = FLOAT) -> str:
        """An initializer holding `value` cast to `dtype` (default: the export's float type), in one rounding
        from `value` (float64 parameters go into a float64 export unrounded); identical small constants are
        shared."""
        dtype = self.resolve(dtype)
        array = np.asarray(value, dtype=np.dtype(dtype))
        small = array.size <= 16
        key = (dtype, array.tobytes(), array.shape) if small else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(base)
        if self.deferred is not None and array.nbytes > DEFER_BYTES:
            self.initializers.append(tensor_skeleton(name, array))
            self.deferred[name] = np.ascontiguousarray(array)
        else:
            self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    def body(self, scope: str | None = None) -> GraphBuilder:
        """A builder for a Scan/Loop/If body: same opset and name registry, the current scope (+ `scope`)."""
        return GraphBuilder(self.opset, self._names, [*self._scope, *([scope] if scope else [])], self.deferred,
                            self.float_dtype)

    def add_input(self, name: str, dtype: str, dims: Sequence[Dim] | None) -> str:
        self.inputs.append(self.value_info(name, dtype, dims))
        return name

    def add_output(self, name: str, dtype: str, dims: Sequence[Dim] | None) -> str:
        self.outputs.append(self.value_info(name, dtype, dims))
        return name

    def graph(self, name: str, doc: str = "") -> GraphProto:
        return helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers, doc_string=doc)

    # -- common idioms ------------------------------------------------------
    def dim(self, x: str, axis: int) -> str:
        """Size of axis `axis` of `x` as a 1-element int64 tensor."""
        if self.opset >= 15:  # Shape's start/end attributes arrived in opset 15
            return self.op("Shape", x, start=axis, end=axis + 1, name="dim")
        return self.op("Gather", self.op("Shape", x), self.const("axis", [axis], "int64"), axis=0, name="dim")

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", x, self.const("axes", list(axes), "int64"))

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Squeeze", x, self.const("axes", list(axes), "int64"))

    def zeros_state(self, like: str, size: int) -> str:
        """A float zero tensor ``(batch, size)`` with the batch size of `like` (batch-first)."""
        shape = self.op("Concat", self.dim(like, 0), self.const("size", [size], "int64"), axis=0)
        return self.filled(shape, 0.0, FLOAT, "zero")

    def filled(self, shape: str, value: float | int | bool, dtype: str, name: str) -> str:
        """A tensor of `shape` (a 1-D int64 value) holding `value` everywhere (``ConstantOfShape``)."""
        tensor = helper.make_tensor(name, DTYPES[self.resolve(dtype)], [1], [value])
        return self.op("ConstantOfShape", shape, value=tensor, name=name)
