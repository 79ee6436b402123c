"""`rnngraph bench MODEL.py`: time a user's model file the way the suite times the samples.

    python -m rnngraph.bench MODEL.py --batch 1 16 --time 100 --json out.json

For each batch size: the export of every distinct lowering (``auto``, and ``scan`` /
``native`` where they give another graph) in a bare onnxruntime session, ``auto``
through `rnngraph.runtime.session.Session` too, interleaved rounds (see
`rnngraph.bench.timing`); the NumPy oracle (capped: a Python loop, run only up to
``--oracle-max-time`` steps); peak memory in a fresh process; achieved GFLOP/s against
the SGEMM peak measured in the same run. Once per model: graph size, file size against
the weight bytes, session creation time, and the nodes per Scan/Loop step after
onnxruntime's optimizer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rnngraph.bench.graphs import graph_stats, madds_per_step, session_creation_s, step_nodes
from rnngraph.bench.measure import (
    Work,
    exports,
    max_abs_difference,
    onnx_memory,
    oracle_time,
    ort_runner,
    session_runner,
    time_contenders,
)
from rnngraph.bench.profile import op_profile
from rnngraph.bench.report import cpu_model, model_file_markdown
from rnngraph.bench.timing import Peak, Rounds, sgemm_peak


def bench_model_file(path: str | os.PathLike[str], *, batches: Sequence[int] = (1, 16), time: int = 100,
                     threads: int = 1, rounds: Rounds | None = None, oracle_max_time: int = 100,
                     oracle_cap_s: float = 2.0, memory: bool = True, peak: Peak | None = None,
                     seed: int = 0, profile: bool = False) -> dict[str, Any]:
    """Benchmark the model file at `path` (a Python file defining `model`, as `rnngraph verify` reads).

    With `profile`, also onnxruntime's per-operator profile of each distinct lowering at the first batch size.
    """
    from rnngraph.verify import load_model_file

    rounds = rounds or Rounds()
    mf = load_model_file(path, seed)
    distinct, same_as = exports(mf.model, mf.params)
    auto = distinct["auto"]
    stats = graph_stats(mf.model, auto.proto, mf.params)
    with tempfile.TemporaryDirectory(prefix="rnngraph-bench-") as tmp:
        file = os.path.join(tmp, "model.onnx")
        with open(file, "wb") as f:
            f.write(auto.data)
        creation_s = session_creation_s(file)
    peak = peak or sgemm_peak(threads=1)
    madds = madds_per_step(mf.model)
    runs = []
    for batch in batches:
        feeds = mf.example_inputs(batch, time, seed)
        contenders = {"auto/session": session_runner(auto.data, feeds, threads)}
        contenders |= {f"{low}/ort": ort_runner(e.data, feeds, threads) for low, e in distinct.items()}
        pairs: list[tuple[str, str | Sequence[str]]] = [("auto/session", "auto/ort")]
        if len(distinct) > 1:
            pairs.append(("auto/ort", [f"{low}/ort" for low in distinct]))
        work = Work(batch * time, dict.fromkeys(contenders, madds), peak.gflops)
        timed = time_contenders(contenders, rounds, work, pairs)
        if time <= oracle_max_time:
            oracle, reference = oracle_time(mf.model, mf.params, feeds, 3, oracle_cap_s)
            timed["contenders"]["oracle"] = oracle
            timed["oracle_max_abs"] = max_abs_difference(contenders["auto/session"](), reference)  # type: ignore[arg-type]
        else:
            timed["oracle_skipped"] = f"time {time} > {oracle_max_time}: the oracle is a Python loop"
        if memory:
            timed["memory"] = {"auto/ort": onnx_memory(auto.data, feeds, threads)}
        if profile and batch == batches[0]:
            timed["profile"] = {low: [asdict(o) | {"us_per_call": o.us_per_call} for o in op_profile(e.data, feeds)]
                                for low, e in distinct.items()}
        runs.append({"batch": batch, "time": time, **timed})
    return {"model": mf.model.name, "path": os.fspath(path), "threads": threads, "rounds": rounds.describe(),
            "paths": {low: e.paths for low, e in distinct.items()}, "same_as": same_as,
            "graph": asdict(stats) | {"file_over_weights": stats.file_over_weights},
            "session_creation_ms": 1e3 * creation_s,
            "step_nodes": {low: [asdict(b) for b in step_nodes(e.data)] for low, e in distinct.items()},
            "madds_per_row_step": madds, "peak": asdict(peak), "runs": runs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnngraph bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a Python file that defines `model` (and optionally `params`, `feeds`)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--rounds", type=int, default=15, help="most timed rounds per batch size (default 15)")
    parser.add_argument("--oracle-max-time", type=int, default=100, help="run the oracle only up to this time")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--profile", action="store_true", help="onnxruntime's per-operator profile (first batch)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    from rnngraph.errors import RnnGraphError

    if min(args.batch) < 1 or args.time < 1 or args.threads < 1 or args.rounds < 1:
        parser.error("--batch, --time, --threads and --rounds must be at least 1")
    try:
        result = bench_model_file(args.model, batches=args.batch, time=args.time, threads=args.threads,
                                  rounds=Rounds(max_rounds=args.rounds, min_rounds=min(5, args.rounds)),
                                  oracle_max_time=args.oracle_max_time, memory=not args.no_memory,
                                  profile=args.profile)
    except RnnGraphError as exc:
        print(f"rnngraph bench: error: {exc}", file=sys.stderr)
        return 2
    print(f"# {result['model']} ({args.model}); {cpu_model()}, "
          f"{os.cpu_count()} CPUs, intra-op threads {args.threads}; {result['rounds']}\n")
    print(model_file_markdown(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0
