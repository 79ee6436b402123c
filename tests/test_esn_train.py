"""Ridge training of the ESN readout (docs/esn.md): teacher forcing, washout, streaming, several sequences."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.dsl.params import effective
from rnngraph.runtime import oracle
from rnngraph.runtime.oracle.esn import esn_step
from rnngraph.train import RidgeAccumulator, RidgeTrainer, fit_ridge, harvest


def driven(cell: rg.ESN, features: int = 3) -> rg.Model:
    x = rg.Input("x", features=features)
    return rg.Model(x, {"y": rg.Recurrent(cell, name="esn")(x)})


def random_inputs(batch: int, time: int, features: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, time, features)).astype(np.float32)


@pytest.mark.parametrize("cell", [
    rg.ESN(12, outputs=2, density=0.4, leak=0.6, reads=("input", "state")),
    rg.ESN(12, outputs=2, density=0.4, leak=0.6, feedback=True, feedback_scaling=0.3),
], ids=["no_feedback", "feedback"])
def test_recovers_a_readout_exactly(cell):
    """Targets made by the model itself: teacher forcing sees its own y(n-1), so ridge → 0 recovers W_out."""
    model = driven(cell)
    truth = model.init(seed=1)
    u = random_inputs(4, 60, 3)
    targets = oracle.run(model, truth, x=u)["y"]
    start = dict(truth, **{"esn/W_out": np.zeros_like(truth["esn/W_out"]), "esn/b_out": np.zeros(2, np.float32)})
    fitted = fit_ridge(model, start, u, targets, washout=0, ridge=1e-12)
    np.testing.assert_allclose(fitted["esn/W_out"], truth["esn/W_out"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fitted["esn/b_out"], truth["esn/b_out"], rtol=1e-3, atol=1e-4)
    assert all(np.array_equal(fitted[k], truth[k]) for k in ("esn/W", "esn/W_in"))


def test_solution_is_the_ridge_formula():
    """W_out = Y Zᵀ (Z Zᵀ + β I)⁻¹ with z = [u; x; y(n-1); 1] harvested under teacher forcing, after the washout."""
    cell = rg.ESN(10, outputs=2, density=0.5, leak=0.8, feedback=True)
    model = driven(cell)
    params = model.init(seed=2)
    u = random_inputs(1, 40, 3, seed=3)[0].astype(np.float64)
    d = np.random.default_rng(4).standard_normal((40, 2))
    p = {k[4:]: v for k, v in effective(model.param_specs(), params).items()}
    states, y_prev = harvest(cell, p, u[None], d[None], np.zeros((1, 10)), np.zeros((1, 2)))
    Z = np.concatenate([u, states[0], y_prev[0], np.ones((40, 1))], axis=1)[7:].T  # washout 7
    beta = 0.5
    expected = d[7:].T @ Z.T @ np.linalg.inv(Z @ Z.T + beta * np.eye(Z.shape[0]))
    fitted = fit_ridge(model, params, u, d, washout=7, ridge=beta)
    np.testing.assert_allclose(fitted["esn/W_out"], expected[:, :-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted["esn/b_out"], expected[:, -1], rtol=1e-5, atol=1e-6)


def test_harvest_agrees_with_the_oracle_step():
    cell = rg.ESN(9, outputs=2, density=0.5, leak=0.4, feedback=True)
    model = driven(cell)
    p = {k[4:]: v for k, v in effective(model.param_specs(), model.init(seed=5)).items()}
    u = random_inputs(1, 12, 3)[0].astype(np.float64)
    d = np.random.default_rng(1).standard_normal((12, 2))
    states, _ = harvest(cell, p, u[None], d[None], np.zeros((1, 9)), np.zeros((1, 2)))
    s = {"y": np.zeros(2), "x": np.zeros(9)}
    for t in range(12):
        s, _ = esn_step(cell, p, u[t], s, t)
        np.testing.assert_allclose(states[0, t], s["x"], rtol=1e-12, atol=1e-12)
        s["y"] = d[t]  # teacher forcing: the next step sees the target, not the model's output


def test_streaming_chunks_equal_one_pass():
    cell = rg.ESN(11, outputs=1, density=0.3, leak=0.5, feedback=True)
    model = driven(cell, features=2)
    params = model.init(seed=6)
    u = random_inputs(2, 50, 2, seed=7)
    d = random_inputs(2, 50, 1, seed=8)
    whole = RidgeTrainer(model, params, washout=12)
    whole.feed(u, d)
    chunked = RidgeTrainer(model, params, washout=12)
    for a, b in ((0, 5), (5, 31), (31, 50)):  # the first chunk lies wholly in the washout
        chunked.feed(u[:, a:b], d[:, a:b])
    assert chunked.accumulator.count == whole.accumulator.count == 2 * 38
    np.testing.assert_allclose(chunked.accumulator.zz, whole.accumulator.zz, rtol=1e-12)
    np.testing.assert_allclose(chunked.accumulator.yz, whole.accumulator.yz, rtol=1e-12)
    np.testing.assert_allclose(chunked.solve(1e-6)["esn/W_out"], whole.solve(1e-6)["esn/W_out"], rtol=1e-6)


def test_several_sequences_of_different_lengths():
    model = driven(rg.ESN(8, outputs=2, density=0.5))
    params = model.init(seed=9)
    u = random_inputs(3, 30, 3, seed=10)
    d = random_inputs(3, 30, 2, seed=11)
    lengths = [30, 17, 22]
    as_list = fit_ridge(model, params, [u[b, :n] for b, n in enumerate(lengths)],
                        [d[b, :n] for b, n in enumerate(lengths)], washout=4, ridge=1e-4)
    as_batch = fit_ridge(model, params, u, d, lengths=lengths, washout=4, ridge=1e-4)
    trainer = RidgeTrainer(model, params, washout=4)
    for b, n in enumerate(lengths):
        trainer.feed(u[b, :n], d[b, :n])
        trainer.end_sequence()
    assert trainer.accumulator.count == sum(n - 4 for n in lengths)
    for other in (as_batch, trainer.solve(1e-4)):
        np.testing.assert_allclose(other["esn/W_out"], as_list["esn/W_out"], rtol=1e-6, atol=1e-7)


def test_trains_a_generative_node_too():
    u, n = rg.Input("u", features=1), rg.Input("steps", count=True)
    # reads no y(n-1): for a next-input predictor it equals u(n) under teacher forcing, a collinear column
    gen, primed = rg.Generative(rg.ESN(10, outputs=1, density=0.3, leak=0.5, reads=("input", "state")))(u, n)
    model = rg.Model([u, n], {"generated": gen, "primed": primed})
    wave = np.sin(np.arange(201) * 0.3)[:, None]
    fitted = fit_ridge(model, model.init(0), wave[:-1], wave[1:], washout=20, ridge=1e-8)
    out = oracle.run(model, fitted, u=wave[None, :150], steps=np.array(20))
    continuation = np.concatenate([out["primed"][0, -1:, 0], out["generated"][0, :-1, 0]])
    np.testing.assert_allclose(continuation, wave[150:170, 0], atol=1e-2)  # a sine, continued closed-loop


# -- errors ----------------------------------------------------------------------------------------------
def test_model_without_a_single_forward_esn_is_refused():
    x = rg.Input("x", features=2)
    with pytest.raises(rg.ModelError, match=r"has 0 ESN nodes \[\]; name the one to train with `node=`"):
        RidgeTrainer(rg.Model(x, {"y": rg.Recurrent(rg.RNN(3))(x)}), {})
    two = rg.Model(x, {"a": rg.Recurrent(rg.ESN(3))(x), "b": rg.Recurrent(rg.ESN(4))(x)})
    params = two.init(0)
    with pytest.raises(rg.ModelError, match=r"has 2 ESN nodes \['esn0', 'esn1'\]"):
        fit_ridge(two, params, np.zeros((5, 2)), np.zeros((5, 1)))
    with pytest.raises(rg.ModelError, match=r"node 'dense0' is not an ESN node; its ESN nodes are"):
        fit_ridge(two, params, np.zeros((5, 2)), np.zeros((5, 1)), node="dense0")
    assert fit_ridge(two, params, np.ones((5, 2)), np.ones((5, 1)), node="esn1", ridge=1.0)["esn1/W_out"].any()
    rev = rg.Model(x, {"y": rg.Recurrent(rg.ESN(3), reverse=True)(x)})
    with pytest.raises(rg.ModelError, match=r"runs in reverse or from a given initial state"):
        fit_ridge(rev, rev.init(0), np.zeros((5, 2)), np.zeros((5, 1)))
    deep = rg.Model(x, {"y": rg.Recurrent(rg.ESN(3))(rg.Dense(2)(x))})
    with pytest.raises(rg.ModelError, match=r"ESN node 'esn0' reads 'dense0', not a model input"):
        fit_ridge(deep, deep.init(0), np.zeros((5, 2)), np.zeros((5, 1)))


def test_bad_training_arguments_are_refused():
    model = driven(rg.ESN(5, outputs=2))
    params = model.init(0)
    u, d = np.zeros((10, 3)), np.zeros((10, 2))
    with pytest.raises(rg.InputError, match=r"invalid value for `washout`: expected an integer >= 0"):
        fit_ridge(model, params, u, d, washout=-1)
    with pytest.raises(rg.InputError, match=r"invalid value for `ridge`: expected a number >= 0"):
        fit_ridge(model, params, u, d, ridge=-1e-3)
    with pytest.raises(rg.InputError, match=r"`inputs`: expected shape \(time, 3\) or \(batch, time, 3\), "
                                            r"received \(10, 4\)"):
        fit_ridge(model, params, np.zeros((10, 4)), d)
    with pytest.raises(rg.InputError, match=r"same batch and time, received \(1, 10\) and \(1, 9\)"):
        fit_ridge(model, params, u, d[:9])
    with pytest.raises(rg.InputError, match=r"`targets`: contains NaN or infinity"):
        fit_ridge(model, params, u, np.full((10, 2), np.nan))
    with pytest.raises(rg.InputError, match=r"no training steps were accumulated"):
        fit_ridge(model, params, u, d, washout=10)
    with pytest.raises(rg.InputError, match=r"`lengths` must hold one integer length in 1..10 per row"):
        fit_ridge(model, params, u[None], d[None], lengths=[11])
    with pytest.raises(rg.InputError, match=r"`targets` must be a list of as many sequences as `inputs` \(2\)"):
        fit_ridge(model, params, [u, u], d)
    with pytest.raises(rg.ParameterError, match=r"missing \['esn/W'\]"):
        fit_ridge(model, {k: v for k, v in params.items() if k != "esn/W"}, u, d)
    trainer = RidgeTrainer(model, params)
    trainer.feed(np.zeros((2, 4, 3)), np.zeros((2, 4, 2)))
    with pytest.raises(rg.InputError, match=r"this chunk has 1 rows but the sequence being fed has 2; "
                                            r"call end_sequence\(\)"):
        trainer.feed(u, d)


def test_singular_system_without_ridge_is_explained():
    accumulator = RidgeAccumulator(3, 1)
    accumulator.add(np.ones((4, 3)), np.ones((4, 1)))  # three equal columns: Z Zᵀ has rank 1
    with pytest.raises(rg.ParameterError, match=r"the ridge system is singular .*use `ridge` > 0"):
        accumulator.solve(0.0)
    assert np.allclose(accumulator.solve(1e-3) @ np.ones(3), 1.0, atol=1e-2)
