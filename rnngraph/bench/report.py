"""Where a benchmark ran, and its results as Markdown tables."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Date, CPU, cores, load and library versions, for the head of a results file."""
    import numpy
    import onnx
    import onnxruntime

    from rnngraph import __version__
    from rnngraph.bench.torch_baseline import torch_version

    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu_model(), "cores": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
            "python": platform.python_version(),
            "versions": {"rnngraph": __version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
                         "numpy": numpy.__version__, "torch": torch_version()}}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def stats_cells(stats: Mapping[str, Any] | None) -> list[Any]:
    """median ms, row-steps/s, GFLOP/s, % of peak — or dashes."""
    if not stats:
        return [None] * 4
    fraction = stats.get("peak_fraction")
    return [stats["median_ms"], stats.get("row_steps_per_s"), stats.get("gflops"),
            None if fraction is None else f"{100 * fraction:.1f}%"]


def memory_cell(mem: Mapping[str, float] | None) -> str | None:
    """``peak / added`` MiB of a fresh process (see `rnngraph.bench.memory`)."""
    return None if mem is None else f"{mem['peak_mib']:.0f} / {mem['model_mib']:.1f}"


def model_file_markdown(result: Mapping[str, Any]) -> str:
    """One model file's results (`bench_model_file`): a timing table and a graph line."""
    rows = []
    for run in result["runs"]:
        for name, stats in run["contenders"].items():
            mem = run.get("memory", {}).get(name)
            timing = stats_cells(stats) if "q1_ms" in stats else [stats["median_ms"], None, None, None]
            rows.append([run["batch"], run["time"], name, *timing, memory_cell(mem)])
    text = markdown_table(["batch", "time", "contender", "median ms", "row-steps/s", "GFLOP/s", "of peak",
                           "peak / model MiB"], rows)
    ratios = [f"batch {run['batch']}: " + ", ".join(f"{k} = {v:.2f}" for k, v in run["ratios"].items())
              for run in result["runs"]]
    g = result["graph"]
    bodies = "; ".join(f"{low}: " + ", ".join(f"{b['op']} {b['nodes']} nodes" for b in found)
                       for low, found in result["step_nodes"].items() if found) or "no loops"
    same = ", ".join(f"{k} = {v}" for k, v in result["same_as"].items())
    profiles = [f"profile, {low}, batch {run['batch']} (µs per run over calls): "
                + ", ".join(f"{o['op']} {o['us_per_run']:.0f}/{o['calls_per_run']:.0f}" for o in ops[:8])
                for run in result["runs"] for low, ops in run.get("profile", {}).items()]
    return "\n".join([text, "", "ratios (medians of per-round ratios): " + "; ".join(ratios),
                      f"graph: {g['nodes']} nodes ({g['transposes']} Transpose), {g['file_bytes']} bytes for "
                      f"{g['weight_bytes']} weight bytes (+{100 * g['file_over_weights']:.1f}%), time axis "
                      f"{'symbolic' if g['symbolic_time'] else 'FIXED'}; session creation "
                      f"{result['session_creation_ms']:.1f} ms; per step after onnxruntime's optimizer: {bodies}"
                      + (f"; identical graphs: {same}" if same else ""),
                      f"SGEMM peak {result['peak']['gflops']:.1f} GFLOP/s (MatMul {result['peak']['n']}², "
                      f"1 thread); multiply-adds per row-step {result['madds_per_row_step']} (from parameter shapes)",
                      *profiles])
