"""Clockwork RNN (docs/clockwork.md): the cell's description, its mask, the oracle, and ONNX against the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.compiler.cells.clockwork import estimated_costs
from rnngraph.errors import ModelError
from rnngraph.runtime import oracle
from tests.conftest import SHAPES, assert_close, assert_matches, run_both


def recurrent_model(cell: rg.Clockwork | rg.RNN, features: int = 4, reverse: bool = False) -> rg.Model:
    x = rg.Input("x", features=features)
    return rg.Model(x, {"y": rg.Recurrent(cell, reverse=reverse, name="rec")(x)})


# -- the description -------------------------------------------------------------
def test_default_periods_are_powers_of_two():
    assert rg.Clockwork(8, groups=4).periods == (1, 2, 4, 8)
    assert rg.Clockwork(8, groups=4).group_sizes == (2, 2, 2, 2)
    assert rg.Clockwork(6, group_sizes=(1, 2, 3)).periods == (1, 2, 4)


def test_groups_are_sorted_fast_first_with_their_sizes():
    cell = rg.Clockwork(6, periods=[4, 1, 2], group_sizes=[3, 1, 2])
    assert cell.periods == (1, 2, 4)
    assert cell.group_sizes == (1, 2, 3)
    assert cell.bounds == [(0, 1), (1, 3), (3, 6)]
    assert cell.unit_periods().tolist() == [1, 2, 2, 4, 4, 4]


@pytest.mark.parametrize("kwargs, match", [
    (dict(periods=(1, 0, 4)), r"`periods`: expected a non-empty tuple of positive integers, received \(1, 0, 4\)"),
    (dict(periods=(1, 2.5)), r"`periods`: expected a non-empty tuple of positive integers"),
    (dict(periods=()), r"`periods`: expected a non-empty tuple of positive integers, received \(\)"),
    (dict(periods=4), r"`periods`: expected a non-empty tuple of positive integers, received 4"),
    (dict(periods=(1, 2, 2, 4)), r"`periods`: expected distinct periods .*received \(1, 2, 2, 4\)"),
    (dict(groups=0), r"`groups`: expected a positive integer, received 0"),
    (dict(periods=(1, 2), groups=3), r"disagree on the number of groups \(periods gives 2, groups gives 3\)"),
    (dict(periods=(1, 2), group_sizes=(4, 4, 4)), r"disagree on the number of groups .*group_sizes gives 3"),
    (dict(group_sizes=(4, 4)), r"`group_sizes`: expected sizes summing to hidden=12, received \(4, 4\)\. "
                               r"They sum to 8"),
    (dict(group_sizes=(12, -0)), r"`group_sizes`: expected a non-empty tuple of positive integers"),
    (dict(), r"`periods`: expected the group periods, e.g. periods=\(1, 2, 4, 8\), or a number of groups"),
    (dict(groups=5), r"`hidden`: expected a multiple of the number of groups \(5\), received 12\. "
                     r"Choose hidden=10, or give group_sizes summing to 12"),
    (dict(groups=2, activation="gelu"), r"`activation`: expected one of 'tanh', 'relu', 'sigmoid', received 'gelu'"),
])
def test_invalid_hyperparameters_are_refused_with_a_clear_message(kwargs, match):
    with pytest.raises(ModelError, match=match):
        rg.Clockwork(12, **kwargs)


def test_invalid_hidden_is_refused():
    with pytest.raises(ModelError, match=r"`hidden`: expected a positive integer, received 0"):
        rg.Clockwork(0, groups=1)


def test_survey_example_mask_blocks():
    """H = 256, periods (1, 2, 4, 8), k = 64: the period-1 group reads all 256 units, the period-8 group itself."""
    cell = rg.Clockwork(256, periods=(1, 2, 4, 8))
    mask = cell.param_specs(10)["R"].mask
    assert mask is not None and mask.shape == (256, 256)
    for i in range(4):
        rows = mask[64 * i: 64 * (i + 1)]
        read = np.flatnonzero(rows.any(axis=0))
        assert read.tolist() == list(range(64 * i, 256)), f"group {i} reads units {read.min()}..{read.max()}"
        assert rows[:, 64 * i:].all() and not rows[:, :64 * i].any()
    # each group's block row: its rows by the columns it reads
    block_shapes = [(64, int(mask[64 * i: 64 * (i + 1)].any(axis=0).sum())) for i in range(4)]
    assert block_shapes == [(64, 256), (64, 192), (64, 128), (64, 64)]
    assert int(mask.sum()) == 64 * (256 + 192 + 128 + 64)


def test_initial_parameters_respect_the_mask():
    cell = rg.Clockwork(12, periods=(1, 3, 9))
    model = recurrent_model(cell)
    R = model.init(3)["rec/R"]
    assert np.all(R[cell.recurrent_mask() == 0] == 0)
    assert np.count_nonzero(R) == np.count_nonzero(cell.recurrent_mask())


# -- the oracle, by hand -----------------------------------------------------------
def test_oracle_against_a_hand_computed_example():
    """Two one-unit groups, periods (1, 2); the slow unit never reads the fast one (R[1, 0] is ignored)."""
    model = recurrent_model(rg.Clockwork(2, periods=(1, 2)), features=1)
    params = {
        "rec/W": np.array([[0.5], [-0.3]], np.float32),
        "rec/R": np.array([[0.2, -0.4], [0.9, 0.6]], np.float32),  # 0.9 lies outside the mask
        "rec/B": np.array([0.1, 0.05, -0.02, 0.03], np.float32),
    }
    xs = [1.0, -2.0, 0.5]
    W, R, B = (params[f"rec/{k}"].astype(np.float64) for k in "WRB")  # the float32 values, exactly
    w0, w1, r00, r01, r11 = W[0, 0], W[1, 0], R[0, 0], R[0, 1], R[1, 1]
    b0, b1 = B[0] + B[2], B[1] + B[3]
    f0 = math.tanh(w0 * xs[0] + b0)                     # t = 0: both groups fire, h_{-1} = 0
    s0 = math.tanh(w1 * xs[0] + b1)
    f1 = math.tanh(w0 * xs[1] + r00 * f0 + r01 * s0 + b0)  # t = 1: only the fast group
    s1 = s0
    f2 = math.tanh(w0 * xs[2] + r00 * f1 + r01 * s1 + b0)  # t = 2: both; the slow one reads itself only
    s2 = math.tanh(w1 * xs[2] + r11 * s1 + b1)
    expected = np.array([[[f0, s0], [f1, s1], [f2, s2]]])
    feeds = {"x": np.array([[[v] for v in xs]], np.float32)}
    assert_close(oracle.run(model, params, **feeds)["y"], expected, what="oracle vs hand computation")
    for form in ("dense", "ladder", "cycle"):
        got, _ = run_both(model, params, feeds, clockwork_form=form)
        assert_close(got["y"], expected, "float32", what=f"onnxruntime ({form}) vs hand computation")


# -- ONNX against the oracle ----------------------------------------------------------
#: clocks that exercise the Clockwork lowering (every cell's generic checks read the registry elsewhere)
CLOCKS = {
    "odd_groups": lambda: rg.Clockwork(7, periods=(1, 2, 4), group_sizes=(2, 3, 2)),
    "slow_start": lambda: rg.Clockwork(6, periods=(2, 6)),  # no group fires at odd steps
    "not_nested": lambda: rg.Clockwork(9, periods=(1, 3, 5), activation="relu"),
    "one_slow_group": lambda: rg.Clockwork(5, periods=(3,), activation="sigmoid"),
}


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_matches_oracle(form, reverse, batch, time):
    model = recurrent_model(CLOCKS["odd_groups"](), reverse=reverse)
    assert_matches(model, batch=batch, time=time, lowering="scan", seed=batch * 10 + time, clockwork_form=form)


@pytest.mark.parametrize("name", sorted(CLOCKS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lowering", ["auto", "scan", "native"])
def test_matches_oracle_for_other_clocks(name, reverse, lowering):
    """`native` has no ONNX op to use for this cell and falls back to the Scan."""
    cell = CLOCKS[name]()
    model = recurrent_model(cell, reverse=reverse)
    forms = list(estimated_costs(cell))
    for form in forms:
        assert_matches(model, batch=4, time=13, lowering=lowering, seed=7, clockwork_form=form)


def test_weights_outside_the_mask_never_matter():
    cell = CLOCKS["odd_groups"]()
    model = recurrent_model(cell)
    params = model.init(0)
    noisy = dict(params)
    outside = cell.recurrent_mask() == 0
    noisy["rec/R"] = np.where(outside, np.random.default_rng(5).standard_normal(outside.shape), params["rec/R"])
    noisy["rec/R"] = noisy["rec/R"].astype(np.float32)
    feeds = model.example_inputs(3, 11, 0)
    for form in ("dense", "ladder", "cycle"):
        clean_ort, clean_ref = run_both(model, params, feeds, clockwork_form=form)
        noisy_ort, noisy_ref = run_both(model, noisy, feeds, clockwork_form=form)
        np.testing.assert_array_equal(noisy_ort["y"], clean_ort["y"])
        np.testing.assert_array_equal(noisy_ref["y"], clean_ref["y"])
        assert_matches(model, noisy, feeds=feeds)


# -- metamorphic -------------------------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_one_group_of_period_one_is_the_classic_rnn(reverse):
    clockwork = recurrent_model(rg.Clockwork(7, periods=(1,), activation="relu"), reverse=reverse)
    classic = recurrent_model(rg.RNN(7, activation="relu"), reverse=reverse)
    params = clockwork.init(4)
    assert set(params) == set(classic.init(0))
    feeds = clockwork.example_inputs(4, 9, 2)
    cw_ort, cw_ref = run_both(clockwork, params, feeds)
    rnn_ort, rnn_ref = run_both(classic, params, feeds, "scan")  # Scan against Scan (auto may take the native op)
    assert_close(cw_ref["y"], rnn_ref["y"], what="oracle: Clockwork vs RNN")
    np.testing.assert_array_equal(cw_ort["y"], rnn_ort["y"])


# -- the clock ---------------------------------------------------------------------
def changed_steps(y: np.ndarray, units: slice, order: list[int]) -> list[int]:
    """Steps (in processing order `order`) at which the units' value differs from the step before."""
    out, previous = [], np.zeros(y.shape[-1])[units]
    for t in order:
        if not np.array_equal(y[t, units], previous):
            out.append(t)
        previous = y[t, units]
    return out


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_survey_example_period_8_group_changes_only_every_8_steps(form):
    cell = rg.Clockwork(256, periods=(1, 2, 4, 8))
    model = recurrent_model(cell)
    feeds = model.example_inputs(2, 20, 1, ragged=False)
    got, ref = run_both(model, model.init(1), feeds, clockwork_form=form)
    for y in (got["y"], ref["y"]):
        for b in range(2):
            for (start, stop), period in zip(cell.bounds, cell.periods, strict=True):
                fired = changed_steps(y[b], slice(start, stop), list(range(20)))
                assert fired == list(range(0, 20, period)), f"period {period} changed at {fired}"
    assert changed_steps(got["y"][0], slice(192, 256), list(range(20))) == [0, 8, 16]


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_reverse_clock_counts_from_each_rows_last_step(form):
    cell = rg.Clockwork(8, periods=(1, 2, 4, 8))
    model = recurrent_model(cell, reverse=True)
    feeds = model.example_inputs(3, 20, 3)
    feeds["lengths"] = np.array([20, 13, 6])
    got, ref = run_both(model, model.init(0), feeds, clockwork_form=form)
    for y in (got["y"], ref["y"]):
        for b, length in enumerate(feeds["lengths"]):
            order = list(range(length - 1, -1, -1))
            for (start, stop), period in zip(cell.bounds, cell.periods, strict=True):
                fired = changed_steps(y[b], slice(start, stop), order)
                assert fired == [t for t in order if (length - 1 - t) % period == 0]
            assert not y[b, length:].any()


# -- random clocks -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_random_clockworks_match_the_oracle(seed):
    """Random groups, sizes, periods (nested or not), activation, direction, batch and lengths."""
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 5))
    nested = bool(rng.integers(0, 2))
    if nested:
        periods = [int(rng.integers(1, 4))]
        for _ in range(groups - 1):
            periods.append(periods[-1] * int(rng.integers(2, 4)))
    else:
        periods = sorted(rng.choice(np.arange(1, 12), size=groups, replace=False).tolist())
    order = rng.permutation(groups)  # given in any order; the cell sorts them
    sizes = rng.integers(1, 5, size=groups)
    cell = rg.Clockwork(int(sizes.sum()), periods=tuple(int(periods[i]) for i in order),
                        group_sizes=tuple(int(sizes[i]) for i in order),
                        activation=str(rng.choice(["tanh", "relu", "sigmoid"])))
    model = recurrent_model(cell, features=int(rng.integers(1, 6)), reverse=bool(rng.integers(0, 2)))
    batch, time = int(rng.integers(1, 5)), int(rng.integers(1, 30))
    for form in estimated_costs(cell):
        assert_matches(model, batch=batch, time=time, seed=seed, clockwork_form=form)
