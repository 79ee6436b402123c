"""Native ONNX op vs Scan body, per cell: what `auto` lowering should pick.

    .venv/bin/python benchmarks/lowering.py                      # every cell, batch 1/32 × H 64/128, T=100, 1 thread
    .venv/bin/python benchmarks/lowering.py --cells lstm gru_lbr --batch 1 --hidden 128 --threads 2

Model: one ``Recurrent(cell)`` over H input features, no padding input, T steps
(default 100), exported twice: ``lowering="native"`` (ONNX's own RNN/LSTM/GRU op)
and ``lowering="scan"`` (rnngraph's hoisted Scan body). Each round runs both
sessions once, alternating which goes first, so that load from other processes on
a shared machine falls on both alike; `--warmup` rounds are excluded, then the
medians over `--reps` rounds are printed with the median of the per-round ratios
scan/native (> 1: the native op is faster). onnxruntime's intra-op thread count is
`--threads` (default 1, the number a latency-bound service would use per stream).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import onnxruntime as ort

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.compiler.recurrent import choose_path
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime.session import Session

CELLS = {
    "rnn": lambda h: rg.RNN(h),
    "lstm": lambda h: rg.LSTM(h),
    "lstm_peephole": lambda h: rg.LSTM(h, peephole=True),
    "lstm_coupled": lambda h: rg.LSTM(h, coupled=True),
    "lstm_peephole_coupled": lambda h: rg.LSTM(h, peephole=True, coupled=True),
    "gru": lambda h: rg.GRU(h, linear_before_reset=False),
    "gru_lbr": lambda h: rg.GRU(h, linear_before_reset=True),
}


def sessions(cell_name: str, hidden: int, threads: int) -> tuple[dict[str, Session], dict[str, int], str]:
    cell = CELLS[cell_name](hidden)
    x = rg.Input("x", features=hidden, lengths=None)
    model = rg.Model(x, {"y": rg.Recurrent(cell)(x)}, name=cell_name)
    params = model.init(0)
    out, nodes = {}, {}
    for path in ("native", "scan"):
        proto = build_model_proto(model, params, lowering=path)
        out[path] = Session(proto, threads=threads)
        nodes[path] = sum(op_histogram(proto.graph).values())
    return out, nodes, choose_path("auto", cell)


def timed_s(session: Session, feeds: dict[str, np.ndarray]) -> float:
    start = time.perf_counter()
    session.run(**feeds)
    return time.perf_counter() - start


def measure(cell_name: str, batch: int, hidden: int, steps: int, reps: int, warmup: int,
            threads: int) -> dict[str, float | str]:
    runs, _, auto = sessions(cell_name, hidden, threads)
    feeds = {"x": np.random.default_rng(0).standard_normal((batch, steps, hidden)).astype(np.float32)}
    times: dict[str, list[float]] = {"native": [], "scan": []}
    ratios = []
    for round_ in range(warmup + reps):
        order = ("native", "scan") if round_ % 2 == 0 else ("scan", "native")
        t = {path: timed_s(runs[path], feeds) for path in order}
        if round_ >= warmup:
            for path in t:
                times[path].append(t[path])
            ratios.append(t["scan"] / t["native"])
    return {"native_ms": 1e3 * statistics.median(times["native"]), "scan_ms": 1e3 * statistics.median(times["scan"]),
            "ratio": statistics.median(ratios), "auto": auto}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--hidden", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    print(f"onnxruntime {ort.__version__} on {platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"intra-op threads {args.threads}; T={args.time}, median of {args.reps} rounds after {args.warmup} warm-up")
    print(f"{'cell':<22} {'batch':>5} {'hidden':>6} {'native ms':>10} {'scan ms':>9} {'scan/native':>11}  auto")
    for cell_name in args.cells:
        for batch in args.batch:
            for hidden in args.hidden:
                r = measure(cell_name, batch, hidden, args.time, args.reps, args.warmup, args.threads)
                print(f"{cell_name:<22} {batch:>5} {hidden:>6} {r['native_ms']:>10.3f} {r['scan_ms']:>9.3f} "
                      f"{r['ratio']:>11.2f}  {r['auto']}", flush=True)


if __name__ == "__main__":
    main()
