"""The in-graph guards (rnngraph/compiler/guards.py): empty inputs, any lengths, capped counts, one NaN rule.

Graphs are run in plain onnxruntime (no Session in front) and compared with the oracle.
Abort-prone inputs for every sample run in subprocesses in tests/test_bare_onnxruntime.py.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.dsl import registry
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare, nan_feeds, verify

RETURNS = ("sequence", "state", "last", "mean", "max")
CELLS = registry.examples("onnx")


def bare(proto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_bare(session: ort.InferenceSession, **feeds: np.ndarray) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def every_return(cell: rg.Cell, features: int = 3) -> rg.Model:
    x = rg.Input("x", features=features)
    outs = rg.Recurrent(cell, returns=RETURNS)(x)
    state_count = len(cell.state_sizes())
    names = ["y"] + [f"s{i}" for i in range(state_count)] + ["last", "mean", "max"]
    return rg.Model(x, dict(zip(names, outs, strict=True)))


def export_with(model: rg.Model, params: dict[str, np.ndarray], lowering: str) -> ort.InferenceSession:
    """Clockwork in its ladder form: the dense form breaks the NaN rule (see the xfail below)."""
    try:
        proto = rg.export(model, params, options=rg.ExportOptions(lowering=lowering, clockwork_form="ladder"))
    except rg.ExportError:  # periods that do not divide each other: no ladder, and no such example here
        proto = rg.export(model, params, lowering=lowering)
    return bare(proto)


@pytest.fixture(scope="module", params=range(len(CELLS)), ids=[repr(c) for c in CELLS])
def exported(request):
    cell = CELLS[request.param]
    model = every_return(cell)
    params = model.init(3)
    return model, params, {low: export_with(model, params, low) for low in ("scan", "native")}


def x_with_nan(batch: int = 3, time: int = 6) -> np.ndarray:
    x = np.random.default_rng(5).standard_normal((batch, time, 3)).astype(np.float32)
    x[0, 2, 1] = np.nan  # a valid step of row 0 (length 6); row 2 has its NaN in a padded step
    x[2, 4, 0] = np.nan
    return x


@pytest.mark.parametrize("lengths", [None, [6, 3, 2], [3, 6, 4]])
def test_nan_in_a_valid_step_propagates_alike_in_every_lowering(exported, lengths):
    model, params, sessions = exported
    feeds = {"x": x_with_nan()} | ({} if lengths is None else {"lengths": np.array(lengths)})
    if lengths is None:  # the NaN of row 2 is then valid too
        feeds["x"][2, 4, 0] = np.nan
    want = oracle.run(model, params, **feeds)
    # (a Clockwork group that does not update at step 2 stays a number until it does)
    assert np.isnan(want["y"][0, 2]).any() and not np.isnan(want["y"][0, :2]).any()
    for lowering, session in sessions.items():
        got = run_bare(session, **feeds)
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, equal_nan=True,
                                       err_msg=f"{lowering}: {name}")


@pytest.mark.xfail(strict=True, reason="Clockwork's dense form multiplies all of R, structural zeros included, "
                   "and blends h + m·(new − h): a NaN in a faster group reaches a slower one as 0·NaN, and a "
                   "resting group through the blend; the ladder form computes each group's own block")
def test_clockwork_dense_form_keeps_a_resting_group_through_a_nan():
    model = every_return(rg.Clockwork(7, periods=(1, 4), groups=2, group_sizes=(4, 3)))
    params = model.init(3)
    session = bare(rg.export(model, params, options=rg.ExportOptions(lowering="scan", clockwork_form="dense")))
    x = x_with_nan()
    np.testing.assert_allclose(run_bare(session, x=x)["y"], oracle.run(model, params, x=x)["y"], rtol=1e-4,
                               atol=1e-5, equal_nan=True)


def test_empty_inputs_give_zeros_of_the_right_shape(exported):
    model, params, sessions = exported
    hidden = model.outputs["y"].spec.features
    for session in sessions.values():
        for shape in [(0, 6, 3), (4, 0, 3), (0, 0, 3)]:
            out = run_bare(session, x=np.ones(shape, np.float32))
            assert out["y"].shape == (shape[0], shape[1], hidden)
            for name in ("last", "mean", "max"):
                assert out[name].shape == (shape[0], hidden) and not out[name].any()
            assert not any(value.any() for value in out.values())


def test_lengths_are_clamped_and_may_be_left_out(exported):
    model, params, sessions = exported
    x = np.random.default_rng(7).standard_normal((3, 6, 3)).astype(np.float32)
    full = oracle.run(model, params, x=x)
    ragged = oracle.run(model, params, x=x, lengths=np.array([6, 2, 5]))
    for session in sessions.values():
        missing = run_bare(session, x=x)
        clamped = run_bare(session, x=x, lengths=np.array([9, 2, 5]))  # 9 > time: the full row
        empty = run_bare(session, x=x, lengths=np.array([6, 0, -4]))
        for name in full:
            np.testing.assert_allclose(missing[name], full[name], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(clamped[name], ragged[name], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(empty[name][0], full[name][0], rtol=1e-4, atol=1e-5)
            assert not empty[name][1:].any(), f"{name}: a row of length 0 (or -4) is not all zeros"


def generate_model(**count: int) -> tuple[rg.Model, dict[str, np.ndarray]]:
    v, n = rg.Input("v", features=3, sequence=False), rg.Input("n", count=True, **count)
    model = rg.Model([v, n], {"y": rg.Generate(rg.GRU(5, linear_before_reset=True), readout=rg.Dense(2))(v, n)})
    return model, model.init(1)


def test_counts_are_capped_in_the_graph_and_refused_by_the_session():
    model, params = generate_model(max=7)
    proto = rg.export(model, params)
    assert dict((p.key, p.value) for p in proto.metadata_props)["rnngraph.counts"] == '{"n": 7}'
    session = bare(proto)
    v = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    capped = run_bare(session, v=v, n=np.array(2**62))["y"]
    np.testing.assert_allclose(capped, oracle.run(model, params, v=v, n=np.array(7))["y"], rtol=1e-4, atol=1e-5)
    assert run_bare(session, v=v, n=np.array(-5))["y"].shape == (2, 0, 2)
    with pytest.raises(rg.InputError, match=r"input 'n': 8 is above this model's maximum of 7"):
        Session(proto).run(v=v, n=np.array(8))
    assert Session(proto).run(v=v, n=np.array(7, dtype=np.uint64))["y"].shape == (2, 7, 2)


def test_count_default_maximum_is_ten_thousand():
    assert rg.Input("n", count=True).spec.count_max == 10_000


def test_batch_zero_gives_the_requested_number_of_steps():
    """Generative's generated axis is named after its count, so batch 0 still has `steps` steps."""
    x, steps = rg.Input("x", features=1), rg.Input("k", count=True)
    model = rg.Model([x, steps], dict(zip(("generated", "primed"),
                                         rg.Generative(rg.ESN(20, outputs=1))(x, steps), strict=True)))
    params = model.init(0)
    session = Session(rg.export(model, params))
    out = session.run(x=np.zeros((0, 4, 1), np.float32), k=np.array(6))
    assert out["generated"].shape == (0, 6, 1) and out["primed"].shape == (0, 4, 1)
    gen = generate_model()[0]
    out = Session(rg.export(gen, gen.init(0))).run(v=np.zeros((0, 3), np.float32), n=np.array(4))
    assert out["y"].shape == (0, 4, 2)


def test_session_accepts_time_zero_int32_lengths_and_rows_of_length_zero():
    model = every_return(rg.LSTM(4))
    params = model.init(0)
    session = Session(rg.export(model, params))
    x = np.random.default_rng(3).standard_normal((3, 5, 3)).astype(np.float32)
    lengths = np.array([5, 0, 2], dtype=np.int32)
    got = session.run(x=x, lengths=lengths)
    want = oracle.run(model, params, x=x, lengths=np.array([5, 1, 2]))
    np.testing.assert_allclose(got["y"][[0, 2]], want["y"][[0, 2]], rtol=1e-4, atol=1e-5)
    assert not any(value[1].any() for value in got.values())
    empty = session.run(x=np.zeros((3, 0, 3), np.float32))
    assert empty["y"].shape == (3, 0, 4) and empty["last"].shape == (3, 4) and not empty["last"].any()
    with pytest.raises(rg.InputError, match=r"each length must be in 0\.\.5"):
        session.run(x=x, lengths=np.array([5, -1, 2]))


def test_verify_tries_a_nan_in_a_valid_step():
    x = rg.Input("x", features=3)
    seq, pooled = rg.Recurrent(rg.GRU(4, linear_before_reset=False), returns=("sequence", "max"))(x)
    model = rg.Model(x, {"y": seq, "m": pooled})
    report = verify(model, model.init(0), lowering="native")
    assert [row.output for row in report.rows] == ["y", "m", "y, NaN step", "m, NaN step"] and report.ok
    feeds = nan_feeds(model, model.example_inputs(3, 5, 0))
    assert feeds is not None and np.isnan(feeds["x"][0, 2, 0]) and np.isnan(feeds["x"]).sum() == 1


def test_a_nan_on_one_side_only_is_a_mismatch():
    ref = np.array([[1.0, np.nan], [2.0, 3.0]])
    assert compare("y", ref.astype(np.float32), ref).ok
    row = compare("y", np.array([[1.0, 0.5], [2.0, 3.0]], np.float32), ref)
    assert not row.ok and row.note.startswith("NaN on one side only, first at [0, 1]")


def test_no_nan_check_where_an_argmax_chooses_tokens():
    v, n = rg.Input("v", features=3, sequence=False), rg.Input("n", count=True)
    model = rg.Model([v, n], {"y": rg.Generate(rg.RNN(4))(v, n)})
    assert nan_feeds(model, model.example_inputs(2, 3, 0)) is None  # no sequence input
    assert nan_feeds(*clockwork_and_feeds()) is None


def clockwork_and_feeds() -> tuple[rg.Model, dict[str, np.ndarray]]:
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Recurrent(rg.Clockwork(4, periods=(1, 2)))(x)})
    return model, model.example_inputs(2, 4, 0)


def test_a_count_maximum_survives_the_model_description():
    from rnngraph.dsl.description import from_json, to_json

    model = generate_model(max=7)[0]
    assert from_json(to_json(model)).inputs["n"].count_max == 7
