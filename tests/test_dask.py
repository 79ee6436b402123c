"""Scale-out on a real `distributed.LocalCluster`: 2 worker processes, 1 thread each, loopback only.

One cluster for the whole module (started once by a fixture); skipped without Dask.
"""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
import dask  # noqa: E402

import rnngraph as rg  # noqa: E402
from rnngraph.scaleout import (  # noqa: E402
    fit_ridge,
    grid,
    inference,
    predict,
    predict_arrays,
    random_settings,
    search,
)
from rnngraph.scaleout.tuning import free_run_error  # noqa: E402
from rnngraph.train import RidgeTrainer, feed_sequences, fit_ridge_path  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def feedback_model() -> rg.Model:
    x = rg.Input("x", features=2)
    cell = rg.ESN(37, outputs=3, density=0.15, leak=0.6, feedback=True, feedback_scaling=0.3)
    return rg.Model(x, {"y": rg.Recurrent(cell, name="esn")(x)})


def ragged_pairs(count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 2)), rng.standard_normal((n, 3))) for n in rng.integers(12, 60, count)]


def single_process(model, params, pairs, washout, ridge=1e-3):
    return feed_sequences(RidgeTrainer(model, params, washout=washout, progress=False), pairs).solve(ridge)


def test_bag_fit_equals_the_single_process_fit(client):
    model, pairs = feedback_model(), ragged_pairs(23, seed=1)
    params = model.init(seed=2)
    fit = fit_ridge(model, params, db.from_sequence(pairs, npartitions=5), washout=4, ridge=1e-3,
                    client=client, progress=False)
    expected = single_process(model, params, pairs, washout=4)
    np.testing.assert_allclose(fit.solution, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert fit.train_steps == sum(len(u) - 4 for u, _ in pairs) and fit.ridge == 1e-3
    alone = rg.fit_ridge(model, params, [u for u, _ in pairs], [d for _, d in pairs], washout=4, ridge=1e-3,
                         progress=False)
    np.testing.assert_array_equal(fit.params["esn/W_out"], alone["esn/W_out"])


def test_agreement_holds_on_an_ill_conditioned_system(client):
    """Smooth signals make Z Zᵀ nearly singular; the order-independent sums keep the fits equal anyway."""
    x = rg.Input("u", features=1)
    model = rg.Model(x, {"y": rg.Recurrent(rg.ESN(60, density=0.1, leak=0.3, reads=("input", "state")),
                                           name="esn")(x)})
    params = model.init(seed=1)
    pairs = sine_pairs(16, 120, seed=2)
    fit = fit_ridge(model, params, db.from_sequence(pairs, npartitions=6), washout=10, ridge=1e-12, client=client,
                    progress=False)
    sums = feed_sequences(RidgeTrainer(model, params, washout=10, progress=False), pairs)
    assert np.linalg.cond(sums.zz) > 1e9  # an ordering difference of one ulp would move the solution by ~1e-6
    expected = sums.solve(1e-12)
    np.testing.assert_allclose(fit.solution, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_dask_arrays_with_lengths_and_delayed_loaders(client, tmp_path):
    model = feedback_model()
    params = model.init(seed=3)
    rng = np.random.default_rng(4)
    u, d = rng.standard_normal((9, 40, 2)), rng.standard_normal((9, 40, 3))
    lengths = np.array([40, 1, 17, 33, 40, 5, 28, 39, 12])
    expected = single_process(model, params, [(u[b, :n], d[b, :n]) for b, n in enumerate(lengths)], washout=3)
    arrays = (da.from_array(u, chunks=(4, 40, 2)), da.from_array(d, chunks=(4, 40, 3)), lengths)
    fit = fit_ridge(model, params, arrays, washout=3, ridge=1e-3, client=client, progress=False)
    np.testing.assert_allclose(fit.solution, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    # files the workers read themselves: one loader per file; one returns a generator of sequences
    for b in range(9):
        np.save(tmp_path / f"u{b}.npy", u[b, : lengths[b]])
        np.save(tmp_path / f"d{b}.npy", d[b, : lengths[b]])

    def load(b: int):
        return np.load(tmp_path / f"u{b}.npy"), np.load(tmp_path / f"d{b}.npy")

    def load_many(rows: list[int]):
        return (load(b) for b in rows)

    loaders = [dask.delayed(load)(b) for b in range(5)] + [dask.delayed(load_many)([5, 6, 7, 8])]
    fit = fit_ridge(model, params, loaders, washout=3, ridge=1e-3, client=client, progress=False)
    np.testing.assert_allclose(fit.solution, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_ridge_list_is_chosen_on_the_validation_split_like_the_single_process_path(client):
    model, pairs, held = feedback_model(), ragged_pairs(12, seed=5), ragged_pairs(6, seed=6)
    params = model.init(seed=7)
    ridges = [1e-6, 1e-3, 1.0, 30.0]
    calls: list[tuple[int, int | None]] = []
    fit = fit_ridge(model, params, pairs, washout=2, ridge=ridges, validation=db.from_sequence(held, npartitions=3),
                    client=client, progress=lambda done, total: calls.append((done, total)))
    local = fit_ridge_path(model, params, [u for u, _ in pairs], [d for _, d in pairs], ridges=ridges, washout=2,
                           validation=([u for u, _ in held], [d for _, d in held]), progress=False)
    assert fit.ridge == local.ridge and fit.validation_steps == local.validation_steps
    np.testing.assert_allclose(fit.validation_errors, local.validation_errors, rtol=1e-9)
    np.testing.assert_allclose(fit.solution, local.solution, rtol=1e-9, atol=1e-12 * np.abs(local.solution).max())
    total = calls[-1][1]
    assert calls[-1] == (total, total) and total >= 4  # partitions, training and validation together


def test_bad_data_is_refused_with_the_forms_accepted(client):
    model = feedback_model()
    with pytest.raises(rg.InputError, match=r"`data`: expected a dask.bag.Bag of \(inputs, targets\) pairs"):
        fit_ridge(model, model.init(0), np.zeros((3, 4, 2)), client=client)
    with pytest.raises(rg.InputError, match=r"`validation`: Dask arrays come as \(inputs, targets\)"):
        fit_ridge(model, model.init(0), ragged_pairs(2, 0), validation=(da.zeros((2, 5, 2)),), ridge=[1.0, 2.0],
                  client=client)


def sine_pairs(count: int, length: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    waves = [np.sin(rng.uniform(0.15, 0.3) * np.arange(length + 1) + rng.uniform(0, 6))[:, None]
             for _ in range(count)]
    return [(w[:-1], w[1:]) for w in waves]


@pytest.mark.parametrize("error", ["one-step", "free-run"])
def test_search_scores_every_setting_and_returns_the_best_ready_to_export(client, error):
    train, held = sine_pairs(4, 150, seed=8), sine_pairs(2, 90, seed=9)
    settings = grid(spectral_radius=[0.5, 1.1], leak=[0.3, 1.0]) + random_settings(2, seed=1, hidden=[15, 25],
                                                                                      input_scaling=(0.2, 1.0))
    base = {"hidden": 20, "density": 0.3, "reads": ("input", "state")}
    result = search(settings, train=train, validation=held, base=base, seed=4, washout=20, ridges=[1e-8, 1e-4, 1.0],
                    error=error, horizon=30, client=client, progress=False)
    rows = result.table.to_dict("records") if hasattr(result.table, "to_dict") else result.table
    assert len(rows) == 6 and [r["error"] for r in rows] == sorted(r["error"] for r in rows)
    assert result.best == rows[0] and result.best["ridge"] in (1e-8, 1e-4, 1.0)
    # the best model, rebuilt on the client from the seed, scores what its worker reported
    model, params = result.model, result.params
    assert model.param_specs()["esn/W"].shape[0] == result.cell.hidden
    trainer = RidgeTrainer(model, params, washout=20, progress=False)
    rounded = np.concatenate([params["esn/W_out"], params["esn/b_out"][:, None]], axis=1).astype(np.float64)
    for solution, rtol in ((result.solution, 1e-9), (rounded, 2e-2)):  # float32 params: a free run amplifies rounding
        if error == "free-run":
            score = free_run_error(trainer.reservoir, solution[None], held, 20, 30)[0]
        else:
            score = feed_sequences(RidgeTrainer(model, params, washout=20, progress=False), held).mse(solution)
        np.testing.assert_allclose(score, result.best["error"], rtol=rtol)
    np.testing.assert_array_equal(rounded, result.solution.astype(np.float32))
    assert rg.runtime.Session(rg.export(model, params)).run(u=held[0][0][None].astype(np.float32))["y"].shape == (
        1, 90, 1)


def test_search_errors_are_explained(client):
    pairs = sine_pairs(2, 40, 0)
    with pytest.raises(rg.InputError, match=r"invalid value for `error`: expected one of"):
        search([{"leak": 0.5}], train=pairs, validation=pairs, base={"hidden": 5}, error="two-step", client=client)
    with pytest.raises(rg.InputError, match=r"`settings` must be a non-empty list of dicts over"):
        search([{"colour": 1}], train=pairs, validation=pairs, client=client)
    with pytest.raises(rg.InputError, match=r"washout 30 \+ horizon 20 - 1 must fit the shortest validation"):
        search([{"leak": 0.5}], train=pairs, validation=pairs, base={"hidden": 5}, washout=30, horizon=20,
               error="free-run", client=client)


def exported_tagger(tmp_path) -> str:
    x = rg.Input("x", features=3)
    tagged = rg.Dense(2)(rg.Recurrent(rg.GRU(7, linear_before_reset=True))(x))
    model = rg.Model(x, {"y": tagged, "last": rg.Recurrent(rg.RNN(5), returns="last")(x)})
    path = str(tmp_path / "tagger.onnx")
    rg.export(model, model.init(seed=1), path)
    return path


def test_batch_inference_on_a_bag_opens_one_session_per_worker(client, tmp_path):
    path = exported_tagger(tmp_path)
    rng = np.random.default_rng(10)
    sequences = [rng.standard_normal((n, 3)).astype(np.float32) for n in (1, 9, 4, 13, 2, 7, 11, 5)]
    outputs = predict(path, db.from_sequence(sequences, npartitions=4), client=client).compute()
    again = predict(path, db.from_sequence(sequences[::-1], npartitions=3), client=client).compute()
    session = rg.runtime.Session(path)
    for seq, got, back in zip(sequences, outputs, again[::-1], strict=True):
        ref = session.run(x=seq[None])
        assert got["y"].shape == (len(seq), 2) and got["last"].shape == (5,)
        for name in ("y", "last"):
            np.testing.assert_allclose(got[name], ref[name][0], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(back[name], got[name])
    opened = client.run(lambda: dict(inference.SESSIONS_OPENED))
    assert len(opened) == 2 and all(list(counts.values()) == [1] for counts in opened.values()), opened


def test_batch_inference_refuses_what_it_cannot_run(client, tmp_path):
    path = exported_tagger(tmp_path)
    with pytest.raises(rg.InputError, match=r"`sequences`: expected a dask.bag.Bag .*use predict_arrays\(\)"):
        predict(path, [np.zeros((3, 3))], client=client)
    with pytest.raises(rg.InputError, match=r"no model file at '.*missing.onnx'; export one"):
        predict(str(tmp_path / "missing.onnx"), db.from_sequence([np.zeros((3, 3))]), client=client)


def test_batch_inference_on_dask_arrays_equals_one_run(client, tmp_path):
    path = exported_tagger(tmp_path)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((7, 6, 3)).astype(np.float32)
    lengths = np.array([6, 1, 3, 6, 2, 5, 4])
    got = predict_arrays(path, {"x": da.from_array(x, chunks=(3, 6, 3))}, lengths={"lengths": lengths},
                         client=client)
    ref = rg.runtime.Session(path).run(x=x, lengths=lengths)
    for name in ("y", "last"):
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-6)
