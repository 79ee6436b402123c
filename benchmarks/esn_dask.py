"""ESN training and batch inference on Dask against one process, one run.

    .venv/bin/python benchmarks/esn_dask.py [--units 2000] [--density 0.01] [--steps 200000] [--ridge-steps 10000]

Reports, with the machine's CPU count and thread settings:
1. agreement: the distributed readout (float64 solution) against the single-process one on the
   same data (max relative difference);
2. wall time of one training over `--steps` steps (Mackey–Glass, 40 sequences): single-process
   `rnngraph.fit_ridge`, and `rnngraph.scaleout.fit_ridge` on a LocalCluster with 1 and with 2
   worker processes (1 thread each; Dask sets their BLAS to 1 thread; the single process keeps
   the machine's BLAS threads); cluster start-up excluded, one warm-up fit excluded;
3. peak memory (max RSS) of each worker process after its fits, next to the data it held;
4. a path of 20 ridge values from one pass (`fit_ridge_path`) against 20 separate `fit_ridge`
   calls, single-process, over `--ridge-steps` steps;
5. batch inference throughput of an exported ESN (`--infer-units`) over a bag of ragged sequences
   with 1 and 2 workers
   (`rnngraph.scaleout.predict`), against one process running the same partitions in turn.
Timings are medians of `--repeats` runs after a warm-up on a small part of the data.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "samples"))

import rnngraph as rg  # noqa: E402
from rnngraph import scaleout  # noqa: E402
from rnngraph.train import fit_ridge_path  # noqa: E402


def median_seconds(run: Callable[[], Any], repeats: int,
                   warm_up: Callable[[], Any] | None = None) -> tuple[float, Any]:
    """Median seconds of `repeats` runs after one excluded warm-up (`warm_up`, or `run` itself)."""
    result = (warm_up or run)()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--sequences", type=int, default=40)
    parser.add_argument("--ridge-steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--infer-units", type=int, default=300, help="reservoir of the batch-inference model")
    args = parser.parse_args()
    import dask.bag as db
    from distributed import Client, LocalCluster
    from esn_dask import mackey_glass_batch

    washout = 100
    length = args.steps // args.sequences
    series = mackey_glass_batch(np.linspace(0.4, 1.6, args.sequences + 4), 300 + length + 1)[:, 300:] - 1.0
    pairs = [(s[:-1, None], s[1:, None]) for s in series[: args.sequences]]
    held = [(s[:-1, None], s[1:, None]) for s in series[args.sequences:]]
    cell = rg.ESN(args.units, outputs=1, density=args.density, spectral_radius=0.9, leak=0.8, bias_scaling=0.2,
                  reads=("input", "state"))
    u = rg.Input("u", features=1)
    model = rg.Model(u, {"y": rg.Recurrent(cell, name="esn")(u)})
    params = model.init(seed=0)
    steps = sum(len(p[0]) for p in pairs)
    data_mib = sum(p[0].nbytes + p[1].nbytes for p in pairs) / 2**20
    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"ESN N={args.units}, density {args.density}; {steps} steps in {args.sequences} sequences "
          f"({data_mib:.1f} MiB); washout {washout}; {os.cpu_count()} CPUs; single-process BLAS threads {threads}; "
          f"medians of {args.repeats} after a warm-up")

    inputs, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    single_s, single = median_seconds(
        lambda: fit_ridge_path(model, params, inputs, targets, ridges=[1e-6], washout=washout, progress=False),
        args.repeats, lambda: rg.fit_ridge(model, params, inputs[:2], targets[:2], washout=washout, progress=False))
    rows = [("single process (fit_ridge)", single_s)]
    # inference: the exported graph steps W densely, so a smaller reservoir keeps this part short
    small = rg.Model(u, {"y": rg.Recurrent(rg.ESN(args.infer_units, density=args.density * 10, leak=0.8,
                                                  reads=("input", "state")), name="esn")(u)})
    onnx = rg.export(small, small.init(seed=1)).SerializeToString()
    cuts = np.random.default_rng(0).integers(length // 4, length + 1, size=4 * args.sequences)  # ragged lengths
    infer = [pairs[i % len(pairs)][0][: cuts[i]].astype(np.float32) for i in range(len(cuts))]
    infer_partitions = 16
    memory: dict[int, list[float]] = {}
    inference_rows = []
    agreement = prediction_gap = 0.0
    # one-step predictions on a held-out sequence from either readout: what a weight difference changes
    from rnngraph.train import RidgeTrainer, harvest

    probe = RidgeTrainer(model, params, progress=False)
    held_states = harvest(cell, probe.p, held[0][0][None], held[0][1][None], np.zeros((1, args.units)),
                          np.zeros((1, 1)))[0][0]
    held_z = np.concatenate([held[0][0], held_states, np.ones((len(held_states), 1))], axis=1)
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
            bag = db.from_sequence(pairs, npartitions=2 * workers)  # each partition returns ~64 MB of sums
            seconds, fit = median_seconds(
                lambda bag=bag: scaleout.fit_ridge(model, params, bag, washout=washout, ridge=1e-6, client=client,
                                                   progress=False), args.repeats,
                lambda n=2 * workers: scaleout.fit_ridge(model, params, pairs[:n], washout=washout, client=client,
                                                         progress=False))  # warm-up: workers import rnngraph, get W
            rows.append((f"Dask, {workers} worker{'s' * (workers > 1)} (scaleout.fit_ridge)", seconds))
            agreement = max(agreement, float(np.abs(fit.solution - single.solution).max()
                                             / np.abs(single.solution).max()))
            ours, theirs = held_z @ fit.solution.T, held_z @ single.solution.T
            prediction_gap = max(prediction_gap, float(np.abs(ours - theirs).max() / np.abs(theirs).max()))
            memory[workers] = list(client.run(peak_rss_mib).values())
            bag_in = db.from_sequence(infer, npartitions=infer_partitions)
            inf_s, _ = median_seconds(lambda bag_in=bag_in: scaleout.predict(onnx, bag_in, client=client).compute(),
                                      args.repeats)
            inference_rows.append((f"Dask, {workers} worker{'s' * (workers > 1)}", inf_s))
    session = rg.runtime.Session(onnx, threads=1)
    from rnngraph.scaleout.inference import run_padded

    chunks = np.array_split(np.arange(len(infer)), infer_partitions)
    one_s, _ = median_seconds(lambda: [run_padded(session, [{"u": infer[i]} for i in c], {}) for c in chunks],
                              args.repeats)
    inference_rows.insert(0, ("one process, 1 onnxruntime thread", one_s))

    print(f"\ndistributed vs single-process readout: max relative difference of the weights {agreement:.1e}, "
          f"of the one-step predictions on a held-out sequence {prediction_gap:.1e} (BLAS threads: workers 1, "
          f"this process {threads}; run with OPENBLAS_NUM_THREADS=1 for bit-equal Gram products on both sides)")
    print(f"\n{'training over ' + str(steps) + ' steps':<48}{'seconds':>9}{'vs single':>11}")
    for name, seconds in rows:
        print(f"{name:<48}{seconds:>9.2f}{seconds / single_s:>10.2f}×")
    print("\npeak memory (max RSS) per worker process after the fits and inference, MiB:")
    for workers, values in memory.items():
        print(f"  {workers} worker{'s' * (workers > 1)}: " + ", ".join(f"{v:.0f}" for v in values)
              + f"  (training data {data_mib:.1f} MiB in all; Gram sums {(args.units + 2) ** 2 * 8 / 2**20:.0f} MiB)")

    ridges = list(np.logspace(-10, -1, 20))
    few = pairs[: max(1, args.ridge_steps // length)]  # whole sequences, so the washout costs what it does above
    few_in, few_out = [p[0] for p in few], [p[1] for p in few]
    held_in, held_out = [p[0] for p in held], [p[1] for p in held]
    path_s, path = median_seconds(lambda: fit_ridge_path(model, params, few_in, few_out, ridges=ridges,
                                                         washout=washout, validation=(held_in, held_out),
                                                         progress=False), args.repeats)
    separate_s, _ = median_seconds(lambda: [rg.fit_ridge(model, params, few_in, few_out, washout=washout, ridge=r,
                                                         progress=False) for r in ridges], args.repeats,
                                   lambda: None)  # the path above warmed the same code
    print(f"\n20 ridge values over {sum(len(p[0]) for p in few)} steps: one pass + one eigendecomposition "
          f"(with a {sum(len(p[0]) for p in held)}-step validation pass) {path_s:.2f} s; 20 separate fits "
          f"{separate_s:.2f} s ({separate_s / path_s:.1f}×); chosen ridge {path.ridge:.1e}")

    total = sum(len(s) for s in infer)
    print(f"\nbatch inference of an exported ESN (N={args.infer_units}), {len(infer)} ragged sequences, {total} steps, "
          f"{infer_partitions} partitions:")
    for name, seconds in inference_rows:
        print(f"  {name:<36}{seconds:>8.2f} s {total / seconds:>12.0f} steps/s {len(infer) / seconds:>8.1f} seq/s")


if __name__ == "__main__":
    main()
