"""Guards that make an exported graph total: a defined result for every input its signature admits.

A device runs the file in bare onnxruntime, with no Python in front, and onnxruntime's
recurrent kernels abort the whole process on empty tensors (GRU on time 0 or batch 0, LSTM
on batch 0); a Loop runs for as long as its trip count says. So the graph itself guards,
with four rules (docs/errors.md, "What an exported graph does"):

- empty inputs: every batch-first input is padded to at least one row and one step
  (``Pad``, a no-op copy otherwise), so no kernel ever sees an empty tensor; each output
  is then cut back to the real batch and time sizes (``Slice``), and a time axis of 0
  counts as a row of length 0 (below). Batch 0 and time 0 thus give zeros of the right
  shape, a count's axis as long as the capped count. Flat, without an ``If``: the lowered
  graph stays at the top level, where onnxruntime's int8 quantizer and tools look.
- lengths: a lengths input may be left out: the graph input has an empty initializer of
  the same name (onnxruntime makes such an input optional) which means "every row full".
  Given lengths are clamped to ``0..time``. The lowerings read ``max(L, 1)``, so no kernel
  meets a row of 0 steps, and a row of length 0 gets 0 in every output.
- counts: each count input is clipped to ``0..max`` (its declared maximum,
  `Input(name, count=True, max=...)`) before any Loop reads it.
- NaN (`nan_rule`): a NaN in a valid step makes that step's output and every later one of
  its row NaN, and the row's final states; padded steps stay 0. The Scan lowering computes
  that itself (its padded outputs are cleared after the loop); onnxruntime's native
  LSTM/GRU give ordinary numbers after a NaN, so the native path marks the rows outside the op
  (`rnngraph.compiler.nan_rule`).

The lowerings read the public names (``x``, ``lengths``, ``n``); `Guards.redirect` points
every node emitted after the prelude at the guarded values instead, so no lowering knows of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from onnx import NodeProto, numpy_helper

from rnngraph.compiler.builder import GraphBuilder, compiler_dtype
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
    #: public input name -> the guarded value the lowerings read
    guarded: dict[str, str] = field(default_factory=dict)
    #: symbolic axis name -> its real size as a 1-element int64 value (batch, time axes)
    sizes: dict[str, str] = field(default_factory=dict)
    #: ``(max(batch, 1),)`` bool: rows of length 0 (lengths given), which give 0 in every output; None: none can
    empty_lengths: str | None = None
    #: time axis -> ``(1,)`` bool, whether it is 0 long: then every row gives 0 in every output
    empty_time: dict[str, str] = field(default_factory=dict)
    #: lengths input -> its clamped value ``0..time`` (batch padded), before the lowerings' ``max(L, 1)``:
    #: what a chunk model advances its streams by (a row of a chunk may have 0 steps)
    valid_lengths: dict[str, str] = field(default_factory=dict)
    #: ``(1,)`` int64: the rows the padding adds, 1 for an empty batch, else 0
    missing_rows: str | None = None
    #: ``(("batch", time axis), value)``: both sizes as one ``(2,)`` int64 value (see `_lead`), or None
    joint: tuple[tuple[str, str], str] | None = None
    #: the number of nodes of the prelude: the lowered graph starts after them
    prelude_end: int = 0
    _built: dict[tuple[str | int, ...], str] = field(default_factory=dict)

    def redirect(self) -> None:
        """Point every node emitted after the prelude (bodies included) at the guarded values."""
        rename(self.g.nodes[self.prelude_end:], self.guarded)

    def output(self, value: str, spec: TensorSpec, zero_empty_rows: bool = True) -> str:
        """An output: 0 in the empty rows (unless not `zero_empty_rows`), cut back to the real batch and time sizes.

        A chunk model's final states keep the state of a row with no step in the chunk (it was taken
        back by the streaming lowering), so they are not zeroed.
        """
        if spec.kind == SCALAR:
            return value
        g = self.g
        dims = spec.dims()
        empty = self.empty_rows(dims) if zero_empty_rows else None
        if empty is not None:
            rows = self._once(("rows", empty, len(dims)), lambda: g.unsqueeze(empty, list(range(1, len(dims))))
                              if len(dims) > 1 else empty)
            zero = g.const("zero", 0, compiler_dtype(spec.dtype))
            value = g.op("Where", rows, zero, value, name="empty_rows_zeroed")
        axes = tuple(axis for axis, d in enumerate(dims) if isinstance(d, str) and d in self.sizes)
        if not axes:
            return value
        names = tuple(str(dims[axis]) for axis in axes)
        if self.joint is not None and names == self.joint[0]:
            ends = self.joint[1]
        else:
            ends = self._once(("ends", *names), lambda: g.op("Concat", *[self.sizes[n] for n in names], axis=0)
                              if len(names) > 1 else self.sizes[names[0]])
        return g.op("Slice", value, g.const("starts", [0] * len(axes), "int64"), ends,
                    g.const("axes", list(axes), "int64"), name="real_sizes")

    def empty_rows(self, dims: Sequence[object]) -> str | None:
        """``(max(batch, 1),)`` or ``(1,)`` bool: the rows an output of axes `dims` must give 0 in; None: none.

        An output cut to a time axis of 0 has no steps left to clear, so that axis's flag is not
        applied to it (a node less on every run); rows of length 0 and other time axes still are.
        """
        flags = [flag for axis, flag in self.empty_time.items() if axis not in dims]
        flags += [self.empty_lengths] if self.empty_lengths is not None else []
        if not flags:
            return None
        return self._once(("empty", *flags), lambda: functools.reduce(
            lambda a, b: self.g.op("Or", a, b, name="empty_rows"), flags))

    def pad_rows(self, value: str, rank: int) -> str:
        """A batch-first ``value`` of another graph input (a chunk model's state) padded like the model's inputs."""
        if self.missing_rows is None:
            return value
        g = self.g
        zero = g.const("zero", [0], "int64")
        pads = g.op("Concat", *[zero] * rank, self.missing_rows, *[zero] * (rank - 1), axis=0, name="state_pads")
        return g.op("Pad", value, pads, name="at_least_one_row")

    def cut_rows(self, value: str) -> str:
        """A batch-first ``value`` cut back to the real batch size (the counterpart of `pad_rows`)."""
        if "batch" not in self.sizes:
            return value
        g = self.g
        return g.op("Slice", value, g.const("starts", [0], "int64"), self.sizes["batch"],
                    g.const("axes", [0], "int64"), name="real_batch")

    def _once(self, key: tuple[str | int, ...], build: Callable[[], str]) -> str:
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]


def prelude(g: GraphBuilder, model: Model, device: str = "cpu") -> Guards:
    """Emit the input padding, lengths defaults and clamps and count caps; call after declaring the inputs.

    `device` ``cuda`` (`ExportOptions.device`): int64 values are padded without ``Pad``, which has
    no int64 kernel on onnxruntime's CUDA provider (`pad_with_zeros`).
    """
    guards = Guards(g, model)
    one, zero = g.const("one", [1], "int64"), g.const("zero", [0], "int64")
    with g.scope("guard"):
        for name, spec in model.inputs.items():
            if spec.kind != SCALAR:
                guards.sizes.setdefault("batch", g.dim(name, 0))
            if spec.kind == SEQUENCE:
                guards.sizes.setdefault(spec.time, g.dim(name, 1))
        # how many rows and steps the padding adds: max(1 - size, 0), 1 for an empty axis, else 0
        missing = {axis: g.op("Max", g.op("Sub", one, size), zero, name=f"missing_{axis}")
                   for axis, size in guards.sizes.items()}
        guards.missing_rows = missing.get("batch")
        lead = _lead(model, g.opset)
        if lead is not None:  # batch and time of the first sequence in one Shape: fewer nodes on every run
            guards.joint = (("batch", model.inputs[lead].time), g.op("Shape", lead, start=0, end=2, name="batch_time"))
            joint_missing = g.op("Max", g.op("Sub", one, guards.joint[1]), zero, name="missing_batch_time")
        for name, spec in model.inputs.items():
            if spec.kind == SCALAR:
                assert spec.count_max is not None
                guards.guarded[name] = g.op("Min", g.op("Max", name, g.const("zero_s", 0, "int64")),
                                            g.const("max", spec.count_max, "int64"), name=f"{name}/capped")
                continue
            dims = spec.dims()
            if spec.dtype == "int64" and device == "cuda":  # token ids
                ends = [missing[d] if isinstance(d, str) and d in missing else zero for d in dims]
                guards.guarded[name] = pad_with_zeros(g, name, [e if e != zero else None for e in ends],
                                                      f"{name}/at_least_one")
                continue
            if guards.joint is not None and tuple(dims[:2]) == guards.joint[0]:
                ends = [joint_missing, *[zero] * (len(dims) - 2)]
            else:
                ends = [missing[d] if isinstance(d, str) and d in missing else zero for d in dims]
            pads = g.op("Concat", *[zero] * len(dims), *ends, axis=0, name=f"{name}/pads")
            guards.guarded[name] = g.op("Pad", name, pads, name=f"{name}/at_least_one")
        for lengths, owners in model.lengths.items():
            _lengths(guards, lengths, model.inputs[owners[0]].time, missing["batch"], device)
        # a time axis of 0: every row is a row of length 0
        guards.empty_time = {axis: g.op("Equal", size, zero, name=f"empty_{axis}")
                             for axis, size in guards.sizes.items() if axis != "batch"}
    guards.prelude_end = len(g.nodes)
    return guards


def _lead(model: Model, opset: int) -> str | None:
    """The input whose shape gives both the batch size and its time size (Shape's start/end need opset 15)."""
    first = next((name for name, spec in model.inputs.items() if spec.kind != SCALAR), None)
    if opset < 15 or first is None or model.inputs[first].kind != SEQUENCE:
        return None
    return first


def _lengths(guards: Guards, lengths: str, time_axis: str, missing_rows: str, device: str) -> None:
    g = guards.g
    # an empty initializer of the input's name: onnxruntime makes the input optional, the empty
    # default standing for "every row full" (a given (batch,) tensor comes first in the Concat)
    g.initializers.append(numpy_helper.from_array(np.zeros(0, dtype=np.int64), lengths))
    batch, time = guards.sizes["batch"], guards.sizes[time_axis]
    with g.scope(lengths):
        full = g.op("Expand", time, batch, name="full")
        given = g.op("Slice", g.op("Concat", lengths, full, axis=0), g.const("zero", [0], "int64"), batch,
                     name="given_or_full")
        clamped = g.op("Min", g.op("Max", given, g.const("zero_s", 0, "int64")), time, name="clamped")
        # the padding row of an empty batch has length 0 too; the lowerings read at least 1 step
        padded = (pad_with_zeros(g, clamped, [missing_rows], "padded") if device == "cuda" else
                  g.op("Pad", clamped, g.op("Concat", g.const("zero", [0], "int64"), missing_rows, axis=0),
                       name="padded"))
        guards.valid_lengths[lengths] = padded
        guards.guarded[lengths] = g.op("Max", padded, g.const("one_s", 1, "int64"), name="at_least_one")
        empty = g.op("Equal", padded, g.const("zero_s", 0, "int64"), name="empty")
    guards.empty_lengths = empty if guards.empty_lengths is None else g.op("Or", guards.empty_lengths, empty)


def pad_with_zeros(g: GraphBuilder, value: str, ends: list[str | None], name: str) -> str:
    """int64 `value` with ``ends[k]`` zeros appended along each axis k (None: none), without ``Pad``.

    onnxruntime's CUDA provider has no int64 ``Pad`` kernel; zeros of the missing extent
    (``ConstantOfShape``) concatenated axis by axis give the same tensor on every provider.
    """
    for axis, end in enumerate(ends):
        if end is None:
            continue
        extent = [end if k == axis else g.dim(value, k) for k in range(len(ends))]
        shape = extent[0] if len(extent) == 1 else g.op("Concat", *extent, axis=0, name=f"{name}/shape")
        value = g.op("Concat", value, g.filled(shape, 0, "int64", f"{name}/zeros"), axis=axis, name=name)
    return value


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


def padding_zero(g: GraphBuilder, valid: str | None, y: str) -> str:
    """A Scan's ``y (batch, time, out)`` with its padded steps 0 (`valid` ``(batch, time, 1)`` bool, None:
    unpadded). The Scan keeps the NaN rule by itself; a NaN state times the 0 mask is NaN, so `Where`."""
    if valid is None:
        return y
    return g.op("Where", valid, y, g.const("zero_f", 0.0), name="padding_zero")


def propagate_nan(g: GraphBuilder, y: str, maxed: str) -> str:
    """``maxed (batch, size)``, the ReduceMax of ``y (batch, time, size)`` over time, NaN where y has a NaN.

    onnxruntime's ReduceMax returns the largest number and may skip a NaN; the NaN rule
    (and NumPy) says the maximum of anything with a NaN is NaN. Padded steps hold 0, never NaN.
    """
    any_nan = reduce(g, "ReduceMax", g.cast(g.op("IsNaN", y), "float"), [1], name="any_nan")
    return g.op("Where", g.op("Greater", any_nan, g.const("zero_f", 0.0)), g.const("nan", np.nan), maxed,
                name="max_nan")
