"""Measure one configuration: its exports, their contenders timed side by side, and what each achieves.

A *contender* is one way of running the computation (the rnngraph export through
`Session` or through a bare ``onnxruntime.InferenceSession``, another lowering,
PyTorch, a reference model). `time_contenders` times them interleaved (see
`rnngraph.bench.timing`) and reports, per contender: median latency and quartiles,
throughput in row-steps per second (batch × time / latency), achieved GFLOP/s
(2 × multiply-adds per row-step × batch × time / latency, multiply-adds counted from
the parameter shapes by `madds_per_step`) and the fraction of the measured
single-core SGEMM peak; and the ratios asked for, each the median of per-round ratios.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.bench.memory import measure as measure_memory
from rnngraph.bench.timing import Rounds, Timings, capped, interleaved, ort_feeds, ort_session
from rnngraph.dsl.model import Model

LOWERINGS = ("auto", "scan", "native")


@dataclass(frozen=True)
class Export:
    """One lowering's export: the proto, its bytes, and which path each recurrent node took."""

    lowering: str
    proto: Any
    data: bytes
    paths: dict[str, str]


def exports(model: Model, params: Mapping[str, np.ndarray], lowerings: Sequence[str] = LOWERINGS
            ) -> tuple[dict[str, Export], dict[str, str]]:
    """Export `model` once per lowering; a lowering whose graph is byte-identical to an earlier one is not
    kept (timing the same graph twice measures only noise; the metadata, which records the lowering asked
    for, does not count). Returns the distinct exports and, for each
    dropped lowering, the lowering it is identical to."""
    import json

    from rnngraph.exporters.onnx import build_model_proto

    distinct: dict[str, Export] = {}
    same_as: dict[str, str] = {}
    for lowering in lowerings:
        proto = build_model_proto(model, params, lowering=lowering)
        data = proto.SerializeToString()
        # the graphs decide; the metadata names the lowering asked for and always differs
        twin = next((k for k, e in distinct.items() if e.proto.graph == proto.graph), None)
        if twin is not None:
            same_as[lowering] = twin
            continue
        meta = {p.key: p.value for p in proto.metadata_props}
        distinct[lowering] = Export(lowering, proto, data, json.loads(meta.get("rnngraph.paths", "{}")))
    return distinct, same_as


def ort_runner(data: bytes, feeds: Mapping[str, np.ndarray], threads: int = 1) -> Callable[[], object]:
    """A no-argument call of a bare onnxruntime session on `feeds` (cast once, outside the timing)."""
    session = ort_session(data, threads)
    cast = ort_feeds(session, feeds)
    return lambda: session.run(None, cast)  # type: ignore[attr-defined]


def session_runner(data: bytes, feeds: Mapping[str, np.ndarray], threads: int = 1) -> Callable[[], object]:
    """A no-argument call of `rnngraph.runtime.session.Session` (input checks included) on `feeds`."""
    from rnngraph.runtime.session import Session

    session = Session(data, threads=threads)
    return lambda: session.run(**feeds)


@dataclass(frozen=True)
class Work:
    """What one run computes: `row_steps` = batch × time, and multiply-adds per row-step per contender."""

    row_steps: int
    madds: Mapping[str, int]
    peak_gflops: float


def contender_stats(timings: Timings, name: str, work: Work) -> dict[str, float]:
    median = timings.median(name)
    q1, q3 = timings.quartiles(name)
    out = {"median_ms": 1e3 * median, "q1_ms": 1e3 * q1, "q3_ms": 1e3 * q3,
           "row_steps_per_s": work.row_steps / median}
    madds = work.madds.get(name)
    if madds:
        gflops = 2.0 * madds * work.row_steps / median / 1e9
        out |= {"gflops": gflops, "peak_fraction": gflops / work.peak_gflops}
    return out


def time_contenders(runs: Mapping[str, Callable[[], object]], rounds: Rounds, work: Work,
                    pairs: Sequence[tuple[str, str | Sequence[str]]] = (),
                    settle_s: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Time `runs` interleaved (`settle_s`: see `interleaved`); `pairs` are (a, b) ratios to report, b one
    name or several (then a over the fastest of them in each round). Ratios are keyed ``"a / b"`` and
    ``"a / min(b, c)"``."""
    timings = interleaved(runs, rounds, settle_s)
    ratios: dict[str, float] = {}
    for a, b in pairs:
        if isinstance(b, str):
            ratios[f"{a} / {b}"] = timings.ratio(a, b)
        else:
            ratios[f"{a} / min({', '.join(b)})"] = timings.ratio_to_best(a, list(b))
    return {"rounds": timings.rounds,
            "contenders": {name: contender_stats(timings, name, work) for name in runs},
            "ratios": ratios}


def oracle_time(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray],
                max_runs: int, cap_s: float) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The NumPy oracle (a Python loop over rows and steps, float64): median of up to `max_runs` runs,
    stopping once `cap_s` seconds have passed (at least one run; no warm-up). Returns the timing and the
    oracle's outputs (to check the export against)."""
    from rnngraph.runtime import oracle

    outputs: dict[str, np.ndarray] = {}
    times = capped(lambda: outputs.update(oracle.run(model, params, **feeds)), max_runs, cap_s)
    return {"median_ms": 1e3 * statistics.median(times), "runs": len(times)}, outputs


def onnx_memory(data: bytes, feeds: Mapping[str, np.ndarray], threads: int = 1) -> dict[str, float]:
    """Peak memory of creating a bare onnxruntime session on `data` and running it, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="rnngraph-bench-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        with open(path, "wb") as f:
            f.write(data)
        session = ort_session(data, threads)
        cast = ort_feeds(session, feeds)
        mem = measure_memory({"kind": "onnx", "model": path, "threads": threads}, cast)
    return {"peak_mib": mem.peak_mib, "model_mib": mem.model_mib}


def max_abs_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """Largest |a − b| over the outputs both have (float outputs only)."""
    diffs = [float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))))
             for k in a if k in b and np.issubdtype(np.asarray(a[k]).dtype, np.floating) and np.asarray(a[k]).size]
    return max(diffs, default=0.0)
