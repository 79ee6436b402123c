"""Bidirectional (docs/bidirectional.md): merges, N-to-1 final state [h→_T; h←_1], ragged batches, use as an encoder."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import ModelError
from tests.conftest import SHAPES, assert_close, assert_matches, assert_size_independent_of_time, run_ort
from tests.test_seq2vec import ALL


def bidirectional(cell, merge: str = "concat", features: int = 4) -> rg.Model:
    x = rg.Input("x", features=features)
    layer = rg.Bidirectional(cell, merge=merge, returns=ALL)
    outs = layer(x)
    names = ["seq", "last", "mean", "max"] + [f"final_{k.replace('/', '_')}" for k in layer.final_state_sizes()]
    return rg.Model(x, dict(zip(names, outs, strict=True)))


@pytest.mark.parametrize("merge", rg.dsl.MERGES)
@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_matches_oracle(batch, time, lowering, merge):
    assert_matches(bidirectional(rg.RNN(5), merge), batch=batch, time=time, lowering=lowering)


@pytest.mark.parametrize("lowering", ["scan", "native", "auto"])
def test_two_different_cells(lowering):
    model = bidirectional((rg.RNN(3), rg.SRN(6, activation="relu")))
    for batch, time in SHAPES:
        got = assert_matches(model, batch=batch, time=time, lowering=lowering)
        assert got["seq"].shape == (batch, time, 9) and got["last"].shape == (batch, 9)


@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_each_row_runs_as_if_alone(lowering):
    """The classic bug: a backward pass starting at the padded end instead of the row's own last valid step.

    Checked on onnxruntime alone, independently of the oracle: every row of a ragged
    batch gives what the same row gives unpadded, in a batch of its own.
    """
    model = bidirectional(rg.RNN(5))
    params = model.init(7)
    feeds = model.example_inputs(batch=4, time=9, seed=7)
    feeds["lengths"] = np.array([9, 2, 5, 1], dtype=np.int64)
    got = run_ort(model, params, feeds, lowering)
    for b, n in enumerate(feeds["lengths"]):
        alone = run_ort(model, params, {"x": feeds["x"][b:b + 1, :n]}, lowering)
        for name in model.outputs:
            ours = got[name][b:b + 1, :n] if name == "seq" else got[name][b:b + 1]
            assert_close(ours, alone[name], "float32", f"{name}, row {b} (length {n})")
        assert np.all(got["seq"][b, n:] == 0.0)


def test_last_is_forward_at_its_last_step_and_backward_at_step_zero():
    model = bidirectional(rg.RNN(4))
    params = model.init(2)
    feeds = model.example_inputs(batch=3, time=6, seed=2)
    feeds["lengths"] = np.array([6, 3, 1], dtype=np.int64)
    got = run_ort(model, params, feeds)
    seq = got["seq"]
    for b, n in enumerate(feeds["lengths"]):
        expected = np.concatenate([seq[b, n - 1, :4], seq[b, 0, 4:]])  # [h→_T; h←_1]
        assert_close(got["last"][b], expected, "reference", f"row {b}")
        assert_close(got["final_fw_h"][b], seq[b, n - 1, :4], "reference", f"forward final state, row {b}")
        assert_close(got["final_bw_h"][b], seq[b, 0, 4:], "reference", f"backward final state, row {b}")


def test_equals_a_forward_and_a_reverse_recurrent_with_the_same_weights():
    """Metamorphic: concat-Bidirectional == [Recurrent(fw); Recurrent(bw, reverse=True)]."""
    x = rg.Input("x", features=3)
    fw = rg.Recurrent(rg.RNN(4), name="fw")(x)
    bw = rg.Recurrent(rg.RNN(4), reverse=True, name="bw")(x)
    split = rg.Model(x, {"fw": fw, "bw": bw})
    bi = bidirectional(rg.RNN(4), features=3)
    params = bi.init(11)
    split_params = {k.replace("birnn0/", ""): v for k, v in params.items()}
    feeds = bi.example_inputs(batch=3, time=7, seed=11)
    a, b = run_ort(bi, params, feeds), run_ort(split, split_params, feeds)
    assert_close(a["seq"], np.concatenate([b["fw"], b["bw"]], axis=-1), "reference", "merged sequence")


def test_mul_and_ave_merges_are_what_they_say():
    model = {m: bidirectional(rg.RNN(4), m) for m in ("concat", "mul", "ave", "sum")}
    params = model["concat"].init(4)
    feeds = model["concat"].example_inputs(batch=3, time=5, seed=4)
    seq = run_ort(model["concat"], params, feeds)["seq"]
    fw, bw = seq[..., :4], seq[..., 4:]
    for merge, expected in (("mul", fw * bw), ("ave", (fw + bw) / 2), ("sum", fw + bw)):
        assert_close(run_ort(model[merge], params, feeds)["seq"], expected, "reference", merge)


def test_usable_as_an_encoder():
    """Encoder final state [h→_T; h←_1], projected, starts a decoder (docs/encoder-decoder.md `init`)."""
    src = rg.Input("src", features=5)
    tgt = rg.Input("tgt", features=3, lengths="tgt_lengths")
    memory, context = rg.Bidirectional(rg.RNN(6), returns=("sequence", "last"))(src)
    s0 = rg.Dense(8, activation="tanh")(context)
    dec = rg.Recurrent(rg.RNN(8))(tgt, initial_state=s0)
    model = rg.Model([src, tgt], {"y": rg.Dense(4, activation="softmax")(dec), "memory": memory})
    for batch, time in SHAPES:
        for lowering in ("scan", "native"):
            assert_matches(model, batch=batch, time=time, lowering=lowering)


def test_agrees_with_pytorch():
    torch = pytest.importorskip("torch")
    rnn = torch.nn.RNN(4, 5, batch_first=True, bidirectional=True)
    x = rg.Input("x", features=4)
    last = rg.Bidirectional(rg.RNN(5), returns="last")
    model = rg.Model(x, {"seq": rg.Bidirectional(rg.RNN(5), name="bi")(x), "last": last(x)})
    sd = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    params = {}
    for node in ("bi", "birnn0"):
        for d, suffix in (("fw", ""), ("bw", "_reverse")):
            params[f"{node}/{d}/W"] = sd[f"weight_ih_l0{suffix}"]
            params[f"{node}/{d}/R"] = sd[f"weight_hh_l0{suffix}"]
            params[f"{node}/{d}/B"] = np.concatenate([sd[f"bias_ih_l0{suffix}"], sd[f"bias_hh_l0{suffix}"]])
    feeds = model.example_inputs(batch=4, time=7, seed=3)
    feeds["lengths"] = np.array([7, 3, 5, 1], dtype=np.int64)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(feeds["x"]), torch.from_numpy(feeds["lengths"]),
                                                     batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=7)
    got = run_ort(model, params, feeds)
    assert_close(got["seq"], out.detach().numpy(), "float32", "sequence vs torch")
    assert_close(got["last"], torch.cat([h_n[0], h_n[1]], dim=-1).detach().numpy(), "float32", "last vs torch h_n")


def test_graph_size_does_not_depend_on_time():
    model = bidirectional(rg.RNN(6), "ave")
    assert_size_independent_of_time(model, model.init(0), nodes={"scan": 102, "native": 122})
    # native: each op sits in both branches of its NaN-rule If (rnngraph/compiler/nan_rule.py), 106 before


def test_bad_merge_is_refused():
    with pytest.raises(ModelError, match=r"Bidirectional: invalid value for `merge`: expected one of 'concat', "
                                         r"'sum', 'mul', 'ave', received 'max'"):
        rg.Bidirectional(rg.RNN(3), merge="max")


def test_sum_of_different_sizes_is_refused():
    with pytest.raises(ModelError, match=r"enc: invalid value for `merge`: expected 'concat' when the forward and "
                                         r"backward outputs differ in size \(RNN\(hidden=3\): 3, RNN\(hidden=4\): 4\), "
                                         r"received 'sum'. Use merge='concat' or cells with the same output size."):
        rg.Bidirectional((rg.RNN(3), rg.RNN(4)), merge="sum", name="enc")


@pytest.mark.parametrize("cell", [None, 32, (rg.RNN(3),), (rg.RNN(3), "gru"), [rg.RNN(3), rg.RNN(3)]])
def test_bad_cell_is_refused(cell):
    with pytest.raises(ModelError, match=r"Bidirectional: invalid value for `cell`: expected a cell such as RNN\(32\), "
                                         r"or a pair \(forward cell, backward cell\), received"):
        rg.Bidirectional(cell)


def test_bad_returns_and_vector_input_are_refused():
    with pytest.raises(ModelError, match=r"Bidirectional: invalid value for `returns`: expected one of"):
        rg.Bidirectional(rg.RNN(3), returns="first")
    v = rg.Input("v", features=3, sequence=False)
    with pytest.raises(ModelError, match=r"Bidirectional: input `x` must be a sequence of features, received vector"):
        rg.Bidirectional(rg.RNN(3))(v)


def test_parameters_are_named_per_direction():
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Bidirectional((rg.RNN(2), rg.SRN(5)))(x)})
    assert {k: v.shape for k, v in model.param_specs().items()} == {
        "birnn0/fw/W": (2, 3), "birnn0/fw/R": (2, 2), "birnn0/fw/B": (4,),
        "birnn0/bw/W": (5, 3), "birnn0/bw/R": (5, 5), "birnn0/bw/B": (10,),
    }
