"""A cell whose faster lowering depends on the batch size: both paths in one graph, chosen when it runs.

Measured here (benchmarks/native_crossover.py; docs/classic-rnn.md, "The exported graph"): for the tanh
RNN, onnxruntime's native ``RNN`` kernel beats a Scan at small batches and loses at large ones, and
where the two cross depends on the hidden size and on padding. The batch is a dynamic axis, unknown
at export, so `auto` exports both and an ``If`` picks one per run::

    If(batch <= limit and not IsNaN(ReduceSum(x)))
        then: the native op            (time-major in and out, as in a chain of native layers)
        else: the Scan over the cell   (which keeps the NaN rule by itself, rnngraph/compiler/nan_rule.py)

The limit comes from the cell's lowering (`CellLowering.native_batch_limit`, its measured cost
model). Each branch is lowered by the ordinary code (`run_path`) into its own subgraph; their
weights are initializers of the enclosing graph, one copy each, which both branches (and the
Scan body) read by name: the file holds every weight once (`SharedConstBuilder`). Both branches
read the sequence time-major (converted before the If, or as a native layer below left it; the
Scan scans it on axis 0) and return it so, in the native op's layout ``(time, 1, batch, out)``
(squeezed after the ``If``, where that is free); the caller sees one batch-first value with its
time-major twin, like any native output, and the two directions of a Bidirectional share the
conversions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rnngraph.compiler.builder import FLOAT, GraphBuilder
from rnngraph.compiler.context import LoweringContext

if TYPE_CHECKING:
    from rnngraph.compiler.recurrent import SequenceInput

RunPath = Callable[..., tuple[str, dict[str, str]]]
#: constants up to this many elements stay in the subgraph that uses them (the builder's own sharing of small ones)
SMALL = 16


class SharedConstBuilder(GraphBuilder):
    """A subgraph builder (If branch, or a Scan body inside one) whose weights live in `root`'s graph.

    Weights (constants above `SMALL` elements) with the same dtype, shape and bytes get one
    initializer, whichever branch asks; small constants stay in the subgraph.
    """

    def __init__(self, parent: GraphBuilder, root: GraphBuilder, shared: dict[tuple[Any, ...], str],
                 scope: str | None = None) -> None:
        vars(self).update(vars(GraphBuilder.body(parent, scope)))
        self._root, self._shared = root, shared

    def const(self, base: str, value: np.ndarray | np.generic | float | int | Sequence[int],
              dtype: str = FLOAT) -> str:
        array = np.asarray(value, dtype=np.dtype(dtype))
        if array.size <= SMALL:
            # kept where it is used: each outer value a Scan body reads is one more implicit input per iteration
            return GraphBuilder.const(self, base, array, dtype)
        key = (dtype, array.shape, array.tobytes())
        if key not in self._shared:
            self._shared[key] = self._root.const(base, array, dtype)
        return self._shared[key]

    def body(self, scope: str | None = None) -> GraphBuilder:
        return SharedConstBuilder(self, self._root, self._shared, scope)


def by_batch(ctx: LoweringContext, cell: Any, p: Mapping[str, np.ndarray], seq: SequenceInput,
             initial: dict[str, str] | None, limit: int, run_path: RunPath) -> tuple[str, dict[str, str]]:
    """`cell` over `seq`: the native op when the batch is at most `limit` and x holds no NaN, else the Scan
    (module docstring)."""
    from rnngraph.compiler.nan_rule import nan_anywhere, unsqueezed
    from rnngraph.compiler.recurrent import batch_first, cell_lowering, time_major

    g = ctx.g
    # time-major before the If: both branches read it (the Scan on axis 0), two directions share it
    x_tm = time_major(ctx, seq.x)
    batch = g.dim(x_tm, 1)
    small = g.op("LessOrEqual", batch, g.const("native_limit", [limit], "int64"), name="native_batch")
    # an input with a NaN (its sum is NaN: rnngraph/compiler/nan_rule.py) takes the Scan, which keeps the NaN
    # rule by itself: the native branch runs the bare op, without a second If for the rule inside it
    clean = g.op("Not", nan_anywhere(ctx, x_tm), name="no_nan")
    native_runs = g.op("And", small, clean, name="native_runs")
    shared: dict[tuple[Any, ...], str] = {}
    branches = {}
    widths = [cell.output_size, *cell.state_sizes().values()]
    for path, native in (("native", cell_lowering(cell).native_beside_scan), ("scan", None)):
        b = SharedConstBuilder(g, g, shared, path)
        # a branch reads outer values by name; what it builds (masks, twins) stays in it
        sub = replace(ctx, g=b, time_major=dict(ctx.time_major), _cache=dict(ctx._cache))
        y, finals = run_path(sub, path, cell, p, seq, initial, native, nan_free=True)
        # y leaves in the op's layout (time, 1, batch, out), squeezed after the If: a Squeeze in the branch would
        # copy all of y into the If's output (~35 µs at T=2000, profiled), one outside only relabels it
        y_tm = sub.time_major[y]
        outs = [unsqueezed(b, y_tm) if path == "native" else b.unsqueeze(y_tm, [1]), *finals.values()]
        produced = {o for node in b.nodes for o in node.output}
        outs = [v if v in produced else b.op("Identity", v, name="out") for v in outs]
        for value, width in zip(outs, widths, strict=True):
            b.add_output(value, FLOAT, [None, 1, None, width] if value == outs[0] else [None, width])
        branches[path] = (b.graph(f"{path}_branch"), list(finals))
    names = branches["scan"][1]
    out = g.op_n("If", native_runs, outputs=1 + len(names), name="by_batch",
                 then_branch=branches["native"][0], else_branch=branches["scan"][0])
    return batch_first(ctx, g.squeeze(out[0], [1])), dict(zip(names, out[1:], strict=True))
