"""Lowering of the Clockwork RNN cell (SPEC §2.7): the clock is part of the graph.

The Scan driver supplies each row's step number t (`SequenceInput.step_index`,
``(batch, time, 1)`` float, 0 at the row's first processed step, also in reverse).
Everything that depends only on t is hoisted out of the loop: the input projection
``u_t = W x_t + Wb + Rb`` and the clock (which groups fire at t, ``t mod T_i = 0``).
Inactive groups keep their state exactly: their rows are either blended back with a
0/1 mask (an exact identity in float arithmetic, ``h + 0·(new − h) = h``) or never
recomputed. R arrives masked (block upper triangular) from `effective`, so weights
outside the mask are zero in every export whatever the caller supplied.

Two forms of the step, chosen per cell by `choose_form` (a cost model, below):

``dense``  every row recomputed, old and new state blended with the clock mask m_t:
           h_t = h + m_t ⊙ (φ(Gemm(h, R, u_t)) − h)                     (5 body nodes)
``ladder`` with periods that divide each other the active groups at t are a prefix
           (n_t of them), so only their rows are computed: a ladder of `If` nodes on
           n_t picks the branch for n active groups, each holding its own weight
           prefix R[:rows_n] as a constant and reading the hoisted prefix u_t[:rows_n]:
           h_t = [φ(Gemm(h, R[:rows_n], u_t[:rows_n])); h[rows_n:]]
           When rows may run on different clocks (reverse over ragged lengths, or one
           step inside a Loop), n_t is the largest count over the batch and the result
           is blended with each row's own clock mask.

A one-group cell with period 1 is always active: its step is the classic RNN's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.recurrent import CellLowering, SequenceInput, input_projection, register_cell
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.tensor import SEQUENCE
from rnngraph.errors import ExportError

ONNX_ACTIVATION = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
FORMS = ("dense", "ladder")


# -- the cost model -----------------------------------------------------------------
@dataclass(frozen=True)
class StepCosts:
    """Per-step costs in µs, fitted to benchmarks/clockwork.py on a 2-core x86 CPU, 1 thread.

    A step costs a fixed overhead per executed body node plus its multiply-adds; the
    batch size is unknown at export, so the model assumes `batch` rows (1: the case
    where node overhead weighs most and the ladder is least likely to pay).
    """

    node_us: float = 0.25  # one executed elementwise/Gemm node (onnxruntime dispatch)
    if_us: float = 1.2  # one executed `If` (subgraph dispatch, more than a plain node)
    ns_per_madd: float = 0.04  # one multiply-add of the recurrent Gemm, float32
    batch: int = 1


COSTS = StepCosts()


def active_fraction(cell: Clockwork) -> float:
    """Mean fraction of the recurrent rows computed per step by the ladder (periods nested)."""
    assert cell.periods is not None
    stops = [stop for _, stop in cell.bounds]
    horizon = cell.periods[-1]
    rows = 0
    for t in range(horizon):
        active = sum(1 for period in cell.periods if t % period == 0)
        rows += stops[active - 1] if active else 0
    return rows / (horizon * cell.hidden)


def mean_ifs(cell: Clockwork) -> float:
    """Mean number of `If` nodes the ladder executes per step."""
    assert cell.periods is not None
    first = 1 if cell.periods[0] == 1 else 0
    horizon = cell.periods[-1]
    levels = len(cell.periods) - first
    total = 0
    for t in range(horizon):
        active = sum(1 for period in cell.periods if t % period == 0)
        total += min(active - first + 1, levels)
    return total / horizon


def estimated_costs(cell: Clockwork, costs: StepCosts = COSTS) -> dict[str, float]:
    """Estimated µs per step of each applicable form."""
    madds = costs.batch * cell.hidden * cell.hidden * costs.ns_per_madd / 1000.0
    out = {"dense": 5 * costs.node_us + madds}
    if cell.nested_periods():
        # 2 nodes (Gemm, φ) in the full branch, 4 (+ Slice, Concat) in a partial one; ~1 + Identity for y
        out["ladder"] = (mean_ifs(cell) * (costs.if_us + costs.node_us) + 4 * costs.node_us
                         + madds * active_fraction(cell))
    return out


_forced: str | None = None


@contextmanager
def forced_form(form: str | None) -> Iterator[None]:
    """Lower every Clockwork cell with `form` (tests and benchmarks); None restores the cost model."""
    global _forced
    if form is not None and form not in FORMS:
        raise ExportError(f"invalid Clockwork form: expected one of {FORMS}, received {form!r}.")
    previous, _forced = _forced, form
    try:
        yield
    finally:
        _forced = previous


def choose_form(cell: Clockwork) -> str:
    """``always`` for a one-group period-1 cell, else the cheaper of ``dense`` and ``ladder`` by `estimated_costs`."""
    if cell.periods == (1,):
        return "always"
    estimates = estimated_costs(cell)
    if _forced is not None:
        if _forced not in estimates:
            raise ExportError(f"{cell.describe()}: the `{_forced}` form needs periods that each divide the next "
                              "(e.g. 1, 2, 4, 8); use the dense form.")
        return _forced
    return min(estimates, key=lambda form: estimates[form])


# -- hoisted work ---------------------------------------------------------------------
def uniform_clock(seq: SequenceInput) -> bool:
    """Whether every row is at the same step number at each scan step.

    Forward, rows start together; in reverse each row starts at its own last valid
    step, which differs only with lengths. Inside a Loop (a vector step) it is unknown.
    """
    return seq.spec.kind == SEQUENCE and (not seq.reverse or seq.lengths_i32 is None)


def fires(g: GraphBuilder, step: str, periods: np.ndarray, name: str) -> str:
    """``[step mod T == 0]`` as float, broadcast over the last axis of `periods`."""
    rem = g.op("Mod", step, g.const(f"{name}_periods", periods.astype(np.float32)), fmod=1, name=f"{name}_mod")
    return g.op("Cast", g.op("Equal", rem, g.const("zero_f", 0.0), name=f"{name}_eq"), to=1, name=name)


def hoist(g: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], seq: SequenceInput) -> list[str]:
    h = cell.hidden
    u = input_projection(g, seq, p["W"], p["B"][:h] + p["B"][h:])
    form = choose_form(cell)
    if form == "always":
        return [u]
    if seq.step_index is None:
        raise ExportError(f"{cell.describe()} needs the step index; the caller gave none.")
    assert cell.periods is not None
    with g.scope("clock"):
        unit_mask = fires(g, seq.step_index, cell.unit_periods(), "unit_mask")  # (batch, time, H)
        if form == "dense":
            return [u, unit_mask]
        group_fires = fires(g, seq.step_index, np.asarray(cell.periods), "group_fires")  # (batch, time, groups)
        count = g.op("ReduceSum", group_fires, g.const("last_axis", [-1], "int64"), keepdims=1, name="count")
        if seq.mask is not None:
            count = g.op("Mul", count, seq.mask, name="count_valid")
        # the branch is one per step for the whole batch: the largest count covers every row
        count = g.op("ReduceMax", count, axes=[0], keepdims=1, name="count_max")  # (1, time, 1)
    prefixes = [g.op("Slice", u, g.const("start", [0], "int64"), g.const("stop", [stop], "int64"),
                     g.const("last_axis", [-1], "int64"), name=f"u_prefix{n}")
                for n, (_, stop) in enumerate(cell.bounds[:-1], start=1)]
    return [*prefixes, u, count] + ([] if uniform_clock(seq) else [unit_mask])


# -- the step ---------------------------------------------------------------------------
def step(body: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], states: dict[str, str],
         inputs: list[str]) -> tuple[dict[str, str], str]:
    h_prev = states["h"]
    form = choose_form(cell)
    if form == "always":
        h = full_update(body, cell, p, h_prev, inputs[0])
    elif form == "dense":
        new = full_update(body, cell, p, h_prev, inputs[0])
        h = blend(body, h_prev, new, inputs[1])
    else:
        groups = len(cell.bounds)
        prefixes, count, row_mask = inputs[:groups], inputs[groups], inputs[groups + 1:]
        h = ladder(body, cell, p, h_prev, prefixes, count)
        if row_mask:
            h = blend(body, h_prev, h, row_mask[0])
    return {"h": h}, h


def full_update(body: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], h_prev: str, u: str) -> str:
    """φ(h R_maskedᵀ + u) over all H rows."""
    pre = body.op("Gemm", h_prev, body.const("R", p["R"]), u, transB=1, name="pre")
    return body.op(ONNX_ACTIVATION[cell.activation], pre, name="h_new")


def blend(body: GraphBuilder, old: str, new: str, mask: str) -> str:
    """``old + mask·(new − old)``: exact `old` where the mask is 0 (cheaper than `Where` in onnxruntime)."""
    delta = body.op("Sub", new, old, name="clock_delta")
    return body.op("Add", old, body.op("Mul", mask, delta, name="clock_gate"), name="h_clocked")


def ladder(body: GraphBuilder, cell: Clockwork, p: Mapping[str, np.ndarray], h_prev: str, prefixes: list[str],
           count: str) -> str:
    """Nested `If`s on the active-group count n_t (``(1, 1)`` float); level k tests ``n_t > k``.

    The least frequent branches sit deepest: with periods (1, 2, 4, 8) half the steps
    take the first `else` (one group), a quarter the next, and so on.
    """
    assert cell.periods is not None
    groups = len(cell.periods)
    hidden = cell.hidden

    def branch(b: GraphBuilder, n: int) -> str:
        """The new state ``(batch, H)`` when exactly the first n groups fire."""
        if n == 0:
            return b.op("Identity", h_prev, name="h_kept")
        if n == groups:
            return full_update(b, cell, p, h_prev, prefixes[-1])
        rows = cell.bounds[n - 1][1]
        pre = b.op("Gemm", h_prev, b.const(f"R_prefix{n}", p["R"][:rows]), prefixes[n - 1], transB=1, name="pre")
        new = b.op(ONNX_ACTIVATION[cell.activation], pre, name="h_new")
        kept = b.op("Slice", h_prev, b.const("start", [rows], "int64"), b.const("stop", [hidden], "int64"),
                    b.const("axis1", [1], "int64"), name="h_kept")
        return b.op("Concat", new, kept, axis=1, name="h_step")

    def subgraph(parent: GraphBuilder, scope: str, build: Callable[[GraphBuilder], str]) -> GraphProto:
        sub = parent.body()
        with sub.scope(scope):
            out = build(sub)
        sub.add_output(out, "float32", [None, hidden])
        return sub.graph(scope)

    def level(b: GraphBuilder, n: int) -> str:
        """The new state when at least the first n groups fire (n = first … groups)."""
        if n == groups:
            return branch(b, n)
        more = b.op("Greater", count, b.const(f"n{n}", np.array([[n]], dtype=np.float32)), name=f"more_than{n}")
        then_g = subgraph(b, f"more_than{n}", lambda sub: level(sub, n + 1))
        else_g = subgraph(b, f"exactly{n}", lambda sub: branch(sub, n))
        return b.op("If", more, then_branch=then_g, else_branch=else_g, name=f"ladder{n}")

    first = 1 if cell.periods[0] == 1 else 0  # a period-1 group fires at every step
    return level(body, first)


register_cell(Clockwork, CellLowering(hoist=hoist, step=step, needs_step_index=True))
