"""Every sample, exported, run in bare onnxruntime on the inputs a device might send: zero aborts.

    python benchmarks/bare_onnxruntime.py                 # every sample in samples/
    python benchmarks/bare_onnxruntime.py gru attention   # some of them

Each case runs in its own subprocess that imports only numpy and onnxruntime (as a device
would: no rnngraph, no Session in front), so an abort kills that case and is counted, not
the script. The cases, from one ordinary feed (batch 3, time 5, ragged lengths):

    ordinary      the feed as it is
    batch0        every batch axis 0                 outputs: zeros, batch 0
    time0         every time axis 0, lengths 0       outputs: zeros, time 0
    no_lengths    every lengths input left out       = the feed with full rows
    lengths0      row 0 of every lengths input 0     row 0 of every output 0
    lengths-1     row 0 -1                           = lengths0 (lengths are clamped to 0..time)
    lengths+1     row 0 time+1                       row 0 = row 0 of no_lengths
    huge_count    every count 2**62                  the count's axis is its maximum
    count-1       every count -1                     the count's axis is 0

Checked: the exit status (a negative one is a signal: an abort), every output's shape
against its signature (batch, time and count axes), finite values, and the rule of the case.
Exit status 0 when every case passed. The summary is one line per sample, then totals.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

#: run by `python -I -c`: numpy and onnxruntime only; feeds and outputs travel as .npz files
RUNNER = """
import sys, numpy as np, onnxruntime as ort
model, feeds_path, out_path = sys.argv[1:4]
options = ort.SessionOptions()
options.log_severity_level = 3
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
feeds = dict(np.load(feeds_path))
names = [o.name for o in session.get_outputs()]
np.savez(out_path, **dict(zip(names, session.run(names, feeds))))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("rnngraph", "torch", "onnx"))
sys.exit(3 if loaded else 0)
"""

Feeds = dict[str, np.ndarray]


@dataclass
class Signature:
    """What the parent knows of an exported file: output dims, lengths and counts, from the file itself."""

    outputs: dict[str, list[str | int]]
    lengths: dict[str, list[str]]
    counts: dict[str, int]
    times: dict[str, str] = field(default_factory=dict)  # sequence input -> its time axis name

    @staticmethod
    def of(proto: onnx.ModelProto) -> Signature:
        meta = {p.key: p.value for p in proto.metadata_props}
        outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
                   for o in proto.graph.output}
        sig = Signature(outputs, json.loads(meta.get("rnngraph.lengths", "{}")),
                        json.loads(meta.get("rnngraph.counts", "{}")))
        for i in proto.graph.input:
            dims = [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            if len(dims) >= 2 and dims[0] == "batch" and isinstance(dims[1], str) and dims[1]:
                sig.times[i.name] = dims[1]
        return sig


def run_bare(model: str, feeds: Feeds, work: str) -> tuple[int, dict[str, np.ndarray]]:
    """Run `model` on `feeds` in a fresh interpreter with only numpy and onnxruntime; (exit status, outputs)."""
    feeds_path, out_path = os.path.join(work, "feeds.npz"), os.path.join(work, "out.npz")
    np.savez(feeds_path, **feeds)
    if os.path.exists(out_path):
        os.remove(out_path)
    done = subprocess.run([sys.executable, "-I", "-c", RUNNER, model, feeds_path, out_path],
                          capture_output=True, timeout=600, check=False)
    if done.returncode != 0 or not os.path.exists(out_path):
        return done.returncode, {}
    with np.load(out_path) as out:
        return 0, {k: out[k] for k in out.files}


def cases(sig: Signature, feeds: Feeds) -> dict[str, Feeds]:
    """The feeds of every case (module docstring) that applies to this model."""
    seqs = list(sig.times)
    lengths = list(sig.lengths)
    time = {axis: feeds[name].shape[1] for name, axis in sig.times.items()}

    def with_row0(value: Callable[[str], int]) -> Feeds:
        out = dict(feeds)
        for name in lengths:
            out[name] = feeds[name].copy()
            out[name][0] = value(name)
        return out

    result: dict[str, Feeds] = {"ordinary": dict(feeds)}
    result["batch0"] = {k: v[:0] if v.ndim else v for k, v in feeds.items()}
    if seqs:
        result["time0"] = {k: v[:, :0] if k in seqs else np.zeros_like(v) if k in lengths else v
                           for k, v in feeds.items()}
    if lengths:
        result["no_lengths"] = {k: v for k, v in feeds.items() if k not in lengths}
        result["lengths0"] = with_row0(lambda name: 0)
        result["lengths-1"] = with_row0(lambda name: -1)
        result["lengths+1"] = with_row0(lambda name: time[sig.times[sig.lengths[name][0]]] + 1)
    if sig.counts:
        result["huge_count"] = {k: np.array(2**62, dtype=np.int64) if k in sig.counts else v for k, v in feeds.items()}
        result["count-1"] = {k: np.array(-1, dtype=np.int64) if k in sig.counts else v for k, v in feeds.items()}
    return result


def expected_dims(sig: Signature, name: str, feeds: Feeds) -> list[int | None]:
    """The shape an output must have for `feeds`; None where the graph decides (a greedy decoder's steps)."""
    sizes: dict[str, int] = {}
    for k, v in feeds.items():
        if k in sig.counts:
            sizes[k] = int(min(max(int(v), 0), sig.counts[k]))
        elif v.ndim and k not in sig.lengths:
            sizes["batch"] = v.shape[0]
            if k in sig.times:
                sizes[sig.times[k]] = v.shape[1]
    return [d if isinstance(d, int) else sizes.get(d) for d in sig.outputs[name]]


def check_case(case: str, sig: Signature, feeds: Feeds, out: Mapping[str, np.ndarray],
               reference: Mapping[str, Mapping[str, np.ndarray]]) -> list[str]:
    """What is wrong with the outputs of one case (empty: nothing)."""
    problems = []
    for name, value in out.items():
        want = expected_dims(sig, name, feeds)
        if len(want) != value.ndim or any(w is not None and w != s for w, s in zip(want, value.shape, strict=False)):
            problems.append(f"{name}: shape {value.shape}, expected {want}")
            continue
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            problems.append(f"{name}: not finite")
        if case in ("batch0", "time0") and np.any(value != 0):
            problems.append(f"{name}: not all zero")
        if case in ("lengths0", "lengths-1") and np.any(value[0] != 0):
            problems.append(f"{name}: row 0 (length {case[7:]}) is not zero")
        if case == "lengths-1" and "lengths0" in reference and not np.array_equal(value, reference["lengths0"][name]):
            problems.append(f"{name}: differs from lengths 0")
        if case == "lengths+1" and "no_lengths" in reference and not np.allclose(
                value[0], reference["no_lengths"][name][0], rtol=1e-5, atol=1e-6):
            problems.append(f"{name}: row 0 differs from the full row")
    return problems


def run_sample(path: Path, work: str) -> dict[str, list[str] | str]:
    """Export one sample and run every case; case -> problems (or the exit status of an abort)."""
    from rnngraph.exporters.onnx import export
    from rnngraph.verify import load_model_file

    loaded = load_model_file(path)
    model_path = os.path.join(work, f"{path.stem}.onnx")
    proto = export(loaded.model, loaded.params, model_path)
    sig = Signature.of(proto)
    outcome: dict[str, list[str] | str] = {}
    reference: dict[str, dict[str, np.ndarray]] = {}
    for case, feeds in cases(sig, loaded.example_inputs(3, 5, 0)).items():
        status, out = run_bare(model_path, feeds, work)
        if status != 0:
            outcome[case] = f"aborted (signal {-status})" if status < 0 else f"exit status {status}"
            continue
        reference[case] = out
        outcome[case] = check_case(case, sig, feeds, out, reference)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("samples", nargs="*", help="sample names (files in samples/ without .py); default: all")
    args = parser.parse_args(argv)
    paths = [SAMPLES / f"{name}.py" for name in args.samples] or sorted(SAMPLES.glob("*.py"))
    runs = aborts = failed = 0
    with tempfile.TemporaryDirectory() as work:
        for path in paths:
            outcome = run_sample(path, work)
            bad = {case: problems for case, problems in outcome.items() if problems}
            runs += len(outcome)
            aborts += sum(isinstance(p, str) and p.startswith("aborted") for p in bad.values())
            failed += len(bad)
            print(f"{path.stem:<20} {len(outcome)} cases ({', '.join(outcome)}): "
                  + ("ok" if not bad else "; ".join(f"{c}: {p}" for c, p in bad.items())))
    print(f"{len(paths)} samples, {runs} bare onnxruntime runs, {aborts} aborts, {failed} failed cases")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
