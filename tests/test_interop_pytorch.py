"""torch.nn.LSTM / GRU / RNN with random weights, through the converters, against the oracle and the export.

Skipped when PyTorch is not installed. Ragged batches go through torch as packed
sequences (outputs 0 past each length, final state at each row's last step), and
the backward half of a bidirectional torch layer is checked against
``Recurrent(..., reverse=True)`` with the ``_reverse`` weights.
"""

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.interop import from_pytorch, set_node_params, to_pytorch
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from tests.conftest import assert_close

torch = pytest.importorskip("torch")

FEATURES, HIDDEN, BATCH, TIME = 4, 6, 3, 9
LENGTHS = np.array([9, 4, 1])

MODULES = {
    "lstm": (lambda: torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True, bidirectional=True), rg.LSTM(HIDDEN)),
    "gru": (lambda: torch.nn.GRU(FEATURES, HIDDEN, batch_first=True, bidirectional=True),
            rg.GRU(HIDDEN, linear_before_reset=True)),
    "rnn_tanh": (lambda: torch.nn.RNN(FEATURES, HIDDEN, batch_first=True, bidirectional=True), rg.RNN(HIDDEN)),
    "rnn_relu": (lambda: torch.nn.RNN(FEATURES, HIDDEN, batch_first=True, bidirectional=True, nonlinearity="relu"),
                 rg.RNN(HIDDEN, activation="relu")),
}


def torch_run(module, x, lengths):
    """Packed run: y (batch, time, 2H) zero past each length, final h per direction (2, batch, H)."""
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.from_numpy(lengths),
                                                     batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, state = module(packed)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    h = state[0] if isinstance(state, tuple) else state
    return y.numpy(), h.numpy()


def our_model(cell, reverse):
    x = rg.Input("x", features=FEATURES)
    y, h = rg.Recurrent(cell, reverse=reverse, returns=("sequence", "state"), name="rec")(x)[:2]
    return rg.Model(x, {"y": y, "h": h})


@pytest.mark.parametrize("name", MODULES)
def test_torch_weights_match_oracle_and_export(name):
    build, cell = MODULES[name]
    torch.manual_seed(len(name))
    module = build()
    x = np.random.default_rng(3).standard_normal((BATCH, TIME, FEATURES)).astype(np.float32)
    y32, h32 = torch_run(module, x, LENGTHS)
    y64, h64 = torch_run(module.double(), x.astype(np.float64), LENGTHS)
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    for d, reverse in enumerate((False, True)):
        model = our_model(cell, reverse)
        params = set_node_params(model, model.init(0), "rec", from_pytorch(cell, state, reverse=reverse))
        feeds = {"x": x, "lengths": LENGTHS}
        half = slice(d * HIDDEN, (d + 1) * HIDDEN)
        ref = oracle.run(model, params, **feeds)
        assert_close(ref["y"], y64[:, :, half], what=f"{name} oracle y, direction {d}")
        assert_close(ref["h"], h64[d], what=f"{name} oracle h, direction {d}")
        for lowering in ("scan", "native"):
            got = Session(build_model_proto(model, params, lowering=lowering)).run(**feeds)
            assert_close(got["y"], y32[:, :, half], what=f"{name} {lowering} y, direction {d}")
            assert_close(got["h"], h32[d], what=f"{name} {lowering} h, direction {d}")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_our_weights_load_into_torch(name):
    """to_pytorch: random rnngraph parameters loaded into a torch module compute the same."""
    build, cell = MODULES[name]
    module = build()
    model = our_model(cell, False)
    params = model.init(7)
    local = model.node_params("rec", params)
    state = {k: torch.from_numpy(v) for k, v in to_pytorch(cell, local).items()}
    state.update({k: torch.from_numpy(v) for k, v in to_pytorch(cell, local, reverse=True).items()})
    module.load_state_dict(state)
    x = np.random.default_rng(5).standard_normal((BATCH, TIME, FEATURES)).astype(np.float32)
    y, h = torch_run(module, x, LENGTHS)
    ref = oracle.run(model, params, x=x, lengths=LENGTHS)
    assert_close(y[:, :, :HIDDEN], ref["y"], what=f"{name} y")
    assert_close(h[0], ref["h"], what=f"{name} h")


def test_two_layer_torch_gru_is_two_recurrent_layers():
    """``layer=k`` picks ``*_l{k}``: a 2-layer torch GRU equals two stacked Recurrent layers."""
    torch.manual_seed(11)
    module = torch.nn.GRU(FEATURES, HIDDEN, num_layers=2, batch_first=True)
    cell = rg.GRU(HIDDEN, linear_before_reset=True)
    x_in = rg.Input("x", features=FEATURES)
    y = rg.Recurrent(cell, name="l1")(rg.Recurrent(cell, name="l0")(x_in))
    model = rg.Model(x_in, {"y": y})
    params = model.init(0)
    state = module.state_dict()
    for layer in (0, 1):
        params = set_node_params(model, params, f"l{layer}", from_pytorch(cell, state, layer=layer))
    x = np.random.default_rng(4).standard_normal((BATCH, TIME, FEATURES)).astype(np.float32)
    y_torch, _ = torch_run(module, x, LENGTHS)
    feeds = {"x": x, "lengths": LENGTHS}
    assert_close(Session(build_model_proto(model, params)).run(**feeds)["y"], y_torch, what="exported y")
    assert_close(oracle.run(model, params, **feeds)["y"], y_torch, what="oracle y")
