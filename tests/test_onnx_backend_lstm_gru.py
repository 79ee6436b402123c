"""The oracle reproduces ONNX's own backend test cases for the LSTM and GRU ops.

Nobody here wrote these cases (inputs, weights and expected outputs come with the
onnx package), so they check the oracle's gate orders, peepholes, reset placement,
lengths and directions from outside.
"""

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.runtime import oracle
from tests.conftest import assert_close
from tests.onnx_cases import cases

LSTM_CASES = cases("LSTM")
GRU_CASES = cases("GRU")


def test_cases_were_found():
    names = {c.name for c in LSTM_CASES + GRU_CASES}
    assert {"test_lstm_defaults", "test_lstm_with_peepholes", "test_lstm_reverse", "test_lstm_batchwise",
            "test_gru_defaults", "test_gru_seq_length", "test_gru_bidirectional"} <= names


def run_case(case, cell, d):
    """Direction `d` of `case` through the oracle: y, final h (and c) as (batch, ...)."""
    reverse = case.direction == "reverse" or d == 1
    x = case.x_batch_first()
    lengths = case.inputs.get("sequence_lens")
    xin = rg.Input("x", features=x.shape[2], lengths="lengths" if lengths is not None else None)
    states = list(cell.state_sizes())
    feeds = {"x": x}
    initial = None
    if "initial_h" in case.inputs:
        initial = rg.Input("h0", features=cell.hidden, sequence=False)
        feeds["h0"] = case.inputs["initial_h"][d]
    if "initial_c" in case.inputs:  # Recurrent's initial_state sets h only; c starts at 0 (docs/encoder-decoder.md)
        assert not np.any(case.inputs["initial_c"][d]), f"{case.name}: a non-zero initial_c is not expressible"
    if lengths is not None:
        feeds["lengths"] = lengths
    outs = rg.Recurrent(cell, reverse=reverse, returns=("sequence", "state"), name="rec")(xin, initial_state=initial)
    inputs = [xin] + ([initial] if initial is not None else [])
    model = rg.Model(inputs, dict(zip(["y", *states], outs, strict=True)))
    n = len(cell.gates) * cell.hidden
    params = {"rec/W": case.inputs["W"][d], "rec/R": case.inputs["R"][d],
              "rec/B": case.inputs["B"][d] if "B" in case.inputs else np.zeros(2 * n, np.float32)}
    if "P" in case.inputs:
        params["rec/P"] = case.inputs["P"][d]
    return oracle.run(model, params, **feeds)


def check(case, cell):
    directions = 2 if case.direction == "bidirectional" else 1
    for d in range(directions):
        got = run_case(case, cell, d)
        expected_y = case.y_batch_first(d)
        if expected_y is not None:
            assert_close(got["y"], expected_y, what=f"{case.name} Y[{d}]")
        for state in cell.state_sizes():
            expected = case.state(f"Y_{state}", d)
            if expected is not None:
                assert_close(got[state], expected, what=f"{case.name} Y_{state}[{d}]")


@pytest.mark.parametrize("case", LSTM_CASES, ids=lambda c: c.name)
def test_oracle_reproduces_onnx_lstm_case(case):
    assert int(case.attrs.get("input_forget", 0)) == 0
    check(case, rg.LSTM(int(case.attrs["hidden_size"]), peephole="P" in case.inputs))


@pytest.mark.parametrize("case", GRU_CASES, ids=lambda c: c.name)
def test_oracle_reproduces_onnx_gru_case(case):
    lbr = bool(case.attrs.get("linear_before_reset", 0))
    check(case, rg.GRU(int(case.attrs["hidden_size"]), linear_before_reset=lbr))


@pytest.mark.parametrize("op,option", [("LSTM", "plain"), ("LSTM", "peephole"), ("GRU", "reset_before"),
                                       ("GRU", "reset_after")])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_onnx_reference_evaluator_with_random_weights(op, option, direction):
    """The backend cases above use constant weights (a swapped gate order passes them);
    ONNX's reference evaluator on random weights and initial states does not forgive that."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    batch, time, features, hidden = 3, 5, 4, 6
    cell = (rg.LSTM(hidden, peephole=option == "peephole") if op == "LSTM"
            else rg.GRU(hidden, linear_before_reset=option == "reset_after"))
    rng = np.random.default_rng(len(op) + len(option) + len(direction))
    p = {k: rng.uniform(-0.7, 0.7, s.shape).astype(np.float32) for k, s in cell.param_specs(features).items()}
    x = rng.standard_normal((batch, time, features)).astype(np.float32)
    h0 = (rng.standard_normal((batch, hidden)) * 0.5).astype(np.float32)
    roles = ["X", "W", "R", "B", "", "initial_h"] + (["", "P"] if "P" in p else [])
    outs = ["Y", "Y_h"]
    attrs = {"linear_before_reset": int(cell.linear_before_reset)} if op == "GRU" else {}
    node = helper.make_node(op, roles, outs, hidden_size=hidden, direction=direction, **attrs)
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info(r, TensorProto.FLOAT, None)
                                              for r in roles if r],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"X": x.transpose(1, 0, 2), "initial_h": h0[None], **{k: v[None] for k, v in p.items()}}
    y, y_h = ReferenceEvaluator(model).run(None, feeds)

    xin, h_in = rg.Input("x", features=features, lengths=None), rg.Input("h0", features=hidden, sequence=False)
    seq, h = rg.Recurrent(cell, reverse=direction == "reverse", returns=("sequence", "state"), name="rec")(
        xin, initial_state=h_in)[:2]
    ours = rg.Model([xin, h_in], {"y": seq, "h": h})
    got = oracle.run(ours, {f"rec/{k}": v for k, v in p.items()}, x=x, h0=h0)
    assert_close(got["y"], y[:, 0].transpose(1, 0, 2), what=f"{op} Y")
    assert_close(got["h"], y_h[0], what=f"{op} Y_h")
