"""Guards that make an exported graph total: a defined result for every input its signature admits.

A device runs the file in bare onnxruntime, with no Python in front, and onnxruntime's
recurrent kernels abort the whole process on empty tensors (GRU on time 0 or batch 0, LSTM
on batch 0); a Loop runs for as long as its trip count says. So the graph itself guards,
with four rules (docs/errors.md, "What a bare graph does"):

- lengths (`Guards.prelude`): a lengths input may be left out: the graph input has an empty
  initializer of the same name (onnxruntime makes such an input optional) which means "every
  row is full". Given lengths are clamped to ``0..time``. The lowerings read ``max(L, 1)``,
  so no kernel meets a row of 0 steps, and a row of length 0 gets 0 in every output
  (`Guards.zero_empty_rows`).
- counts (`Guards.prelude`): each count input is clipped to ``0..max`` (its declared
  maximum, `Input(name, count=True, max=...)`) before any Loop reads it.
- empty inputs (`guard_empty`): when the batch or any time axis is 0, an ``If`` answers every
  output as zeros of its shape (``(0, time, ·)``, ``(batch, 0, ·)``, a count's axis as long as
  the capped count) and the lowered graph, in the other branch, does not run at all.
- NaN (`nan_rule`): a NaN in a valid step makes that step's output and every later one of its
  row NaN, and the row's final states; padded steps stay 0. The Scan lowering computes that
  itself (its padded outputs are cleared after the loop); onnxruntime's native LSTM/GRU give
  ordinary numbers after a NaN, so the native path marks the rows outside the op.

The lowerings read the public names (``lengths``, ``n``); `Guards.redirect` points every
node emitted after the prelude at the guarded values instead, so no lowering knows of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from onnx import GraphProto, NodeProto, helper, numpy_helper

from rnngraph.compiler.builder import DTYPES, GraphBuilder, value_info
from rnngraph.compiler.idioms import reduce
from rnngraph.dsl.model import Model
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, TensorSpec

#: written to the metadata as ``rnngraph.guards``: a session passes empty inputs to such a graph
VERSION = "1"


@dataclass
class Guards:
    """The guarded values of one export, from `prelude`."""

    g: GraphBuilder
    model: Model
    #: public input name -> the guarded value the lowerings read (lengths ``1..time``, counts ``0..max``)
    guarded: dict[str, str] = field(default_factory=dict)
    #: symbolic axis name -> its size as a 1-element int64 value (batch, time axes, capped counts)
    sizes: dict[str, str] = field(default_factory=dict)
    #: ``(batch,)`` bool: rows whose lengths (any) are 0 after clamping; None without lengths
    empty_rows: str | None = None
    #: the number of nodes of the prelude: the lowered graph starts after them
    prelude_end: int = 0

    def redirect(self) -> None:
        """Point every node emitted after the prelude (bodies included) at the guarded values."""
        rename(self.g.nodes[self.prelude_end:], self.guarded)

    def zero_empty_rows(self, value: str, spec: TensorSpec) -> str:
        """`value` with 0 in the rows of length 0 (an output; batch-first unless a scalar)."""
        if self.empty_rows is None or spec.kind == SCALAR:
            return value
        g = self.g
        rank = len(spec.dims())
        rows = g.unsqueeze(self.empty_rows, list(range(1, rank))) if rank > 1 else self.empty_rows
        zero = g.const("zero", np.zeros((), dtype=np.dtype(spec.dtype)), spec.dtype)
        return g.op("Where", rows, zero, value, name="empty_rows_zeroed")


def prelude(g: GraphBuilder, model: Model) -> Guards:
    """Emit the lengths defaults and clamps and the count caps; call after declaring the graph inputs."""
    guards = Guards(g, model)
    with g.scope("guard"):
        for name, spec in model.inputs.items():
            if spec.kind != SCALAR:
                guards.sizes.setdefault("batch", g.dim(name, 0))
            if spec.kind == SEQUENCE:
                guards.sizes.setdefault(spec.time, g.dim(name, 1))
        for lengths, owners in model.lengths.items():
            _lengths(guards, lengths, owners[0])
        for name, spec in model.inputs.items():
            if spec.kind == SCALAR:
                assert spec.count_max is not None
                capped = g.op("Min", g.op("Max", name, g.const("zero", 0, "int64")),
                              g.const("max", spec.count_max, "int64"), name=f"{name}/capped")
                guards.guarded[name] = capped
                guards.sizes[spec.time] = g.op("Reshape", capped, g.const("one", [1], "int64"), name=f"{name}/size")
    guards.prelude_end = len(g.nodes)
    return guards


def _lengths(guards: Guards, lengths: str, owner: str) -> None:
    g = guards.g
    # an empty initializer of the input's name: onnxruntime makes the input optional, the empty
    # default standing for "every row full" (a given (batch,) tensor comes first in the Concat)
    g.initializers.append(numpy_helper.from_array(np.zeros(0, dtype=np.int64), lengths))
    batch, time = g.dim(owner, 0), g.dim(owner, 1)
    with g.scope(lengths):
        full = g.op("Expand", time, batch, name="full")
        given = g.op("Slice", g.op("Concat", lengths, full, axis=0), g.const("zero", [0], "int64"), batch,
                     name="given_or_full")
        clamped = g.op("Min", g.op("Max", given, g.const("zero_s", 0, "int64")), time, name="clamped")
        guards.guarded[lengths] = g.op("Max", clamped, g.const("one_s", 1, "int64"), name="at_least_one")
        empty = g.op("Equal", clamped, g.const("zero_s", 0, "int64"), name="empty")
    guards.empty_rows = empty if guards.empty_rows is None else g.op("Or", guards.empty_rows, empty)


def rename(nodes: Iterable[NodeProto], mapping: Mapping[str, str]) -> None:
    """Replace the inputs named in `mapping`, in `nodes` and in every subgraph below them."""
    if not mapping:
        return
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                rename(sub.node, mapping)


def guard_empty(g: GraphBuilder, model: Model, guards: Guards) -> None:
    """Move the lowered graph into the else-branch of an ``If`` that answers zeros for empty inputs.

    Call last: the nodes after the prelude, the output Identities included, become the branch.
    """
    lowered = g.nodes[guards.prelude_end:]
    del g.nodes[guards.prelude_end:]
    outputs = {name: source.spec for name, source in model.outputs.items()}
    computed: dict[str, str] = {}
    for node in lowered:
        if node.output and node.output[0] in outputs:
            computed[node.output[0]] = node.output[0] = g.fresh(f"{node.output[0]}/computed")
    with g.scope("guard"):
        sizes = [guards.sizes[axis] for axis in sorted(guards.sizes) if axis == "batch" or _is_time(model, axis)]
        smallest = reduce(g, "ReduceMin", g.op("Concat", *sizes, axis=0), [0], name="smallest_axis")
        empty = g.op("Equal", smallest, g.const("zero_s", 0, "int64"), name="empty_input")
        shapes = {name: _shape(g, guards, spec) for name, spec in outputs.items()}
        zeros = g.body("empty")
        answers = [zeros.op("ConstantOfShape", shapes[name], name=f"{name}/zeros",
                            value=helper.make_tensor("zero", DTYPES[spec.dtype], [1], [0]))
                   for name, spec in outputs.items()]
    then_branch = _branch(zeros.nodes, "empty_input", answers, outputs)
    else_branch = _branch(lowered, "computed", [computed[name] for name in outputs], outputs)
    g.op_n("If", empty, outputs=list(outputs), name="guard/if_empty", then_branch=then_branch,
           else_branch=else_branch)


def _is_time(model: Model, axis: str) -> bool:
    return any(spec.kind == SEQUENCE and spec.time == axis for spec in model.inputs.values())


def _shape(g: GraphBuilder, guards: Guards, spec: TensorSpec) -> str:
    """The 1-D int64 shape of an output when an input is empty; an axis no input sizes is 0 long."""
    dims = [guards.sizes.get(d, g.const("zero", [0], "int64")) if isinstance(d, str) else g.const("size", [d], "int64")
            for d in spec.dims()]
    if not dims:
        return g.const("scalar_shape", np.zeros(0, dtype=np.int64), "int64")
    return dims[0] if len(dims) == 1 else g.op("Concat", *dims, axis=0, name="empty_shape")


def _branch(nodes: list[NodeProto], name: str, values: list[str], outputs: Mapping[str, TensorSpec]) -> GraphProto:
    infos = [value_info(value, spec.dtype, [None] * len(spec.dims()))
             for value, spec in zip(values, outputs.values(), strict=True)]
    return helper.make_graph(nodes, name, [], infos)


def nan_rule(g: GraphBuilder, x: str, valid: str | None, mask: str | None, reverse: bool, y: str,
             finals: Mapping[str, str], native: bool) -> tuple[str, dict[str, str]]:
    """Apply the NaN rule (module docstring) to ``y (batch, time, out)`` and the final states.

    `valid`/`mask` ``(batch, time, 1)`` (bool/float) are None for an unpadded sequence.
    Scan: only the padded outputs are cleared (a NaN state times a 0 mask is NaN). Native:
    a step is NaN when the sum of its features is (one ReduceSum: a NaN feature, or +inf
    beside −inf, which makes the gates NaN too); every valid step from a row's first NaN
    step on, in the direction of the run, and the row's final states become NaN.
    """
    if not native:
        if valid is None:
            return y, dict(finals)
        return g.op("Where", valid, y, g.const("zero_f", 0.0), name="padding_zero"), dict(finals)
    with g.scope("nan_rule"):
        nan_step = g.cast(g.op("IsNaN", reduce(g, "ReduceSum", x, [2], keepdims=1)), "float32")  # (batch, time, 1)
        if mask is not None:  # padded steps hold 0 already; a NaN there is not read
            nan_step = g.op("Mul", nan_step, mask, name="valid_nan")
        seen = g.op("CumSum", nan_step, g.const("time_axis", 1, "int64"), reverse=int(reverse), name="seen")
        poisoned = g.op("Greater", seen, g.const("zero_f", 0.0), name="poisoned")
        if valid is not None:
            poisoned = g.op("And", poisoned, valid, name="poisoned_valid")
        nan = g.const("nan", np.float32(np.nan))
        y = g.op("Where", poisoned, nan, y, name="y")
        row = g.op("Greater", reduce(g, "ReduceMax", nan_step, [1]), g.const("zero_f", 0.0), name="row_nan")
        return y, {name: g.op("Where", row, nan, value, name=name) for name, value in finals.items()}


def propagate_nan(g: GraphBuilder, y: str, maxed: str) -> str:
    """``maxed (batch, size)``, the ReduceMax of ``y (batch, time, size)`` over time, NaN where y has a NaN.

    onnxruntime's ReduceMax returns the largest number and may skip a NaN; the NaN rule
    (and NumPy) says the maximum of anything with a NaN is NaN. Padded steps hold 0, never NaN.
    """
    any_nan = reduce(g, "ReduceMax", g.cast(g.op("IsNaN", y), "float32"), [1], name="any_nan")
    return g.op("Where", g.op("Greater", any_nan, g.const("zero_f", 0.0)), g.const("nan", np.float32(np.nan)), maxed,
                name="max_nan")
