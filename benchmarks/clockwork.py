"""Clockwork RNN step cost: each lowering form against the dense blend step.

    .venv/bin/python benchmarks/clockwork.py                 # batch 1/32 × H 128/256/512/1024, 1 thread
    .venv/bin/python benchmarks/clockwork.py --batch 1 --hidden 128 512 --threads 2

Model: Recurrent(Clockwork(H, periods=(1, 2, 4, 8))) over 16 input features,
exported with each form of the step forced (`dense`: every row recomputed and
blended with the clock mask; `ladder`: an If ladder computing only the active
rows), and with the form the cost model chooses (`chosen`).

Time per step: the model runs at T and 2T steps; per-step time is the difference
of the medians divided by T, so the hoisted work (input projection, clock) and
the session's fixed cost drop out. Medians over `--reps` runs after `--warmup`
runs excluded. The ratios are per-step time over the dense step's (the ideal for
periods 1, 2, 4, 8 with equal groups is 0.47, the mean fraction of rows active).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.compiler.cells.clockwork import choose_form, estimated_costs, forced_form
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime.session import Session

PERIODS = (1, 2, 4, 8)
FEATURES = 16


def model_for(hidden: int) -> rg.Model:
    x = rg.Input("x", features=FEATURES, lengths=None)
    y = rg.Recurrent(rg.Clockwork(hidden, periods=PERIODS))(x)
    return rg.Model(x, {"y": y}, name=f"clockwork_{hidden}")


def median_run_s(session: Session, feeds: dict[str, np.ndarray], reps: int, warmup: int) -> float:
    for _ in range(warmup):
        session.run(**feeds)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        session.run(**feeds)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def steps_for(batch: int, hidden: int) -> int:
    """Enough steps that a run takes tens of milliseconds, whatever the size."""
    madds = batch * hidden * hidden
    return int(np.clip(4e8 / max(madds, 1) / 50, 64, 1024)) // 8 * 8


def per_step_us(model: rg.Model, params: dict[str, np.ndarray], form: str | None, batch: int, steps: int,
                threads: int, reps: int, warmup: int) -> tuple[float, int]:
    with forced_form(form):
        proto = build_model_proto(model, params)
    session = Session(proto, threads=threads)
    rng = np.random.default_rng(0)
    short = {"x": rng.standard_normal((batch, steps, FEATURES)).astype(np.float32)}
    long = {"x": rng.standard_normal((batch, 2 * steps, FEATURES)).astype(np.float32)}
    t_short = median_run_s(session, short, reps, warmup)
    t_long = median_run_s(session, long, reps, warmup)
    nodes = sum(op_histogram(proto.graph).values())
    return (t_long - t_short) / steps * 1e6, nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import onnxruntime

    print(f"# onnxruntime {onnxruntime.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, intra-op threads {args.threads}, medians of {args.reps} runs "
          f"after {args.warmup} warm-up runs; periods {PERIODS}, {FEATURES} input features")
    print(f"{'batch':>5} {'H':>5} {'T':>5} {'dense µs/step':>14} {'ladder µs/step':>15} {'ladder/dense':>13} "
          f"{'chosen':>7} {'chosen/dense':>13} {'model says':>11}")
    for batch in args.batch:
        for hidden in args.hidden:
            model = model_for(hidden)
            params = model.init(0)
            steps = steps_for(batch, hidden)
            dense, _ = per_step_us(model, params, "dense", batch, steps, args.threads, args.reps, args.warmup)
            ladder, _ = per_step_us(model, params, "ladder", batch, steps, args.threads, args.reps, args.warmup)
            cell = rg.Clockwork(hidden, periods=PERIODS)
            chosen = choose_form(cell)
            chosen_us = {"dense": dense, "ladder": ladder}[chosen]
            est = estimated_costs(cell)
            print(f"{batch:>5} {hidden:>5} {steps:>5} {dense:>14.2f} {ladder:>15.2f} {ladder / dense:>13.2f} "
                  f"{chosen:>7} {chosen_us / dense:>13.2f} {est['ladder'] / est['dense']:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
