"""N-to-1 (docs/seq2vec.md): Recurrent(..., returns="last"|"mean"|"max"|"state") and the `initial_state` input."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import ModelError
from rnngraph.exporters.onnx import max_opset
from rnngraph.runtime import oracle
from tests.conftest import (
    SHAPES,
    assert_close,
    assert_matches,
    assert_size_independent_of_time,
    run_both,
    run_ort,
)

ALL = ("sequence", "last", "mean", "max", "state")


def every_return(cell: rg.Cell, reverse: bool = False, features: int = 4, initial: bool = False) -> rg.Model:
    """One Recurrent node returning every kind at once (sequence, last, mean, max, each final state)."""
    x = rg.Input("x", features=features)
    inputs = [x]
    init = None
    if initial:
        init = rg.Input("h0", features=next(iter(cell.state_sizes().values())), sequence=False)
        inputs.append(init)
    outs = rg.Recurrent(cell, reverse=reverse, returns=ALL)(x, initial_state=init)
    names = ["seq", "last", "mean", "max"] + [f"final_{k}" for k in cell.state_sizes()]
    return rg.Model(inputs, dict(zip(names, outs, strict=True)))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_every_return_matches_oracle(batch, time, lowering, reverse):
    assert_matches(every_return(rg.RNN(7), reverse), batch=batch, time=time, lowering=lowering)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_initial_state_matches_oracle(batch, time, lowering, reverse):
    assert_matches(every_return(rg.SRN(6), reverse, initial=True), batch=batch, time=time, lowering=lowering)


def test_returns_in_the_order_given():
    x = rg.Input("x", features=3)
    mx, last = rg.Recurrent(rg.RNN(5), returns=("max", "last"))(x)
    model = rg.Model(x, {"mx": mx, "last": last})
    got = assert_matches(model, batch=4, time=6)
    assert got["mx"].shape == got["last"].shape == (4, 5)
    assert not np.allclose(got["mx"], got["last"])


@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_pooled_values_read_each_rows_own_valid_steps(lowering):
    """Checked on onnxruntime's own sequence output, independently of the oracle."""
    model = every_return(rg.RNN(5))
    params = model.init(3)
    # a strongly negative bias makes every valid output negative: a padded 0 must never win the max
    params["rnn0/B"] = (params["rnn0/B"] - 2.0).astype(np.float32)
    feeds = model.example_inputs(batch=5, time=8, seed=2)
    feeds["lengths"] = np.array([8, 1, 3, 7, 2], dtype=np.int64)
    got = run_ort(model, params, feeds, lowering)
    seq = got["seq"]
    assert (seq[:, :, :] <= 0).all() and (seq[0] < 0).all()
    for b, n in enumerate(feeds["lengths"]):
        assert np.all(seq[b, n:] == 0.0), "outputs past a row's length are 0"
        assert_close(got["last"][b], seq[b, n - 1], "reference", f"last of row {b}")
        assert_close(got["mean"][b], seq[b, :n].mean(axis=0), "reference", f"mean of row {b}")
        assert_close(got["max"][b], seq[b, :n].max(axis=0), "reference", f"max of row {b}")
        # for the classic RNN the output is the state: the final state is the last output
        assert_close(got["final_h"][b], seq[b, n - 1], "reference", f"final state of row {b}")
    assert (got["max"] < 0).all()


def test_reverse_last_is_step_zero_after_the_whole_row():
    model = every_return(rg.RNN(4), reverse=True, features=3)
    params = model.init(5)
    feeds = model.example_inputs(batch=3, time=6, seed=5)
    feeds["lengths"] = np.array([6, 2, 4], dtype=np.int64)
    got = run_ort(model, params, feeds)
    assert_close(got["last"], got["seq"][:, 0], "reference", "reverse last = output at step 0")
    # the same rows cut to their own length, unpadded, give the same vector
    for b, n in enumerate(feeds["lengths"]):
        alone = run_ort(model, params, {"x": feeds["x"][b:b + 1, :n]})
        assert_close(got["last"][b:b + 1], alone["last"], "float32", f"row {b} alone")


def test_padding_content_never_matters():
    model = every_return(rg.RNN(5))
    params = model.init(1)
    feeds = model.example_inputs(batch=4, time=7, seed=4)
    feeds["lengths"] = np.array([7, 3, 1, 5], dtype=np.int64)
    noisy = {k: v.copy() for k, v in feeds.items()}
    for b, n in enumerate(feeds["lengths"]):
        noisy["x"][b, n:] = 1e3
    a, b_ = run_ort(model, params, feeds), run_ort(model, params, noisy)
    for name in a:
        np.testing.assert_array_equal(a[name], b_[name], err_msg=name)


def test_initial_state_changes_the_run_and_zero_equals_none():
    with_init = every_return(rg.RNN(5), initial=True)
    without = every_return(rg.RNN(5))
    params = without.init(0)
    feeds = without.example_inputs(batch=3, time=4, seed=0)
    h0 = np.random.default_rng(9).standard_normal((3, 5)).astype(np.float32)
    zero = run_ort(with_init, params, {**feeds, "h0": np.zeros((3, 5), np.float32)})
    base = run_ort(without, params, feeds)
    moved = run_ort(with_init, params, {**feeds, "h0": h0})
    for name in base:
        assert_close(zero[name], base[name], "reference", name)
    assert not np.allclose(moved["last"], base["last"])
    ref = oracle.run(with_init, params, **feeds, h0=h0)
    assert_close(moved["last"], ref["last"], "float32", "initial state, oracle")


def test_graph_size_does_not_depend_on_time():
    model = every_return(rg.RNN(6), initial=True)
    assert_size_independent_of_time(model, model.init(0), nodes={"scan": 76, "native": 93})
    # native: +7 for the NaN-rule If (the op twice, rnngraph/compiler/nan_rule.py), 86 before


@pytest.mark.parametrize("returns,match", [
    ("final", r"`returns`: expected one of 'sequence', 'last', 'mean', 'max', 'state' or a tuple of them, "
              r"received 'final'"),
    ((), r"`returns`: expected one of .* received \(\)"),
    (("last", "last"), r"`returns`: expected each kind at most once, received \('last', 'last'\)"),
    (["last"], r"`returns`: expected one of .* received \['last'\]"),
])
def test_bad_returns_is_refused(returns, match):
    with pytest.raises(ModelError, match=match):
        rg.Recurrent(rg.RNN(4), returns=returns)


def test_initial_state_of_the_wrong_size_is_refused():
    x = rg.Input("x", features=3)
    h0 = rg.Input("h0", features=5, sequence=False)
    with pytest.raises(ModelError, match=r"enc: input `initial_state` must be a vector \(batch, 4\), the first state "
                                         r"`h` of RNN\(hidden=4\); received a vector of 5 features. "
                                         r"Project it first, e.g. Dense\(4, activation='tanh'\)"):
        rg.Recurrent(rg.RNN(4), name="enc")(x, h0)


def test_initial_state_of_a_multi_state_cell_names_both_widths():
    x = rg.Input("x", features=3)
    s0 = rg.Input("s0", features=7, sequence=False)
    with pytest.raises(ModelError, match=r"Recurrent: input `initial_state` must be a vector \(batch, 4\), the first "
                                         r"state `h` of LSTM\(hidden=4.*\), or \(batch, 8\), every state "
                                         r"concatenated \[h; c\]; received a vector of 7 features"):
        rg.Recurrent(rg.LSTM(4))(x, initial_state=s0)


def test_initial_state_must_be_a_vector():
    x = rg.Input("x", features=3)
    with pytest.raises(ModelError, match=r"Recurrent: input `initial_state` must be a vector of features, "
                                         r"received sequence \(batch, time, 3\) float32"):
        rg.Recurrent(rg.RNN(3))(x, initial_state=x)


def test_reverse_must_be_boolean():
    with pytest.raises(ModelError, match=r"Recurrent: invalid value for `reverse`: expected True or False, "
                                         r"received 'yes'"):
        rg.Recurrent(rg.RNN(3), reverse="yes")


def test_pooling_a_vector_is_refused():
    v = rg.Input("v", features=3, sequence=False)
    with pytest.raises(ModelError, match=r"Recurrent: input `x` must be a sequence of features, received vector"):
        rg.Recurrent(rg.RNN(3), returns="last")(v)


@pytest.mark.parametrize("opset", [13, 18, "newest"])
def test_every_opset_exports_the_pooling(opset):
    """ReduceMean/ReduceMax take `axes` as an attribute before opset 18 and as an input from 18 on."""
    opset = max_opset() if opset == "newest" else opset
    if opset > max_opset():
        pytest.skip(f"the installed onnxruntime stops at opset {max_opset()}")
    x = rg.Input("x", features=3)
    s0 = rg.Input("s0", features=8, sequence=False)
    outs = rg.Bidirectional(rg.RNN(4), returns=("mean", "max", "last"))(x)
    deep = rg.Recurrent(rg.LSTM(4), returns=("mean", "max", "last"))(x, initial_state=s0)
    model = rg.Model([x, s0], {f"o{i}": t for i, t in enumerate(outs + deep)})
    params = model.init(0)
    feeds = model.example_inputs(batch=3, time=6, seed=0)
    got, ref = run_both(model, params, feeds, "scan", opset)
    for name in model.outputs:
        assert_close(got[name], ref[name], "float32", f"{name} at opset {opset}")
