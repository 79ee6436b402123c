"""1-to-N generation: every refusal names the field, what was expected and what was received."""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import InputError, ModelError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session


def softmax_readout() -> rg.Dense:
    return rg.Dense(6, activation="softmax")


@pytest.mark.parametrize("kwargs,match", [
    ({"cell": None}, "Generate: invalid value for `cell`: expected a cell such as RNN(32), LSTM(32) or GRU(32), "
                     "received None."),
    ({"mode": "last"}, "invalid value for `mode`: expected one of 'first', 'every', received 'last'."),
    ({"feedback": "sample"}, "invalid value for `feedback`: expected one of 'none', 'output', 'argmax', "
                             "received 'sample'."),
    ({"readout": "dense"}, "invalid value for `readout`: expected None or a Dense layer"),
    ({"feedback": "argmax", "embedding": 4}, "invalid value for `readout`: expected a Dense layer \\(feedback='argmax' "
                                             "feeds back its argmax token\\), received None. Give readout="),
    ({"feedback": "argmax", "readout": "R"}, "invalid value for `embedding`: expected the size of the fed-back "
                                             "token's embedding .* received None. Give e.g. embedding=32."),
    ({"feedback": "argmax", "readout": "R", "embedding": 0}, "`embedding`: expected a positive integer, received 0."),
    ({"feedback": "argmax", "readout": "R", "embedding": 4, "start": 6},
     "`start`: expected None \\(step 0 reads a zero vector\\) or a token id in \\[0, 6\\), received 6."),
    ({"feedback": "argmax", "readout": "R", "embedding": 4, "start": True}, "`start`: .* received True."),
    ({"feedback": "output", "embedding": 4}, "`embedding`: expected None unless feedback='argmax', received 4. "
                                             "It is only used with feedback='argmax' \\(feedback is 'output'\\)."),
    ({"start": 0}, "`start`: expected None unless feedback='argmax', received 0."),
    ({"tokens": True}, "`tokens`: expected False without a readout .* received True. Give a readout="),
    ({"tokens": "yes", "readout": "R"}, "`tokens`: expected True or False, received 'yes'."),
])
def test_bad_hyperparameters(kwargs, match):
    kwargs = dict(kwargs)
    kwargs.setdefault("cell", rg.RNN(4))
    if kwargs.get("readout") == "R":
        kwargs["readout"] = softmax_readout()
    cell = kwargs.pop("cell")
    with pytest.raises(ModelError, match=match if "\\" in match or ".*" in match else re.escape(match)):
        rg.Generate(cell, **kwargs)


def test_v_must_be_a_feature_vector():
    n = rg.Input("n", count=True)
    x = rg.Input("x", features=3)
    with pytest.raises(ModelError, match=re.escape(
            "Generate: input `v` must be a vector of features, received sequence (batch, time, 3) float32.")):
        rg.Generate(rg.RNN(4))(x, n)
    ids = rg.Input("label", tokens=10, sequence=False)
    with pytest.raises(ModelError, match="input `v` must be a vector of features, received vector \\(batch\\) int64"):
        rg.Generate(rg.RNN(4))(ids, n)


def test_steps_must_be_a_count():
    v = rg.Input("v", features=3, sequence=False)
    w = rg.Input("w", features=1, sequence=False)
    with pytest.raises(ModelError, match=re.escape(
            "Generate: input `steps` must be a count, Input(name, count=True) (an int64 scalar), "
            "received vector (batch, 1) float32.")):
        rg.Generate(rg.RNN(4))(v, w)
    with pytest.raises(ModelError, match="missing input `steps`"):
        rg.Generate(rg.RNN(4))(v)


def test_count_input_must_be_listed():
    v = rg.Input("v", features=3, sequence=False)
    n = rg.Input("n", count=True)
    y = rg.Generate(rg.RNN(4))(v, n)
    with pytest.raises(ModelError, match="the outputs read input 'n', which is not listed in `inputs`; add it there"):
        rg.Model(v, {"y": y})


@pytest.fixture(scope="module")
def session_and_model():
    v = rg.Input("v", features=3, sequence=False)
    n = rg.Input("n", count=True)
    model = rg.Model([v, n], {"y": rg.Generate(rg.RNN(4), mode="every")(v, n)})
    return Session(build_model_proto(model, model.init(0))), model


@pytest.mark.parametrize("count,match", [
    (np.int64(-1), "input 'n': expected a non-negative integer count \\(a scalar\\), received array\\(-1\\)"),
    (np.array([3]), "input 'n': expected a non-negative integer count \\(a scalar\\), received array\\(\\[3\\]\\)"),
    (2.5, "input 'n': expected integers \\(int64\\), received dtype float64"),
])
def test_session_refuses_bad_counts(session_and_model, count, match):
    session, _ = session_and_model
    with pytest.raises(InputError, match=match):
        session.run(v=np.zeros((2, 3), np.float32), n=count)


def test_session_accepts_python_ints(session_and_model):
    session, _ = session_and_model
    assert session.run(v=np.ones((2, 3), np.float32), n=4)["y"].shape == (2, 4, 4)


def test_oracle_refuses_a_negative_count(session_and_model):
    _, model = session_and_model
    with pytest.raises(InputError, match="oracle: `n` must be a non-negative integer scalar, received array\\(-2\\)"):
        oracle.run(model, model.init(0), v=np.zeros((2, 3)), n=np.int64(-2))
