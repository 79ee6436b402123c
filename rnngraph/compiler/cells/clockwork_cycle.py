"""Clockwork's ``cycle`` form: one Scan iteration runs a whole cycle of the clock, unrolled.

With periods that divide each other, every row runs the same schedule, which repeats after
the longest period P; at step j of a cycle groups 0 … n_j − 1 fire (`cycle_groups`). So the
clock is known at export: the Scan runs over cycles, not steps, and the body holds the P
steps of one cycle with their firing groups fixed. The state is carried as one value per
group, h_0 … h_{G−1}, and with it the share of each group's pre-activation that comes from
the slower groups, which changes only when one of them fires:

    c_kr = Σ_{m ≥ r} h_m·R_kmᵀ        (batch, n_k), for r > k; R_km = R[rows_k, cols_m]
    x padded to whole cycles; group k (period T_k) fires P/T_k times a cycle, at steps j = i·T_k:
        u_k = x[:, ::T_k]·W_kᵀ + b_k  (batch, cycles·P/T_k, n_k) → (batch, cycles, P/T_k · n_k)
    step j: each firing group k < n_j     h_k = φ(Gemm(h_k, R_kk, u_k at fire j/T_k + c_k,k+1))
            then each fired group r ≥ 1   c_kr = Gemm(h_r, R_kr, c_k,r+1) for k < r   (c_k,G = 0)
    y of the cycle: [h_0 … h_{G−1} after step 0, …, after step P−1]   (batch, P·H) → (batch, time, H)

Gemm's C input accumulates (``Gemm(A, B, C) = A·Bᵀ + C``), so no step copies state, and
each product h_m·R_kmᵀ is formed once per firing of group m rather than once per firing of
group k: for periods (1, 2, 4, 8) in equal groups the body multiplies 26 of the dense step's
128 block products per cycle (0.20; recomputing the slower groups' share at every firing
would take 49). Only the blocks on and right of R's diagonal are stored or multiplied, so a
NaN in a fast group never reaches a slower one, as in the oracle; each is stored once and
read by every Gemm that needs it. Only the steps a group fires at are projected (`u_k`, one
scanned input per group). The state is copied only by the one Concat of the cycle's
outputs (written straight into the Scan's output) and by the Slice that cuts the added steps
off (the added steps run on zeros). That Slice copies y even when no step was added (~10 % of
the step at batch 32, H 512): an `If` passing y on uncopied for whole cycles measured slower,
as onnxruntime copies a branch's output (an Identity) all the same. With ragged lengths the padded steps of a row run
too, their outputs are cleared afterwards (the NaN rule's `Where`, `recurrent.run_cell`)
and the row's final state is its output at its last valid step (a Clockwork's output is its
state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
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


@dataclass(frozen=True)
class CycleProfile:
    """What one cycle's body executes (`scan_cycles`)."""

    gemms: int  # one per firing (φ fused with it) and one per cache it renews
    adds: int  # u + c_k,k+1 at each firing of a group but the slowest
    madds: float  # multiply-adds, as a fraction of P dense H×H steps


def cycle_profile(cell: Clockwork) -> CycleProfile:
    """Walk one cycle as `scan_cycles` builds it."""
    groups, hidden = len(cell.bounds), cell.hidden
    widths = [stop - start for start, stop in cell.bounds]
    active = cycle_groups(cell)
    gemms = adds = 0
    madds = 0.0
    for n in active:
        gemms += n
        adds += min(n, groups - 1)
        madds += sum(w * w for w in widths[:n])
        for r in range(1, n):
            gemms += r
            madds += sum(widths[:r]) * widths[r]
    return CycleProfile(gemms, adds, madds / (len(active) * hidden * hidden))


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
    # the caches c_kr (r > k), carried from cycle to cycle like the state: 0 for a zero initial state
    cached = [(k, r) for k in range(groups) for r in range(k + 1, groups)]
    with g.scope("cycle"):
        if initial:
            c0: dict[tuple[int, int], str] = {}
            for k, r in sorted(cached, key=lambda kr: -kr[1]):
                block = g.const(f"R_{k}_{r}", p["R"][bounds[k][0]:bounds[k][1], bounds[r][0]:bounds[r][1]])
                c0[k, r] = g.op("Gemm", h0s[r], block, *([c0[k, r + 1]] if r + 1 < groups else []), transB=1,
                                name=f"c0_{k}_{r}")
        else:
            zeros = {k: g.zeros_state(seq.x, widths[k]) for k in range(groups - 1)}
            c0 = {(k, r): zeros[k] for k, r in cached}
    loop = LoopBody(g, "scan")
    state = [loop.carry(f"h{k}", h0s[k], [None, widths[k]]) for k in range(groups)]
    cache = {(k, r): loop.carry(f"c{k}_{r}", c0[k, r], [None, widths[k]]) for k, r in cached}
    b = loop.b
    fires: list[Sequence[str]] = []  # group k's u at each of its fires in the cycle
    for k, every in enumerate(cell.periods):
        count = period // every
        u_k = loop.scan(u[k], f"u_cycle{k}", [None, count * widths[k]])
        fires.append([u_k] if count == 1 else b.op_n("Split", u_k, b.const(f"fire_sizes{k}", [widths[k]] * count,
                                                                           "int64"),
                                                     axis=1, outputs=count, name=f"u_fires{k}"))
    # R_km, group k's block on group m's columns (m ≥ k), stored once (`share_identical`), read by every Gemm
    blocks = {(k, m): b.const(f"R_{k}_{m}", p["R"][bounds[k][0]:bounds[k][1], bounds[m][0]:bounds[m][1]])
              for k in range(groups) for m in range(k, groups)}
    outputs: list[str] = []
    for j, n in enumerate(active):
        new = []
        for k in range(n):
            u_jk = fires[k][j // cell.periods[k]]
            if k + 1 < groups:
                u_jk = b.op("Add", u_jk, cache[k, k + 1], name=f"pre{j}_{k}_rest")
            new.append(activate(b, b.op("Gemm", state[k], blocks[k, k], u_jk, transB=1, name=f"pre{j}_{k}"),
                                cell.activation, name=f"h{j}_new{k}"))
        state = new + state[n:]
        for r in range(n - 1, 0, -1):  # the groups that fired, slowest first: the caches they feed
            for k in range(r):
                rest = [cache[k, r + 1]] if r + 1 < groups else []
                cache[k, r] = b.op("Gemm", state[r], blocks[k, r], *rest, transB=1, name=f"c{j}_{k}_{r}")
        outputs += state
    loop.update({f"h{k}": state[k] for k in range(groups)} | {f"c{k}_{r}": cache[k, r] for k, r in cached})
    loop.emit("y", b.op("Concat", *outputs, axis=1, name="y_cycle"), period * hidden)
    out = loop.run_scan()
    with g.scope("cycle"):
        y = g.op("Reshape", out.stacked["y"], g.const("by_step", [0, -1, hidden], "int64"), name="y_by_step")
        y = g.op("Slice", y, g.const("zero_i", [0], "int64"), time, g.const("one_i", [1], "int64"), name="y")
    return y, {"h": last_valid(ctx, y, seq.spec)}
