"""Interleaved timing: every contender once per round, medians and per-round ratios.

A round runs each contender once; the order rotates by one place each round, so that
load from other processes on a shared machine (and cache effects of whoever ran just
before) fall on every contender alike. The first `warmup` rounds are run and dropped.
After that, rounds continue until `min_rounds` are kept and then until either
`max_rounds` are kept or `budget_s` seconds of kept rounds have passed.

A ratio a/b is the median of the per-round ratios t_a/t_b (both measured in the same
round, seconds apart), not the ratio of the medians: it cancels slow drifts in
machine load that a ratio of medians keeps.

The single-core SGEMM peak is measured here too: one large ``MatMul`` in onnxruntime
with one intra-op thread, 2·n³ flops per run, the fastest of several runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Rounds:
    """How many rounds to run: `warmup` dropped, then `min_rounds`..`max_rounds` kept within `budget_s`."""

    warmup: int = 2
    min_rounds: int = 5
    max_rounds: int = 15
    budget_s: float = 4.0

    def describe(self) -> str:
        return (f"{self.warmup} warm-up rounds dropped, then {self.min_rounds}–{self.max_rounds} rounds kept "
                f"(stopping after {self.budget_s:g} s of kept rounds)")


@dataclass
class Timings:
    """Seconds per run of each contender, one entry per kept round (all lists the same length)."""

    times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return len(next(iter(self.times.values()), []))

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def quartiles(self, name: str) -> tuple[float, float]:
        values = self.times[name]
        if len(values) < 2:
            return values[0], values[0]
        q = statistics.quantiles(values, n=4)
        return q[0], q[2]

    def ratio(self, a: str, b: str) -> float:
        """Median over rounds of t_a / t_b (> 1: `a` is slower)."""
        return statistics.median(x / y for x, y in zip(self.times[a], self.times[b], strict=True))

    def ratio_to_best(self, a: str, others: list[str]) -> float:
        """Median over rounds of t_a / min(t_o for o in others): how far `a` is from the faster of `others`."""
        per_round = zip(self.times[a], *(self.times[o] for o in others), strict=True)
        return statistics.median(row[0] / min(row[1:]) for row in per_round)


def interleaved(contenders: Mapping[str, Callable[[], object]], rounds: Rounds,
                settle_s: Mapping[str, float] | None = None) -> Timings:
    """Time each contender once per round, in rotating order; see the module docstring.

    `settle_s`: seconds to wait, untimed, after a contender ran. A session with several intra-op
    threads leaves its workers spin-waiting for a while after a run; on a machine with few cores they
    would take the CPU from whichever contender runs next (always the same one, with a rotating order).
    """
    settle_s = settle_s or {}
    names = list(contenders)
    out = Timings({name: [] for name in names})
    spent = 0.0
    r = 0
    while True:
        kept = r - rounds.warmup
        if kept >= rounds.max_rounds or (kept >= rounds.min_rounds and spent >= rounds.budget_s):
            return out
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            contenders[name]()
            elapsed = time.perf_counter() - start
            if kept >= 0:
                out.times[name].append(elapsed)
                spent += elapsed
            if name in settle_s:
                time.sleep(settle_s[name])
        r += 1


def capped(run: Callable[[], object], max_runs: int, cap_s: float) -> list[float]:
    """Seconds of up to `max_runs` runs, stopping once `cap_s` seconds have passed (at least one run)."""
    times: list[float] = []
    while len(times) < max_runs and sum(times) < cap_s:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def median_of(run: Callable[[], object], runs: int, warmup: int = 1) -> float:
    """Median seconds of `runs` runs of `run` after `warmup` dropped runs."""
    for _ in range(warmup):
        run()
    return statistics.median(capped(run, runs, float("inf")))


def ort_session(model: bytes | str, threads: int = 1, optimized_path: str | None = None) -> object:
    """A bare onnxruntime CPU session: `threads` intra-op threads, one inter-op thread, all graph optimizations.

    `optimized_path`: where onnxruntime writes the model after its optimizer (to count what it runs).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized_path is not None:
        options.optimized_model_filepath = optimized_path
        options.log_severity_level = 3  # not its warning that the file is tuned to this CPU: it is only read back
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def ort_feeds(session: object, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`feeds` cast to the element types the session declares (what a caller of bare onnxruntime must do)."""
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(float16)": np.float16, "tensor(bool)": np.bool_}
    declared = {i.name: types[i.type] for i in session.get_inputs()}  # type: ignore[attr-defined]
    # np.require, not np.ascontiguousarray: that one turns a count (a 0-d array) into shape (1,)
    return {name: np.require(feeds[name], declared[name], "C") for name in declared if name in feeds}


@dataclass(frozen=True)
class Peak:
    """The single-core SGEMM peak: GFLOP/s of an n×n by n×n float32 MatMul in onnxruntime."""

    gflops: float
    n: int
    threads: int
    runs: int


def sgemm_peak(n: int = 1024, threads: int = 1, runs: int = 11) -> Peak:
    """Measure `Peak`: the fastest of `runs` runs after two dropped ones (a peak is what the core can do, so the
    best run, not the median, which load from other processes on a shared machine drags down); B is an
    initializer, as weights are."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "B")
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "sgemm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])], [b])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 7
    onnx.checker.check_model(proto)
    session = ort_session(proto.SerializeToString(), threads)
    a = rng.standard_normal((n, n)).astype(np.float32)
    session.run(None, {"A": a})  # type: ignore[attr-defined]
    session.run(None, {"A": a})  # type: ignore[attr-defined]
    seconds = min(capped(lambda: session.run(None, {"A": a}), runs, float("inf")))  # type: ignore[attr-defined]
    return Peak(2.0 * n**3 / seconds / 1e9, n, threads, runs)
