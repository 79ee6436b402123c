"""The walking skeleton: describe, export, run, compare."""

import pytest

import rnngraph as rg
from tests.conftest import SHAPES, assert_matches


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_classic_rnn_matches_oracle(lowering, batch, time):
    x = rg.Input("x", features=4)
    y = rg.Dense(3, activation="softmax")(rg.Recurrent(rg.RNN(7))(x))
    model = rg.Model(x, {"y": y})
    assert_matches(model, batch=batch, time=time, lowering=lowering)
