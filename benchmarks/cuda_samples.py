"""Every sample and every registered cell example on onnxruntime's CUDA provider, against the NumPy oracle.

    .venv/bin/python benchmarks/cuda_samples.py [NAME ...] [--batch 8] [--time 50] [--runs 7]

For each model, two exports: the default one (lowered for the CPU) and the one lowered for
CUDA (``ExportOptions(device="cuda")``, docs/deploy.md "On a GPU"). For each: the nodes
rnngraph predicts the CUDA provider leaves to the CPU (refused, and shape nodes kept there on
purpose) or runs unlike ONNX (inexact: reverse recurrent nodes with lengths), and, where this
onnxruntime has a CUDA provider, the measured run: ``Session(device="cuda")``'s largest error
of the float outputs against the float64 oracle, the nodes onnxruntime actually placed on the
CPU (`Session.placement`), and the median time per call on CUDA and on the CPU (same inputs,
warm-up excluded, the CPU with onnxruntime's default thread count).

Without a CUDA provider it prints the predictions, says so and exits with status 0;
``--require-cuda`` makes that status 3 instead (for a GPU machine, where no CUDA is an error).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import onnxruntime as ort

import rnngraph as rg
from rnngraph.compiler.options import ExportOptions
from rnngraph.dsl import registry
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.exporters.onnx.placement import FALLBACK, INEXACT, predict_cuda
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import load_model_file

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "samples"
CUDA = "CUDAExecutionProvider"
NO_CUDA_STATUS = 3


def cell_model(cell: rg.Cell) -> rg.Model:
    """One cell example over a padded sequence, every step out (what the cell examples are run as)."""
    x = rg.Input("x", features=5)
    return rg.Model(x, {"y": rg.Recurrent(cell)(x)}, name=f"{type(cell).__name__}")


def cases() -> Iterator[tuple[str, rg.Model, dict[str, np.ndarray], Callable[[int, int, int], dict]]]:
    """(name, model, params, feeds(batch, time, seed)) for every sample and every registered cell example."""
    for path in sorted(SAMPLES.glob("*.py")):
        mf = load_model_file(path)
        yield path.stem, mf.model, mf.params, mf.example_inputs
    for entry in registry.entries():
        for i, cell in enumerate(entry.examples):
            model = cell_model(cell)
            yield f"cell:{entry.name}{i}", model, model.init(0), model.example_inputs


def median_ms(session: Session, feeds: Mapping[str, np.ndarray], runs: int) -> float:
    session.run(**feeds)  # warm-up: kernel selection, allocations
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(**feeds)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def max_error(got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> float:
    errors = [float(np.max(np.abs(np.asarray(got[n], np.float64) - np.asarray(ref[n], np.float64))))
              for n in ref if np.size(ref[n]) and np.issubdtype(np.asarray(ref[n]).dtype, np.floating)]
    return max(errors, default=0.0)


def report(name: str, form: str, proto: object, feeds: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray] | None,
           runs: int, device: str = "cuda") -> None:
    """Print the predicted CPU nodes of `proto`; with `ref` (the oracle's outputs) also the measured run.

    `device` is the session measured against the CPU one (``cpu`` runs this path on any machine).
    """
    predicted = predict_cuda(proto)  # type: ignore[arg-type]
    refused, inexact = [p for p in predicted if p.kind == FALLBACK], [p for p in predicted if p.kind == INEXACT]
    shape = len(predicted) - len(refused) - len(inexact)
    print(f"{name} [{form}] predicted: {len(refused)} refused, {len(inexact)} inexact, {shape} shape nodes on the CPU")
    for p in refused + inexact:
        print(f"    {'refused' if p.kind == FALLBACK else 'inexact'}: {p.line()}")
    if ref is None:
        return
    gpu, cpu = Session(proto, device=device), Session(proto, device="cpu")
    err = max_error(gpu.run(**feeds), ref)
    placement = gpu.placement()
    ms_gpu, ms_cpu = median_ms(gpu, feeds, runs), median_ms(cpu, feeds, runs)
    print(f"    measured: provider {gpu.provider}, max |err| vs oracle {err:.2e}, nodes {dict(placement.counts)}, "
          f"{ms_gpu:.3f} ms on {device} vs {ms_cpu:.3f} ms on the CPU (ratio {ms_gpu / ms_cpu:.2f})")
    predicted_names = {p.node for p in predicted}
    for node in placement.cpu_nodes:  # onnxruntime's own rewrites may rename nodes: then "not predicted"
        tag = "" if node.name in predicted_names else " (not predicted)"
        print(f"    on the CPU{tag}: {node.op_type} {node.name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*",
                        help="samples (file stems) or cell examples (cell:LSTM0) to run; all by default")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--time", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7, help="timed calls per session (median reported)")
    parser.add_argument("--require-cuda", action="store_true", help=f"exit {NO_CUDA_STATUS} where there is no CUDA")
    args = parser.parse_args(argv)
    has_cuda = CUDA in ort.get_available_providers()
    print(f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}, batch {args.batch}, "
          f"time {args.time}, median of {args.runs} calls")
    for name, model, params, make_feeds in cases():
        if args.names and name not in args.names:
            continue
        feeds = make_feeds(args.batch, args.time, 0)
        ref = oracle.run(model, params, **feeds) if has_cuda else None
        for form, options in (("default", ExportOptions()), ("cuda", ExportOptions(device="cuda"))):
            report(name, form, build_model_proto(model, params, options=options), feeds, ref, args.runs)
    if not has_cuda:
        print(f"No CUDA provider in this onnxruntime ({ort.get_available_providers()}): only the predictions above; "
              "install onnxruntime-gpu with a matching CUDA and cuDNN to measure.")
        return NO_CUDA_STATUS if args.require_cuda else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
