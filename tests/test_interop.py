"""Gate orders and the PyTorch / Keras weight converters, without either framework installed.

The Keras references below are Keras' own step equations written against its
``kernel (I, gates*H)`` layout (keras/src/layers/rnn/{simple_rnn,lstm,gru}.py), so
a converter that mixed up a gate or a transpose gives other numbers than the oracle.
"""

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.dsl.gates import (
    KERAS_LSTM,
    ONNX_GRU,
    ONNX_LSTM,
    PYTORCH_GRU,
    PYTORCH_LSTM,
    permutation,
    reorder,
    reorder_bias,
    without,
)
from rnngraph.errors import ModelError, ParameterError
from rnngraph.interop import from_keras, from_pytorch, set_node_params, to_keras, to_pytorch
from rnngraph.runtime import oracle
from tests.conftest import assert_close

FEATURES, HIDDEN = 4, 5


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# -- gate orders ------------------------------------------------------------------
def test_permutations_are_derived_from_names():
    assert permutation(PYTORCH_LSTM, ONNX_LSTM) == (0, 3, 1, 2)
    assert permutation(ONNX_LSTM, PYTORCH_LSTM) == (0, 2, 3, 1)
    assert permutation(PYTORCH_GRU, ONNX_GRU) == (1, 0, 2)
    assert permutation(ONNX_LSTM, without(ONNX_LSTM, "i")) == (1, 2, 3)


def test_reorder_moves_labelled_blocks():
    labels = {g: k for k, g in enumerate(PYTORCH_LSTM)}
    fused = np.repeat([labels[g] for g in PYTORCH_LSTM], 3)[:, None] * np.ones((1, 2))  # (4*3, 2)
    onnx = reorder(fused, PYTORCH_LSTM, ONNX_LSTM)
    assert [int(onnx[3 * k, 0]) for k in range(4)] == [labels[g] for g in ONNX_LSTM]
    assert np.array_equal(reorder(onnx, ONNX_LSTM, PYTORCH_LSTM), fused)
    cols = reorder(fused.T, PYTORCH_LSTM, KERAS_LSTM, axis=1)
    assert [int(cols[0, 3 * k]) for k in range(4)] == [labels[g] for g in KERAS_LSTM]
    bias = np.arange(16.0)
    assert reorder_bias(bias, PYTORCH_LSTM, ONNX_LSTM).tolist() == [0, 1, 6, 7, 2, 3, 4, 5,
                                                                   8, 9, 14, 15, 10, 11, 12, 13]


def test_gate_order_errors():
    with pytest.raises(ValueError, match=r"gates \['x'\] of \('i', 'x'\) are not in"):
        permutation(ONNX_LSTM, ("i", "x"))
    with pytest.raises(ValueError, match=r"name each gate once"):
        permutation(("i", "i"), ("i",))
    with pytest.raises(ParameterError, match=r"W: axis 0 must hold 4 equal gate blocks .* received shape \(10, 3\)"):
        reorder(np.zeros((10, 3)), ONNX_LSTM, PYTORCH_LSTM, what="W")
    with pytest.raises(ValueError, match=r"gates \['z'\] are not in the order"):
        without(ONNX_LSTM, "z")


# -- Keras references ---------------------------------------------------------------
def keras_simple_rnn(x, kernel, recurrent, bias):
    h = np.zeros(recurrent.shape[0])
    ys = []
    for x_t in x:
        h = np.tanh(x_t @ kernel + bias + h @ recurrent)
        ys.append(h)
    return np.array(ys)


def keras_lstm(x, kernel, recurrent, bias):
    h = c = np.zeros(recurrent.shape[0])
    ys = []
    for x_t in x:
        z0, z1, z2, z3 = np.split(x_t @ kernel + h @ recurrent + bias, 4)
        i, f, o = sigmoid(z0), sigmoid(z1), sigmoid(z3)
        c = f * c + i * np.tanh(z2)
        h = o * np.tanh(c)
        ys.append(h)
    return np.array(ys)


def keras_gru(x, kernel, recurrent, bias, reset_after):
    units = recurrent.shape[0]
    h = np.zeros(units)
    ys = []
    for x_t in x:
        if reset_after:
            x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3)
            r_z, r_r, r_h = np.split(h @ recurrent + bias[1], 3)
            z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
            hh = np.tanh(x_h + r * r_h)
        else:
            x_z, x_r, x_h = np.split(x_t @ kernel + bias, 3)
            z = sigmoid(x_z + h @ recurrent[:, :units])
            r = sigmoid(x_r + h @ recurrent[:, units:2 * units])
            hh = np.tanh(x_h + (r * h) @ recurrent[:, 2 * units:])
        h = z * h + (1 - z) * hh
        ys.append(h)
    return np.array(ys)


def single_layer(cell):
    x = rg.Input("x", features=FEATURES, lengths=None)
    return rg.Model(x, {"y": rg.Recurrent(cell, name="rec")(x)})


KERAS_CASES = {
    "simple_rnn": (rg.RNN(HIDDEN), 1, lambda x, w: keras_simple_rnn(x, *w)),
    "lstm": (rg.LSTM(HIDDEN), 4, lambda x, w: keras_lstm(x, *w)),
    "gru_reset_after": (rg.GRU(HIDDEN, linear_before_reset=True), 3, lambda x, w: keras_gru(x, *w, True)),
    "gru_reset_before": (rg.GRU(HIDDEN, linear_before_reset=False), 3, lambda x, w: keras_gru(x, *w, False)),
}


@pytest.mark.parametrize("name", KERAS_CASES)
def test_from_keras_matches_keras_equations(name):
    cell, gates, reference = KERAS_CASES[name]
    rng = np.random.default_rng(len(name))
    n = gates * HIDDEN
    bias_shape = (2, n) if name == "gru_reset_after" else (n,)
    weights = [rng.uniform(-0.6, 0.6, s) for s in ((FEATURES, n), (HIDDEN, n), bias_shape)]
    x = rng.standard_normal((1, 7, FEATURES))
    model = single_layer(cell)
    local = from_keras(cell, weights)
    params = set_node_params(model, model.init(0), "rec", local)
    assert_close(oracle.run(model, params, x=x)["y"][0], reference(x[0], weights), what=name)
    # and back: Keras weights from our parameters compute the same
    assert_close(reference(x[0], [w.astype(np.float64) for w in to_keras(cell, local)]),
                 reference(x[0], weights), what=f"{name} round trip")
    named = dict(zip(("kernel", "recurrent_kernel", "bias"), weights, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(from_keras(cell, named).values(), local.values(), strict=True))


def test_keras_without_bias_means_zero_bias():
    cell = rg.LSTM(HIDDEN)
    rng = np.random.default_rng(0)
    kernel, recurrent = rng.standard_normal((FEATURES, 4 * HIDDEN)), rng.standard_normal((HIDDEN, 4 * HIDDEN))
    assert not from_keras(cell, [kernel, recurrent])["B"].any()


# -- PyTorch layout (numbers against torch itself: tests/test_interop_pytorch.py) ----
@pytest.mark.parametrize("cell", [rg.RNN(HIDDEN, activation="relu"), rg.LSTM(HIDDEN),
                                  rg.GRU(HIDDEN, linear_before_reset=True)], ids=lambda c: c.describe())
def test_pytorch_round_trip(cell):
    rng = np.random.default_rng(1)
    local = {k: rng.standard_normal(s.shape).astype(np.float32) for k, s in cell.param_specs(FEATURES).items()}
    state = to_pytorch(cell, local, layer=1, reverse=True, prefix="enc.")
    assert sorted(state) == ["enc.bias_hh_l1_reverse", "enc.bias_ih_l1_reverse", "enc.weight_hh_l1_reverse",
                             "enc.weight_ih_l1_reverse"]
    back = from_pytorch(cell, state, layer=1, reverse=True, prefix="enc.")
    assert all(np.array_equal(back[k], local[k]) for k in local)


def test_pytorch_lstm_gates_land_in_onnx_order():
    """torch's i, f, g, o blocks, each labelled with its gate, end up in the order i, o, f, c."""
    cell = rg.LSTM(2)
    label = {"i": 1.0, "f": 2.0, "c": 3.0, "o": 4.0}
    w = np.repeat([label[g] for g in PYTORCH_LSTM], 2)[:, None] * np.ones((1, 3))
    state = {"weight_ih_l0": w, "weight_hh_l0": w[:, :2], "bias_ih_l0": w[:, 0], "bias_hh_l0": -w[:, 0]}
    local = from_pytorch(cell, state)
    assert local["W"][::2, 0].tolist() == [label[g] for g in ONNX_LSTM]
    assert local["B"][::2].tolist() == [label[g] for g in ONNX_LSTM] + [-label[g] for g in ONNX_LSTM]


def test_pytorch_without_bias_means_zero_bias():
    cell = rg.GRU(HIDDEN, linear_before_reset=True)
    state = {"weight_ih_l0": np.ones((15, 3)), "weight_hh_l0": np.ones((15, 5))}
    assert not from_pytorch(cell, state)["B"].any()


# -- errors -------------------------------------------------------------------------
def test_converter_errors():
    lstm = rg.LSTM(HIDDEN)
    good = {"weight_ih_l0": np.zeros((20, 3)), "weight_hh_l0": np.zeros((20, 5))}
    with pytest.raises(ModelError, match=r"LSTM\(hidden=5, peephole=True\): PyTorch has no LSTM with peepholes"):
        from_pytorch(rg.LSTM(HIDDEN, peephole=True), good)
    with pytest.raises(ModelError, match=r"Keras has no LSTM with peepholes or coupled gates"):
        to_keras(rg.LSTM(HIDDEN, coupled=True), {})
    with pytest.raises(ModelError, match=r"torch.nn.GRU computes with linear_before_reset=True; use "
                                         r"GRU\(5, linear_before_reset=True\)"):
        from_pytorch(rg.GRU(HIDDEN, linear_before_reset=False), good)
    with pytest.raises(ParameterError, match=r"missing `weight_ih_l1`; it has \['weight_hh_l0', 'weight_ih_l0'\]\. "
                                             r"Check `layer`, `reverse` and `prefix`"):
        from_pytorch(lstm, good, layer=1)
    with pytest.raises(ParameterError, match=r"weight_ih_l0: expected 20 along axis 0 for LSTM\(hidden=5\), "
                                             r"received shape \(15, 3\)"):
        from_pytorch(lstm, {**good, "weight_ih_l0": np.zeros((15, 3))})
    with pytest.raises(ParameterError, match=r"proj_size"):
        from_pytorch(lstm, {**good, "weight_hr_l0": np.zeros((3, 5))})
    with pytest.raises(ParameterError, match=r"Keras weights: missing `recurrent_kernel`"):
        from_keras(lstm, [np.zeros((3, 20))])
    gru = rg.GRU(HIDDEN, linear_before_reset=False)
    with pytest.raises(ParameterError, match=r"Keras bias: expected shape \(15,\) .* received \(2, 15\)\. A \(2, 3H\) "
                                             r"bias comes from GRU\(reset_after=True\)"):
        from_keras(gru, [np.zeros((3, 15)), np.zeros((5, 15)), np.zeros((2, 15))])
    with pytest.raises(ParameterError, match=r"parameters \['B'\] are missing"):
        to_pytorch(lstm, {"W": np.zeros((20, 3)), "R": np.zeros((20, 5))})


def test_set_node_params_checks_against_the_model():
    model = single_layer(rg.LSTM(HIDDEN))
    params = model.init(0)
    with pytest.raises(ParameterError, match=r"model 'model' has no node `lstm0` with parameters; its nodes with "
                                             r"parameters are \['rec'\]"):
        set_node_params(model, params, "lstm0", {"W": params["rec/W"]})
    with pytest.raises(ParameterError, match=r"parameter `rec/W`: expected shape \(20, 4\), received \(20, 3\)"):
        set_node_params(model, params, "rec", {"W": np.zeros((20, 3))})
