"""The suite's results as latest.md (tables) and latest.json (everything measured)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from targets import summary, verdict

from rnngraph.bench.report import cell, machine, markdown_table, memory_cell, stats_cells

NOTES = """Notes on method:
- Times are medians over interleaved rounds (every contender once per round, the order rotating), warm-up rounds
  dropped; every ratio is the median of per-round ratios within this run.
- `auto/ort`, `scan/ort`, `native/ort`: the rnngraph export of that lowering in a bare `onnxruntime.InferenceSession`
  (a lowering that gives the same graph as another is timed once, under the other's name); `auto/session`: the
  `auto` export through `rnngraph.runtime.session.Session` (input checks included); `torch/eager`: `torch.nn`
  module with the same weights (inference mode); `torch/onnx`: its `torch.onnx.export` (TorchScript exporter)
  model in onnxruntime; `bound/lstm-native`: ONNX's native LSTM of the same input and hidden size.
- Threads: 1 intra-op and 1 inter-op thread everywhere (torch: `torch.set_num_threads(1)`), except `auto/ort@2t`.
- GFLOP/s: 2 × multiply-adds per row-step (every 2-D weight matrix once; embedding tables, biases, attention's
  per-position terms left out; Clockwork and ESN counted dense) × batch × time / median time; "of peak" divides by
  the single-core SGEMM peak measured at the start of this run.
- The NumPy oracle is a float64 Python loop over rows and steps: run only up to the time given in the settings
  (up to 3 runs, capped), never warmed up; its column is for scale, not a contender.
- Memory: "peak / model MiB" — peak resident set of a fresh process that creates and runs only this
  configuration, and what creating and running it added to the process after its imports.
"""


def write_results(results: Mapping[str, Any], out_dir: str, command: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    full = {"machine": machine(), "command": command, **results}
    md_path, json_path = os.path.join(out_dir, "latest.md"), os.path.join(out_dir, "latest.json")
    with open(json_path, "w") as f:
        json.dump(full, f, indent=1, default=str)
    with open(md_path, "w") as f:
        f.write(markdown(full))
    return md_path, json_path


def markdown(r: Mapping[str, Any]) -> str:
    m = r["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    head = [f"# rnngraph speed suite ({r['setting']}) — {m['date']}", "",
            f"- machine: {m['cpu']}, {m['cores']} cores visible, load average {m['load_average_1min']:.2f} at the end "
            f"(a shared machine: other processes ran alongside; ratios within a round are the robust numbers)",
            f"- versions: Python {m['python']}, {versions}" + ("" if r["torch"] else "; torch not installed: "
                                                                 "PyTorch columns skipped"),
            f"- command: `{r['command']}`; wall time {r['wall_s']:.0f} s",
            "- threads: 1 intra-op thread unless a column says @2t; rounds: " + r["rounds"],
            f"- single-core SGEMM peak: {r['peak']['gflops']:.1f} GFLOP/s (onnxruntime MatMul "
            f"{r['peak']['n']}×{r['peak']['n']}, 1 thread, fastest of {r['peak']['runs']} runs)", ""]
    return "\n".join(head + targets_section(r["targets"]) + cases_section(r["cases"]) + profile_section(r["cases"])
                     + clockwork_section(r) + decoding_section(r)
                     + samples_section(r["samples"]) + [NOTES])


def targets_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    per_target = summary(rows)
    lines = ["## Targets", "", markdown_table(["target", "verdict"], [[t, verdict(v)] for t, v in per_target.items()]),
             "", markdown_table(["target", "what", "where", "measured", "limit", "verdict", "note"],
                                [[x["target"], x["what"], x["where"], x["measured"], f"{x['sense']} {cell(x['limit'])}",
                                  verdict(x["met"]), x["note"]] for x in rows]), ""]
    return lines


def cases_section(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    shapes = list(dict.fromkeys(c["shape"]["name"] for c in cases))
    shape_text = "; ".join(next(_shape(c) for c in cases if c["shape"]["name"] == s) for s in shapes)
    rows = []
    for cell_name in dict.fromkeys(c["cell"] for c in cases):
        mine = {c["shape"]["name"]: c for c in cases if c["cell"] == cell_name}
        names = list(dict.fromkeys(n for c in mine.values() for n in c["contenders"]))
        for name in names:
            values: list[Any] = []
            for s in shapes:
                c = mine.get(s, {})
                stats = c.get("contenders", {}).get(name)
                rel = c.get("ratios", {}).get(f"{name} / {c.get('reference')}")
                values += [None if stats is None else stats["median_ms"],
                           1.0 if name == c.get("reference") and stats else rel]
            rows.append([cell_name, name, *values])
    headers = ["cell", "contender"] + [h for s in shapes for h in (f"({s}) ms", f"({s}) × ref")]
    detail = []
    for c in cases:
        for name, stats in c["contenders"].items():
            if "q1_ms" in stats:
                detail.append([c["cell"], c["shape"]["name"], name, *stats_cells(stats)[1:],
                               memory_cell(c["memory"].get(name))])
    checks = [f"{c['cell']} ({c['shape']['name']}): " + ", ".join(f"{k} {v:.1e}" for k, v in c["checks"].items())
              for c in cases if c["checks"]]
    return ["## Canonical cells", "", f"Shapes: {shape_text}. `× ref`: median per-round ratio to the reference "
            "(`torch/onnx` for cells PyTorch has, else `bound/lstm-native`); < 1 is faster.", "",
            markdown_table(headers, rows), "", "### Throughput, GFLOP/s, memory", "",
            markdown_table(["cell", "shape", "contender", "row-steps/s", "GFLOP/s", "of peak", "peak / model MiB"],
                           detail), "", "Outputs checked before timing (max |difference| against the rnngraph "
            "export): " + "; ".join(checks), ""]


def profile_section(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per profiled Scan export: its time per step, and the body's operators per step (calls × µs per call)."""
    rows = []
    for c in cases:
        prof = c.get("profile")
        if not prof:
            continue
        steps = c["shape"]["time"]
        scan_us = sum(o["us_per_run"] for o in prof["ops"] if o["op"] == "Scan")
        per_step = [o for o in prof["ops"] if o["op"] != "Scan" and o["calls_per_run"] >= steps]
        body = ", ".join(f"{o['op']} {o['calls_per_run'] / steps:.0f}×{o['us_per_call']:.2f}" for o in per_step)
        rows.append([c["cell"], c["shape"]["name"], prof["lowering"], scan_us / steps, body])
    if not rows:
        return []
    return ["### onnxruntime's profile of the Scan exports", "",
            "Kernel times from onnxruntime's profiler (which adds its own cost per node: read the proportions). "
            "Scan µs/step includes its body; body operators per step as calls × µs per call.", "",
            markdown_table(["cell", "shape", "lowering", "Scan µs/step", "body operators per step"], rows), ""]


def _shape(case: Mapping[str, Any]) -> str:
    s = case["shape"]
    return f"({s['name']}) batch {s['batch']}, T={s['time']}, input {s['input']}, hidden {s['hidden']}"


def clockwork_section(r: Mapping[str, Any]) -> list[str]:
    forms = [c.split("/")[0] for c in r["clockwork"][0]["contenders"]] if r["clockwork"] else []
    rows = [[e["batch"], e["hidden"], e["time"], *[e["contenders"][f"{f}/ort"]["median_ms"] for f in forms],
             *[e["ratios"][f"{f}/ort / dense/ort"] for f in forms if f != "dense"], e["chosen"]]
            for e in r["clockwork"]]
    heads = ["batch", "hidden", "T", *[f"{f} ms" for f in forms], *[f"{f}/dense" for f in forms if f != "dense"],
             "auto chose (batch declared)"]
    return ["## Clockwork step forms (periods 1, 2, 4, 8)", "", markdown_table(heads, rows), ""]


def decoding_section(r: Mapping[str, Any]) -> list[str]:
    """Target 6: the whole greedy model against Python loops over its step export (benchmarks/decoding.py)."""
    d = r.get("decoding")
    if d is None:
        return []
    size = d["size"]
    rows = [[name, stats["median_ms"]] for name, stats in d["contenders"].items()]
    return [f"## Greedy decoding: in the graph vs a Python loop over the step export (vocab {size['vocab']}, "
            f"hidden {size['hidden']}, {size['tokens']} tokens, batch {size['batch']}, source {size['source']})", "",
            markdown_table(["contender", "median ms"], rows), "",
            "Ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in d["ratios"].items()) + "; tokens equal: "
            + str(d["checks"]["tokens_equal"]), ""]


def samples_section(samples: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for s in samples:
        if "error" in s:
            rows.append([s["name"], *[None] * 11, s["error"]])
            continue
        g = s["graph"]
        loops = "; ".join(f"{low}: " + ", ".join(f"{b['op']} {b['nodes']}" for b in bodies)
                          for low, bodies in s["step_nodes"].items() if bodies) or "—"
        for run in s["runs"]:
            c = run["contenders"]
            best = next((v for k, v in run["ratios"].items() if k.startswith("auto/ort / min(")), None)
            oracle = c.get("oracle")
            rows.append([s["name"], run["batch"], run["time"], c["auto/ort"]["median_ms"],
                         run["ratios"]["auto/session / auto/ort"], best,
                         None if oracle is None else oracle["median_ms"], c["auto/ort"].get("gflops"),
                         memory_cell(run.get("memory", {}).get("auto/ort")), g["nodes"],
                         f"{100 * g['file_over_weights']:+.1f}%", f"{s['session_creation_ms']:.1f}", loops])
    headers = ["sample", "batch", "T", "auto/ort ms", "Session / ort", "auto / best lowering", "oracle ms",
               "GFLOP/s", "peak / model MiB", "nodes", "file vs weights", "session ms", "nodes per step"]
    return ["## Samples (own sizes)", "", markdown_table(headers, rows), ""]
