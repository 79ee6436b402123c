"""Clockwork's ``cycle`` form (rnngraph/compiler/cells/clockwork_cycle.py): one Scan iteration per clock cycle."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.bench.graphs import step_nodes
from rnngraph.cli import op_histogram
from rnngraph.compiler.cells.clockwork_cycle import cycle_groups, cycle_profile
from rnngraph.compiler.options import ExportOptions
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare
from tests.conftest import assert_matches
from tests.test_clockwork_lowering import all_initializers
from tests.test_guards import bare, every_return, run_bare, x_with_nan

CYCLE = ExportOptions(clockwork_form="cycle")


def returns_model(cell: rg.Clockwork, features: int = 3) -> rg.Model:
    x = rg.Input("x", features=features)
    seq, last = rg.Recurrent(cell, returns=("sequence", "state"))(x)
    return rg.Model(x, {"seq": seq, "last": last})


def scopes(proto: object, marker: str) -> set[str]:
    """The layers (name prefixes) with top-level nodes named ``…<marker>…``."""
    return {n.name.split(marker)[0] for n in proto.graph.node if marker in n.name}  # type: ignore[attr-defined]


def test_the_schedule_of_one_cycle():
    assert cycle_groups(rg.Clockwork(8, periods=(1, 2, 4, 8))) == [4, 1, 2, 1, 3, 1, 2, 1]
    assert cycle_groups(rg.Clockwork(6, periods=(2, 6))) == [2, 0, 1, 0, 1, 0]


@pytest.mark.parametrize("cell", [
    rg.Clockwork(7, periods=(1, 2, 4), group_sizes=(2, 3, 2)),
    rg.Clockwork(9, periods=(2, 4, 8), group_sizes=(4, 1, 4), activation="relu"),  # nothing fires at odd steps
    rg.Clockwork(5, periods=(3,), activation="sigmoid"),
    rg.Clockwork(11, periods=(1, 4, 16), group_sizes=(5, 3, 3)),  # the longest cycle unrolled
], ids=repr)
@pytest.mark.parametrize("batch,time", [(1, 1), (1, 9), (3, 8), (4, 13), (2, 35)])
def test_cycle_matches_the_oracle(cell, batch, time):
    """Random weights, T = 1, B = 1, T not a whole number of cycles, ragged lengths (example_inputs), and the
    final state: each row's output at its last valid step, bit for bit."""
    model = returns_model(cell)
    params = model.init(batch + time)
    proto = build_model_proto(model, params, options=CYCLE)
    assert not scopes(proto, "/clock/") and "If" not in op_histogram(proto.graph)  # no clock computed at all
    got = assert_matches(model, params, batch=batch, time=time, seed=time, clockwork_form="cycle")
    lengths = model.example_inputs(batch, time, time)["lengths"]
    for b, length in enumerate(lengths):
        if length:
            np.testing.assert_array_equal(got["last"][b], got["seq"][b, length - 1])
        assert not got["seq"][b, length:].any()


def test_cycle_with_an_initial_state_and_without_lengths():
    x = rg.Input("x", features=4, lengths=None)
    h0 = rg.Input("h0", features=10, sequence=False)
    seq, last = rg.Recurrent(rg.Clockwork(10, periods=(1, 2, 4), group_sizes=(3, 3, 4)),
                             returns=("sequence", "state"))(x, h0)
    model = rg.Model([x, h0], {"seq": seq, "last": last})
    for batch, time in ((1, 1), (3, 6), (2, 11)):
        assert_matches(model, batch=batch, time=time, seed=time, clockwork_form="cycle")


def test_one_file_for_every_length_and_the_weights_stored_once():
    """Periods 1, 2, 4, 8 in equal groups: the body holds one cycle (44 nodes for 8 steps after onnxruntime's
    optimizer: a Gemm per firing, φ fused with it, and an Add of the slower groups' share but for the slowest;
    a Gemm per share a fired group renews; a Split of u per group firing more than once a cycle; one Concat,
    the outputs), and R is stored as its blocks on and right of the diagonal only."""
    cell = rg.Clockwork(16, periods=(1, 2, 4, 8))
    model = returns_model(cell)
    params = model.init(0)
    proto = build_model_proto(model, params, options=CYCLE)
    (body,) = step_nodes(proto.SerializeToString())
    prof = cycle_profile(cell)
    renewed = 1 * 4 + 2 * 2 + 3 * 1  # group r (period 2^r) renews r shares at each firing
    assert (prof.gemms, prof.adds) == (15 + renewed, 8 + 4 + 2)
    assert prof.madds == pytest.approx((15 + renewed) / (8 * 16))  # block products of 4×4 against 16 a step
    assert body.nodes == 44 and body.ops == {"Add": 14, "Concat": 1, "FusedGemm": 15, "Gemm": 11, "Split": 3}
    blocks = sorted(k for k, v in all_initializers(proto.graph) if "/R_" in k and v.shape == (4, 4))
    assert len(blocks) == 10 == sum(1 for k, v in all_initializers(proto.graph) if "/R_" in k)
    session = Session(proto)
    for time in (5, 300):
        feeds = model.example_inputs(3, time, time)
        want = oracle.run(model, params, **feeds)
        for name, value in session.run(**feeds).items():
            row = compare(name, value, want[name])
            assert row.ok, f"T={time} {name}: max abs err {row.max_abs:.3e}"


def test_cycle_keeps_a_resting_group_through_a_nan():
    """What the dense form breaks (tests/test_guards.py, the xfail): the cycle multiplies only each group's own
    block, so a NaN in the fast group never reaches the slow one."""
    model = every_return(rg.Clockwork(7, periods=(1, 4), groups=2, group_sizes=(4, 3)))
    params = model.init(3)
    session = bare(rg.export(model, params, options=rg.ExportOptions(lowering="scan", clockwork_form="cycle")))
    x = x_with_nan()
    for lengths in (None, np.array([6, 3, 2])):
        feeds = {"x": x} | ({} if lengths is None else {"lengths": lengths})
        got, want = run_bare(session, **feeds), oracle.run(model, params, **feeds)
        assert np.isfinite(want["y"][0, 2:, 4:]).any()  # the slow group of row 0 rests through the NaN
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, equal_nan=True, err_msg=name)


def test_reverse_and_loops_fall_back_to_a_per_step_form():
    """The cycle needs every row on one clock from step 0: a backward direction over ragged rows runs the ladder
    or the dense step (and matches the oracle), the forward one the cycle."""
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Bidirectional(rg.Clockwork(10, periods=(1, 2), group_sizes=(3, 7)))(x)})
    proto = build_model_proto(model, model.init(0), options=CYCLE)
    assert op_histogram(proto.graph)["Scan"] == 2
    assert scopes(proto, "/clock/") == {"biclockwork0/bw"} and scopes(proto, "/cycle/") == {"biclockwork0/fw"}
    for batch, time in ((4, 9), (1, 1)):
        assert_matches(model, batch=batch, time=time, clockwork_form="cycle")
