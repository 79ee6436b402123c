"""The NaN rule for onnxruntime's native recurrent ops, paid for only by inputs that hold a NaN.

The rule (docs/errors.md, "What an exported graph does"): a NaN in a valid step makes that step's
output and every later one of its row NaN, and the row's final states; padded steps stay 0. The
Scan lowering computes it by itself. onnxruntime's LSTM/GRU/RNN kernels give ordinary numbers
after a NaN, so the native path marks the rows outside the op (`marks`).

Marking costs an Add over all of ``y`` and a few nodes over ``(time, batch)`` on every run (~90 µs
of a 2.4 ms LSTM at batch 1, T=2000, input 32, hidden 64, profiled), while a NaN is rare. So the
graph checks first, with one ``ReduceSum`` over all of ``x``: the sum is NaN exactly when some step's
sum is (a NaN feature, or +inf beside −inf: a step's sum is a part of the whole, and NaN absorbs
every addition), and an ``If`` runs the native op with the marks when it is, the bare op when not::

    If(IsNaN(ReduceSum(x_tm)))
        then: the native op, then the marks on Y, Y_h (and Y_c)
        else: the native op

The op sits in both branches (its weights are initializers of the enclosing graph, stored once,
`SharedConstBuilder`) because an ``If`` output made in its branch is written in place, while one
that passes a value through is a copy of it (~40 µs for that ``y``, measured). The branches return
the op's layout-0 outputs ``Y (time, 1, batch, h)``, ``Y_h (1, batch, h)``; the caller squeezes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from rnngraph.compiler.builder import FLOAT, GraphBuilder
from rnngraph.compiler.by_batch import SharedConstBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.idioms import reduce
from rnngraph.dsl.tensor import TensorSpec

#: the native lowering, run in a branch: ``(ctx) -> (y, finals)`` as `recurrent.from_native_outputs` gives them
Emit = Callable[[LoweringContext], tuple[str, dict[str, str]]]


def guarded_native(ctx: LoweringContext, emit: Emit, x_tm: str, spec: TensorSpec, reverse: bool
                   ) -> tuple[str, dict[str, str]]:
    """The native op `emit` builds, over time-major ``x_tm``, under the NaN rule (module docstring).

    Returns the op's layout-0 ``Y`` and final states by name, the `If`'s outputs.
    """
    g = ctx.g
    any_nan = nan_anywhere(ctx, x_tm)
    shared: dict[tuple[Any, ...], str] = {}
    branches, names = [], []
    for branch in ("nan_found", "no_nan"):
        # within a branch already (by_batch), its body() shares the weights with the enclosing graph's
        b = g.body(branch) if isinstance(g, SharedConstBuilder) else SharedConstBuilder(g, g, shared, branch)
        sub = replace(ctx, g=b, time_major=dict(ctx.time_major), _cache=dict(ctx._cache))
        y, finals = emit(sub)
        names = list(finals)
        outs = [unsqueezed(b, sub.time_major[y]), *[unsqueezed(b, v) for v in finals.values()]]
        if branch == "nan_found":
            y_raw, finals_raw = marks(b, x_tm, sub.valid(spec, x_tm, time_axis=0), reverse, outs[0],
                                      dict(zip(names, outs[1:], strict=True)))
            outs = [y_raw, *finals_raw.values()]
        for k, value in enumerate(outs):
            b.add_output(value, FLOAT, [None, None, None, None] if k == 0 else [None, None, None])
        branches.append(b.graph(branch))
    out = g.op_n("If", any_nan, outputs=1 + len(names), name="nan_rule",
                 then_branch=branches[0], else_branch=branches[1])
    return out[0], dict(zip(names, out[1:], strict=True))


def nan_anywhere(ctx: LoweringContext, x: str) -> str:
    """Bool scalar: whether `x` holds a NaN anywhere (or +inf beside −inf), from one ``ReduceSum``; built once
    per value, so the two directions of a Bidirectional and the by-batch choice (rnngraph/compiler/by_batch.py)
    read one test."""
    g = ctx.g
    return ctx.cached(("nan_anywhere", x), lambda: g.op(
        "IsNaN", g.op("ReduceSum", x, keepdims=0, name=f"{x}/sum"), name=f"{x}/any_nan"))


def unsqueezed(b: GraphBuilder, value: str) -> str:
    """The input of the ``Squeeze`` in `b` that made `value` (the op's layout-0 output behind it)."""
    made = next(node for node in reversed(b.nodes) if value in node.output)
    assert made.op_type == "Squeeze", f"a native lowering's output {value} is not its op's squeezed output"
    return made.input[0]


def marks(g: GraphBuilder, x: str, valid: str | None, reverse: bool, y: str, finals: Mapping[str, str]
          ) -> tuple[str, dict[str, str]]:
    """The NaN rule on a native op's layout-0 ``y (time, 1, batch, out)`` and final states ``(1, batch, size)``.

    From its input ``x (time, batch, in)``, `valid` ``(time, batch, 1)`` bool (None: unpadded). A step is
    NaN when the sum of its features is (one ReduceSum: a NaN feature, or +inf beside −inf, which makes
    the gates NaN too); every valid step from a row's first NaN step on, in the direction of the run, and
    the row's final states become NaN.

    The marks are one tensor ``(time, batch, 1)``, NaN at a NaN step and 0 elsewhere (``√−flag``), run
    through ``CumSum`` over time: a sum carries a NaN on to every later step, so the running sum is NaN
    from the first NaN step on and 0 before it, and adding it to ``y`` marks exactly those steps (no
    compare-and-select per output). Its sum over time is NaN for a row with a NaN step, 0 otherwise:
    added to the final states. A forward run carries its NaN on into the padded steps, which are
    cleared after the Add (a reverse run meets them before any valid step, so its running sum is 0 there).
    """
    nan_step = g.op("IsNaN", reduce(g, "ReduceSum", x, [2], keepdims=1), name="nan_step")  # (time, batch, 1)
    if valid is not None:  # a value in a padded step is not read
        nan_step = g.op("And", nan_step, valid, name="valid_nan")
    # √(−1) = NaN, √(−0) = −0: three element-wise nodes on (time, batch, 1), where a Where broadcasting two
    # scalars costs ~25 ns an element in onnxruntime (48 µs of a 2.4 ms LSTM at T=2000, profiled)
    marks = g.op("Sqrt", g.op("Neg", g.cast(nan_step, FLOAT)), name="marks")
    seen = g.op("CumSum", marks, g.const("time_axis", 0, "int64"), reverse=int(reverse), name="seen")
    y = g.op("Add", y, g.unsqueeze(seen, [1]), name="y")  # (time, 1, batch, out)
    if valid is not None and not reverse:
        y = g.op("Where", g.unsqueeze(valid, [1]), y, g.const("zero_f", 0.0), name="padding_zero")
    row_nan = reduce(g, "ReduceSum", marks, [0], keepdims=0, name="row_nan")  # (batch, 1): NaN or 0
    return y, {name: g.op("Add", value, row_nan, name=name) for name, value in finals.items()}
