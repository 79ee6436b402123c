"""Target 1 of issue 10, old against new in one run: native LSTM/GRU/RNN exports against ``torch.onnx.export``.

For each cell and shape ((a) B=1 T=100 I=64 H=128, (b) B=32 T=100 I=128 H=256, (c) B=1 T=2000 I=32
H=64): medians over interleaved rounds, one thread, warm-up excluded, as ratios to the
``torch.onnx.export`` model of the same ``torch.nn`` module in onnxruntime: this checkout's
`auto` export in bare onnxruntime and through `rnngraph.runtime.Session`, and the same for
each ``--against`` folder, exports written earlier by another checkout with ``--save``::

    PYTHONPATH=/work/main .venv/bin/python benchmarks/native_overhead.py --save /tmp/old   # main's exports
    .venv/bin/python benchmarks/native_overhead.py --against /tmp/old                    # old vs new, one run
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
from cases import CELLS, Shape

import rnngraph as rg
from rnngraph.bench.torch_baseline import onnx_export, torch_kind, torch_module, torch_state
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime.session import Session

SHAPES = {"a": Shape("a", 1, 100, 64, 128), "b": Shape("b", 32, 100, 128, 256), "c": Shape("c", 1, 2000, 32, 64)}
ROUNDS = {"a": 200, "b": 30, "c": 100}


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def case(cell: str, key: str, against: list[pathlib.Path], save: pathlib.Path | None, rounds: int) -> str:
    shape = SHAPES[key]
    model = CELLS[cell](shape.input, shape.hidden)
    params = model.init(0)
    data = build_model_proto(model, params).SerializeToString()
    if save is not None:
        (save / f"{cell}_{key}.onnx").write_bytes(data)
        return f"{cell} ({key}) saved"
    x = model.example_inputs(shape.batch, shape.time, 0, ragged=False)["x"]
    runs: dict[str, Callable[[], object]] = {}
    for tag, blob in [("new", data), *[(str(d), (d / f"{cell}_{key}.onnx").read_bytes()) for d in against]]:
        runs[f"{tag}/ort"] = functools.partial(session(blob).run, None, {"x": x})
        runs[f"{tag}/session"] = functools.partial(Session(blob, threads=1).run, x=x)
    cell_ = next(n.layer.cell for _, n in model.nodes() if isinstance(n.layer, rg.Recurrent))
    local = {k.split("/", 1)[1]: v for k, v in params.items() if k.startswith("rnn/")}
    assert cell_ is not None
    kind = torch_kind(cell_)
    assert kind is not None
    module = torch_module(kind, shape.input, cell_.hidden, torch_state(cell_, local))
    reference = session(onnx_export(module, x))
    runs["torch/onnx"] = lambda: reference.run(None, {"x": x})
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up, not timed
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    ref = float(np.median(times["torch/onnx"]))
    ratios = " ".join(f"{name}={float(np.median(t)) / ref:.3f}" for name, t in times.items() if name != "torch/onnx")
    return f"{cell:4s} ({key}) torch/onnx={ref * 1e6:.0f}us {ratios}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--against", nargs="*", type=pathlib.Path, default=[])
    parser.add_argument("--save", type=pathlib.Path, help="write this checkout's exports here instead of timing")
    parser.add_argument("--rounds-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    print("1 thread, interleaved rounds, medians; ratios to torch/onnx", flush=True)
    for key in args.shapes:
        for cell in args.cells:
            print(case(cell, key, args.against, args.save, max(5, int(ROUNDS[key] * args.rounds_scale))), flush=True)


if __name__ == "__main__":
    main()
