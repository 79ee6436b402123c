"""`import_pytorch`: a torch.nn.RNN / LSTM / GRU (and a Linear head) in one call, checked against torch.

Random weights, ragged batches through ``pack_padded_sequence`` (torch's outputs are 0 past each
length after ``pad_packed_sequence``, its final states those at each row's last valid step), odd
sizes, B=1 and T=1. The exported model (onnxruntime, float32) must equal torch in float32 to 1e-5,
outputs and final states; the oracle must equal torch in float64.
"""

import numpy as np
import pytest

from rnngraph.errors import ModelError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.interop import import_pytorch
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from tests.conftest import assert_close

torch = pytest.importorskip("torch")

FEATURES, HIDDEN = 4, 5
#: (batch, time, lengths): ragged, one row, one step
BATCHES = [(3, 7, [7, 3, 1]), (1, 1, [1])]

MODULES = {
    "lstm_2layer_bidirectional_batch_first": lambda: torch.nn.LSTM(FEATURES, HIDDEN, num_layers=2, bidirectional=True,
                                                                   batch_first=True),
    "gru_3layer_no_bias_dropout": lambda: torch.nn.GRU(FEATURES, HIDDEN, num_layers=3, bias=False, batch_first=True,
                                                       dropout=0.25),
    "rnn_relu_bidirectional": lambda: torch.nn.RNN(FEATURES, HIDDEN, nonlinearity="relu", bidirectional=True,
                                                   batch_first=True),
    "rnn_tanh_time_major": lambda: torch.nn.RNN(FEATURES, HIDDEN),
    "lstm_one_layer": lambda: torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True),
}


def torch_run(module, x, lengths, head=None, head_on="output"):
    """torch on a padded batch-major `x`: output (batch, time, D*H), h_n[, c_n], head(...) when given."""
    batch_first = module.batch_first
    xt = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                                     enforce_sorted=False)
    with torch.no_grad():
        out, state = module(packed)
        output, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1])
        output = output if batch_first else output.transpose(0, 1)
        states = state if isinstance(state, tuple) else (state,)
        result = {"output": output.numpy(), "h_n": states[0].numpy()}
        if len(states) == 2:
            result["c_n"] = states[1].numpy()
        if head is not None:
            top = states[0][-2:] if module.bidirectional else states[0][-1:]
            result["y"] = head(output if head_on == "output" else torch.cat(list(top), dim=1)).numpy()
    return result


def ours(imported, outputs):
    return {**outputs, **imported.final_states(outputs)}


def valid_steps(got, want, lengths):
    """A per-step head past a row's length: rnngraph emits 0 there, torch head(0) (its bias); compare the rest."""
    padded = np.arange(got["y"].shape[1])[None, :] >= lengths[:, None]
    assert not got["y"][padded].any()
    want["y"] = np.where(padded[..., None], 0.0, want["y"])


def check(module, head=None, head_on="output"):
    """Export and oracle vs torch for every batch shape; returns the largest float32 error seen."""
    module.eval()
    imported = import_pytorch(module, head, head_on=head_on)
    model, params = imported
    session = Session(build_model_proto(model, params))
    worst, worst64 = 0.0, 0.0
    for batch, time, lengths in BATCHES:
        x = np.random.default_rng(time).standard_normal((batch, time, FEATURES)).astype(np.float32)
        lengths = np.array(lengths)
        want = torch_run(module, x, lengths, head, head_on)
        got = ours(imported, session.run(**imported.feeds(x=x, lengths=lengths)))
        if head is not None and head_on == "output":
            valid_steps(got, want, lengths)
        for name, value in want.items():
            assert_close(got[name], value, "reference", what=f"export {name} at {batch}x{time}")
            worst = max(worst, float(np.max(np.abs(got[name] - value))))
        module.double()
        want64 = torch_run(module, x.astype(np.float64), lengths, head.double() if head else None, head_on)
        module.float()
        if head is not None:
            head.float()
        ref = ours(imported, oracle.run(model, params, x=x, lengths=lengths))
        if head is not None and head_on == "output":
            valid_steps(ref, want64, lengths)
        for name, value in want64.items():
            np.testing.assert_allclose(ref[name], value, rtol=0, atol=1e-10, err_msg=f"oracle {name}")
            worst64 = max(worst64, float(np.max(np.abs(ref[name] - value))))
    # the agreement, for the record (pytest -rP shows it)
    print(f"max abs error vs torch: export (float32) {worst:.1e}, oracle (float64) {worst64:.1e}")
    return worst


@pytest.mark.parametrize("name", MODULES)
def test_import_equals_torch(name):
    torch.manual_seed(len(name))
    assert check(MODULES[name]()) < 1e-5


def test_two_layer_bidirectional_lstm_in_one_call():
    """The issue's check: a random 2-layer bidirectional nn.LSTM (batch_first) in one call equals torch to 1e-5."""
    torch.manual_seed(0)
    module = torch.nn.LSTM(FEATURES, HIDDEN, num_layers=2, bidirectional=True, batch_first=True)
    model, params = import_pytorch(module)
    assert sorted(model.outputs) == ["c_l0", "c_l0_reverse", "c_l1", "c_l1_reverse", "h_l0", "h_l0_reverse", "h_l1",
                                     "h_l1_reverse", "output"]
    assert np.array_equal(params["lstm/l1/bw/R"][:HIDDEN], module.weight_hh_l1_reverse.detach().numpy()[:HIDDEN])
    x = np.random.default_rng(1).standard_normal((2, 6, FEATURES)).astype(np.float32)
    with torch.no_grad():
        y, (h_n, c_n) = module(torch.from_numpy(x))
    got = Session(build_model_proto(model, params)).run(x=x)
    assert np.max(np.abs(got["output"] - y.numpy())) < 1e-5
    stacked = import_pytorch(module).final_states(got)
    assert np.max(np.abs(stacked["h_n"] - h_n.numpy())) < 1e-5
    assert np.max(np.abs(stacked["c_n"] - c_n.numpy())) < 1e-5


def test_linear_head_on_every_step():
    torch.manual_seed(3)
    module = torch.nn.GRU(FEATURES, HIDDEN, batch_first=True, bidirectional=True)
    assert check(module, torch.nn.Linear(2 * HIDDEN, 3)) < 1e-5


def test_sequential_head_on_the_final_state():
    torch.manual_seed(4)
    module = torch.nn.LSTM(FEATURES, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
    head = torch.nn.Sequential(torch.nn.Linear(2 * HIDDEN, 3, bias=False), torch.nn.Softmax(dim=-1))
    with torch.no_grad():
        head[0].weight.mul_(4.0)  # a softmax far from uniform
    assert check(module, head, head_on="h_n") < 1e-5


def test_imported_parameters_are_named_after_the_layers():
    torch.manual_seed(5)
    model, params = import_pytorch(torch.nn.RNN(FEATURES, HIDDEN, batch_first=True), torch.nn.Linear(HIDDEN, 2))
    assert sorted(params) == ["head/W", "head/b", "rnn/B", "rnn/R", "rnn/W"]
    assert model.name == "torch_rnn"
    imported = import_pytorch(torch.nn.GRU(FEATURES, HIDDEN, num_layers=2, dropout=0.5))
    assert any("dropout=0.5" in note and "identity" in note for note in imported.notes)


def test_what_import_pytorch_refuses():
    with pytest.raises(ModelError, match=r"torch.nn.LSTM\(proj_size=3\) projects h through weight_hr"):
        import_pytorch(torch.nn.LSTM(FEATURES, HIDDEN, proj_size=3))
    with pytest.raises(ModelError, match=r"expected a torch.nn.RNN, LSTM or GRU module, received Linear"):
        import_pytorch(torch.nn.Linear(3, 4))
    lstm = torch.nn.LSTM(FEATURES, HIDDEN, bidirectional=True)
    with pytest.raises(ModelError, match=r"the head's Linear reads 5 features, but the recurrent module gives 10"):
        import_pytorch(lstm, torch.nn.Linear(HIDDEN, 2))
    with pytest.raises(ModelError, match=r"`head` must be a torch.nn.Linear, or a Sequential of a Linear and one of "
                                         r".*received Linear -> GELU"):
        import_pytorch(lstm, torch.nn.Sequential(torch.nn.Linear(10, 2), torch.nn.GELU()))
    with pytest.raises(ModelError, match=r"Softmax\(dim=0\) is not over the features"):
        import_pytorch(lstm, torch.nn.Sequential(torch.nn.Linear(10, 2), torch.nn.Softmax(dim=0)))
    with pytest.raises(ModelError, match=r"invalid value for `head_on`: expected one of \('output', 'h_n'\)"):
        import_pytorch(lstm, torch.nn.Linear(10, 2), head_on="last")


def test_parameters_that_require_grad_convert():
    """A dict of live parameters (requires_grad) is a state dict too: read without a torch error."""
    from rnngraph.dsl.cells.lstm import LSTM
    from rnngraph.interop import from_pytorch

    module = torch.nn.LSTM(FEATURES, HIDDEN)
    local = from_pytorch(LSTM(HIDDEN), dict(module.named_parameters()))
    assert np.array_equal(local["W"][:HIDDEN], module.weight_ih_l0.detach().numpy()[:HIDDEN])
