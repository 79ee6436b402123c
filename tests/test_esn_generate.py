"""Generative (closed-loop) mode, docs/esn.md: priming Scan + Loop over a runtime number of steps."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare
from tests.conftest import SHAPES, assert_matches

CELLS = {
    # u(n+1) := y(n): input and output of equal size
    "feed_input": (2, lambda: rg.ESN(8, outputs=2, density=0.4, leak=0.7, reads=("state",))),
    "feed_input_feedback": (2, lambda: rg.ESN(8, outputs=2, density=0.4, leak=0.5, feedback=True,
                                              feedback_scaling=0.5, reads=("state", "output"))),
    # K != L: the closed loop runs through W_back only, on zero input
    "feedback_only": (3, lambda: rg.ESN(9, outputs=2, density=0.5, feedback=True)),
    # any cell: a tanh RNN predicting its next input, and a Clockwork RNN whose clock runs on
    "rnn": (5, lambda: rg.RNN(5)),
    "clockwork": (6, lambda: rg.Clockwork(6, periods=(1, 2, 4))),
}


def generative(name: str, **kwargs: object) -> rg.Model:
    features, make = CELLS[name]
    u = rg.Input("u", features=features)
    n = rg.Input("steps", count=True)
    generated, primed = rg.Generative(make(), name="gen", **kwargs)(u, n)
    return rg.Model([u, n], {"generated": generated, "primed": primed})


@pytest.mark.parametrize("lowering", ["scan", "auto"])
@pytest.mark.parametrize("batch,time", SHAPES)
@pytest.mark.parametrize("name", sorted(CELLS))
def test_generative_matches_oracle(name, batch, time, lowering):
    got = assert_matches(generative(name), batch=batch, time=time, lowering=lowering)
    assert got["generated"].shape == (batch, time, CELLS[name][1]().output_size)  # steps = time in example_inputs


@pytest.mark.parametrize("steps", [0, 1, 13])
def test_any_number_of_steps(steps):
    model = generative("feed_input_feedback")
    feeds = model.example_inputs(3, 6, seed=steps)
    feeds["steps"] = np.array(steps, dtype=np.int64)
    got = assert_matches(model, feeds=feeds)
    assert got["generated"].shape == (3, steps, 2)


def test_generation_continues_the_driven_run():
    """Metamorphic: generating equals driving the model with its own outputs appended to the priming."""
    model = generative("feed_input")
    params = model.init(seed=5)
    u = np.random.default_rng(0).standard_normal((2, 7, 2)).astype(np.float32)
    out = oracle.run(model, params, u=u, steps=np.array(6))
    fed_back = np.concatenate([out["primed"][:, -1:], out["generated"][:, :-1]], axis=1)
    longer = oracle.run(model, params, u=np.concatenate([u, fed_back], axis=1), steps=np.array(0))
    np.testing.assert_allclose(longer["primed"][:, 7:], out["generated"], rtol=1e-12, atol=1e-12)
    got = Session(build_model_proto(model, params)).run(u=u, steps=np.array(6))
    assert compare("generated", got["generated"], out["generated"]).ok


def test_driven_and_generative_models_share_parameters():
    cell = rg.ESN(10, outputs=1, density=0.3, leak=0.5)
    u = rg.Input("u", features=1)
    driven = rg.Model(u, {"y": rg.Recurrent(cell, name="esn")(u)})
    u2, n = rg.Input("u", features=1), rg.Input("steps", count=True)
    gen, primed = rg.Generative(cell, name="esn")(u2, n)
    generative_model = rg.Model([u2, n], {"generated": gen, "primed": primed})
    assert driven.param_specs().keys() == generative_model.param_specs().keys()
    params = driven.init(seed=2)
    feeds = driven.example_inputs(3, 8, seed=1)
    y = Session(build_model_proto(driven, params)).run(**feeds)["y"]
    primed_out = Session(build_model_proto(generative_model, params)).run(**feeds, steps=np.array(4))["primed"]
    np.testing.assert_array_equal(y, primed_out)


def test_graph_size_is_independent_of_time_and_steps():
    model = generative("feed_input_feedback")
    params = model.init(seed=3)
    proto = build_model_proto(model, params)
    ops = op_histogram(proto.graph)
    assert ops["Scan"] == 1 and ops["Loop"] == 1
    session = Session(proto)
    for time, steps in ((5, 3), (300, 200)):
        feeds = model.example_inputs(2, time, seed=time)
        feeds["steps"] = np.array(steps)
        got, ref = session.run(**feeds), oracle.run(model, params, **feeds)
        for name in ("generated", "primed"):
            assert compare(name, got[name], ref[name], "float32-long").ok, (time, steps, name)
    assert op_histogram(build_model_proto(model, params).graph) == ops


# -- errors ----------------------------------------------------------------------------------------------
def test_steps_must_be_a_count():
    u = rg.Input("u", features=2)
    with pytest.raises(rg.ModelError, match=r"gen: input `steps` must be a count, Input\(name, count=True\)"):
        rg.Generative(rg.ESN(5, outputs=2), name="gen")(u, u)


def test_feeding_outputs_back_needs_equal_sizes():
    u, n = rg.Input("u", features=3), rg.Input("steps", count=True)
    with pytest.raises(rg.ModelError, match=r"gen: invalid value for `feed_input`: expected False, since the input "
                                            r"has 3 features and the cell outputs 2"):
        rg.Generative(rg.ESN(5, outputs=2), name="gen", feed_input=True)(u, n)


def test_cell_and_feed_input_are_checked():
    with pytest.raises(rg.ModelError, match=r"invalid value for `cell`: expected a cell such as ESN"):
        rg.Generative(None)
    with pytest.raises(rg.ModelError, match=r"invalid value for `feed_input`: expected True or False"):
        rg.Generative(rg.ESN(5), feed_input="yes")  # type: ignore[arg-type]


def test_priming_must_be_a_float_sequence():
    v, n = rg.Input("v", features=2, sequence=False), rg.Input("steps", count=True)
    with pytest.raises(rg.ModelError, match=r"Generative: input `x` must be a sequence of features"):
        rg.Generative(rg.ESN(5, outputs=2))(v, n)


def test_negative_steps_are_refused_before_onnxruntime():
    model = generative("feed_input")
    session = Session(build_model_proto(model, model.init(0)))
    feeds = model.example_inputs(2, 4, 0)
    feeds["steps"] = np.array(-1)
    with pytest.raises(rg.InputError, match="input 'steps': expected a non-negative integer count"):
        session.run(**feeds)


@pytest.mark.parametrize("name", ["feed_input", "clockwork"])
def test_unpadded_priming(name):
    """A priming input declared without lengths: the last output and the clock come from the time axis."""
    features, make = CELLS[name]
    u = rg.Input("u", features=features, lengths=None)
    n = rg.Input("steps", count=True)
    generated, primed = rg.Generative(make())(u, n)
    model = rg.Model([u, n], {"generated": generated, "primed": primed})
    for batch, time in SHAPES:
        assert_matches(model, batch=batch, time=time)


def test_oracle_refuses_negative_steps():
    model = generative("feed_input")
    feeds = model.example_inputs(2, 4, 0)
    feeds["steps"] = np.array(-3)
    with pytest.raises(rg.InputError, match=r"oracle: `steps` must be a count >= 0 of steps to generate, received -3"):
        oracle.run(model, model.init(0), **feeds)


@pytest.mark.parametrize("make", [lambda: rg.RNN(4), lambda: rg.LSTM(4), lambda: rg.GRU(4, linear_before_reset=True)],
                         ids=["rnn", "lstm", "gru"])
def test_native_priming_then_loop(make):
    """With `native` lowering the priming runs on ONNX's own op; the Loop then steps the cell's Scan body."""
    u, n = rg.Input("u", features=4), rg.Input("steps", count=True)
    generated, primed = rg.Generative(make(), name="gen")(u, n)
    model = rg.Model([u, n], {"generated": generated, "primed": primed})
    proto = build_model_proto(model, model.init(0), 17, "native")
    assert dict((p.key, p.value) for p in proto.metadata_props)["rnngraph.paths"] == '{"gen": "native+loop"}'
    for batch, time in SHAPES:
        assert_matches(model, batch=batch, time=time, lowering="native")
