"""The fast harvest (sparse reservoir, blocked Gram updates), ridge paths and progress reporting."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnngraph as rg
import rnngraph.train as train
from rnngraph.dsl.params import effective
from rnngraph.ridge import RidgeAccumulator, choose
from rnngraph.runtime.oracle.esn import esn_step
from rnngraph.train import Reservoir, RidgeTrainer, feed_sequences, fit_ridge, fit_ridge_path, harvest


def driven(cell: rg.ESN, features: int = 3) -> rg.Model:
    x = rg.Input("x", features=features)
    return rg.Model(x, {"y": rg.Recurrent(cell, name="esn")(x)})


def node_params(model: rg.Model, params: dict) -> dict:
    return {k[4:]: v for k, v in effective(model.param_specs(), params).items()}


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_both_stepping_paths_agree_with_the_oracle_step(sparse):
    cell = rg.ESN(23, outputs=2, density=0.08, leak=0.7, feedback=True)
    model = driven(cell)
    p = node_params(model, model.init(seed=3))
    assert Reservoir(cell, p, sparse).sparse is sparse
    rng = np.random.default_rng(2)
    u, d = rng.standard_normal((2, 9, 3)), rng.standard_normal((2, 9, 2))
    states, _ = harvest(cell, p, u, d, np.zeros((2, 23)), np.zeros((2, 2)), sparse=sparse)
    for b in range(2):
        s = {"y": np.zeros(2), "x": np.zeros(23)}
        for t in range(9):
            s, _ = esn_step(cell, p, u[b, t], s, t)
            np.testing.assert_allclose(states[b, t], s["x"], rtol=1e-12, atol=1e-13)
            s["y"] = d[b, t]


def test_sparse_reservoirs_step_sparse_by_default():
    big = rg.ESN(300, density=0.01)
    model = driven(big, features=1)
    assert Reservoir(big, node_params(model, model.init(0))).sparse
    dense = rg.ESN(7, density=0.5)
    model = driven(dense, features=1)
    assert not Reservoir(dense, node_params(model, model.init(0))).sparse


@pytest.mark.parametrize("block_rows", [1, 3, 7, 1024])
def test_blocked_gram_updates_equal_one_product(monkeypatch, block_rows):
    """Blocks of steps (one Zᵀ Z each) give the sums of the whole Z, washout inside a block or across blocks."""
    cell = rg.ESN(13, outputs=2, density=0.3, leak=0.5, feedback=True)
    model = driven(cell, features=2)
    params = model.init(seed=4)
    p = node_params(model, params)
    rng = np.random.default_rng(5)
    u, d = rng.standard_normal((3, 17, 2)), rng.standard_normal((3, 17, 2))
    states, y_prev = harvest(cell, p, u, d, np.zeros((3, 13)), np.zeros((3, 2)))
    Z = np.concatenate([u, states, y_prev, np.ones((3, 17, 1))], axis=2)[:, 5:].reshape(-1, 18)
    Y = d[:, 5:].reshape(-1, 2)
    monkeypatch.setattr(train, "BLOCK_ROWS", block_rows)
    trainer = RidgeTrainer(model, params, washout=5)
    trainer.feed(u[:, :8], d[:, :8])
    trainer.feed(u[:, 8:], d[:, 8:])
    np.testing.assert_allclose(trainer.accumulator.zz, Z.T @ Z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(trainer.accumulator.yz, Y.T @ Z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(trainer.accumulator.yy, Y.T @ Y, rtol=1e-12, atol=1e-12)
    assert trainer.accumulator.count == 3 * 12


def test_sums_do_not_depend_on_the_order_of_sequences_or_merges():
    """Per-sequence sums are committed exactly (TwoSum), so any order or merge tree gives the same float64 bits."""
    rng = np.random.default_rng(12)
    scales = 10.0 ** rng.uniform(-6, 6, size=40)  # magnitudes far apart: plain sums would round differently
    blocks = [(s * rng.standard_normal((7, 5)), rng.standard_normal((7, 2))) for s in scales]

    def summed(order, groups):
        parts = []
        for group in np.array_split(np.asarray(order), groups):
            acc = RidgeAccumulator(5, 2)
            for i in group:
                acc.add(*blocks[i])
                acc.commit()
            parts.append(acc)
        while len(parts) > 1:
            parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
        return parts[0]

    one = summed(range(40), 1)
    plain = sum(Z.T @ Z for Z, _ in blocks)
    for order, groups in ((rng.permutation(40), 1), (rng.permutation(40), 7), (np.arange(40)[::-1], 3)):
        other = summed(order, groups)
        for key in ("zz", "yz", "yy"):
            np.testing.assert_array_equal(getattr(other, key), getattr(one, key))
    np.testing.assert_allclose(one.zz, plain, rtol=1e-12, atol=1e-12 * np.abs(plain).max())


def test_ridge_path_equals_separate_solves_and_scores_like_a_direct_evaluation():
    rng = np.random.default_rng(6)
    Z, Y = rng.standard_normal((200, 9)), rng.standard_normal((200, 2))
    Zv, Yv = rng.standard_normal((50, 9)), rng.standard_normal((50, 2))
    train_sums, held = RidgeAccumulator(9, 2), RidgeAccumulator(9, 2)
    train_sums.add(Z, Y)
    held.add(Zv, Yv)
    ridges = [1e-6, 0.1, 3.0, 100.0]
    path = train_sums.solve_path(ridges)
    for W, beta in zip(path, ridges, strict=True):
        np.testing.assert_allclose(W, train_sums.solve(beta), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(held.mse(W), np.mean((Zv @ W.T - Yv) ** 2), rtol=1e-10)
    rank_one = RidgeAccumulator(3, 1)
    rank_one.add(np.ones((4, 3)), np.ones((4, 1)))
    path = rank_one.solve_path([1.0, 0.0])
    assert np.all(np.isnan(path[1])) and np.allclose(path[0], rank_one.solve(1.0), rtol=1e-12)
    held_out = RidgeAccumulator(3, 1)
    held_out.add(np.ones((2, 3)), np.ones((2, 1)))
    W, chosen, errors = choose(rank_one, held_out, [1.0, 0.0])
    assert chosen == 1.0 and errors[1] == np.inf and errors[0] < 1e-2
    with pytest.raises(rg.ParameterError, match=r"singular for every ridge value \[0.0\] .*use larger ridge"):
        rank_one.solve_path([0.0])


def test_fit_ridge_path_picks_the_ridge_with_the_least_validation_error():
    cell = rg.ESN(31, outputs=1, density=0.2, leak=0.6, reads=("input", "state"))
    model = driven(cell, features=1)
    params = model.init(seed=7)
    wave = np.sin(0.21 * np.arange(700))[:, None] + 0.05 * np.random.default_rng(8).standard_normal((700, 1))
    ridges = [1e-9, 1e-5, 1e-2, 10.0]
    fit = fit_ridge_path(model, params, wave[:399], wave[1:400], ridges=ridges, washout=30,
                         validation=(wave[400:-1], wave[401:]), progress=False)
    assert fit.ridges == tuple(ridges) and len(fit.validation_errors) == 4
    assert fit.ridge == ridges[int(np.argmin(fit.validation_errors))]
    assert fit.train_steps == 369 and fit.validation_steps == 299 - 30
    alone = fit_ridge(model, params, wave[:399], wave[1:400], washout=30, ridge=fit.ridge, progress=False)
    np.testing.assert_allclose(fit.params["esn/W_out"], alone["esn/W_out"], rtol=1e-5, atol=1e-6)
    # the validation error is the mean squared one-step error of the chosen readout, recomputed by the oracle
    out = rg.runtime.oracle.run(model, fit.params, x=wave[None, 400:-1])["y"][0, 30:]
    np.testing.assert_allclose(min(fit.validation_errors), np.mean((out - wave[431:]) ** 2), rtol=1e-4)
    assert "<- chosen" in fit.table()
    with pytest.raises(rg.InputError, match=r"4 ridge values were given but no `validation` split"):
        fit_ridge_path(model, params, wave[:399], wave[1:400], ridges=ridges, progress=False)
    with pytest.raises(rg.InputError, match=r"invalid value for `ridges`: expected a non-empty list"):
        fit_ridge_path(model, params, wave[:399], wave[1:400], ridges=[], progress=False)


def test_progress_callback_counts_every_step():
    model = driven(rg.ESN(9, outputs=2, density=0.4))
    params = model.init(0)
    rng = np.random.default_rng(9)
    inputs = [rng.standard_normal((n, 3)) for n in (40, 7, 25)]
    targets = [rng.standard_normal((n, 2)) for n in (40, 7, 25)]
    calls: list[tuple[int, int | None]] = []
    fit_ridge(model, params, inputs, targets, washout=3, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (72, 72) and all(total == 72 for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    streamed: list[tuple[int, int | None]] = []
    trainer = RidgeTrainer(model, params, progress=lambda done, total: streamed.append((done, total)))
    feed_sequences(trainer, [(np.zeros((2, 5, 3)), np.zeros((2, 5, 2)))])
    assert streamed == [(10, None)]
    with pytest.raises(rg.InputError, match=r"invalid value for `progress`: expected True, False, None or a callable"):
        fit_ridge(model, params, inputs, targets, progress="yes")


def test_progress_is_silent_in_a_pipe():
    """Default progress draws a bar only on a terminal: run in a subprocess whose stderr is a pipe."""
    code = textwrap.dedent("""
        import numpy as np, rnngraph as rg
        x = rg.Input("x", features=1)
        model = rg.Model(x, {"y": rg.Recurrent(rg.ESN(20, density=0.2))(x)})
        rg.fit_ridge(model, model.init(0), np.ones((3000, 1)), np.ones((3000, 1)), ridge=1e-3)
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n" and result.stderr == ""


def test_progress_draws_a_bar_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    model = driven(rg.ESN(9, outputs=2, density=0.4))
    fit_ridge(model, model.init(0), np.ones((50, 3)), np.ones((50, 2)), ridge=1e-3)
    assert "ridge harvest esn" in capsys.readouterr().err
    fit_ridge(model, model.init(0), np.ones((50, 3)), np.ones((50, 2)), ridge=1e-3, progress=False)
    assert capsys.readouterr().err == ""
