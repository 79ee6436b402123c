"""Export, load and verify a model of about 2.2 GB, measuring the export's peak memory.

    python benchmarks/large_export.py [--hidden 4096] [--layers 4] [--out DIR]

A `Stack` of LSTM layers (hidden H, input H): each layer holds W (4H, H) and R (4H, H)
in float32, 32·H² bytes; 4 layers of H = 4096 are 2.15 GB. Each phase runs in a fresh
subprocess, which reports its peak resident memory (ru_maxrss) beside the memory it
started with, so the numbers are the export's own:

- init:   draw the parameters (the baseline: the weights themselves, once);
- export: draw the parameters and export to DIR (external data, checked on the files);
- verify: load the file in onnxruntime and compare one short ragged batch with the oracle.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def build(hidden: int, layers: int):  # noqa: ANN201 - (model, params)
    import rnngraph as rg

    x = rg.Input("x", features=hidden)
    model = rg.Model(x, {"y": rg.Stack([rg.LSTM(hidden) for _ in range(layers)], returns="last")(x)})
    return model, model.init(0)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: str, hidden: int, layers: int, out: str) -> dict[str, float]:
    import onnx  # noqa: F401 - the libraries count in the baseline, not in the phase
    import onnxruntime  # noqa: F401

    import rnngraph.exporters.onnx  # noqa: F401
    import rnngraph.runtime.oracle  # noqa: F401

    started = peak_mb()
    t0 = time.perf_counter()
    if name == "init":
        model, params = build(hidden, layers)
        weights = sum(v.nbytes for v in params.values())
        return {"weights_mb": weights / 2**20, "peak_mb": peak_mb(), "start_mb": started,
                "seconds": time.perf_counter() - t0}
    if name == "export":
        import rnngraph as rg

        model, params = build(hidden, layers)
        after_init = peak_mb()
        rg.export(model, params, os.path.join(out, "large.onnx"))
        files = {f: os.path.getsize(os.path.join(out, f)) / 2**20 for f in os.listdir(out)}
        return {"peak_mb": peak_mb(), "after_init_mb": after_init, "start_mb": started,
                "seconds": time.perf_counter() - t0, "files_mb": files}
    from rnngraph.runtime import oracle
    from rnngraph.runtime.session import Session
    from rnngraph.verify import compare

    model, params = build(hidden, layers)
    feeds = model.example_inputs(batch=2, time=3, seed=1)
    got = Session(os.path.join(out, "large.onnx")).run(**feeds)["y"]
    ref = oracle.run(model, params, **feeds)["y"]
    row = compare("y", got, ref)
    return {"peak_mb": peak_mb(), "seconds": time.perf_counter() - t0, "max_abs_err": row.max_abs, "ok": row.ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--out", default=None, help="folder for the export (default: a temporary folder)")
    parser.add_argument("--phase", choices=("init", "export", "verify"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.hidden, args.layers, args.out)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        results = {}
        for name in ("init", "export", "verify"):
            proc = subprocess.run([sys.executable, __file__, "--phase", name, "--hidden", str(args.hidden),
                                   "--layers", str(args.layers), "--out", out],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return proc.returncode
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    weights = results["init"]["weights_mb"]
    base = results["init"]["start_mb"]
    print(f"weights: {weights:.0f} MB ({args.layers} LSTM layers, hidden {args.hidden}); "
          f"interpreter + libraries: {base:.0f} MB")
    print(f"files: {', '.join(f'{k} {v:.0f} MB' for k, v in results['export']['files_mb'].items())}")
    export_extra = results["export"]["peak_mb"] - results["export"]["start_mb"]
    print(f"export: {results['export']['seconds']:.1f} s, peak {results['export']['peak_mb']:.0f} MB, "
          f"{export_extra:.0f} MB above the process start = {export_extra / weights:.2f}x the weights "
          f"(the parameters alone: {results['init']['peak_mb'] - base:.0f} MB)")
    print(f"verify: {results['verify']['seconds']:.1f} s, peak {results['verify']['peak_mb']:.0f} MB, "
          f"max abs err {results['verify']['max_abs_err']:.2e}, {'ok' if results['verify']['ok'] else 'FAILED'}")
    return 0 if results["verify"]["ok"] else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
