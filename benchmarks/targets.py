"""The targets of the speed work (issue 10), each evaluated from one run of the suite.

Every row is one measured ratio (or count) against its limit, with a verdict: met,
NOT met, or not measurable (with the reason). All ratios are medians of per-round
ratios of contenders timed in the same rounds (see `rnngraph.bench.timing`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

#: cells of the suite whose Scan body target 3 holds to the native LSTM (the LSTM forced to Scan is the yardstick)
SCAN_CELLS = ("clockwork", "esn_leaky", "esn_feedback", "attention", "lstm_peephole")
#: cells with a native onnxruntime op and a torch.nn counterpart (target 1)
NATIVE_CELLS = ("lstm", "gru", "rnn")
SENSES: dict[str, Callable[[float, float], bool]] = {"≤": operator.le, "<": operator.lt, "≥": operator.ge}


def row(target: int, what: str, where: str, measured: float | str | None, limit: float | str | None,
        sense: str = "≤", note: str = "") -> dict[str, Any]:
    met: bool | None
    if measured is None or limit is None:
        met = None
    elif isinstance(measured, str) or isinstance(limit, str):
        met, sense = measured == limit, "="
    else:
        met = SENSES[sense](measured, limit)
    return {"target": target, "what": what, "where": where, "measured": measured, "limit": limit, "sense": sense,
            "met": met, "note": note}


def lowering_name(case: Mapping[str, Any], lowering: str) -> str:
    """The contender that times `lowering`'s graph (a lowering identical to another is timed under that name)."""
    return f"{case['same_as'].get(lowering, lowering)}/ort"


def ratio(case: Mapping[str, Any], key: str) -> float | None:
    return case.get("ratios", {}).get(key)


def by_cell(cases: Sequence[Mapping[str, Any]], cell: str) -> Iterator[Mapping[str, Any]]:
    return (c for c in cases if c["cell"] == cell)


def target1(cases: Sequence[Mapping[str, Any]], torch: bool) -> list[dict[str, Any]]:
    rows = []
    why = "" if torch else "torch is not installed: no PyTorch baselines"
    for cell in NATIVE_CELLS:
        for case in by_cell(cases, cell):
            shape = case["shape"]
            where = f"{cell} ({shape['name']})"
            rows.append(row(1, "export in bare onnxruntime / torch.onnx.export model", where,
                            ratio(case, "auto/ort / torch/onnx"), 1.05, note=why))
            rows.append(row(1, "through Session / torch.onnx.export model", where,
                            ratio(case, "auto/session / torch/onnx"), 1.05, note=why))
            if shape["name"] == "a":
                overhead = ratio(case, "auto/session / auto/ort")
                rows.append(row(1, "Session input checks: Session / bare − 1", where,
                                None if overhead is None else overhead - 1.0, 0.05, "<"))
            if shape["batch"] == 1:
                rows.append(row(1, "through Session / PyTorch eager (batch 1)", where,
                                ratio(case, "auto/session / torch/eager"), 0.75, note=why))
    return rows


def target2(cases: Sequence[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        key = next((k for k in case["ratios"] if k.startswith("auto/ort / min(")), None)
        if key is not None:
            rows.append(row(2, "auto / the faster lowering", f"{case['cell']} ({case['shape']['name']})",
                            case["ratios"][key], 1.05, note=_paths_note(case)))
    for sample in samples:
        for run in sample.get("runs", []):
            key = next((k for k in run["ratios"] if k.startswith("auto/ort / min(")), None)
            if key is not None:
                rows.append(row(2, "auto / the faster lowering", f"sample {sample['name']} B={run['batch']}",
                                run["ratios"][key], 1.05, note=_paths_note(sample)))
    return rows


def _paths_note(result: Mapping[str, Any]) -> str:
    return "auto takes " + ", ".join(f"{n}: {p}" for n, p in result["paths"].get("auto", {}).items())


def target3(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    limits = {"a": 2.05, "c": 4.4}
    for case in cases:
        shape = case["shape"]["name"]
        if shape not in limits:
            continue
        if case["cell"] == "lstm":
            key = f"scan/ort / {lowering_name(case, 'native')}"
            what, bodies = "LSTM forced to Scan / native LSTM (yardstick)", case["step_nodes"].get("scan", [])
        elif case["cell"] in SCAN_CELLS and not all(p == "native" for p in case["paths"]["auto"].values()):
            key, what = "auto/ort / bound/lstm-native", f"{case['cell']} / native LSTM of the same size"
            bodies = case["step_nodes"].get("auto", [])
        else:
            continue
        nodes = ", ".join(f"{b['op']} {b['nodes']}" + (f"+{b['nested']} in If" if b["nested"] else "")
                          for b in bodies)
        rows.append(row(3, what, f"{case['cell']} ({shape})", ratio(case, key), limits[shape],
                        note=f"nodes per step after onnxruntime's optimizer: {nodes or '—'}"))
    return rows


def target4(clockwork: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The form auto picks for the declared batch against the dense step; where no limit is set, whether
    it is the fastest form measured."""
    rows = []
    for entry in clockwork:
        where = f"B={entry['batch']} H={entry['hidden']} T={entry['time']}"
        ratios = {"dense": 1.0} | {key.split("/")[0]: r for key, r in entry["ratios"].items()
                                   if key.endswith(" / dense/ort")}
        measured = ", ".join(f"{form}/dense = {r:.2f}" for form, r in ratios.items() if form != "dense")
        chosen = entry["chosen"]
        if entry["limit"] is not None:
            rows.append(row(4, "auto's form (batch declared) / dense step", where, ratios.get(chosen),
                            entry["limit"], note=f"auto chose {chosen}; {measured}"))
        else:  # within 5% of the fastest form measured, as target 2 holds `auto` to the faster lowering
            best = min(ratios, key=lambda form: ratios[form])
            rows.append(row(4, "auto's form (batch declared) / the fastest form", where,
                            None if chosen not in ratios else ratios[chosen] / ratios[best], 1.05,
                            note=f"auto chose {chosen}, fastest {best}; {measured}"))
    return rows


def target5(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    deep = [s for s in samples if s["name"] == "deep" and "graph" in s]
    if not deep:
        return [row(5, "Transposes in samples/deep.py's export", "deep", None, 2,
                    note="samples/deep.py not in this setting")]
    return [row(5, "Transposes in samples/deep.py's export (one conversion in, one out)", "deep (auto)",
                deep[0]["graph"]["transposes"], 2,
                note="of activations; a weight-layout Transpose of an initializer is folded at load")]


def target6(decoding: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """In-graph greedy decoding against Python loops over the step export (benchmarks/decoding.py)."""
    what = "Python step loop / in-graph greedy decoding"
    if decoding is None:
        return [row(6, what, "vocab 1000, H 128, 40 tokens", None, 1.2, "≥", note="not measured in this run")]
    size, checks = decoding["size"], decoding["checks"]
    where = f"vocab {size['vocab']}, H {size['hidden']}, {size['tokens']} tokens, B={size['batch']}"
    note = (f"{checks['tokens_decoded']} tokens decoded by each, equal: {checks['tokens_equal']}; "
            f"ingraph {decoding['contenders']['ingraph/session']['median_ms']:.2f} ms")
    ratios = decoding["ratios"]
    return [row(6, what + " (rnngraph.runtime: StepDecoder.greedy vs Session)", where,
                ratios["stepped/python / ingraph/session"], 1.2, "≥", note=note),
            row(6, what + " (bare onnxruntime: a minimal loop vs the whole model)", where,
                ratios["stepped/bare / ingraph/ort"], 1.2, "≥")]


def target7(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [row(7, "speed-up of 2 intra-op threads over 1 (auto export)", f"{c['cell']} ({c['shape']['name']})",
                ratio(c, "auto/ort / auto/ort@2t"), 1.7, "≥") for c in cases if "auto/ort@2t" in c["contenders"]]


def target8(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in samples:
        if "graph" not in s:
            rows.append(row(8, "sample exports", s["name"], None, None, note=s.get("error", "")))
            continue
        g = s["graph"]
        # the ratio, and the absolute bytes on top of the weights: a fixed cost (graph structure, metadata) that
        # does not grow with T (the time axis is symbolic) and weighs most in the smallest models
        rows.append(row(8, "file size over weight bytes", s["name"], g["file_over_weights"], 0.05,
                        note=f"{g['file_bytes'] - g['weight_bytes']} bytes over the weights "
                             f"(file {g['file_bytes']}, weights {g['weight_bytes']}), {g['nodes']} nodes"))
        rows.append(row(8, "session creation, ms", s["name"], s["session_creation_ms"], 50.0, "<"))
        rows.append(row(8, "time axis symbolic (graph, file, session independent of T)", s["name"],
                        "yes" if g["symbolic_time"] else "no", "yes"))
    return rows


def evaluate(cases: Sequence[Mapping[str, Any]], clockwork: Sequence[Mapping[str, Any]],
             samples: Sequence[Mapping[str, Any]], torch: bool,
             decoding: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return (target1(cases, torch) + target2(cases, samples) + target3(cases) + target4(clockwork)
            + target5(samples) + target6(decoding) + target7(cases) + target8(samples))


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**NOT met**", None: "not measurable"}[met]


def summary(rows: Sequence[Mapping[str, Any]]) -> dict[int, bool | None]:
    """Per target: met when every measured row is met, NOT met when one is not, else not measurable."""
    out: dict[int, bool | None] = {}
    for t in sorted({r["target"] for r in rows}):
        verdicts = [r["met"] for r in rows if r["target"] == t and r["met"] is not None]
        out[t] = None if not verdicts else all(verdicts)
    return out
