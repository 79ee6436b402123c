"""Where ONNX's native RNN op and the Scan cross over, by batch and hidden size: the data behind `auto`'s If.

    .venv/bin/python benchmarks/native_crossover.py                        # H 16..128, B 1..32, T=100, ~1 min
    .venv/bin/python benchmarks/native_crossover.py --hidden 32 64 --batch 1 4 8 --unpadded

Model: ``Recurrent(RNN(H))`` over 16 input features, exported with ``lowering="native"`` and
``lowering="scan"``; each batch size is timed in interleaved rounds (rnngraph.bench.timing, 1
intra-op thread, warm-up dropped) and the median per-round ratio native/scan is printed (< 1: the
native op is faster). With lengths (the default) the inputs are ragged and the Scan blends its
state with the mask every step; `--unpadded` leaves lengths out. The last line per hidden size is
the largest batch where native/scan < 1, and `auto`'s limit for it (`rnngraph.compiler.cells.rnn`).

Measured on the 2-core development machine (shared; ratios within one run), T=100:

    padded    H=16: B*≈12   H=32: B*≈6   H=64: B*≈2   H=128: B*≈1     → batch·hidden ≈ 160
    unpadded  H=32: B*≈1–2  H=64: B*≈1   H=128: native slower at B=1  → batch·hidden ≈ 64
"""

from __future__ import annotations

import argparse

import rnngraph as rg
from rnngraph.bench.measure import exports, ort_runner
from rnngraph.bench.timing import Rounds, interleaved
from rnngraph.compiler.cells.rnn import native_batch_limit

INPUT = 16


def crossover(hidden: int, batches: list[int], padded: bool, time: int, rounds: Rounds) -> dict[int, float]:
    """native/scan per batch size."""
    x = rg.Input("x", features=INPUT, lengths="lengths" if padded else None)
    model = rg.Model(x, {"y": rg.Recurrent(rg.RNN(hidden))(x)}, name="rnn")
    params = model.init(0)
    distinct, _ = exports(model, params, ["native", "scan"])
    out = {}
    for batch in batches:
        feeds = model.example_inputs(batch, time, 0, ragged=padded)
        timings = interleaved({low: ort_runner(e.data, feeds) for low, e in distinct.items()}, rounds)
        out[batch] = timings.ratio("native", "scan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8, 16, 32])
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--unpadded", action="store_true")
    args = parser.parse_args()
    padded = not args.unpadded
    rounds = Rounds(warmup=1, min_rounds=7, max_rounds=15, budget_s=0.7)
    inputs = "ragged lengths" if padded else "unpadded"
    print(f"native/scan, RNN over {INPUT} features, T={args.time}, 1 thread, {inputs}")
    for hidden in args.hidden:
        ratios = crossover(hidden, args.batch, padded, args.time, rounds)
        print(f"H={hidden:<4}" + "  ".join(f"B={b}: {r:.2f}" for b, r in ratios.items()))
        faster = [b for b, r in ratios.items() if r < 1.0]
        limit = native_batch_limit(rg.RNN(hidden), padded)
        print(f"       native faster up to B={max(faster) if faster else 0}; auto's limit {limit}", flush=True)


if __name__ == "__main__":
    main()
