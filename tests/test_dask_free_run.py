"""The search's closed-loop scoring (NumPy only, no cluster) against the oracle's `Generative` layer."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.runtime import oracle
from rnngraph.scaleout.tuning import esn_model, free_run, grid, random_settings
from rnngraph.train import RidgeTrainer


@pytest.mark.parametrize("cell", [
    rg.ESN(17, outputs=2, density=0.3, leak=0.7, reads=("input", "state")),
    rg.ESN(13, outputs=2, density=0.4, leak=0.5, feedback=True, feedback_scaling=0.4),
], ids=["driven_reads", "feedback_all_reads"])
def test_free_run_equals_the_oracle_generative_run(cell):
    """Two readouts at once; each primes on its own outputs and feeds its predictions back, as Generative does."""
    params = esn_model(cell, features=2).init(seed=3)
    rng = np.random.default_rng(4)
    solutions = rng.uniform(-0.4, 0.4, size=(2, 2, params["esn/W_out"].shape[1] + 1))
    inputs = rng.standard_normal((11, 2))
    trainer = RidgeTrainer(esn_model(cell, features=2), params, progress=False)
    got = free_run(trainer.reservoir, solutions, inputs, prime=11, horizon=6)
    u, steps = rg.Input("u", features=2), rg.Input("steps", count=True)
    generated, primed = rg.Generative(cell, name="esn")(u, steps)
    generative = rg.Model([u, steps], {"generated": generated, "primed": primed})
    for r in range(2):
        p = dict(params, **{"esn/W_out": solutions[r, :, :-1], "esn/b_out": solutions[r, :, -1]})  # float64, unrounded
        out = oracle.run(generative, p, u=inputs[None], steps=np.array(5))
        expected = np.concatenate([out["primed"][0, -1:], out["generated"][0]])
        np.testing.assert_allclose(got[r], expected, rtol=1e-10, atol=1e-12)


def test_settings_helpers():
    assert grid(leak=[0.1, 0.2], hidden=[3]) == [{"leak": 0.1, "hidden": 3}, {"leak": 0.2, "hidden": 3}]
    drawn = random_settings(5, seed=2, leak=(0.1, 0.9), hidden=[10, 20])
    assert len(drawn) == 5 and all(0.1 <= s["leak"] <= 0.9 and s["hidden"] in (10, 20) for s in drawn)
    assert drawn == random_settings(5, seed=2, leak=(0.1, 0.9), hidden=[10, 20])
    with pytest.raises(rg.InputError, match=r"random_settings: `leak` must be a \(low, high\) tuple"):
        random_settings(2, leak=0.5)


def test_scaleout_without_dask_says_how_to_install_it(monkeypatch):
    import sys

    from rnngraph.scaleout.cluster import client_or_default

    monkeypatch.setitem(sys.modules, "dask", None)  # an import of dask now fails as if it were not installed
    with pytest.raises(rg.RnnGraphError, match=r"rnngraph.scaleout needs Dask \(dask is not installed\); "
                                               r"install it with `pip install rnngraph\[dask\]`"):
        client_or_default(None)
