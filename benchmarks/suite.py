"""The speed suite (`make bench`): canonical cells at three shapes, every sample, and the targets of issue 10.

    .venv/bin/python benchmarks/suite.py                    # full: 3–5 minutes on this 2-core machine
    .venv/bin/python benchmarks/suite.py --setting tiny     # seconds; what tests/test_bench.py runs
    .venv/bin/python benchmarks/suite.py --out DIR          # writes DIR/latest.md and DIR/latest.json

What is measured (see benchmarks/cases.py for the models and contenders):
- the canonical cells at the shapes (a) B=1 T=100 I=64 H=128, (b) B=32 T=100 I=128 H=256,
  (c) B=1 T=2000 I=32 H=64: each lowering in bare onnxruntime, `auto` through `Session`,
  PyTorch eager and the ``torch.onnx.export`` model in onnxruntime (when torch is installed;
  weights copied with `rnngraph.interop.to_pytorch`, outputs checked equal first), or the native
  LSTM of the same size as the lower bound for cells PyTorch lacks; `auto` with 2 intra-op
  threads at (b); the NumPy oracle up to T=100 (a Python loop in float64: up to 3 runs, capped at
  1.5 s; skipped at (c));
- Clockwork: the ladder and dense forms of its step, forced, at the batch and hidden sizes of target 4;
- every sample in samples/ at its own sizes, T=100, batch 1 and 16 (`rnngraph.bench.bench_model_file`);
- greedy decoding in the graph against Python loops over the decoder's step export (benchmarks/decoding.py,
  target 6: vocab 1000, hidden 128, 40 tokens).

How: one intra-op thread unless stated (`auto/ort@2t`), one inter-op thread, sequential
execution; interleaved rounds, rotating the order each round; warm-up rounds dropped; medians;
ratios are medians of per-round ratios within this run. Peak memory per configuration in a fresh
process (``ru_maxrss``; see `rnngraph.bench.memory`). GFLOP/s from multiply-adds counted from the
parameter shapes, against the single-core SGEMM peak measured at the start of the run.
"""

from __future__ import annotations

import argparse
import glob
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from cases import CELLS, PERIODS, Shape, feeds_for, measure_case, recurrent
from decoding import SIZES as DECODE_SIZES
from decoding import measure_decoding
from suite_report import write_results
from targets import evaluate

import rnngraph as rg
from rnngraph.bench.measure import Work, ort_runner, time_contenders
from rnngraph.bench.model_file import bench_model_file
from rnngraph.bench.timing import Peak, Rounds, sgemm_peak
from rnngraph.bench.torch_baseline import torch_available
from rnngraph.compiler.options import ExportOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Settings:
    name: str
    shapes: tuple[Shape, ...]
    threads_shape: str  # the shape where auto also runs with 2 intra-op threads (target 7)
    profile_shape: str  # the shape where the Scan exports are profiled by operator (target 3)
    rounds: Rounds
    samples: tuple[str, ...] | None  # file names in samples/; None: every sample
    sample_time: int
    sample_batches: tuple[int, ...]
    clockwork: tuple[tuple[int, int, float | None], ...]  # (batch, hidden, limit of ladder/dense or None)
    clockwork_time: int
    clockwork_input: int
    oracle_max_time: int
    oracle_cap_s: float
    memory: str  # "all", "first" (the first canonical case and sample only) or "none"
    peak_n: int


FULL = Settings(
    "full",
    shapes=(Shape("a", 1, 100, 64, 128), Shape("b", 32, 100, 128, 256), Shape("c", 1, 2000, 32, 64)),
    threads_shape="b", profile_shape="a", rounds=Rounds(warmup=2, min_rounds=9, max_rounds=25, budget_s=3.0),
    samples=None, sample_time=100, sample_batches=(1, 16),
    clockwork=((32, 512, 0.55), (1, 512, 0.70), (32, 256, None), (32, 384, None)), clockwork_time=100,
    clockwork_input=64, oracle_max_time=100, oracle_cap_s=1.5, memory="all", peak_n=1024)

TINY = Settings(
    "tiny",
    shapes=(Shape("a", 1, 6, 5, 8), Shape("b", 3, 6, 7, 12), Shape("c", 1, 20, 4, 8)),
    threads_shape="b", profile_shape="a", rounds=Rounds(warmup=1, min_rounds=2, max_rounds=3, budget_s=0.0),
    samples=("lstm.py", "deep.py"), sample_time=6, sample_batches=(1, 2),
    clockwork=((3, 16, 0.55), (1, 16, 0.70), (3, 12, None)), clockwork_time=8, clockwork_input=5,
    oracle_max_time=8, oracle_cap_s=1.0, memory="first", peak_n=256)

SETTINGS = {s.name: s for s in (FULL, TINY)}


#: the Clockwork forms the suite times, dense (the reference) first
CLOCKWORK_FORMS = ("dense", "ladder", "cycle")


def clockwork_form(form: str) -> ExportOptions:
    """The one place the suite forces a Clockwork form: the export options with that form."""
    return ExportOptions(clockwork_form=form)


def clockwork_forms(batch: int, hidden: int, limit: float | None, s: Settings, peak: Peak) -> dict[str, Any]:
    """Every form against dense (target 4), and which form the compiler chooses for a user who declares
    this batch size (`ExportOptions(batch=...)`)."""
    from rnngraph.bench.graphs import madds_per_step
    from rnngraph.exporters.onnx import build_model_proto

    model = recurrent(rg.Clockwork(hidden, periods=PERIODS), s.clockwork_input)
    params = model.init(0)
    shape = Shape("clockwork", batch, s.clockwork_time, s.clockwork_input, hidden)
    feeds = feeds_for(model, shape)
    protos = {form: build_model_proto(model, params, options=clockwork_form(form)) for form in CLOCKWORK_FORMS}
    data = {form: proto.SerializeToString() for form, proto in protos.items()}
    # the graphs compared (the metadata records the options, which differ)
    chosen_graph = build_model_proto(model, params, options=ExportOptions(batch=batch)).graph.SerializeToString()
    chosen = next((form for form, p in protos.items() if p.graph.SerializeToString() == chosen_graph), "another form")
    runs = {f"{form}/ort": ort_runner(d, feeds) for form, d in data.items()}
    work = Work(batch * s.clockwork_time, dict.fromkeys(runs, madds_per_step(model)), peak.gflops)
    timed = time_contenders(runs, s.rounds, work, [(f"{form}/ort", "dense/ort") for form in CLOCKWORK_FORMS[1:]])
    return {"batch": batch, "hidden": hidden, "time": s.clockwork_time, "limit": limit, "chosen": chosen, **timed}


def sample_files(s: Settings) -> list[str]:
    every = sorted(glob.glob(os.path.join(ROOT, "samples", "*.py")))
    return every if s.samples is None else [p for p in every if os.path.basename(p) in s.samples]


def samples(s: Settings, peak: Peak) -> Iterator[dict[str, Any]]:
    for i, path in enumerate(sample_files(s)):
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            result = bench_model_file(path, batches=s.sample_batches, time=s.sample_time, rounds=s.rounds,
                                      oracle_max_time=s.oracle_max_time, oracle_cap_s=s.oracle_cap_s,
                                      memory=s.memory == "all" or (s.memory == "first" and i == 0), peak=peak)
        except Exception as exc:  # noqa: BLE001 - a sample that fails is reported in the table; the rest still run
            log(f"sample {name} FAILED: {type(exc).__name__}: {exc}")
            yield {"name": name, "error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        yield {"name": name, **result}


#: progress lines (one per configuration measured) go to a terminal only: pipes and logs get the results alone
PROGRESS = {"on": sys.stderr.isatty()}


def log(message: str) -> None:
    if PROGRESS["on"]:
        print(message, file=sys.stderr, flush=True)


def run_suite(s: Settings) -> dict[str, Any]:
    start = time.perf_counter()
    peak = sgemm_peak(n=s.peak_n, threads=1)
    log(f"SGEMM peak {peak.gflops:.1f} GFLOP/s")
    cases: list[dict[str, Any]] = []
    for shape in s.shapes:
        for cell in CELLS:
            log(f"{cell} {shape.describe()}")
            memory = s.memory == "all" or (s.memory == "first" and not cases)
            cases.append(measure_case(cell, shape, s.rounds, peak.gflops, threads2=shape.name == s.threads_shape,
                                      oracle_max_time=s.oracle_max_time, oracle_cap_s=s.oracle_cap_s, memory=memory,
                                      profile=shape.name == s.profile_shape))
    clockwork: list[dict[str, Any]] = []
    for batch, hidden, limit in s.clockwork:
        log(f"clockwork forms B={batch} H={hidden}")
        clockwork.append(clockwork_forms(batch, hidden, limit, s, peak))
    log("greedy decoding: in-graph vs a Python loop over the step export")
    decoding = measure_decoding(DECODE_SIZES[s.name], s.rounds, peak.gflops)
    sample_results = []
    for result in samples(s, peak):
        log(f"sample {result['name']}")
        sample_results.append(result)
    torch = torch_available()
    threads = {"onnxruntime_intra_op": 1, "onnxruntime_inter_op": 1, "torch": 1,
               "two_threads": f"auto/ort@2t: the auto export with 2 intra-op threads at shape ({s.threads_shape})"}
    return {"setting": s.name, "settings": asdict(s), "rounds": s.rounds.describe(), "threads": threads, "torch": torch,
            "peak": asdict(peak), "cases": cases, "clockwork": clockwork, "samples": sample_results,
            "decoding": decoding, "targets": evaluate(cases, clockwork, sample_results, torch, decoding),
            "wall_s": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="full")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--quiet", action="store_true", help="no progress lines (there are none in a pipe either)")
    args = parser.parse_args(argv)
    PROGRESS["on"] = PROGRESS["on"] and not args.quiet
    command = shlex.join(["python", os.path.relpath(os.path.abspath(__file__), ROOT), *sys.argv[1:]])
    results = run_suite(SETTINGS[args.setting])
    md, js = write_results(results, args.out, command)
    log(f"wrote {md} and {js} in {results['wall_s']:.0f} s")
    with open(md) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())

