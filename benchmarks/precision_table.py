"""Precision table: for every sample, file size, max error vs the float64 oracle and onnxruntime speed
(batch 1 and 32, 1 thread, median of 7 runs after one warm-up) for float32, float16 and int8 exports.

    .venv/bin/python benchmarks/precision_table.py [SAMPLE ...]
"""

from __future__ import annotations

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


def feeds_for(s: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [i.name for i in [*s.get_inputs(), *s.get_overridable_initializers()]]
    return {n: feeds[n] for n in names if n in feeds}


def median_ms(s: ort.InferenceSession, feeds: dict[str, np.ndarray], runs: int = 7) -> float:
    f = feeds_for(s, feeds)
    s.run(None, f)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, f)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main(names: list[str]) -> None:
    print(f"| sample | dtype | bytes | max abs err | ms B=1 | ms B=32 |  (T={STEPS}, 1 thread, median of 7)")
    print("|---|---|---:|---:|---:|---:|")
    for path in sorted(SAMPLES.glob("*.py")):
        if names and path.stem not in names:
            continue
        mf = load_model_file(path)
        feeds = mf.example_inputs(2, 6, 0)
        ref = oracle.run(mf.model, mf.params, **feeds)
        speed = {b: mf.example_inputs(b, STEPS, 1) for b in (1, 32)}
        with tempfile.TemporaryDirectory() as tmp:
            src = pathlib.Path(tmp) / f"{path.stem}.onnx"
            export(mf.model, mf.params, src)
            files = {"float32": src, "float16": to_float16(src, src.with_suffix(".f16.onnx")),
                     "int8": quantize_int8(src, src.with_suffix(".int8.onnx"))}
            for dtype, f in files.items():
                s = session(f)
                got = dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds_for(s, feeds)), strict=True))
                err = max(float(np.max(np.abs(got[k] - ref[k]))) for k in mf.model.outputs if got[k].dtype.kind == "f")
                ms = [median_ms(s, speed[b]) for b in (1, 32)]
                print(f"| {path.stem} | {dtype} | {f.stat().st_size} | {err:.1e} | {ms[0]:.2f} | {ms[1]:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
