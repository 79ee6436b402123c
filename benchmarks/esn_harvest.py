"""Single-process ESN readout training: rnngraph today vs the previous harvest vs ReservoirPy, one run.

    .venv/bin/python benchmarks/esn_harvest.py [--units 2000] [--density 0.01] [--steps 10000] [--repeats 2] [--dense]

The same reservoir (rnngraph's W, W_in and bias, drawn from seed 0) and the same data (a
Mackey–Glass-like chaotic signal from samples/esn_mackey_glass.py, next-step targets) for all:
- `rnngraph`: `fit_ridge` as shipped (sparse CSR stepping, blocked Gram updates);
- `rnngraph dense` (with `--dense`): the same with the dense fallback (what runs without scipy);
- `previous`: the harvest before this change (dense float64 stepping, then one Zᵀ Z over all steps),
  kept verbatim below so the comparison needs no other checkout;
- `reservoirpy`: `Reservoir(W=csr, Win, bias, lr) >> Ridge(β)`, `.fit(u, d, warmup)`, when installed
  (`pip install reservoirpy`; it is not a dependency of rnngraph — the column is skipped without it).
ReservoirPy's Ridge leaves its bias unregularised and fits on states only, so every column
here reads states only (`reads=("state",)`); the reported one-step training NRMSE shows all
four fit the same data equally well. Medians of `--repeats` runs after one warm-up run;
BLAS threads as the machine sets them (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "samples"))

import rnngraph as rg  # noqa: E402
from rnngraph.dsl.params import effective  # noqa: E402
from rnngraph.train import RidgeTrainer, feed_sequences, harvest  # noqa: E402


def previous_fit(cell: rg.ESN, p: dict[str, np.ndarray], u: np.ndarray, d: np.ndarray, washout: int,
                 ridge: float) -> np.ndarray:
    """The harvest and solve as they were before the sparse/blocked rewrite (reads=("state",))."""
    u, d = u[None], d[None]
    drive = u @ p["W_in"][:, 1:].T + p["W_in"][:, 0]
    states = np.empty(u.shape[:2] + (cell.hidden,))
    x, a, W_T = np.zeros((1, cell.hidden)), cell.leak, p["W"].T
    for t in range(u.shape[1]):
        x = (1.0 - a) * x + a * np.tanh(drive[:, t] + x @ W_T)
        states[:, t] = x
    z = np.concatenate([states, np.ones((1, u.shape[1], 1))], axis=2)[:, washout:].reshape(-1, cell.hidden + 1)
    y = d[:, washout:].reshape(-1, d.shape[2])
    zz, yz = z.T @ z, y.T @ z
    return np.linalg.solve(zz + ridge * np.eye(zz.shape[0]), yz.T).T


def interleaved_medians(columns: dict[str, Callable[[], np.ndarray]],
                        repeats: int) -> dict[str, tuple[float, np.ndarray]]:
    """Median seconds and last result per column; the columns take turns so that load on a shared
    machine falls on all of them alike. One warm-up run each is excluded."""
    results = {name: run() for name, run in columns.items()}
    times: dict[str, list[float]] = {name: [] for name in columns}
    for _ in range(repeats):
        for name, run in columns.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name]) for name in columns}


def nrmse(W: np.ndarray, states: np.ndarray, d: np.ndarray) -> float:
    pred = states @ W[:, :-1].T + W[:, -1]
    return float(np.sqrt(np.mean((pred - d) ** 2) / np.var(d)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-previous", action="store_true", help="leave out the (slow) previous harvest")
    parser.add_argument("--dense", action="store_true", help="add the dense fallback (what runs without scipy)")
    args = parser.parse_args()
    washout, ridge = 100, 1e-6

    from esn_mackey_glass import mackey_glass

    series = mackey_glass(args.steps + 501)[500:] - 1.0
    u, d = series[:-1, None], series[1:, None]
    cell = rg.ESN(args.units, outputs=1, density=args.density, spectral_radius=0.9, leak=0.5, bias_scaling=0.2,
                  reads=("state",))
    x = rg.Input("u", features=1)
    model = rg.Model(x, {"y": rg.Recurrent(cell, name="esn")(x)})
    params = model.init(seed=0)
    p = {k[4:]: v for k, v in effective(model.param_specs(), params).items()}

    def ours(sparse: bool | None) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            trainer = RidgeTrainer(model, params, washout=washout, progress=False, sparse=sparse)
            return feed_sequences(trainer, [(u, d)]).solve(ridge)
        return run

    columns: dict[str, Callable[[], np.ndarray]] = {"rnngraph": ours(None)}
    if args.dense:
        columns["rnngraph dense"] = ours(False)
    if not args.skip_previous:
        columns["previous"] = lambda: previous_fit(cell, p, u, d, washout, ridge)
    try:
        import reservoirpy
        import scipy.sparse
        from reservoirpy.nodes import Reservoir, Ridge

        def rpy() -> np.ndarray:
            res = Reservoir(W=scipy.sparse.csr_matrix(p["W"]), Win=p["W_in"][:, 1:], bias=p["W_in"][:, 0],
                            lr=cell.leak)
            readout = Ridge(ridge=ridge)
            (res >> readout).fit(u, d, warmup=washout)
            return np.concatenate([readout.Wout.T, readout.bias[:, None]], axis=1)

        columns["reservoirpy " + reservoirpy.__version__] = rpy
    except ImportError:
        print("reservoirpy is not installed: its column is skipped (pip install reservoirpy)")

    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"ESN N={args.units}, density {args.density}, leak {cell.leak}, {args.steps} steps (washout {washout}), "
          f"ridge {ridge}; {args.repeats} repeats after a warm-up; BLAS threads {threads}; {os.cpu_count()} CPUs")
    states = harvest(cell, p, u[None], d[None], np.zeros((1, cell.hidden)), np.zeros((1, 1)))[0][0, washout:]
    base = None
    print(f"{'implementation':<22}{'median s':>10}{'µs/step':>10}{'vs rnngraph':>13}{'train NRMSE':>13}")
    for name, (seconds, W) in interleaved_medians(columns, args.repeats).items():
        base = base or seconds
        print(f"{name:<22}{seconds:>10.3f}{seconds / args.steps * 1e6:>10.1f}{seconds / base:>12.2f}×"
              f"{nrmse(W, states, d[washout:]):>13.3e}")


if __name__ == "__main__":
    main()
