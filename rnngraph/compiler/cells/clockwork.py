"""Lowering of the Clockwork RNN cell (docs/clockwork.md): the clock is part of the graph.

The Scan driver supplies each row's step number t (`SequenceInput.step_index`,
``(batch, time, 1)`` float, 0 at the row's first processed step, also in reverse).
Everything that depends only on t is hoisted out of the loop: the input projection
``u_t = W x_t + Wb + Rb`` and the clock (which groups fire at t, ``t mod T_i = 0``).
Inactive groups keep their state exactly: their rows are either blended back with a
0/1 mask (an exact identity in float arithmetic, ``h + 0·(new − h) = h``) or never
recomputed. R arrives masked (block upper triangular) from `effective`, so weights
outside the mask are zero in every export whatever the caller supplied.

Three forms of the step, chosen once per cell by `choose_form` (a cost model, below, unless
`ExportOptions.clockwork_form` names one); `hoist` and `step` both receive that choice:

``cycle``  with periods that divide each other (1, 2, 4, 8) every row runs the same
           schedule, which repeats after the longest period P: one Scan iteration runs P
           steps, unrolled, and no clock is computed at all (clockwork_cycle.py). At step j
           of a cycle the firing groups are a prefix, 0 … n_j − 1; the state is carried as
           one value per group, and a firing group k's pre-activation is a chain of Gemms
           over the groups it reads, each accumulating onto the last (Gemm's C input):
           h_k = φ(Gemm(h_k, R_kk, … Gemm(h_{G−1}, R_k,G−1, u_j^(k))))
           so no step copies state, and R's zero blocks left of the diagonal are never
           stored or multiplied (a NaN in a fast group never reaches a resting slower one,
           as in `ladder`). Only the steps a group fires at are projected. It needs a
           forward run on one clock (every row at step t at scan step t); for any other
           sequence (reverse, a streaming chunk, one step in a Loop) the cheaper of the two
           forms below runs instead (`refine_form`). With ragged lengths the padded steps run
           too (on the cleared, finite inputs); their outputs are cleared after the loop and
           each row's final state is its output at its last valid step.
``dense``  every row recomputed, old and new state blended with the clock mask m_t:
           h_t = h + m_t ⊙ (φ(Gemm(h, R, u_t)) − h)                     (5 body nodes)
``ladder`` with periods that divide each other the active groups at t are a prefix
           (n_t of them), so only their rows are computed: a ladder of `If` nodes on n_t
           (hoisted), one level per group; a firing group k computes
           φ(Gemm(h[start_k:], R[rows_k, start_k:], u_t^(k))) from its own constant block
           of R (the zero blocks left of the diagonal are never stored or multiplied); the
           first group that does not fire keeps h[start_k:] and ends the ladder:
           h_t = [φ(…group 0…); φ(…group 1…); …; h[start_n:]]
           When rows may run on different clocks (reverse over ragged lengths, or one
           step inside a Loop, or a streaming chunk), n_t is the largest count over the batch and the result
           is blended with each row's own clock mask.

A one-group cell with period 1 is always active: its step is the classic RNN's.

Step numbers arrive as floats of the export's type (the driver's contract) and `Mod` runs on
them with ``fmod=1``: exact for every step below 2^24 in float32 (16.7 million steps in one
call), below 2^53 in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.cells.clockwork_cycle import MAX_CYCLE, cycle_fits, cycle_profile, cycle_runs, scan_cycles
from rnngraph.compiler.idioms import activate, blend, reduce
from rnngraph.compiler.options import ExportOptions
from rnngraph.compiler.recurrent import CellLowering, FoldedBias, SequenceInput, input_projection
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.tensor import SEQUENCE
from rnngraph.errors import ExportError

DEFAULT_OPTIONS = ExportOptions()


# -- the cost model -----------------------------------------------------------------
@dataclass(frozen=True)
class StepCosts:
    """Per-step costs in µs, fitted to benchmarks/clockwork.py (onnxruntime 1.32, x86, 1 thread).

    A step costs a fixed overhead per executed body node, larger with more rows (the Scan's
    per-iteration copies and the elementwise nodes grow with the batch), plus the multiply-adds
    of its recurrent Gemms, cheaper per multiply-add with more rows (a GEMV streams R once per
    row at batch 1; a GEMM reuses it), and dearer in the Gemms on one group's block of R
    (`ladder`, `cycle`: narrower, so they reuse less). The batch size is a hint
    (`ExportOptions.batch`); without one the model assumes batch 1, where node overhead weighs
    most. Measured with periods
    (1, 2, 4, 8), cycle/dense: batch 1 1.14 at H 64, 0.86 at H 128, 0.39 at H 512; batch 32
    1.19 at H 16, 0.94 at H 32, 0.82 at H 64, 0.44 at H 512; ladder/dense at batch 32 0.86 at
    H 256, 0.68 at H 512. The model puts the cycle's crossings at H ≈ 106 (batch 1) and
    H ≈ 50 (batch 32).
    """

    node_us: float = 0.35  # one executed body node at batch 1, the Scan's per-iteration share included
    rows_per_node_us: float = 16.0  # the batch at which a node's overhead doubles
    if_us: float = 2.6  # one executed `If` (a subgraph run) on top of its nodes
    cycle_node_us: float = 0.45  # one node of the `cycle` body at batch 1 (a Gemm accumulating onto C)
    gemv_ns_per_madd: float = 0.05  # one multiply-add of a recurrent GEMV (batch 1), float32
    gemm_ns_per_madd: float = 0.022  # … of a GEMM over many rows
    block_gemm_ns_per_madd: float = 0.045  # … of a GEMM on one group's block of R (`ladder`, `cycle`)
    batch: int = 1

    def ns_per_madd(self, gemm_ns: float | None = None) -> float:
        gemm_ns = self.gemm_ns_per_madd if gemm_ns is None else gemm_ns
        return gemm_ns + (self.gemv_ns_per_madd - gemm_ns) / self.batch

    def node_scale(self) -> float:
        return 1.0 + self.batch / self.rows_per_node_us


COSTS = StepCosts()


@dataclass(frozen=True)
class LadderProfile:
    """What the ladder executes per step, averaged over one cycle of the clock."""

    ifs: float  # If nodes (each with one Greater)
    nodes: float  # other nodes (Gemm, φ, Slice, Concat, Identity)
    madds: float  # multiply-adds, as a fraction of a dense H×H step


def ladder_profile(cell: Clockwork) -> LadderProfile:
    """Walk one clock cycle (T_g steps; nested periods repeat with the largest) as `ladder` builds it."""
    assert cell.periods is not None
    groups, hidden = len(cell.periods), cell.hidden
    first = 1 if cell.periods[0] == 1 else 0
    horizon = cell.periods[-1]
    ifs = nodes = madds = 0.0
    for t in range(horizon):
        active = sum(1 for period in cell.periods if t % period == 0)
        if first:
            nodes += 2 + (groups > 1)  # group 0 outside the ladder: Gemm, φ (and the Concat)
        for k in range(first, groups):
            ifs += 1
            if k >= active:
                nodes += 1  # the kept rest: Slice (Identity at k = 0)
                break
            nodes += 2 + (k > 0) + (k + 1 < groups)  # Gemm, φ, the Slice of h, the Concat
        for k in range(active):
            start, stop = cell.bounds[k]
            madds += (stop - start) * (hidden - start) / (hidden * hidden)
    return LadderProfile(ifs / horizon, nodes / horizon, madds / horizon)


def estimated_costs(cell: Clockwork, costs: StepCosts = COSTS) -> dict[str, float]:
    """Estimated µs per step of each form that applies to `cell`."""
    madds = costs.batch * cell.hidden * cell.hidden / 1000.0  # of a dense step, in thousands
    gemm = madds * costs.ns_per_madd()
    blocks = madds * costs.ns_per_madd(costs.block_gemm_ns_per_madd)  # all of R, at the blocks' rate
    node_us = costs.node_us * costs.node_scale()
    # Gemm, φ, Sub, Mul, Add, and the Identity that gives y its own name
    out = {"dense": 6 * node_us + gemm}
    if cell.nested_periods():
        prof = ladder_profile(cell)
        out["ladder"] = (prof.ifs * (costs.if_us + node_us) + (prof.nodes + 1) * node_us + prof.madds * blocks)
    if cycle_fits(cell):
        assert cell.periods is not None
        # per cycle: its Gemms and Adds, a Split of u per group firing more than once, the Concat of the
        # outputs and the iteration
        period, prof_c = cell.periods[-1], cycle_profile(cell)
        nodes = prof_c.gemms + prof_c.adds + sum(1 for every in cell.periods if every < period) + 2
        out["cycle"] = nodes / period * costs.cycle_node_us * costs.node_scale() + prof_c.madds * blocks
    return out


def choose_form(cell: Clockwork, options: ExportOptions = DEFAULT_OPTIONS) -> str:
    """``always`` for a one-group period-1 cell; else `options.clockwork_form` if given, else the cheapest
    form by `estimated_costs` at the batch size `options.batch` (1 when not given). Called once per cell
    and run (`recurrent.bind`); `refine_form` then replaces ``cycle`` where the sequence cannot take it."""
    if cell.periods == (1,):
        return "always"
    estimates = estimated_costs(cell, StepCosts(batch=options.batch or 1))
    forced = options.clockwork_form
    if forced is not None:
        if forced not in estimates:
            raise ExportError(f"{cell.describe()}: the `{forced}` form needs periods that each divide the next "
                              "(e.g. 1, 2, 4, 8)" + (f" and a longest period of at most {MAX_CYCLE}"
                                                      if forced == "cycle" else "") + "; use the dense form.")
        return forced
    return min(estimates, key=lambda form: estimates[form])


def refine_form(cell: Clockwork, form: str, seq: SequenceInput | None, options: ExportOptions) -> str:
    """``cycle`` only for a forward run on one clock from step 0; elsewhere the cheaper of dense and ladder."""
    if form != "cycle" or (seq is not None and cycle_runs(seq)):
        return form
    estimates = estimated_costs(cell, StepCosts(batch=options.batch or 1))
    return min(("dense", "ladder"), key=lambda f: estimates.get(f, float("inf")))



# -- hoisted work ---------------------------------------------------------------------
def uniform_clock(seq: SequenceInput) -> bool:
    """Whether every row is at the same step number at each scan step.

    Forward, rows start together; in reverse each row starts at its own last valid
    step, which differs only with lengths. Inside a Loop (a vector step) it is unknown;
    in a streaming chunk each row's clock starts where its own stream stands.
    """
    return (seq.spec.kind == SEQUENCE and seq.clock_start is None
            and (not seq.reverse or seq.lengths_i32 is None))


def hoist(g: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], seq: SequenceInput,
          form: str) -> list[str]:
    """The input projection u and the clock, for all steps at once.

    The clock is computed per group (``step mod T_i``, g values per row and step;
    `Mod` is slow per element) and only then spread to the units with a `Gather`.
    With a uniform clock it is computed for one row and broadcast over the batch.
    """
    if form == "cycle":  # `scan_cycles` runs it whole; `refine_form` replaced it everywhere else
        raise ExportError(f"{cell.describe()}: the cycle form has no per-step hoist (a bug in rnngraph).")
    h = cell.hidden
    u = input_projection(g, seq, p["W"], FoldedBias(p["B"][:h], p["B"][h:]))
    if form == "always":
        return [u]
    if seq.step_index is None:
        raise ExportError(f"{cell.describe()} needs the step index; the caller gave none.")
    assert cell.periods is not None
    uniform = uniform_clock(seq)
    with g.scope("clock"):
        step = seq.step_index  # (batch, time, 1), or (batch, 1) for one step in a Loop
        if uniform:
            step = g.op("Slice", step, g.const("zero_i", [0], "int64"), g.const("one_i", [1], "int64"),
                        g.const("zero_i", [0], "int64"), name="row0")  # (1, time, 1)
        periods = g.const("periods", np.asarray(cell.periods, dtype=np.float64))
        rem = g.op("Mod", step, periods, fmod=1, name="phase")
        group_fires = g.cast(g.op("Equal", rem, g.const("zero_f", 0.0), name="fires"), "float",
                             name="group_fires")  # (·, time, groups) 0/1
        group_of_unit = np.repeat(np.arange(len(cell.periods)), cell.group_sizes or ())
        unit_mask = g.op("Gather", group_fires, g.const("group_of_unit", group_of_unit, "int64"), axis=-1,
                         name="unit_mask")  # (·, time, H) 0/1
        if form == "dense":
            return [u, unit_mask]
        count = reduce(g, "ReduceSum", group_fires, [-1], keepdims=1, name="count")
        if not uniform:
            if seq.mask is not None:
                count = g.op("Mul", count, seq.mask, name="count_valid")
            # one branch per step for the whole batch: the largest count covers every row
            count = reduce(g, "ReduceMax", count, [0], keepdims=1, name="count_max")  # (1, time, 1)
    # one scan input per group: each branch reads its own group's projection, no slicing in the loop
    parts = g.op_n("Split", u, g.const("split", list(cell.group_sizes or ()), "int64"), axis=-1,
                   outputs=len(cell.periods), name="u_groups")
    return [*parts, count] + ([] if uniform else [unit_mask])


# -- the step ---------------------------------------------------------------------------
def step(body: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], states: dict[str, str],
         inputs: list[str], form: str) -> tuple[dict[str, str], str]:
    h_prev = states["h"]
    if form == "always":
        h = full_update(body, cell, p, h_prev, inputs[0])
    elif form == "dense":
        new = full_update(body, cell, p, h_prev, inputs[0])
        h = blend(body, h_prev, new, inputs[1], name="h_clocked")
    else:
        groups = len(cell.bounds)
        parts, count, row_mask = inputs[:groups], inputs[groups], inputs[groups + 1:]
        h = ladder(body, cell, p, h_prev, parts, count)
        if row_mask:
            h = blend(body, h_prev, h, row_mask[0], name="h_clocked")
    return {"h": h}, h


def full_update(body: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], h_prev: str, u: str) -> str:
    """φ(h R_maskedᵀ + u) over all H rows."""
    pre = body.op("Gemm", h_prev, body.const("R", p["R"]), u, transB=1, name="pre")
    return activate(body, pre, cell.activation, name="h_new")


def ladder(body: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], h_prev: str, parts: list[str],
           count: str) -> str:
    """Nested `If`s on the active-group count n_t (``(1, 1)`` float): level k tests ``n_t > k`` (group k fires).

    A firing group k computes its rows from its own block of R, ``R[rows_k, start_k:]`` (the
    block row without the zero blocks left of the diagonal), on ``h[start_k:]``; the first
    group that does not fire keeps the rest of the state, ``h[start_k:]``, and ends the ladder.
    The blocks are disjoint, so the weights are stored once, and the least frequent groups
    sit deepest: with periods (1, 2, 4, 8) half the steps stop at the first `If`.
    """
    assert cell.periods is not None
    groups = len(cell.periods)
    hidden = cell.hidden
    bounds = cell.bounds

    def h_from(b: GraphBuilder, start: int, name: str) -> str:
        if start == 0:
            return b.op("Identity", h_prev, name=name)
        return b.op("Slice", h_prev, b.const("start", [start], "int64"), b.const("stop", [hidden], "int64"),
                    b.const("axis1", [1], "int64"), name=name)

    def group_rows(b: GraphBuilder, k: int) -> str:
        """φ(R[rows_k, start_k:] h[start_k:] + u_k): group k reads only the groups at least as slow."""
        start, stop = bounds[k]
        h_cols = h_prev if start == 0 else h_from(b, start, f"h_from{k}")
        pre = b.op("Gemm", h_cols, b.const(f"R_block{k}", p["R"][start:stop, start:]), parts[k], transB=1,
                   name=f"pre{k}")
        return activate(b, pre, cell.activation, name=f"h_new{k}")

    def subgraph(parent: GraphBuilder, scope: str, build: Callable[[GraphBuilder], str], width: int) -> GraphProto:
        sub = parent.body()
        with sub.scope(scope):
            out = build(sub)
        sub.add_output(out, "float", [None, width])
        return sub.graph(scope)

    def from_group(b: GraphBuilder, k: int) -> str:
        """Rows start_k… of the new state when groups 0…k-1 fired; group k fires iff n_t > k."""
        def fired(sub: GraphBuilder) -> str:
            new = group_rows(sub, k)
            return new if k + 1 == groups else sub.op("Concat", new, from_group(sub, k + 1), axis=1,
                                                      name=f"h_from{k}_new")
        more = b.op("Greater", count, b.const(f"n{k}", np.array([[k]], dtype=np.float64)), name=f"fires{k}")
        width = hidden - bounds[k][0]
        then_g = subgraph(b, f"fires{k}", fired, width)
        else_g = subgraph(b, f"rests{k}", lambda sub: h_from(sub, bounds[k][0], f"h_kept{k}"), width)
        return b.op("If", more, then_branch=then_g, else_branch=else_g, name=f"ladder{k}")

    if cell.periods[0] != 1:
        return from_group(body, 0)
    new = group_rows(body, 0)  # a period-1 group fires at every step
    return new if groups == 1 else body.op("Concat", new, from_group(body, 1), axis=1, name="h_step")


LOWERING = CellLowering(hoist=hoist, step=step, needs_step_index=True, choose_form=choose_form,
                        refine_form=refine_form, own_scan=scan_cycles)
