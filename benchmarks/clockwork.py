"""Clockwork RNN step cost: each lowering form against the dense blend step.

    .venv/bin/python benchmarks/clockwork.py                 # batch 1/32 × H 128/256/512/1024, 1 thread
    .venv/bin/python benchmarks/clockwork.py --batch 1 --hidden 128 512 --threads 2

Model: Recurrent(Clockwork(H, periods=(1, 2, 4, 8))) over 16 input features,
exported with each form of the step forced (`dense`: every row recomputed and
blended with the clock mask; `ladder`: an If ladder computing only the firing
groups' rows; `cycle`: one Scan iteration per clock cycle, unrolled, each firing
group one Gemm on its own block of R, the slower groups' share kept); `chosen` is the form the cost model
picks for a user declaring that batch (`ExportOptions(batch=...)`), and its ratio.

Time per step: the median run time over T steps divided by T (the hoisted input
projection and clock are included; with 16 input features they are small next to
the recurrent H×H work). T is a whole number of cycles (a multiple of 8). Medians
over `--reps` runs after `--warmup` runs per form, which are excluded; the forms run
interleaved, alternating their order each round, so that load from other processes
on a shared machine falls on every form alike. The ratio columns are the medians of
the per-round ratios form/dense (for periods 1, 2, 4, 8 in equal groups, 0.47 of
the rows fire per step on average, and since ladder and cycle also skip the zero
blocks of R the ladder does 0.38 of the dense multiply-adds; the cycle, which keeps
each group's share from the slower groups until one of them fires, 0.20). "model says" is the cost
model's estimate of the chosen form's ratio at that batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import rnngraph as rg
from rnngraph.compiler.cells.clockwork import StepCosts, choose_form, estimated_costs
from rnngraph.compiler.options import ExportOptions
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime.session import Session

PERIODS = (1, 2, 4, 8)
FORMS = ("dense", "ladder", "cycle")
FEATURES = 16


def model_for(hidden: int) -> rg.Model:
    x = rg.Input("x", features=FEATURES, lengths=None)
    y = rg.Recurrent(rg.Clockwork(hidden, periods=PERIODS))(x)
    return rg.Model(x, {"y": y}, name=f"clockwork_{hidden}")


def steps_for(batch: int, hidden: int) -> int:
    """Enough steps that a run takes tens of milliseconds, whatever the size."""
    return int(np.clip(1.2e8 / (batch * hidden * hidden + 1e5), 64, 1024)) // 8 * 8


def session_for(model: rg.Model, params: dict[str, np.ndarray], form: str, threads: int) -> Session:
    return Session(build_model_proto(model, params, options=ExportOptions(clockwork_form=form)), threads=threads)


def timed_s(session: Session, feeds: dict[str, np.ndarray]) -> float:
    start = time.perf_counter()
    session.run(**feeds)
    return time.perf_counter() - start


def compare_forms(sessions: dict[str, Session], feeds: dict[str, np.ndarray], reps: int,
                  warmup: int) -> dict[str, list[float]]:
    """Run times per form, interleaved (the order alternates each round) so that load on a shared
    machine falls on every form alike."""
    for _ in range(warmup):
        for session in sessions.values():
            session.run(**feeds)
    times: dict[str, list[float]] = {form: [] for form in sessions}
    forms = list(sessions)
    for r in range(reps):
        for form in forms if r % 2 == 0 else forms[::-1]:
            times[form].append(timed_s(sessions[form], feeds))
    return times


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
          f"after {args.warmup} warm-up runs; periods {PERIODS}, {FEATURES} input features; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    heads = "".join(f"{form + ' µs/step':>16}" for form in FORMS)
    ratios = "".join(f"{form + '/dense':>14}" for form in FORMS[1:])
    print(f"{'batch':>5} {'H':>5} {'T':>5}{heads}{ratios} {'chosen':>7} {'chosen/dense':>13} {'model says':>11}")
    for batch in args.batch:
        for hidden in args.hidden:
            model = model_for(hidden)
            params = model.init(0)
            steps = steps_for(batch, hidden)
            sessions = {form: session_for(model, params, form, args.threads) for form in FORMS}
            feeds = {"x": np.random.default_rng(0).standard_normal((batch, steps, FEATURES)).astype(np.float32)}
            times = compare_forms(sessions, feeds, args.reps, args.warmup)
            per_step = {form: statistics.median(t) / steps * 1e6 for form, t in times.items()}
            ratio = {form: statistics.median(ft / dt for ft, dt in zip(times[form], times["dense"], strict=True))
                     for form in FORMS}
            cell = rg.Clockwork(hidden, periods=PERIODS)
            chosen = choose_form(cell, ExportOptions(batch=batch))  # the form a user declaring this batch gets
            est = estimated_costs(cell, StepCosts(batch=batch))
            cells = "".join(f"{per_step[form]:>16.2f}" for form in FORMS)
            cells += "".join(f"{ratio[form]:>14.2f}" for form in FORMS[1:])
            print(f"{batch:>5} {hidden:>5} {steps:>5}{cells} {chosen:>7} {ratio[chosen]:>13.2f} "
                  f"{est[chosen] / est['dense']:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
