"""Clockwork's ``cycle`` form: one Scan iteration runs a whole cycle of the clock, unrolled.

With periods that divide each other, every row runs the same schedule, which repeats after
the longest period P; at step j of a cycle groups 0 … n_j − 1 fire (`cycle_groups`). So the
clock is known at export: the Scan runs over cycles, not steps, and the body holds the P
steps of one cycle with their firing groups fixed. The state is carried as one value per
group, h_0 … h_{G−1}, and a firing group's pre-activation is a chain of Gemms, one per group
it reads (Gemm's C input accumulates, ``Gemm(A, B, C) = A·Bᵀ + C``), so no step copies state:

    x padded to whole cycles; group k (period T_k) fires P/T_k times a cycle, at steps j = i·T_k:
        u_k = x[:, ::T_k]·W_kᵀ + b_k  (batch, cycles·P/T_k, n_k) → (batch, cycles, P/T_k · n_k)
    step j, each firing group k < n_j:
        a = u_k at fire j/T_k;  a = Gemm(h_m, R_km, a) for m = G−1 … k;  h_k = φ(a)
    y of the cycle: [h_0 … h_{G−1} after step 0, …, after step P−1]   (batch, P·H) → (batch, time, H)

R_km = ``R[rows_k, cols_m]`` for m ≥ k, the blocks on and right of the diagonal: the zero
blocks left of it are never stored or multiplied, so a NaN in a fast group never reaches a
slower one, as in the oracle. Each block is stored once and read by every step its group
fires; the body multiplies 0.38 of the dense step's multiply-adds for periods (1, 2, 4, 8)
in equal groups. Only the steps a group fires at are projected (`u_k`), as one scanned input
per group. The only copies of the state are the one Concat of the cycle's outputs (written
straight into the Scan's output) and, when the time is not a whole number of cycles, the
Slice that cuts the added steps off (an `If`: for whole cycles y passes on uncopied); the
added steps run on zeros. With ragged lengths the padded steps of a row run too, their
outputs are cleared afterwards (the NaN rule's `Where`, `recurrent.run_cell`) and the row's
final state is its output at its last valid step (a Clockwork's output is its state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from onnx import GraphProto

from rnngraph.compiler.builder import FLOAT, GraphBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.idioms import activate
from rnngraph.compiler.loop import LoopBody
from rnngraph.compiler.over_time import last_valid
from rnngraph.compiler.recurrent import BoundCell, FoldedBias, SequenceInput, input_projection
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.tensor import SEQUENCE

#: the longest cycle the form unrolls (its body grows with the firings of a cycle)
MAX_CYCLE = 16


def cycle_groups(cell: Clockwork) -> list[int]:
    """n_j for each step j of one cycle (periods that nest): groups 0 … n_j − 1 fire at step j."""
    assert cell.periods is not None
    return [sum(1 for period in cell.periods if j % period == 0) for j in range(cell.periods[-1])]


def cycle_gemms(cell: Clockwork) -> int:
    """The Gemms of one cycle's body: a firing group k reads groups k … G−1, one Gemm each."""
    groups = len(cell.bounds)
    return sum(groups - k for n in cycle_groups(cell) for k in range(n))


def cycle_fits(cell: Clockwork) -> bool:
    """Whether the form can run `cell`: nested periods and a cycle of at most `MAX_CYCLE` steps."""
    assert cell.periods is not None
    return cell.nested_periods() and cell.periods[-1] <= MAX_CYCLE


def cycle_runs(seq: SequenceInput) -> bool:
    """Whether every row of `seq` is at step t at scan step t: forward, a whole sequence, no clock offset."""
    return seq.spec.kind == SEQUENCE and seq.clock_start is None and not seq.reverse


def group_inputs(g: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], seq: SequenceInput,
                 x: str) -> list[str]:
    """u_k ``(batch, cycles, P/T_k · n_k)`` per group k: x (padded to whole cycles) at the steps k fires,
    projected onto k's rows, the fires of one cycle side by side."""
    assert cell.periods is not None
    hidden, period = cell.hidden, cell.periods[-1]
    u = []
    for k, ((start, stop), every) in enumerate(zip(cell.bounds, cell.periods, strict=True)):
        steps = x if every == 1 else g.op(
            "Slice", x, g.const("zero_i", [0], "int64"), g.const("to_end", [np.iinfo(np.int64).max], "int64"),
            g.const("one_i", [1], "int64"), g.const(f"every{every}", [every], "int64"), name=f"x_fires{k}")
        u_k = input_projection(g, replace(seq, x=steps), p["W"][start:stop],
                               FoldedBias(p["B"][start:stop], p["B"][hidden + start:hidden + stop]), name=f"x_proj{k}")
        u.append(g.op("Reshape", u_k, g.const(f"by_cycle{k}", [0, -1, period // every * (stop - start)], "int64"),
                      name=f"u_by_cycle{k}"))
    return u


def whole_steps(g: GraphBuilder, y: str, time: str, short: str, hidden: int) -> str:
    """y ``(batch, cycles·P, H)`` cut to `time` steps: an `If` on whether steps were added (`short`), so that
    for whole cycles y passes on as it is (a Slice copies it all, ~10 % of the step at batch 32, H 512)."""
    def branch(scope: str, cut: bool) -> GraphProto:
        sub = g.body()
        with sub.scope(scope):
            out = (sub.op("Slice", y, sub.const("zero_i", [0], "int64"), time, sub.const("one_i", [1], "int64"),
                          name="y_cut") if cut else sub.op("Identity", y, name="y_whole"))
        sub.add_output(out, FLOAT, [None, None, hidden])
        return sub.graph(scope)

    whole = g.op("Equal", short, g.const("none_added", [0], "int64"), name="whole")
    return g.op("If", whole, then_branch=branch("as_is", False), else_branch=branch("cut", True), name="y")


def scan_cycles(ctx: LoweringContext, bound: BoundCell, p: Mapping[str, np.ndarray], seq: SequenceInput,
                initial: dict[str, str] | None) -> tuple[str, dict[str, str]] | None:
    """``y (batch, time, H)`` and the final state of the ``cycle`` form; None for the other forms."""
    if bound.form != "cycle":
        return None
    g, cell = ctx.g, bound.cell
    assert cell.periods is not None
    hidden, bounds, active = cell.hidden, cell.bounds, cycle_groups(cell)
    period, groups = len(active), len(bounds)
    widths = [stop - start for start, stop in bounds]
    with g.scope("cycle"):
        time = g.dim(seq.x, 1)
        whole = g.const("period", [period], "int64")
        short = g.op("Mod", g.op("Sub", whole, g.op("Mod", time, whole)), whole, name="short")  # steps to add
        pads = g.op("Concat", g.const("no_pads", [0, 0, 0, 0], "int64"), short, g.const("no_pad", [0], "int64"),
                    axis=0, name="pads")
        # the input (narrower than u) padded to whole cycles; the added steps run on zeros and are cut off
        u = group_inputs(g, cell, p, seq, g.op("Pad", seq.x, pads, name="whole_cycles"))
        h0 = initial["h"] if initial else g.zeros_state(seq.x, hidden)
        h0s = [h0] if groups == 1 else g.op_n("Split", h0, g.const("widths", widths, "int64"), axis=1,
                                              outputs=groups, name="h_groups")
    loop = LoopBody(g, "scan")
    state = [loop.carry(f"h{k}", h0s[k], [None, widths[k]]) for k in range(groups)]
    b = loop.b
    fires: list[Sequence[str]] = []  # group k's u at each of its fires in the cycle
    for k, every in enumerate(cell.periods):
        count = period // every
        u_k = loop.scan(u[k], f"u_cycle{k}", [None, count * widths[k]])
        fires.append([u_k] if count == 1 else b.op_n("Split", u_k, b.const(f"fire_sizes{k}", [widths[k]] * count,
                                                                           "int64"),
                                                     axis=1, outputs=count, name=f"u_fires{k}"))
    # R_km, group k's block on group m's columns (m ≥ k), stored once, read by every step k fires
    blocks = {(k, m): b.const(f"R_{k}_{m}", p["R"][bounds[k][0]:bounds[k][1], bounds[m][0]:bounds[m][1]])
              for k in range(groups) for m in range(k, groups)}
    outputs: list[str] = []
    for j, n in enumerate(active):
        new = []
        for k in range(n):
            pre = fires[k][j // cell.periods[k]]
            for m in range(groups - 1, k - 1, -1):  # ends on k's own block: φ fuses with that Gemm
                pre = b.op("Gemm", state[m], blocks[k, m], pre, transB=1, name=f"pre{j}_{k}_from{m}")
            new.append(activate(b, pre, cell.activation, name=f"h{j}_new{k}"))
        state = new + state[n:]
        outputs += state
    loop.update({f"h{k}": state[k] for k in range(groups)})
    loop.emit("y", b.op("Concat", *outputs, axis=1, name="y_cycle"), period * hidden)
    out = loop.run_scan()
    with g.scope("cycle"):
        y = g.op("Reshape", out.stacked["y"], g.const("by_step", [0, -1, hidden], "int64"), name="y_by_step")
        y = whole_steps(g, y, time, short, hidden)
    return y, {"h": last_valid(ctx, y, seq.spec)}
