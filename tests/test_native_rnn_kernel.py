"""onnxruntime's native RNN kernel, built by hand (not by our compiler), against the oracle."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import rnngraph as rg
from rnngraph.runtime import oracle
from tests.conftest import assert_close


def native_rnn(x_tm, W, R, B, lens, direction, activation):
    graph = helper.make_graph(
        [helper.make_node("RNN", ["X", "W", "R", "B", "L"], ["Y", "Y_h"], hidden_size=W.shape[0],
                          direction=direction, activations=[activation])],
        "rnn",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("L", TensorProto.INT32, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)],
        [helper.make_tensor("W", TensorProto.FLOAT, (1, *W.shape), W.ravel()),
         helper.make_tensor("R", TensorProto.FLOAT, (1, *R.shape), R.ravel()),
         helper.make_tensor("B", TensorProto.FLOAT, (1, *B.shape), B.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x_tm, "L": lens.astype(np.int32)})


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_native_kernel_matches_oracle(direction, activation):
    rng = np.random.default_rng(7)
    batch, time, n_in, hidden = 4, 6, 5, 7
    x = rng.standard_normal((batch, time, n_in)).astype(np.float32)
    lens = np.array([6, 2, 5, 1])
    W, R = (rng.standard_normal((hidden, n)).astype(np.float32) * 0.5 for n in (n_in, hidden))
    B = rng.standard_normal(2 * hidden).astype(np.float32) * 0.5
    y, y_h = native_rnn(x.transpose(1, 0, 2), W, R, B, lens, direction, activation.capitalize())

    xin = rg.Input("x", features=n_in)
    layer = rg.Recurrent(rg.RNN(hidden, activation=activation), reverse=direction == "reverse")
    model = rg.Model(xin, {"y": layer(xin)})
    ref = oracle.run(model, {"rnn0/W": W, "rnn0/R": R, "rnn0/B": B}, x=x, lengths=lens)["y"]
    assert_close(y[:, 0].transpose(1, 0, 2), ref, what="Y")
    last = ref[:, 0] if direction == "reverse" else ref[np.arange(batch), lens - 1]
    assert_close(y_h[0], last, what="Y_h")
