"""Running a cell over time: the Scan driver, the native-op path, and the choice between them.

A cell lowering (a `CellLowering`, found through the cell registry `rnngraph.dsl.registry`) supplies:

- `hoist(g, cell, p, seq) -> [u_1, …]`: work that does not depend on the
  recurrent state, done once for all steps before the loop (the input
  projection ``X·Wᵀ + b`` as one MatMul). Each ``u_k`` is ``(batch, time, n_k)``
  and becomes one scan input. Hoist must work on the last axis only (MatMul,
  Add, …): inside a Loop body (greedy decoding, generation) the same function
  is applied to one step, ``seq.x`` of shape ``(batch, in)`` (see `step_once`).
  A cell that needs the time index sets `needs_step_index`; `seq.step_index`
  is then ``(batch, time, 1)`` float, the step number of each row (0 at the
  row's first processed step, also when running in reverse), or ``(batch, 1)``
  inside a Loop body.
- `step(body, cell, p, states, inputs) -> (new_states, y)`: the recurrent part
  of one step inside the Scan body; `states` and `inputs` are ``(batch, ·)``.
- optionally `native(ctx, cell, p, x, seq, initial) -> (y, finals)`: ONNX's own
  LSTM/GRU/RNN op, for cells whose semantics it matches exactly.

The driver owns everything that is the same for all cells: zero initial states,
padding (a row's state is frozen past its length with the arithmetic blend
``s + m·(s_new − s)``, cheaper in onnxruntime than `Where`; outputs there are 0; it relies
on the padded steps holding finite values, which `lower_input` guarantees by clearing them),
direction (reverse scans run from the last step back, and the blend keeps each
padded row at its initial state until its own last valid step), and final states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.registry import implementation
from rnngraph.dsl.tensor import TensorSpec
from rnngraph.errors import ExportError


@dataclass(frozen=True)
class SequenceInput:
    """A batch-first sequence value being run over: its spec, mask and direction."""

    x: str
    spec: TensorSpec
    mask: str | None  # (batch, time, 1) float, None when unpadded
    lengths_i32: str | None
    reverse: bool = False
    #: per-row step number, set by the driver for cells with `needs_step_index`
    step_index: str | None = None


# the `cell` argument is the registered Cell subclass, hence Any
Hoist = Callable[[GraphBuilder, Any, Mapping[str, np.ndarray], SequenceInput], list[str]]
Step = Callable[[GraphBuilder, Any, Mapping[str, np.ndarray], dict[str, str], list[str]], tuple[dict[str, str], str]]
Native = Callable[[LoweringContext, Any, Mapping[str, np.ndarray], SequenceInput, dict[str, str] | None],
                  tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class CellLowering:
    hoist: Hoist
    step: Step
    native: Native | None = None
    #: whether the native op computes exactly this cell (e.g. not for every option)
    native_exact: Callable[[Any], bool] = lambda cell: True
    #: what `auto` picks when both paths apply, from measurements (see benchmarks/)
    prefer_native: bool = False
    #: whether `hoist` reads `seq.step_index` (Clockwork's clock)
    needs_step_index: bool = False


def cell_lowering(cell: Cell) -> CellLowering:
    """The ONNX lowering of `cell`, from the cell registry (`rnngraph.dsl.registry`, backend ``onnx``)."""
    lowering: CellLowering = implementation(cell, "onnx")
    return lowering


def choose_path(lowering: str, cell: Cell) -> str:
    """``native`` where the cell maps exactly onto ONNX's op and it is asked for (or faster), else ``scan``."""
    impl = cell_lowering(cell)
    native_ok = impl.native is not None and impl.native_exact(cell)
    if lowering == "native" and native_ok:
        return "native"
    if lowering == "auto" and native_ok and impl.prefer_native:
        return "native"
    return "scan"


def run_cell(
    ctx: LoweringContext,
    node: str,
    cell: Cell,
    p: Mapping[str, np.ndarray],
    seq: SequenceInput,
    initial: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Lower `cell` over `seq`; returns ``y (batch, time, out)`` and the final states by name."""
    path = choose_path(ctx.lowering, cell)
    ctx.paths[node] = path
    impl = cell_lowering(cell)
    if path == "native":
        assert impl.native is not None
        return impl.native(ctx, cell, p, seq, initial)
    return scan_cell(ctx, cell, impl, p, seq, initial)


def scan_cell(
    ctx: LoweringContext,
    cell: Cell,
    impl: CellLowering,
    p: Mapping[str, np.ndarray],
    seq: SequenceInput,
    initial: dict[str, str] | None,
) -> tuple[str, dict[str, str]]:
    g = ctx.g
    sizes = cell.state_sizes()
    if impl.needs_step_index:
        seq = replace(seq, step_index=step_index(ctx, seq))
    hoisted = impl.hoist(g, cell, p, seq)
    if initial is None:
        initial = {name: g.zeros_state(seq.x, size) for name, size in sizes.items()}
    scanned = hoisted + ([seq.mask] if seq.mask is not None else [])

    body = g.body()
    with body.scope("body"):
        states = {name: body.add_input(body.fresh(f"{name}_prev"), "float32", [None, size])
                  for name, size in sizes.items()}
        inputs = [body.add_input(body.fresh(f"u{k}_t"), "float32", None) for k in range(len(hoisted))]
        mask_t = body.add_input(body.fresh("mask_t"), "float32", [None, 1]) if seq.mask is not None else None
        new_states, y = impl.step(body, cell, p, dict(states), inputs)
        if mask_t is not None:
            # where y is a state (h), read it back from the blended state: s + 1·(new − s) can differ from
            # new by an ulp, and the output must be the state carried on, bit for bit (Clockwork's kept groups)
            y_state = next((name for name in sizes if new_states[name] == y), None)
            new_states = keep_where_masked(body, states, new_states, mask_t)
            y_out = body.op("Mul", new_states[y_state] if y_state else y, mask_t, name="y_masked")
        else:
            # a value may not be listed twice among body outputs (onnxruntime stops feeding the state back)
            y_out = body.op("Identity", y, name="y_t") if y in new_states.values() else y
        for name, size in sizes.items():
            body.add_output(new_states[name], "float32", [None, size])
        body.add_output(y_out, "float32", [None, cell.output_size])
    direction = 1 if seq.reverse else 0
    outs = g.op(
        "Scan", *initial.values(), *scanned,
        outputs=len(sizes) + 1, name="scan",
        body=body.graph("body"),
        num_scan_inputs=len(scanned),
        scan_input_axes=[1] * len(scanned),
        scan_input_directions=[direction] * len(scanned),
        scan_output_axes=[1],
        scan_output_directions=[direction],
    )
    finals = dict(zip(sizes, outs[: len(sizes)], strict=True))
    return outs[-1], finals


def keep_where_masked(body: GraphBuilder, states: Mapping[str, str], new_states: Mapping[str, str],
                      mask_t: str) -> dict[str, str]:
    """``s + m·(s_new − s)`` per state: s_new where m = 1, s kept exactly where m = 0 (``mask_t (batch, 1)``).

    The arithmetic blend, not `Where`: onnxruntime runs it 3–4× cheaper inside loop bodies.
    """
    kept = {}
    for name, old in states.items():
        delta = body.op("Sub", new_states[name], old, name=f"{name}_delta")
        kept[name] = body.op("Add", old, body.op("Mul", mask_t, delta), name=f"{name}_kept")
    return kept


def step_once(
    body: GraphBuilder,
    cell: Cell,
    p: Mapping[str, np.ndarray],
    states: dict[str, str],
    x_t: str,
    step_index_t: str | None = None,
) -> tuple[dict[str, str], str]:
    """One full step inside a Loop body, where nothing can be hoisted: ``x_t (batch, in)``.

    `step_index_t` is ``(batch, 1)`` float, required by cells with `needs_step_index`.
    Returns the new states and ``y_t (batch, out)``; no padding is applied.
    """
    impl = cell_lowering(cell)
    if impl.needs_step_index and step_index_t is None:
        raise ExportError(f"{type(cell).__name__} needs the step index inside this loop; the caller gave none.")
    seq = SequenceInput(x_t, TensorSpec("vector", 0), None, None, False, step_index_t)
    return impl.step(body, cell, p, dict(states), impl.hoist(body, cell, p, seq))


def step_index(ctx: LoweringContext, seq: SequenceInput) -> str:
    """``(batch, time, 1)`` float: step t forward, ``lengths[b] - 1 - t`` in reverse.

    Each row counts from 0 at its own first processed step; in reverse over padded
    rows the padded steps (processed before the row's last valid step) get negative
    numbers, which the driver's padding blend makes irrelevant.
    """
    g = ctx.g
    with g.scope("step_index"):
        time = g.dim(seq.x, 1)
        steps = g.op("Cast", g.op("Range", g.const("zero", 0, "int64"), g.squeeze(time, [0]),
                                  g.const("one", 1, "int64")), to=1)
        steps = g.unsqueeze(steps, [0, 2])  # (1, time, 1)
        if seq.reverse:
            # the last step of each row ((batch, 1, 1) with lengths, else one (1,) for all rows)
            last_steps = g.unsqueeze(seq.lengths_i32, [1, 2]) if seq.lengths_i32 is not None else time
            last = g.op("Sub", g.op("Cast", last_steps, to=1), g.const("one_f", 1.0))
            steps = g.op("Sub", last, steps)
        shape = g.op("Concat", g.dim(seq.x, 0), time, g.const("one_i", [1], "int64"), axis=0)
        return g.op("Expand", steps, shape, name="steps")  # (batch, time, 1)


def input_projection(g: GraphBuilder, seq: SequenceInput, W: np.ndarray, b: np.ndarray, name: str = "x_proj") -> str:
    """``X·Wᵀ + b`` for all steps at once: ``(batch, time, in) -> (batch, time, out)`` (or one step)."""
    xw = g.op("MatMul", seq.x, g.const("W_T", np.ascontiguousarray(W.T)), name=f"{name}/MatMul")
    return g.op("Add", xw, g.const("bias", b), name=name)


def to_time_major(g: GraphBuilder, x: str) -> str:
    return g.op("Transpose", x, perm=[1, 0, 2], name="time_major")


def from_native_outputs(g: GraphBuilder, y: str, finals: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """ONNX layout-0 outputs ``Y (time, 1, batch, h)``, ``Y_h (1, batch, h)`` → batch-first."""
    y_bt = g.op("Transpose", g.squeeze(y, [1]), perm=[1, 0, 2], name="batch_major")
    return y_bt, {name: g.squeeze(v, [0]) for name, v in finals.items()}
