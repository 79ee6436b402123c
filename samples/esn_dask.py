"""Echo State Network trained on a Dask cluster: many Mackey–Glass sequences, a ridge path, batch scoring.

    python samples/esn_dask.py            # starts a local cluster (2 worker processes), trains, prints the result
    rnngraph verify samples/esn_dask.py   # the model itself, onnxruntime against the oracle

Mackey–Glass series (τ = 17) from 32 different starting values, integrated here for all of them
at once: 20 train, 6 validation, 6 test sequences of 1200 steps. A 300-unit leaky ESN learns
u(n+1) from u(n). `rnngraph.scaleout.fit_ridge` runs the reservoir over each partition of the
training bag on the worker that holds it, adds the partial sums in a tree and solves once for
nine ridge values; the validation split picks one. The exported model then scores the test
sequences with `rnngraph.scaleout.predict` (one onnxruntime session per worker).
Importing this file defines `model` and `params` (untrained readout, seed 0) and starts nothing.
"""

from __future__ import annotations

import numpy as np

import rnngraph as rg

TAU, DT, SUBSAMPLE = 17.0, 0.1, 10
SEQUENCES, LENGTH, TRANSIENT = 32, 1200, 300
WASHOUT = 100
RIDGES = np.logspace(-10, -2, 9)

esn = rg.ESN(300, outputs=1, density=0.05, spectral_radius=0.9, leak=0.8, bias_scaling=0.2,
             reads=("input", "state"))
u = rg.Input("u", features=1)                          # (batch, time, 1)
model = rg.Model(u, {"y": rg.Recurrent(esn, name="esn")(u)}, name="esn_dask")
params = model.init(seed=0)


def mackey_glass_batch(starts: np.ndarray, n: int) -> np.ndarray:
    """``(len(starts), n)``: one Mackey–Glass series per starting value, one sample per time unit (RK4, step 0.1)."""
    lag, steps = round(TAU / DT), n * SUBSAMPLE
    x = np.empty((len(starts), steps + lag + 1))
    x[:, : lag + 1] = starts[:, None]

    def f(now: np.ndarray, delayed: np.ndarray) -> np.ndarray:
        return 0.2 * delayed / (1.0 + delayed**10) - 0.1 * now

    for i in range(lag, lag + steps):
        d0, d1 = x[:, i - lag], x[:, i - lag + 1]
        dh, xi = 0.5 * (d0 + d1), x[:, i]
        k1 = f(xi, d0)
        k2 = f(xi + 0.5 * DT * k1, dh)
        k3 = f(xi + 0.5 * DT * k2, dh)
        k4 = f(xi + DT * k3, d1)
        x[:, i + 1] = xi + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[:, lag + SUBSAMPLE :: SUBSAMPLE][:, :n]


def main() -> None:
    import dask.bag as db
    from distributed import Client, LocalCluster

    from rnngraph import scaleout

    series = mackey_glass_batch(np.linspace(0.4, 1.6, SEQUENCES), TRANSIENT + LENGTH + 1)[:, TRANSIENT:] - 1.0
    pairs = [(s[:-1, None], s[1:, None]) for s in series]
    train, validation, test = pairs[:20], pairs[20:26], pairs[26:]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        fit = scaleout.fit_ridge(model, params, db.from_sequence(train, npartitions=8), washout=WASHOUT,
                                 ridge=list(RIDGES), validation=db.from_sequence(validation, npartitions=2),
                                 client=client, progress=False)
        print(fit.table())
        print(f"chosen ridge {fit.ridge:.0e} over {fit.train_steps} training steps "
              f"({len(train)} sequences, {fit.validation_steps} validation steps)")
        outputs = scaleout.predict(rg.export(model, fit.params), db.from_sequence([u for u, _ in test], npartitions=2),
                                   client=client).compute()
    predicted = np.concatenate([o["y"][WASHOUT:, 0] for o in outputs])
    truth = np.concatenate([d[WASHOUT:, 0] for _, d in test])
    nrmse = np.sqrt(np.mean((predicted - truth) ** 2) / np.var(truth))
    print(f"one-step test NRMSE over {len(test)} sequences ({len(truth)} steps): {nrmse:.2e}")


if __name__ == "__main__":
    main()
