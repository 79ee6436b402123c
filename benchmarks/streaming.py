"""Streaming cost: a 100-frame stream fed in chunks of 1, 10 and 100 frames through the chunk model
(`StreamingSession`), against one whole-sequence run of the ordinary export (`Session`); both take the auto
lowering (ONNX's native GRU).

    .venv/bin/python benchmarks/streaming.py                  # samples/streaming_keyword.py, batch 1 and 32, 1 thread
    .venv/bin/python benchmarks/streaming.py --threads 2 --reps 50

Time: for the whole 100 frames (every chunk call of the stream, Python overhead of `Streams.feed`
included), the median over `--reps` rounds after `--warmup` rounds, which are excluded. Each round runs
every variant once, in alternating order, so load from other processes falls on all alike. The ratio is
the median of the per-round ratios variant / whole-sequence run.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import time
from collections.abc import Callable

import numpy as np

import rnngraph as rg
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import Session, StreamingSession
from rnngraph.verify import load_model_file

FRAMES = 100
SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "samples" / "streaming_keyword.py"


def variants(batch: int, threads: int) -> dict[str, Callable[[], object]]:
    mf = load_model_file(SAMPLE)
    audio = np.random.default_rng(0).normal(size=(batch, FRAMES, 13)).astype(np.float32)
    whole = Session(build_model_proto(mf.model, mf.params), threads=threads)
    chunked = StreamingSession(build_model_proto(mf.model, mf.params, options=rg.ExportOptions(streaming=True)),
                               threads=threads)

    def stream(size: int) -> Callable[[], object]:
        def run() -> object:
            streams = chunked.open(batch)
            return [streams.feed(frames=audio[:, t:t + size]) for t in range(0, FRAMES, size)]
        return run

    return {"whole": lambda: whole.run(frames=audio), **{f"chunks of {n}": stream(n) for n in (1, 10, FRAMES)}}


def measure(batch: int, threads: int, reps: int, warmup: int) -> None:
    runs = variants(batch, threads)
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(warmup + reps):
        for name in names if round_ % 2 == 0 else names[::-1]:
            begin = time.perf_counter()
            runs[name]()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - begin)
    base = times["whole"]
    print(f"batch {batch}, {threads} thread(s), {FRAMES} frames, median of {reps}:")
    for name in names:
        ratio = statistics.median(t / b for t, b in zip(times[name], base, strict=True))
        print(f"  {name:<14} {statistics.median(times[name]) * 1e3:8.2f} ms   ×{ratio:6.2f}"
              f"   {statistics.median(times[name]) * 1e6 / FRAMES:7.1f} µs/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    for batch in args.batch:
        measure(batch, args.threads, args.reps, args.warmup)


if __name__ == "__main__":
    main()
