"""Where a run's time goes, by operator, from onnxruntime's own profiler.

onnxruntime writes one trace event per kernel execution (subgraph nodes, the
nodes of a Scan or Loop body, included, once per step). `op_profile` runs a model
a few times with profiling on and sums the kernel times per operator type:
microseconds per run, calls per run and microseconds per call — the numbers that
say whether a Scan body costs by its arithmetic or by its node count.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.bench.timing import ort_feeds


@dataclass(frozen=True)
class OpTime:
    op: str
    us_per_run: float
    calls_per_run: float

    @property
    def us_per_call(self) -> float:
        return self.us_per_run / max(self.calls_per_run, 1e-12)


def op_profile(model: bytes, feeds: Mapping[str, np.ndarray], runs: int = 3, threads: int = 1) -> list[OpTime]:
    """Kernel time per operator type over `runs` profiled runs (a first, warm-up run left out), slowest first."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="rnngraph-profile-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        cast = ort_feeds(session, feeds)
        for _ in range(runs + 1):
            session.run(None, cast)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warm_up_end = model_runs[0]["ts"] + model_runs[0]["dur"] if model_runs else float("-inf")
    totals: dict[str, list[float]] = {}
    for event in events:
        if (event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time")
                and event["ts"] > warm_up_end):
            entry = totals.setdefault(event.get("args", {}).get("op_name", "?"), [0.0, 0.0])
            entry[0] += float(event.get("dur", 0))
            entry[1] += 1
    ops = [OpTime(op, us / runs, calls / runs) for op, (us, calls) in totals.items()]
    return sorted(ops, key=lambda o: -o.us_per_run)
