"""Precision table: for every sample, file size, max error vs the float64 oracle and onnxruntime speed
(batch 1 and 32, 1 thread, median of 7 runs after one warm-up) for float32, float16, int8 and float64 exports.

    .venv/bin/python benchmarks/precision_table.py [SAMPLE ...]

float64 is compiled in (`ExportOptions(dtype="float64")`) and takes the Scan lowering; where the float32
export runs native LSTM/GRU nodes, a float32 Scan export ("float32 scan") is measured too, so that the
float64 row compares with the same graph in float32. The copies of one sample are timed in interleaved
rounds (one call of each per round), so machine noise falls on all of them alike.
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

from rnngraph.exporters.onnx import export
from rnngraph.exporters.onnx.precision import quantize_int8, to_float16
from rnngraph.runtime import oracle
from rnngraph.verify import load_model_file

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "samples"
STEPS = 20


def session(path: pathlib.Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


#: onnxruntime's input types, as numpy's
NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def feeds_for(s: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The feeds `s` takes, in the types it takes (a float64 model reads float64)."""
    inputs = [*s.get_inputs(), *s.get_overridable_initializers()]
    return {i.name: np.asarray(feeds[i.name], NUMPY_TYPES[i.type]) for i in inputs if i.name in feeds}


def interleaved_ms(sessions: dict[str, ort.InferenceSession], feeds: dict[str, np.ndarray],
                   runs: int = 7) -> dict[str, float]:
    """Median ms per call of each session, timed in `runs` interleaved rounds after one warm-up call each."""
    prepared = {name: feeds_for(s, feeds) for name, s in sessions.items()}
    for name, s in sessions.items():
        s.run(None, prepared[name])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, prepared[name])
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def main(names: list[str]) -> None:
    print(f"| sample | dtype | bytes | max abs err | ms B=1 | ms B=32 |  (T={STEPS}, 1 thread, median of 7, "
          "interleaved)")
    print("|---|---|---:|---:|---:|---:|")
    ratios: dict[int, list[float]] = {1: [], 32: []}
    for path in sorted(SAMPLES.glob("*.py")):
        if names and path.stem not in names:
            continue
        mf = load_model_file(path)
        feeds = mf.example_inputs(2, 6, 0)
        ref = oracle.run(mf.model, mf.params, **feeds)
        speed = {b: mf.example_inputs(b, STEPS, 1) for b in (1, 32)}
        with tempfile.TemporaryDirectory() as tmp:
            src = pathlib.Path(tmp) / f"{path.stem}.onnx"
            proto = export(mf.model, mf.params, src)
            files = {"float32": src, "float16": to_float16(src, src.with_suffix(".f16.onnx")),
                     "int8": quantize_int8(src, src.with_suffix(".int8.onnx"))}
            paths = json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.paths"])
            if any(path_ != "scan" for path_ in paths.values()):  # native, or native below a batch size
                files["float32 scan"] = src.with_suffix(".scan.onnx")
                export(mf.model, mf.params, files["float32 scan"], lowering="scan")
            files["float64"] = src.with_suffix(".f64.onnx")
            export(mf.model, mf.params, files["float64"], dtype="float64")
            sessions = {dtype: session(f) for dtype, f in files.items()}
            ms = {b: interleaved_ms(sessions, speed[b]) for b in (1, 32)}
            for dtype, s in sessions.items():
                got = dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds_for(s, feeds)), strict=True))
                err = max(float(np.max(np.abs(got[k] - ref[k]))) for k in mf.model.outputs if got[k].dtype.kind == "f")
                print(f"| {path.stem} | {dtype} | {files[dtype].stat().st_size} | {err:.1e} | {ms[1][dtype]:.2f} | "
                      f"{ms[32][dtype]:.2f} |", flush=True)
            same_graph = "float32 scan" if "float32 scan" in files else "float32"
            for b in (1, 32):
                ratios[b].append(ms[b]["float64"] / ms[b][same_graph])
    for b in (1, 32):
        if ratios[b]:
            print(f"\nfloat64 / float32 (same Scan graph), B={b}: median {np.median(ratios[b]):.2f}x, "
                  f"range {min(ratios[b]):.2f}-{max(ratios[b]):.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
