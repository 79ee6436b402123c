"""Peak memory of one configuration, measured in a fresh process.

    python -m rnngraph.bench.memory SPEC.json        # prints {"peak_mib": ..., "baseline_mib": ..., ...}

The parent writes the model (an .onnx file, or a PyTorch state dict) and the inputs
(.npz) to files and starts a new Python process, which imports what it needs, reads
the inputs, notes its peak resident set size (the baseline), then
creates the session (or module), runs it twice and notes the peak again. A fresh
process per configuration is what makes the number honest: a process that already
ran other models keeps their freed memory in its allocator and would under-report.

The peak is ``VmHWM`` from /proc/self/status (the high-water mark of this process's own
address space), not ``getrusage().ru_maxrss``: Linux carries ru_maxrss across fork and
exec, so a child of a large parent (the suite, with torch loaded) would report the
parent's peak as its own.

Reported: ``peak_mib`` (the whole process: interpreter, libraries, model, inputs,
outputs) and ``model_mib`` = peak − baseline (what creating and running this model
added: weights as the runtime holds them, its arena, intermediate values, outputs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Memory:
    peak_mib: float
    model_mib: float


def _peak_rss_mib() -> float:
    """Peak resident set of this process (its current address space) in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError("no VmHWM in /proc/self/status: peak memory is measured on Linux only")


def probe(spec: Mapping[str, object]) -> dict[str, float]:
    """Run one configuration described by `spec` (in this process) and report its peak memory."""
    threads = int(spec.get("threads", 1))  # type: ignore[call-overload]
    with np.load(str(spec["feeds"])) as data:
        feeds = {name: data[name] for name in data.files}
    if spec["kind"] == "onnx":
        import onnxruntime  # noqa: F401 - loaded before the baseline: libraries are not the model

        from rnngraph.bench.timing import ort_session

        baseline = _peak_rss_mib()
        session = ort_session(str(spec["model"]), threads)
        for _ in range(2):
            session.run(None, feeds)  # type: ignore[attr-defined]
    elif spec["kind"] == "torch":
        import torch

        from rnngraph.bench.torch_baseline import torch_module

        torch.set_num_threads(threads)
        with np.load(str(spec["model"])) as data:
            state = {name: data[name] for name in data.files}
        x = torch.from_numpy(feeds["x"])
        baseline = _peak_rss_mib()
        module = torch_module(str(spec["cell"]), int(spec["input"]), int(spec["hidden"]), state)  # type: ignore[call-overload]
        with torch.inference_mode():
            for _ in range(2):
                module(x)
    else:
        raise ValueError(f"unknown probe kind {spec['kind']!r}")
    peak = _peak_rss_mib()
    return {"peak_mib": peak, "baseline_mib": baseline, "model_mib": peak - baseline}


def measure(spec: Mapping[str, object], feeds: Mapping[str, np.ndarray], timeout_s: float = 120.0) -> Memory:
    """Write `feeds`, run `probe(spec)` in a fresh interpreter, return what it reports."""
    with tempfile.TemporaryDirectory(prefix="rnngraph-mem-") as tmp:
        feeds_path = os.path.join(tmp, "feeds.npz")
        np.savez(feeds_path, **dict(feeds))  # type: ignore[arg-type]
        spec_path = os.path.join(tmp, "spec.json")
        with open(spec_path, "w") as f:
            json.dump({**spec, "feeds": feeds_path}, f)
        done = subprocess.run([sys.executable, "-m", "rnngraph.bench.memory", spec_path], capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed ({spec.get('kind')}): {done.stderr.strip()[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return Memory(out["peak_mib"], out["model_mib"])


if __name__ == "__main__":
    with open(sys.argv[1]) as spec_file:
        print(json.dumps(probe(json.load(spec_file))))
