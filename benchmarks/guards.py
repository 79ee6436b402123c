"""What the in-graph guards cost: a native LSTM with and without the NaN rule and the empty-input If.

    python benchmarks/guards.py            # batch 1 and 32, hidden 64 and 128, 100 steps, 1 thread

Three exports of the same model (`auto` lowering: onnxruntime's native LSTM), timed in one run:

    guarded     what rnngraph exports: inputs padded to one row and step, lengths clamped,
                outputs cut to the real sizes, the NaN rule
    no_nan      the same without the NaN rule (rows marked NaN outside the op)
    unguarded   without any guard: no input padding, no lengths clamps, no output cut, no NaN
                rule (the export before the guards)

The variants are made by replacing the guard functions while exporting (`unittest.mock`),
so the rest of the graph is identical. Medians of 300 runs (the variants take turns) after 20 warm-up runs,
onnxruntime with 1 intra-op thread; padded input (ragged lengths).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from unittest import mock

import numpy as np
import onnxruntime as ort

import rnngraph as rg
from rnngraph import compiler
from rnngraph.compiler import guards, recurrent
from rnngraph.compiler.builder import GraphBuilder


def unguarded(g: GraphBuilder, model: rg.Model, device: str = "cpu") -> guards.Guards:
    """A prelude that guards nothing: the lowerings read the inputs as given."""
    return guards.Guards(g, model, prelude_end=len(g.nodes))


_run_path = recurrent.run_path


def without_nan_rule(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - run_path's signature
    """`recurrent.run_path` as if the input were known to hold no NaN: the bare native op, no `If`."""
    return _run_path(*args, **{**kwargs, "nan_free": True})


@contextlib.contextmanager
def variant(name: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        if name in ("no_nan", "unguarded"):
            stack.enter_context(mock.patch.object(recurrent, "run_path", without_nan_rule))
        if name == "unguarded":
            stack.enter_context(mock.patch.object(compiler, "prelude", unguarded))
        yield


def session(model: rg.Model, params: dict[str, np.ndarray], name: str) -> ort.InferenceSession:
    with variant(name):
        proto = rg.export(model, params)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def median_ms(sessions: dict[str, ort.InferenceSession], feeds: dict[str, np.ndarray], runs: int = 300,
              warmup: int = 20) -> dict[str, float]:
    """Median ms per variant; the variants take turns run by run, so load on the machine hits them alike."""
    for sess in sessions.values():
        for _ in range(warmup):
            sess.run(None, feeds)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):
        for name, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, feeds)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main() -> None:
    print(f"onnxruntime {ort.__version__}, 1 thread, time 100, input 32; median ms of 300 interleaved runs")
    print(f"{'hidden':>6} {'batch':>5} {'guarded':>9} {'no_nan':>9} {'unguarded':>9} {'nan rule':>9} "
          f"{'all guards':>10}")
    for hidden in (64, 128):
        x = rg.Input("x", features=32)
        model = rg.Model(x, {"y": rg.Recurrent(rg.LSTM(hidden))(x)})
        params = model.init(0)
        sessions = {name: session(model, params, name) for name in ("guarded", "no_nan", "unguarded")}
        for batch in (1, 32):
            rng = np.random.default_rng(0)
            feeds = {"x": rng.standard_normal((batch, 100, 32)).astype(np.float32),
                     "lengths": rng.integers(50, 101, size=batch).astype(np.int64)}
            ms = median_ms(sessions, feeds)
            print(f"{hidden:>6} {batch:>5} {ms['guarded']:>9.3f} {ms['no_nan']:>9.3f} {ms['unguarded']:>9.3f} "
                  f"{ms['guarded'] / ms['no_nan']:>8.3f}x {ms['guarded'] / ms['unguarded']:>9.3f}x")


if __name__ == "__main__":
    main()
