"""The CUDA lowering and the placement reports (docs/deploy.md, "CUDA"), checked without a GPU.

- the CUDA provider's rules (`rnngraph.compiler.cuda`): which recurrent options and which
  op/type pairs it refuses, with the reasons;
- the static predictor (`rnngraph.exporters.onnx.placement`) on hand-built graphs, bodies included;
- the CUDA lowering (`ExportOptions(device="cuda")`): for every sample and every registered
  cell example, no node the CUDA provider would refuse, and the oracle's values on the CPU;
- the measured report (`rnngraph.runtime.placement`) read from onnxruntime's log, on the CPU provider.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import rnngraph as rg
from rnngraph.compiler import cuda
from rnngraph.compiler.options import ExportOptions
from rnngraph.compiler.recurrent import cell_lowering
from rnngraph.dsl import registry
from rnngraph.errors import ExportError, RnnGraphError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.exporters.onnx.placement import FALLBACK, INEXACT, SHAPE, fallbacks, predict_cuda
from rnngraph.runtime.placement import CPU, Node, measure, parse
from rnngraph.runtime.session import Session
from rnngraph.verify import load_model_file, verify

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))
CUDA_OPTIONS = {lowering: ExportOptions(lowering=lowering, device="cuda") for lowering in ("auto", "native", "scan")}


# -- the CUDA provider's rules ------------------------------------------------------------------
@pytest.mark.parametrize("op,attributes,inputs,reason", [
    ("LSTM", {}, ["x", "W", "R", "B"], None),
    ("LSTM", {"input_forget": 1}, ["x", "W", "R", "B"], r"input_forget=1 \(coupled gates\): cuDNN has no coupled"),
    ("LSTM", {}, ["x", "W", "R", "B", "", "", "", "P"], r"peepholes \(input P\): cuDNN has no peephole LSTM"),
    ("LSTM", {}, ["x", "W", "R", "B", "", "", "", ""], None),  # an absent P is no peephole
    ("LSTM", {"clip": 3.0}, ["x", "W", "R", "B"], r"LSTM with `clip`: cuDNN has no such option"),
    ("LSTM", {"activations": [b"Sigmoid", b"Tanh", b"Relu"]}, ["x"], r"activations \['sigmoid', 'tanh', 'relu'\]"),
    ("GRU", {"linear_before_reset": 1}, ["x"], None),
    ("GRU", {"linear_before_reset": 0}, ["x"], r"linear_before_reset=0: cuDNN applies the reset gate after"),
    ("GRU", {"activation_alpha": [1.0]}, ["x"], r"GRU with `activation_alpha`"),
    ("RNN", {"activations": ["Tanh"]}, ["x"], None),
    ("RNN", {"activations": ["Relu"]}, ["x"], r"RNN with activations \['relu'\]: cuDNN runs only \['tanh'\]"),
])
def test_recurrent_options_the_cuda_provider_refuses(op, attributes, inputs, reason):
    got = cuda.recurrent_fallback(op, attributes, inputs)
    if reason is None:
        assert got is None
    else:
        assert got is not None and __import__("re").search(reason, got), got


@pytest.mark.parametrize("op,domain,dtypes,attributes,reason", [
    ("Pad", "", ["INT64", "INT64"], {}, r"no CUDA kernel for Pad on int64 \(it has bool, double, float, float16\)"),
    ("Pad", "", ["FLOAT", "INT64"], {}, None),
    ("Where", "", ["BOOL", "BOOL", "BOOL"], {}, r"no CUDA kernel for Where on bool"),  # its T is input 1
    ("ArgMax", "", ["INT64"], {}, r"no CUDA kernel for ArgMax on int64"),
    ("Cast", "", ["FLOAT"], {"to": TensorProto.STRING}, r"Cast to string"),
    ("Cast", "", ["FLOAT"], {"to": TensorProto.INT64}, None),
    ("Bernoulli", "", ["FLOAT"], {}, r"Bernoulli: not in rnngraph's table of onnxruntime's CUDA kernels"),
    ("FusedMatMul", "com.microsoft", ["FLOAT"], {}, r"of domain 'com.microsoft'"),
])
def test_ops_and_types_without_a_cuda_kernel(op, domain, dtypes, attributes, reason):
    got = cuda.kernel_fallback(op, domain, dtypes, attributes, ["a"] * len(dtypes))
    if reason is None:
        assert got is None
    else:
        assert got is not None and __import__("re").search(reason, got), got


@pytest.mark.parametrize("direction,lengths,inexact", [
    ("forward", "L", False), ("reverse", "L", True), (b"bidirectional", "L", True), ("reverse", "", False)])
def test_reverse_recurrent_nodes_with_lengths_differ_on_cuda(direction, lengths, inexact):
    got = cuda.inexact_on_cuda("GRU", {"direction": direction}, ["x", "W", "R", "B", lengths])
    assert (got is not None) == inexact
    if inexact:
        assert "with sequence_lens runs on CUDA, but its CUDA kernel reverses the whole padded time axis" in got


# -- the predictor ------------------------------------------------------------------------------------
def tiny_model(nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_shape_nodes_follow_onnxruntimes_cpu_preference():
    """Shape's output is in CPU memory: the Gather on it moves to the CPU, Reshape (reads its shape there) stays."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "idx"], ["b"], axis=0, name="batch"),
             helper.make_node("Concat", ["b", "three"], ["shape2"], axis=0, name="target"),
             helper.make_node("Reshape", ["x", "shape2"], ["r"], name="reshape"),
             helper.make_node("Relu", ["r"], ["y"], name="relu")]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "idx"),
             numpy_helper.from_array(np.array([-1, 3], np.int64), "three")]
    placed = predict_cuda(tiny_model(nodes, [x], [y], inits))
    assert [(p.node, p.kind) for p in placed] == [("batch", SHAPE), ("target", SHAPE)]


def test_predictor_reports_refused_nodes_inside_a_scan_body():
    body = helper.make_graph(
        [helper.make_node("Pad", ["t_in", "pads"], ["t_pad"], name="pad_ids"),
         helper.make_node("Identity", ["t_in"], ["t_out"], name="keep")],
        "body", [helper.make_tensor_value_info("t_in", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("t_out", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("t_pad", TensorProto.INT64, [3])],
        [numpy_helper.from_array(np.array([0, 1], np.int64), "pads")])
    scan = helper.make_node("Scan", ["ids"], ["last", "padded"], body=body, num_scan_inputs=1, name="loop")
    model = tiny_model([scan], [helper.make_tensor_value_info("ids", TensorProto.INT64, [4, 2])],
                       [helper.make_tensor_value_info("last", TensorProto.INT64, [2]),
                        helper.make_tensor_value_info("padded", TensorProto.INT64, [4, 3])])
    (placed,) = predict_cuda(model)
    assert (placed.graph, placed.node, placed.kind) == ("loop/body", "pad_ids", FALLBACK)
    assert placed.line() == ("loop/body: Pad 'pad_ids' [fallback] no CUDA kernel for Pad on int64 "
                             "(it has bool, double, float, float16)")


def test_default_bidirectional_export_names_its_reverse_native_node():
    mf = load_model_file(pathlib.Path(SAMPLES[0]).parent / "bidirectional.py")
    placed = predict_cuda(build_model_proto(mf.model, mf.params, lowering="native"))
    # the op sits in both branches of its NaN-rule If (rnngraph/compiler/nan_rule.py)
    assert [(p.node, p.kind) for p in placed if p.kind == INEXACT] == [("birnn0/bw/no_nan/rnn", INEXACT),
                                                                       ("birnn0/bw/nan_found/rnn", INEXACT)]


def test_default_exports_name_the_nodes_cuda_refuses():
    """Lowered for the CPU (lowering native): the peephole and coupled LSTMs fall back, the plain one does not;
    the guards' int64 Pad of the lengths falls back in each."""
    found = {}
    for name in ("lstm", "lstm_peephole", "lstm_coupled"):
        mf = load_model_file(pathlib.Path(SAMPLES[0]).parent / f"{name}.py")
        found[name] = [(p.node, p.reason) for p in fallbacks(build_model_proto(mf.model, mf.params, lowering="native"))]
    pad = ("guard/lengths/padded", "no CUDA kernel for Pad on int64 (it has bool, double, float, float16)")
    assert found["lstm"] == [pad]
    # each op twice: in both branches of its NaN-rule If (rnngraph/compiler/nan_rule.py)
    peephole = "LSTM with peepholes (input P): cuDNN has no peephole LSTM"
    coupled = "LSTM with input_forget=1 (coupled gates): cuDNN has no coupled LSTM"
    for name, reason in (("lstm_peephole", peephole), ("lstm_coupled", coupled)):
        assert found[name] == [pad, *[(f"lstm0/{branch}/lstm", reason) for branch in ("no_nan", "nan_found")]]


# -- the CUDA lowering ---------------------------------------------------------------------------------
def test_device_option_is_checked():
    with pytest.raises(ExportError, match=r"invalid value for `device`: expected one of \('cpu', 'cuda'\) \(the "
                                          r"onnxruntime provider the export is lowered for\), received 'gpu'"):
        ExportOptions(device="gpu")


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_lowered_for_cuda_keeps_every_node_there_and_matches_the_oracle(path):
    mf = load_model_file(path)
    feeds = mf.example_inputs(3, 6, 1)
    for lowering, options in CUDA_OPTIONS.items():
        proto = build_model_proto(mf.model, mf.params, options=options)
        off = [p.line() for p in predict_cuda(proto) if p.kind != SHAPE]
        assert off == [], f"{path.stem}, {lowering}: {off}"
        report = verify(mf.model, mf.params, feeds=feeds, tolerance=mf.tolerance, proto=proto, nan=False)
        assert report.ok, f"{path.stem}, {lowering}\n{report.table()}"


def cell_cases() -> list[object]:
    return [pytest.param(cell, id=f"{entry.name}{i}") for entry in registry.entries()
            for i, cell in enumerate(entry.examples)]


@pytest.mark.parametrize("cell", cell_cases())
def test_every_registered_cell_lowered_for_cuda(cell):
    """No refused node; the native op exactly where the cell says the CUDA provider runs it; the oracle's values."""
    x = rg.Input("x", features=5)
    model = rg.Model(x, {"y": rg.Recurrent(cell)(x), "h": rg.Recurrent(cell, reverse=True, returns="last")(x)})
    params = model.init(3)
    impl = cell_lowering(cell)
    native = impl.native is not None and impl.native_exact(cell) and impl.native_on_cuda(cell)
    for lowering, options in CUDA_OPTIONS.items():
        proto = build_model_proto(model, params, options=options)
        assert [p.line() for p in predict_cuda(proto) if p.kind != SHAPE] == []
        paths = {p.key: p.value for p in proto.metadata_props}["rnngraph.paths"]
        forward = "native" if native and lowering != "scan" else "scan"
        assert list(json.loads(paths).values()) == [forward, "scan"], (lowering, paths)  # the reverse run: a Scan
        for batch, time in ((3, 5), (1, 1)):
            report = verify(model, params, batch=batch, time=time, proto=proto, nan=False)
            assert report.ok, f"{cell}, {lowering}, B={batch} T={time}\n{report.table()}"


@pytest.mark.parametrize("cell", cell_cases())
def test_each_cells_cuda_rule_agrees_with_the_predictor(cell):
    """`native_on_cuda` (the compiler's choice) and the predictor (the file) say the same of the native op."""
    impl = cell_lowering(cell)
    if impl.native is None or not impl.native_exact(cell):
        pytest.skip(f"{type(cell).__name__} has no exact native op")
    x = rg.Input("x", features=5)
    model = rg.Model(x, {"y": rg.Recurrent(cell)(x)})
    refused = [p for p in fallbacks(build_model_proto(model, model.init(0), lowering="native"))
               if p.op_type in ("LSTM", "GRU", "RNN")]
    assert (refused == []) == impl.native_on_cuda(cell), [p.line() for p in refused]


def test_cli_export_for_cuda(tmp_path):
    from rnngraph.cli import main

    out = tmp_path / "peephole.onnx"
    sample = str(pathlib.Path(SAMPLES[0]).parent / "lstm_peephole.py")
    assert main(["export", sample, "-o", str(out), "--lowering", "native", "--device", "cuda"]) == 0
    proto = onnx.load(str(out))
    assert {p.key: p.value for p in proto.metadata_props}["rnngraph.paths"] == '{"lstm0": "scan"}'
    assert fallbacks(proto) == []


# -- the measured report --------------------------------------------------------------------------------
MIXED_LOG = """\
2026-12-02 03:04:47.96 [V:onnxruntime:, session_state.cc:1598 VerifyEachNodeIsAssignedToAnEp] Node placements
2026-12-02 03:04:47.96 [V:onnxruntime:, session_state.cc:1608 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on \
[CUDAExecutionProvider]. Number of nodes: 2
2026-12-02 03:04:47.96 [V:onnxruntime:, session_state.cc:1610 VerifyEachNodeIsAssignedToAnEp]   MatMul (x_proj/MatMul)
2026-12-02 03:04:47.96 [V:onnxruntime:, session_state.cc:1610 VerifyEachNodeIsAssignedToAnEp]   Scan (lstm0/scan)
2026-12-02 03:04:47.96 [I:onnxruntime:, inference_session.cc:12 Initialize] unrelated line
2026-12-02 03:04:47.96 [V:onnxruntime:, session_state.cc:1608 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on \
[CPUExecutionProvider]. Number of nodes: 1
2026-12-02 03:04:47.96 [V:onnxruntime:, session_state.cc:1610 VerifyEachNodeIsAssignedToAnEp]   Shape (guard/dim)
"""


def test_the_log_of_a_mixed_placement_is_read_per_node():
    placement = parse(MIXED_LOG.splitlines())
    assert dict(placement.counts) == {"CUDAExecutionProvider": 2, CPU: 1}
    assert placement.all_on is None
    assert placement.cpu_nodes == (Node("Shape", "guard/dim"),)
    assert placement.nodes["CUDAExecutionProvider"] == (Node("MatMul", "x_proj/MatMul"), Node("Scan", "lstm0/scan"))
    assert placement.lines()[-1] == "  Shape 'guard/dim'"


def test_a_log_without_placements_is_an_error_that_says_what_to_do():
    with pytest.raises(RnnGraphError, match=r"onnxruntime reported no node placements .*placement\.predict_cuda"):
        parse(["2026 [I:onnxruntime:, x.cc:1 f] nothing here"])


def test_a_model_onnxruntime_cannot_load_is_an_error_and_stderr_is_given_back(capfd):
    with pytest.raises(RnnGraphError, match=r"onnxruntime could not load the model to report its placement: "):
        measure(b"not an onnx model", [CPU])
    sys.stderr.write("after\n")  # file descriptor 2 is the test's again, not the captured log
    assert "after" in capfd.readouterr().err


def count_nodes(graph: onnx.GraphProto) -> int:
    return sum(1 + sum(count_nodes(a.g) for a in n.attribute if a.type == onnx.AttributeProto.GRAPH)
               for n in graph.node)


def test_measured_placement_on_the_cpu_provider_counts_every_node_bodies_included():
    mf = load_model_file(pathlib.Path(SAMPLES[0]).parent / "lstm_peephole.py")
    proto = build_model_proto(mf.model, mf.params, lowering="scan")
    assert any(n.op_type == "Scan" for n in proto.graph.node)
    unoptimized = measure(proto.SerializeToString(), [CPU], optimize=False)
    assert dict(unoptimized.counts) == {CPU: count_nodes(proto.graph)}
    session = Session(proto, device="cpu")
    placement = session.placement()
    assert placement.all_on == CPU and 0 < placement.counts[CPU] <= count_nodes(proto.graph)
    assert session.cpu_nodes == ()  # every node is on the CPU by request, none left there by another provider
    assert session.placement() is placement  # read once
