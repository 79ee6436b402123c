"""The oracle reproduces ONNX's own backend test cases for the RNN op."""

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.runtime import oracle
from tests.conftest import assert_close
from tests.onnx_cases import cases

RNN_CASES = cases("RNN")


def test_cases_were_found():
    assert len(RNN_CASES) >= 5


@pytest.mark.parametrize("case", RNN_CASES, ids=lambda c: c.name)
def test_oracle_reproduces_onnx_rnn_case(case):
    hidden = int(case.attrs["hidden_size"])
    x = case.x_batch_first()
    directions = 2 if case.direction == "bidirectional" else 1
    for d in range(directions):
        reverse = case.direction == "reverse" or d == 1
        xin = rg.Input("x", features=x.shape[2], lengths=None)
        model = rg.Model(xin, {"y": rg.Recurrent(rg.RNN(hidden), reverse=reverse)(xin)})
        bias = case.inputs["B"][d] if "B" in case.inputs else np.zeros(2 * hidden)
        params = {"rnn0/W": case.inputs["W"][d], "rnn0/R": case.inputs["R"][d], "rnn0/B": bias}
        y = oracle.run(model, params, x=x)["y"]
        expected_y = case.y_batch_first(d)
        if expected_y is not None:
            assert_close(y, expected_y, what=f"{case.name} Y")
        last = y[:, 0] if reverse else y[:, -1]
        assert_close(last, case.state("Y_h", d), what=f"{case.name} Y_h")
