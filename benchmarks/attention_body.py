"""The attention decoder's loop body (issue 10, target 3): nodes per step and time against the native LSTM.

    .venv/bin/python benchmarks/attention_body.py              # shapes (a) and (c), 1 thread
    .venv/bin/python benchmarks/attention_body.py --profile    # also onnxruntime's per-operator profile

The suite's canonical attention model (benchmarks/cases.py: teacher-forced LSTM decoder, additive
attention, T source = T target steps, no padding) and ONNX's native LSTM of the same size, timed in
interleaved rounds (medians of per-round ratios), one intra-op thread. Also the decoder's arithmetic
per step against the LSTM's: attention reads all T memory steps at every step, so its work per step
grows with T (O(T²) per sequence) while an LSTM step's does not.
"""

from __future__ import annotations

import argparse
import sys

from cases import Shape, attention_decoder, feeds_for, recurrent

import rnngraph as rg
from rnngraph.bench.graphs import step_nodes
from rnngraph.bench.measure import Work, exports, ort_runner, time_contenders
from rnngraph.bench.profile import op_profile
from rnngraph.bench.timing import Rounds

SHAPES = (Shape("a", 1, 100, 64, 128), Shape("c", 1, 2000, 32, 64))


def madds(shape: Shape) -> tuple[int, int]:
    """Multiply-adds per step and row: (attention decoder, LSTM) — the decoder's attention part is O(T)."""
    h, i, t, vocab = shape.hidden, shape.input, shape.time, 100
    lstm = 4 * h * (i + h)
    attention = h * h + t * h + t * h  # query W·s, vᵀ tanh(keys + q) over T steps, α·memory over T steps
    decoder = 4 * h * (i + h + h) + attention + vocab * 2 * h
    return decoder, lstm


def measure(shape: Shape, rounds: Rounds, profile: bool) -> None:
    model = attention_decoder(shape.input, shape.hidden)
    data = exports(model, model.init(0), ["auto"])[0]["auto"].data
    bound = recurrent(rg.LSTM(shape.hidden), shape.input)
    native = exports(bound, bound.init(0), ["native"])[0]["native"].data
    runs = {"attention/ort": ort_runner(data, feeds_for(model, shape)),
            "lstm-native/ort": ort_runner(native, feeds_for(bound, shape))}
    work = Work(shape.batch * shape.time, dict.fromkeys(runs, 1), 1.0)
    timed = time_contenders(runs, rounds, work, [("attention/ort", "lstm-native/ort")])
    bodies = ", ".join(f"{b.op} {b.nodes} nodes ({', '.join(f'{k}×{v}' for k, v in b.ops.items())})"
                       for b in step_nodes(data))
    dec, lstm = madds(shape)
    ms = {k: v["median_ms"] for k, v in timed["contenders"].items()}
    print(f"{shape.describe()}: attention {ms['attention/ort']:.2f} ms, native LSTM {ms['lstm-native/ort']:.2f} ms, "
          f"ratio {timed['ratios']['attention/ort / lstm-native/ort']:.2f} "
          f"({timed['rounds']} rounds); multiply-adds per step {dec} vs {lstm} ({dec / lstm:.1f}×)\n  body: {bodies}")
    if profile:
        for op in op_profile(data, feeds_for(model, shape), 5)[:12]:
            print(f"    {op.op:<12} {op.us_per_run:9.1f} µs/run  {op.calls_per_run:7.0f} calls  "
                  f"{op.us_per_call:6.2f} µs/call")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    rounds = Rounds(warmup=2, min_rounds=9, max_rounds=25, budget_s=3.0)
    print("1 intra-op thread, 1 inter-op thread; medians of interleaved rounds")
    for shape in SHAPES:
        measure(shape, rounds, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
