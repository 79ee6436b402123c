"""onnxruntime's native LSTM and GRU kernels, built by hand (not by our compiler), against the oracle.

Random weights, ragged lengths, both directions, initial states, peepholes, both
GRU reset placements, and ``input_forget`` for the coupled LSTM.
"""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import rnngraph as rg
from rnngraph.dsl.gates import ONNX_LSTM, ONNX_LSTM_PEEPHOLES, join_gates, split_gates
from rnngraph.runtime.oracle.layers import run_row
from tests.conftest import assert_close

BATCH, TIME, FEATURES, HIDDEN = 4, 6, 5, 7
LENGTHS = np.array([6, 2, 5, 1])


def run_native(op, weights, x_tm, lens, initial, direction, **attrs):
    """One ONNX node `op` with `weights` as initializers; returns Y, Y_h (and Y_c)."""
    roles = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if op == "LSTM" else [])
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    feeds = {"X": x_tm, "sequence_lens": lens.astype(np.int32), **{f"initial_{k}": v[None] for k, v in initial.items()}}
    inputs = [r if r in feeds or r in weights else "" for r in roles]
    while inputs[-1] == "":
        inputs.pop()
    graph = helper.make_graph(
        [helper.make_node(op, inputs, outs, hidden_size=HIDDEN, direction=direction, **attrs)], op.lower(),
        [helper.make_tensor_value_info(k, TensorProto.INT32 if k == "sequence_lens" else TensorProto.FLOAT, None)
         for k in feeds],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in outs],
        [numpy_helper.from_array(v[None].astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(outs, sess.run(None, feeds), strict=True))


def oracle_rows(cell, p, x, lens, initial, reverse):
    """The oracle's own row loop: y (batch, time, H) zero past each length, final states."""
    y = np.zeros((x.shape[0], x.shape[1], cell.hidden))
    finals = {k: np.zeros((x.shape[0], cell.hidden)) for k in cell.state_sizes()}
    for b in range(x.shape[0]):
        order = np.arange(lens[b])[::-1] if reverse else np.arange(lens[b])
        ys, states = run_row(cell, p, x[b, order], {k: v[b].astype(np.float64) for k, v in initial.items()})
        y[b, order] = ys
        for k, v in states.items():
            finals[k][b] = v
    return y, finals


def random_inputs(seed, states):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, TIME, FEATURES)).astype(np.float32)
    initial = {k: (rng.standard_normal((BATCH, HIDDEN)) * 0.5).astype(np.float32) for k in states}
    return rng, x, initial


def check(native, y, finals):
    assert_close(native["Y"][:, 0].transpose(1, 0, 2), y, what="Y")
    assert_close(native["Y_h"][0], finals["h"], what="Y_h")
    if "Y_c" in native:
        assert_close(native["Y_c"][0], finals["c"], what="Y_c")


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("peephole", [False, True])
def test_native_lstm_matches_oracle(direction, peephole):
    cell = rg.LSTM(HIDDEN, peephole=peephole)
    rng, x, initial = random_inputs(1 + peephole, ("h", "c"))
    p = {k: rng.uniform(-0.6, 0.6, s.shape).astype(np.float32) for k, s in cell.param_specs(FEATURES).items()}
    native = run_native("LSTM", p, x.transpose(1, 0, 2), LENGTHS, initial, direction)
    y, finals = oracle_rows(cell, {k: v.astype(np.float64) for k, v in p.items()}, x, LENGTHS, initial,
                            direction == "reverse")
    check(native, y, finals)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("linear_before_reset", [False, True])
def test_native_gru_matches_oracle(direction, linear_before_reset):
    cell = rg.GRU(HIDDEN, linear_before_reset=linear_before_reset)
    rng, x, initial = random_inputs(3 + linear_before_reset, ("h",))
    p = {k: rng.uniform(-0.6, 0.6, s.shape).astype(np.float32) for k, s in cell.param_specs(FEATURES).items()}
    native = run_native("GRU", p, x.transpose(1, 0, 2), LENGTHS, initial, direction,
                        linear_before_reset=int(linear_before_reset))
    y, finals = oracle_rows(cell, {k: v.astype(np.float64) for k, v in p.items()}, x, LENGTHS, initial,
                            direction == "reverse")
    check(native, y, finals)


@pytest.mark.parametrize("forget_slot", ["f", "zeros"])
@pytest.mark.parametrize("peephole", [False, True])
def test_native_input_forget_computes_the_coupled_lstm(peephole, forget_slot):
    """``input_forget=1`` with the negated forget weights in the input slot is the coupled LSTM.

    onnxruntime derives f = 1 − i from the input slot: its forget slot does not matter
    (``zeros``); rnngraph fills it with the forget weights anyway (``f``), which makes
    the export right for a runtime that derives i = 1 − f instead.
    """
    cell = rg.LSTM(HIDDEN, peephole=peephole, coupled=True)
    rng, x, initial = random_inputs(5 + peephole, ("h", "c"))
    p = {k: rng.uniform(-0.6, 0.6, s.shape).astype(np.float32) for k, s in cell.param_specs(FEATURES).items()}

    def four(array, order, onnx_order):
        blocks = split_gates(array, order)
        blocks["i"] = -blocks["f"]
        if forget_slot == "zeros":
            blocks["f"] = np.zeros_like(blocks["f"])
        return join_gates(blocks, onnx_order)

    wb, rb = np.split(p["B"], 2)
    native_p = {"W": four(p["W"], cell.gates, ONNX_LSTM), "R": four(p["R"], cell.gates, ONNX_LSTM),
                "B": np.concatenate([four(wb, cell.gates, ONNX_LSTM), four(rb, cell.gates, ONNX_LSTM)])}
    if peephole:
        native_p["P"] = four(p["P"], cell.peephole_gates, ONNX_LSTM_PEEPHOLES)
    native = run_native("LSTM", native_p, x.transpose(1, 0, 2), LENGTHS, initial, "forward", input_forget=1)
    y, finals = oracle_rows(cell, {k: v.astype(np.float64) for k, v in p.items()}, x, LENGTHS, initial, False)
    check(native, y, finals)
