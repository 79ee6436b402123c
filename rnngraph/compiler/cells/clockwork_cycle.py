"""Clockwork's ``cycle`` form: one Scan iteration runs a whole cycle of the clock, unrolled.

With periods that divide each other, every row runs the same schedule, which repeats after
the longest period P; at step j of a cycle groups 0 … n_j − 1 fire (`cycle_groups`). So the
clock is known at export: the Scan runs over cycles, not steps, and the body holds the P
steps of one cycle with their firing groups fixed:

    x padded to whole cycles → u (batch, cycles·P, H) → (batch, cycles, P·H), split in the body by step
    step j:  h_k = φ(Gemm([h_k; …; h_{G−1}], R_k, u_jk)) for each firing group k < n_j, h_k kept for k ≥ n_j
    y of the cycle: [h after step 0, …, h after step P−1]   (batch, P·H) → (batch, time, H)

R_k = ``R[rows_k, start_k:]`` is group k's block row without the zero blocks left of the
diagonal (which no step multiplies, so a NaN in a fast group never reaches a slower one,
as in the oracle); each block is stored once and read by every step its group fires, so
the weights the loop touches are fewer than the dense step's (which matters once R
outgrows the cache). Inside the cycle the state is kept as one value per group, so a
resting group's rows are never copied; the cycle's output is one Concat of them all.
The steps the padding adds run on finite inputs and are cut off; with
ragged lengths the padded steps of a row run too, their outputs are cleared afterwards
(the NaN rule's `Where`, `recurrent.run_cell`) and the row's final state is its output at
its last valid step (a Clockwork's output is its state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.idioms import activate
from rnngraph.compiler.loop import LoopBody
from rnngraph.compiler.over_time import last_valid
from rnngraph.compiler.recurrent import BoundCell, FoldedBias, SequenceInput, input_projection
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.tensor import SEQUENCE

#: the longest cycle the form unrolls (its body has up to 3 nodes per step of the cycle)
MAX_CYCLE = 16


def cycle_groups(cell: Clockwork) -> list[int]:
    """n_j for each step j of one cycle (periods that nest): groups 0 … n_j − 1 fire at step j."""
    assert cell.periods is not None
    return [sum(1 for period in cell.periods if j % period == 0) for j in range(cell.periods[-1])]


def rows_from(b: GraphBuilder, h: str, state: list[str], bounds: list[tuple[int, int]], k: int, name: str) -> str:
    """``[h_k; …; h_{G−1}]``, what group k reads: from the per-group `state`, or (none yet) from the carried h."""
    if not state:
        if k == 0:
            return h
        return b.op("Slice", h, b.const("start", [bounds[k][0]], "int64"), b.const("end", [bounds[-1][1]], "int64"),
                    b.const("one_i", [1], "int64"), name=name)
    return state[k] if k == len(state) - 1 else b.op("Concat", *state[k:], axis=1, name=name)


def cycle_fits(cell: Clockwork) -> bool:
    """Whether the form can run `cell`: nested periods and a cycle of at most `MAX_CYCLE` steps."""
    assert cell.periods is not None
    return cell.nested_periods() and cell.periods[-1] <= MAX_CYCLE


def cycle_runs(seq: SequenceInput) -> bool:
    """Whether every row of `seq` is at step t at scan step t: forward, a whole sequence, no clock offset."""
    return seq.spec.kind == SEQUENCE and seq.clock_start is None and not seq.reverse


def scan_cycles(ctx: LoweringContext, bound: BoundCell, p: Mapping[str, np.ndarray], seq: SequenceInput,
                initial: dict[str, str] | None) -> tuple[str, dict[str, str]] | None:
    """``y (batch, time, H)`` and the final state of the ``cycle`` form; None for the other forms."""
    if bound.form != "cycle":
        return None
    g, cell = ctx.g, bound.cell
    hidden, active = cell.hidden, cycle_groups(cell)
    period = len(active)

    def rows_of(n: int) -> int:
        return cell.bounds[n - 1][1] if n else 0

    with g.scope("cycle"):
        time = g.dim(seq.x, 1)
        whole = g.const("period", [period], "int64")
        short = g.op("Mod", g.op("Sub", whole, g.op("Mod", time, whole)), whole, name="short")  # steps to add
        pads = g.op("Concat", g.const("no_pads", [0, 0, 0, 0], "int64"), short, g.const("no_pad", [0], "int64"),
                    axis=0, name="pads")
        # the input (narrower than u) padded to whole cycles; the added steps run on zeros and are cut off
        x = g.op("Pad", seq.x, pads, name="whole_cycles")
        u = input_projection(g, replace(seq, x=x), p["W"], FoldedBias(p["B"][:hidden], p["B"][hidden:]))
        u = g.op("Reshape", u, g.const("by_cycle", [0, -1, period * hidden], "int64"), name="u_by_cycle")
    loop = LoopBody(g, "scan")
    h = loop.carry("h", initial["h"] if initial else g.zeros_state(seq.x, hidden), [None, hidden])
    b = loop.b
    u_t = loop.scan(u, "u_cycle", [None, period * hidden])
    # one Split: at step j, each firing group's rows of u, then (unused) the rest of the step's rows
    bounds, groups = cell.bounds, len(cell.bounds)
    sizes = [size for n in active for size in [stop - start for start, stop in bounds[:n]] + [hidden - rows_of(n)]
             if size]
    u_parts = iter(b.op_n("Split", u_t, b.const("sizes", sizes, "int64"), axis=1, outputs=len(sizes), name="u_steps"))
    # group k's block row without the zero blocks left of the diagonal, stored once, read by every step it fires
    blocks = [b.const(f"R_block{k}", p["R"][start:stop, start:]) for k, (start, stop) in enumerate(bounds)]
    # the state as one value per group: a resting group's rows are never copied, a firing group reads the
    # groups from its own on (a Concat; at step 0, every group fires, a Slice of the carried h)
    state: list[str] = []
    outputs: list[str] = []
    for j, n in enumerate(active):
        if n:
            reads = [rows_from(b, h, state, bounds, k, f"h{j}_from{k}") for k in range(n)]
            state = [activate(b, b.op("Gemm", reads[k], blocks[k], next(u_parts), transB=1, name=f"pre{j}_{k}"),
                              cell.activation, name=f"h{j}_new{k}") for k in range(n)] + state[n:]
        if hidden - rows_of(n):
            next(u_parts)  # the resting rows' projections: unused
        outputs += state
    h = state[0] if groups == 1 else b.op("Concat", *state, axis=1, name="h")
    loop.update({"h": h})
    loop.emit("y", b.op("Concat", *outputs, axis=1, name="y_cycle"), period * hidden)
    out = loop.run_scan()
    with g.scope("cycle"):
        y = g.op("Reshape", out.stacked["y"], g.const("by_step", [0, -1, hidden], "int64"), name="y_by_step")
        y = g.op("Slice", y, g.const("zero_i", [0], "int64"), time, g.const("one_i", [1], "int64"), name="y")
    return y, {"h": last_valid(ctx, y, seq.spec)}
