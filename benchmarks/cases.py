"""The suite's canonical models and how one of them is measured at one shape.

Every canonical model is one recurrent layer (or a teacher-forced attention decoder)
over a float input of `input` features, no padding input, so that the rnngraph export,
``torch.nn`` and ``torch.onnx.export`` compute the same thing:

    lstm, gru, rnn     Recurrent(LSTM(H) / GRU(H, linear_before_reset=True) / RNN(H))  [PyTorch has these]
    lstm_peephole      Recurrent(LSTM(H, peephole=True))
    clockwork          Recurrent(Clockwork(H, periods=(1, 2, 4, 8)))
    esn_leaky          Recurrent(ESN(H, outputs=input, leak=0.8))
    esn_feedback       Recurrent(ESN(H, outputs=input, leak=0.8, feedback=True))
    attention          Decoder(LSTM(H), additive attention (units H), readout softmax over 100 tokens,
                       embedding `input`) teacher-forced over target tokens, attending over the
                       input sequence (T source steps, T target steps)

Contenders at one shape: every distinct lowering's export in a bare onnxruntime session
(``auto/ort``, ``scan/ort``, ``native/ort``; a lowering that gives the same graph as another
is timed once, see `same_as`), ``auto/session`` (the same export through `Session`), and either
PyTorch (``torch/eager``, ``torch/onnx``: the TorchScript ``torch.onnx.export`` model in onnxruntime)
or, for cells PyTorch lacks, ``bound/lstm-native``: ONNX's native LSTM of the same input and
hidden size, the lower bound a Scan body is held to. At the threads shape also ``auto/ort@2t``
(two intra-op threads).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import rnngraph as rg
from rnngraph.bench.graphs import madds_per_step, step_nodes
from rnngraph.bench.measure import (
    Work,
    exports,
    max_abs_difference,
    onnx_memory,
    oracle_time,
    ort_runner,
    session_runner,
    time_contenders,
)
from rnngraph.bench.memory import measure as measure_memory
from rnngraph.bench.profile import op_profile
from rnngraph.bench.timing import Rounds
from rnngraph.bench.torch_baseline import torch_available, torch_kind

VOCAB = 100
#: untimed pause after a multi-threaded contender (onnxruntime's workers spin-wait after a run)
SETTLE_S = 0.05
#: profiled runs summed per Scan export (after one warm-up run)
PROFILE_RUNS = 10
PERIODS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    time: int
    input: int
    hidden: int

    def describe(self) -> str:
        return f"({self.name}) B={self.batch} T={self.time} I={self.input} H={self.hidden}"


def recurrent(cell: rg.Cell, features: int) -> rg.Model:
    x = rg.Input("x", features=features, lengths=None)
    return rg.Model(x, {"y": rg.Recurrent(cell, name="rnn")(x)}, name=cell.describe())


def attention_decoder(features: int, hidden: int) -> rg.Model:
    x = rg.Input("x", features=features, lengths=None)
    tgt = rg.Input("tgt", tokens=VOCAB, time="tgt_time", lengths=None)
    decoder = rg.Decoder(rg.LSTM(hidden), attention=rg.Attention("additive", units=hidden), context=None,
                         readout=rg.Dense(VOCAB, "softmax"), embedding=features)
    scores, _weights = decoder.teacher_forced(x, tgt, name="decoder")
    return rg.Model([x, tgt], {"scores": scores}, name="attention_teacher_forced")


#: name -> model builder (input features, hidden size)
CELLS: dict[str, Callable[[int, int], rg.Model]] = {
    "lstm": lambda i, h: recurrent(rg.LSTM(h), i),
    "gru": lambda i, h: recurrent(rg.GRU(h, linear_before_reset=True), i),
    "rnn": lambda i, h: recurrent(rg.RNN(h), i),
    "lstm_peephole": lambda i, h: recurrent(rg.LSTM(h, peephole=True), i),
    "clockwork": lambda i, h: recurrent(rg.Clockwork(h, periods=PERIODS), i),
    "esn_leaky": lambda i, h: recurrent(rg.ESN(h, outputs=i, leak=0.8), i),
    "esn_feedback": lambda i, h: recurrent(rg.ESN(h, outputs=i, leak=0.8, feedback=True), i),
    "attention": attention_decoder,
}


def feeds_for(model: rg.Model, shape: Shape, seed: int = 0) -> dict[str, np.ndarray]:
    return model.example_inputs(shape.batch, shape.time, seed, ragged=False)


def torch_cell(model: rg.Model) -> tuple[str, rg.Cell] | None:
    """(torch kind, cell) when the model is one Recurrent layer over a cell ``torch.nn`` has."""
    layers = [node.layer for _, node in model.nodes() if isinstance(node.layer, rg.Recurrent)]
    if len(layers) != 1 or "y" not in model.outputs:
        return None
    kind = torch_kind(layers[0].cell)
    return None if kind is None else (kind, layers[0].cell)


def measure_case(cell_name: str, shape: Shape, rounds: Rounds, peak_gflops: float, *, threads2: bool,
                 oracle_max_time: int, oracle_cap_s: float, memory: bool, profile: bool) -> dict[str, Any]:
    """Every contender of one canonical model at one shape; see the module docstring. With `profile`,
    also onnxruntime's per-operator profile of the Scan export (``scan`` for cells with a native op,
    else ``auto``)."""
    model = CELLS[cell_name](shape.input, shape.hidden)
    params = model.init(0)
    feeds = feeds_for(model, shape)
    distinct, same_as = exports(model, params)
    auto = distinct["auto"].data
    runs = {f"{low}/ort": ort_runner(e.data, feeds) for low, e in distinct.items()}
    runs["auto/session"] = session_runner(auto, feeds)
    madds = dict.fromkeys(runs, madds_per_step(model))
    record: dict[str, Any] = {"cell": cell_name, "model": model.name, "shape": asdict(shape),
                              "paths": {low: e.paths for low, e in distinct.items()}, "same_as": same_as,
                              "checks": {}, "memory": {}}
    reference_out = runs["auto/session"]()
    pairs: list[tuple[str, str | Sequence[str]]] = [("auto/session", "auto/ort")]
    if len(distinct) > 1:
        pairs.append(("auto/ort", list(runs)[: len(distinct)]))
    native = f"{same_as.get('native', 'native')}/ort"
    if "scan" in distinct and native != "scan/ort":
        pairs.append(("scan/ort", native))
    torch_pair = torch_cell(model) if torch_available() else None
    torch_onnx = b""
    if torch_pair is not None:
        reference = "torch/onnx"
        torch_onnx = _add_torch(runs, madds, record, params, feeds, torch_pair, reference_out, memory)
        pairs += [("auto/session", "torch/eager"), ("auto/ort", "torch/eager")]
    else:
        reference = "bound/lstm-native"
        bound = recurrent(rg.LSTM(shape.hidden), shape.input)
        bound_export = exports(bound, bound.init(0), ["native"])[0]["native"]
        runs[reference] = ort_runner(bound_export.data, feeds_for(bound, shape))
        madds[reference] = madds_per_step(bound)
    if threads2:
        runs["auto/ort@2t"] = ort_runner(auto, feeds, threads=2)
        madds["auto/ort@2t"] = madds["auto/ort"]
        pairs.append(("auto/ort", "auto/ort@2t"))
    pairs += [(name, reference) for name in runs if name != reference]
    record["reference"] = reference
    # after a 2-thread run its spinning workers would slow the next contender down: let them stop first
    settle = {"auto/ort@2t": SETTLE_S} if threads2 else None
    record |= time_contenders(runs, rounds, Work(shape.batch * shape.time, madds, peak_gflops), pairs, settle)
    if shape.time <= oracle_max_time:
        oracle, out = oracle_time(model, params, feeds, 3, oracle_cap_s)
        record["contenders"]["oracle"] = oracle
        record["checks"]["oracle_max_abs"] = max_abs_difference(reference_out, out)  # type: ignore[arg-type]
    else:
        record["oracle_skipped"] = f"T={shape.time} > {oracle_max_time}: the oracle is a Python loop"
    record["step_nodes"] = {low: [asdict(b) for b in step_nodes(e.data)] for low, e in distinct.items()}
    scan = "scan" if "scan" in distinct else "auto"
    if profile and any(b["op"] == "Scan" for b in record["step_nodes"][scan]):
        record["profile"] = {"lowering": scan, "ops": [asdict(o) | {"us_per_call": o.us_per_call}
                                                       for o in op_profile(distinct[scan].data, feeds, PROFILE_RUNS)]}
    if memory:
        record["memory"]["auto/ort"] = onnx_memory(auto, feeds)
        if torch_onnx:
            record["memory"]["torch/onnx"] = onnx_memory(torch_onnx, feeds)
    return record


def _add_torch(runs: dict[str, Callable[[], object]], madds: dict[str, int], record: dict[str, Any],
               params: dict[str, np.ndarray], feeds: dict[str, np.ndarray], torch_pair: tuple[str, rg.Cell],
               reference_out: Any, memory: bool) -> bytes:
    """Add ``torch/eager`` and ``torch/onnx`` (rnngraph's weights; their outputs checked against the
    export's) to `runs`; returns the ``torch.onnx.export`` model."""
    from rnngraph.bench.torch_baseline import eager_output, eager_runner, onnx_export, torch_module, torch_state

    kind, cell = torch_pair
    local = {k.split("/", 1)[1]: v for k, v in params.items() if k.startswith("rnn/")}
    state = torch_state(cell, local)
    x = feeds["x"]
    module = torch_module(kind, x.shape[-1], cell.hidden, state)
    data = onnx_export(module, x)
    runs["torch/eager"] = eager_runner(module, x, threads=1)
    runs["torch/onnx"] = ort_runner(data, feeds)
    madds["torch/eager"] = madds["torch/onnx"] = madds["auto/ort"]
    record["checks"]["torch_eager_max_abs"] = float(np.max(np.abs(eager_output(module, x) - reference_out["y"])))
    torch_onnx_y = runs["torch/onnx"]()[0]  # type: ignore[index]
    record["checks"]["torch_onnx_max_abs"] = float(np.max(np.abs(torch_onnx_y - reference_out["y"])))
    if memory:
        spec = {"kind": "torch", "cell": kind, "input": x.shape[-1], "hidden": cell.hidden}
        record["memory"]["torch/eager"] = _torch_memory(spec, state, x)
    return data


def _torch_memory(spec: dict[str, Any], state: dict[str, np.ndarray], x: np.ndarray) -> dict[str, float]:
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rnngraph-bench-") as tmp:
        path = os.path.join(tmp, "state.npz")
        np.savez(path, **state)  # type: ignore[arg-type]
        mem = measure_memory({**spec, "model": path, "threads": 1}, {"x": x})
    return {"peak_mib": mem.peak_mib, "model_mib": mem.model_mib}
