"""Clockwork RNN lowering: the choice of form, graph size, and the clock inside other structures."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.cells.clockwork import (
    COSTS,
    choose_form,
    estimated_costs,
    hoist,
    ladder_profile,
    refine_form,
)
from rnngraph.compiler.options import ExportOptions
from rnngraph.compiler.recurrent import SequenceInput
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare
from tests.conftest import assert_matches


def clockwork_model(cell: rg.Clockwork, reverse: bool = False) -> rg.Model:
    x = rg.Input("x", features=3)
    return rg.Model(x, {"y": rg.Recurrent(cell, reverse=reverse)(x)})


# -- the cost model -----------------------------------------------------------------
def test_ladder_profile_of_the_survey_clock():
    """Periods 1, 2, 4, 8 in equal groups: 15/32 of the rows per step on average (the ideal 0.47 of a dense
    step), and fewer multiply-adds still, since a group's block row skips the zero blocks left of the diagonal."""
    prof = ladder_profile(rg.Clockwork(256, periods=(1, 2, 4, 8)))
    rows = (1 + 1 / 2 + 1 / 4 + 1 / 8) / 4
    assert prof.madds == pytest.approx((1 + 3 / 4 / 2 + 2 / 4 / 4 + 1 / 4 / 8) / 4) and prof.madds < rows
    assert prof.ifs == pytest.approx(1 * 4 / 8 + 2 * 2 / 8 + 3 * 2 / 8)  # one `If` at odd steps, three at 0 and 4
    assert prof.nodes == pytest.approx((4 * 4 + 8 * 2 + 12 + 14) / 8)


def test_cost_model_picks_dense_for_small_cells_and_the_cycle_for_large_ones():
    """Where benchmarks/clockwork.py measured the cycle against the dense step (periods 1, 2, 4, 8): slower at
    batch 1 up to H 64 and at batch 32 at H 16, faster from H 128 (batch 1) and H 64 (batch 32)."""
    assert COSTS.batch == 1
    assert choose_form(rg.Clockwork(64, periods=(1, 2, 4, 8))) == "dense"
    assert choose_form(rg.Clockwork(16, periods=(1, 2, 4, 8)), ExportOptions(batch=32)) == "dense"
    for hidden in (128, 256, 512, 1024):
        assert choose_form(rg.Clockwork(hidden, periods=(1, 2, 4, 8))) == "cycle"
    for hidden in (64, 128, 512, 1024):
        assert choose_form(rg.Clockwork(hidden, periods=(1, 2, 4, 8)), ExportOptions(batch=32)) == "cycle"
    est = estimated_costs(rg.Clockwork(1024, periods=(1, 2, 4, 8)))
    assert est["cycle"] < est["ladder"] < 0.6 * est["dense"]
    # a cycle longer than MAX_CYCLE is not unrolled
    long = rg.Clockwork(510, periods=(1, 2, 4, 8, 16, 32))
    assert "cycle" not in estimated_costs(long) and choose_form(long) == "ladder"


def test_the_declared_batch_steers_the_choice():
    """A batch-32 user at H 256–384 gets a form that skips the resting groups (measured faster there); where the
    sequence cannot take the cycle (reverse, one step in a Loop), the ladder."""
    for hidden in (256, 384):
        cell = rg.Clockwork(hidden, periods=(1, 2, 4, 8))
        options = ExportOptions(batch=32)
        assert choose_form(cell, options) == "cycle"
        assert refine_form(cell, "cycle", None, options) == "ladder"
        assert refine_form(cell, "cycle", None, ExportOptions()) == "dense"  # batch 1: the ladder loses there
    g = GraphBuilder(17)
    spec = TensorSpec(SEQUENCE, 3)
    forward = SequenceInput(g.add_input("x", "float32", [None, None, 3]), spec, None, None)
    cell = rg.Clockwork(256, periods=(1, 2, 4, 8))
    assert refine_form(cell, "cycle", forward, ExportOptions(batch=32)) == "cycle"
    assert refine_form(cell, "cycle", replace(forward, reverse=True), ExportOptions(batch=32)) == "ladder"
    assert refine_form(cell, "cycle", replace(forward, clock_start="c"), ExportOptions(batch=32)) == "ladder"
    assert refine_form(cell, "dense", forward, ExportOptions(batch=32)) == "dense"


@pytest.mark.parametrize("batch", [0, -3, 2.5, True, "32"])
def test_batch_hint_refuses_what_is_not_a_batch_size(batch):
    with pytest.raises(ExportError, match=r"invalid value for `batch`: expected a batch size of at least 1 .*"
                                          rf"received {re.escape(repr(batch))}"):
        ExportOptions(batch=batch)


def test_periods_that_do_not_nest_always_get_the_dense_form():
    cell = rg.Clockwork(1023, periods=(1, 3, 5))
    assert not cell.nested_periods()
    assert set(estimated_costs(cell)) == {"dense"}
    assert choose_form(cell) == "dense"
    with pytest.raises(ExportError, match=r"the `ladder` form needs periods that each divide the next"):
        choose_form(cell, ExportOptions(clockwork_form="ladder"))
    with pytest.raises(ExportError, match=r"the `cycle` form needs periods that each divide the next \(e.g. 1, 2, "
                                          r"4, 8\) and a longest period of at most 16; use the dense form"):
        choose_form(cell, ExportOptions(clockwork_form="cycle"))
    model = clockwork_model(cell)
    with pytest.raises(ExportError, match=r"the `ladder` form needs periods that each divide the next"):
        build_model_proto(model, model.init(0), options=ExportOptions(clockwork_form="ladder"))


def test_one_group_of_period_one_is_always_active():
    assert choose_form(rg.Clockwork(9, periods=(1,))) == "always"
    model = clockwork_model(rg.Clockwork(9, periods=(1,)))
    ops = op_histogram(build_model_proto(model, model.init(0)).graph)
    assert "Mod" not in ops and "If" not in ops


def test_forced_form_refuses_an_unknown_form():
    with pytest.raises(ExportError, match=r"invalid value for `clockwork_form`: expected one of "
                                          r"\('dense', 'ladder', 'cycle'\) or None .*received 'sparse'"):
        ExportOptions(clockwork_form="sparse")


def test_the_form_is_chosen_once_and_both_hoist_and_step_follow_it():
    """The options reach the cell through the lowering context: the ladder's `If`s appear only when asked for."""
    model = clockwork_model(rg.Clockwork(8, periods=(1, 2, 4, 8)))
    params = model.init(0)
    assert choose_form(rg.Clockwork(8, periods=(1, 2, 4, 8))) == "dense"
    dense = op_histogram(build_model_proto(model, params).graph)
    ladder = op_histogram(build_model_proto(model, params, options=ExportOptions(clockwork_form="ladder")).graph)
    assert "If" not in dense and ladder["If"] == 3
    assert_matches(model, params, clockwork_form="ladder")


def test_hoist_refuses_a_sequence_without_step_index():
    g = GraphBuilder(17)
    seq = SequenceInput(g.add_input("x", "float32", [None, None, 3]), TensorSpec(SEQUENCE, 3), None, None)
    cell = rg.Clockwork(4, periods=(1, 2))
    p = {"W": np.zeros((4, 3)), "R": np.zeros((4, 4)), "B": np.zeros(8)}
    with pytest.raises(ExportError, match=r"Clockwork\(hidden=4, periods=\(1, 2\)\) needs the step index"):
        hoist(g, cell, p, seq, "dense")


# -- the graph ----------------------------------------------------------------------
@pytest.mark.parametrize("form, ops", [("dense", {"Mod": 1, "Gather": 1, "If": 0}), ("ladder", {"Mod": 1, "If": 3})])
def test_graph_size_does_not_depend_on_sequence_length(form, ops):
    """One export serves every length: count its nodes, then run the same file at T = 5 and T = 300."""
    model = clockwork_model(rg.Clockwork(16, periods=(1, 2, 4, 8)))
    params = model.init(0)
    proto = build_model_proto(model, params, options=ExportOptions(clockwork_form=form))
    histogram = op_histogram(proto.graph)
    for op, count in ops.items():
        assert histogram.get(op, 0) == count, histogram
    assert sum(histogram.values()) < 90  # the lowering (under 60) and the in-graph guards (rnngraph/compiler/guards.py)
    session = Session(proto)
    for time in (5, 300):
        feeds = model.example_inputs(3, time, time)
        row = compare("y", session.run(**feeds)["y"], oracle.run(model, params, **feeds)["y"])
        assert row.ok, f"T={time}: max abs err {row.max_abs:.3e}"


def test_weights_outside_the_mask_are_zero_in_the_export():
    """The dense form stores R with zeros outside the mask; the ladder stores only the blocks inside it."""
    cell = rg.Clockwork(12, periods=(1, 2, 4), group_sizes=(3, 4, 5))
    model = clockwork_model(cell)
    params = model.init(0)
    garbage = np.random.default_rng(1).standard_normal((12, 12)).astype(np.float32)
    params["clockwork0/R"] = garbage
    mask = cell.recurrent_mask()
    dense = build_model_proto(model, params, options=ExportOptions(clockwork_form="dense"))
    weights = dict(w for w in all_initializers(dense.graph) if "/R" in w[0] and w[1].ndim == 2)
    assert [v.shape for v in weights.values()] == [(12, 12)]
    np.testing.assert_array_equal(next(iter(weights.values())), garbage * mask)
    ladder = build_model_proto(model, params, options=ExportOptions(clockwork_form="ladder"))
    weights = dict(w for w in all_initializers(ladder.graph) if "/R_block" in w[0])
    assert sorted(v.shape for v in weights.values()) == [(3, 12), (4, 9), (5, 5)]
    for (start, stop), block in zip(cell.bounds, sorted(weights.values(), key=lambda v: -v.shape[1]), strict=True):
        np.testing.assert_array_equal(block, garbage[start:stop, start:])
        assert mask[start:stop, start:].all() and not mask[start:stop, :start].any()


def all_initializers(graph: object) -> list[tuple[str, np.ndarray]]:
    from onnx import numpy_helper

    out = [(t.name, numpy_helper.to_array(t)) for t in graph.initializer]  # type: ignore[attr-defined]
    for node in graph.node:  # type: ignore[attr-defined]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.g.node else []) + list(attr.graphs):
                out += all_initializers(sub)
    return out


# -- the clock in other structures ------------------------------------------------------
@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_inside_a_generation_loop(form):
    """`step_once`: the clock comes from the Loop's iteration count, one step at a time."""
    v = rg.Input("v", features=5, sequence=False)
    n = rg.Input("n", count=True)
    y = rg.Generate(rg.Clockwork(12, periods=(1, 2, 4)), mode="first", readout=rg.Dense(3), feedback="output")(v, n)
    model = rg.Model([v, n], {"y": y})
    for time in (1, 10):
        assert_matches(model, batch=3, time=time, clockwork_form=form)


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_bidirectional_with_ragged_rows(form):
    """The backward direction runs each row on its own clock, from its own last valid step."""
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Bidirectional(rg.Clockwork(10, periods=(1, 2), group_sizes=(3, 7)))(x)})
    for batch, time in ((4, 9), (1, 1)):
        assert_matches(model, batch=batch, time=time, clockwork_form=form)


def test_initial_state_and_final_state():
    x = rg.Input("x", features=4)
    h0 = rg.Input("h0", features=8, sequence=False)
    seq, last = rg.Recurrent(rg.Clockwork(8, periods=(2, 4)), returns=("sequence", "state"))(x, h0)
    model = rg.Model([x, h0], {"seq": seq, "last": last})
    for form in ("dense", "ladder", "cycle"):
        got = assert_matches(model, batch=3, time=7, clockwork_form=form)
        feeds = model.example_inputs(3, 7, 0)
        lengths = feeds["lengths"]
        # the final state is the output at each row's last valid step, bit for bit
        np.testing.assert_array_equal(got["last"], got["seq"][np.arange(3), lengths - 1])


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_in_a_stack_and_as_a_decoder_cell(form):
    """Deep layers, and a greedy decoder's `Loop` (one step at a time, clock from the iteration count)."""
    x = rg.Input("x", features=4)
    deep = rg.Stack([rg.GRU(6, linear_before_reset=True), rg.Clockwork(8, periods=(1, 2, 4, 8)),
                     rg.Bidirectional(rg.Clockwork(6, groups=2))])(x)
    src = rg.Input("src", tokens=20)
    memory = rg.Recurrent(rg.Clockwork(12, periods=(1, 2, 4)))(rg.Embedding(20, 5)(src))
    dec = rg.Decoder(rg.Clockwork(12, periods=(1, 2, 4)), attention=rg.Attention("additive", units=7),
                     context="last", use="init", readout=rg.Dense(15, "softmax"), embedding=6, bos=1, eos=2,
                     max_len=9)
    tokens, scores, _ = dec.greedy(memory, name="decoder")
    assert_matches(rg.Model(x, {"y": deep}), batch=4, time=11, clockwork_form=form)
    assert_matches(rg.Model(src, {"tokens": tokens, "scores": scores}), batch=3, time=6, clockwork_form=form)


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_every_supported_opset(form):
    """ReduceMax takes its axes as an input from opset 18 on; the reverse ragged clock uses it."""
    from rnngraph.exporters.onnx import MIN_OPSET, max_opset

    model = clockwork_model(rg.Clockwork(8, periods=(1, 2, 4, 8)), reverse=True)
    params = model.init(0)
    feeds = model.example_inputs(3, 9, 0)
    ref = oracle.run(model, params, **feeds)["y"]
    for opset in sorted({MIN_OPSET, 17, 18, max_opset()}):
        proto = build_model_proto(model, params, opset, options=ExportOptions(clockwork_form=form))
        row = compare("y", Session(proto).run(**feeds)["y"], ref)
        assert row.ok, f"opset {opset}: max abs err {row.max_abs:.3e}"
