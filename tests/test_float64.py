"""float64 exports (`ExportOptions(dtype="float64")`, ``rnngraph export --dtype float64``) equal the float64 oracle.

Every sample and every example of every registered cell (`rnngraph.dsl.registry`) is exported in
float64 and run in onnxruntime: the weights, inputs, outputs and every value inside the Scan, Loop
and If bodies are float64, and the outputs agree with the oracle to the float64 entries of the
tolerance table (``rnngraph.verify.TOLERANCES``: 1e-12 absolute). Parameters and inputs are made
float64 values that float32 cannot hold, so a float32 rounding anywhere on the way fails the test.
"""

from __future__ import annotations

import json
import pathlib
import runpy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.dsl import registry
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.model import Model
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import build_model_proto, max_opset
from rnngraph.exporters.onnx.precision import _graphs, initializer_types
from rnngraph.loading import read_onnx
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.runtime.streaming import StreamingSession
from rnngraph.verify import compare, for_dtype, load_model_file, verify
from tests.conftest import SHAPES

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))
FLOAT64 = rg.ExportOptions(dtype="float64")


def unrounded(arrays: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Float arrays moved off the float32 grid (relative 1e-7, zeros kept): float64 values float32 cannot hold."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(np.float64) * (1 + 1e-7 * rng.standard_normal(value.shape))
        out[name] = value
    return out


def assert_float64_graph(proto: onnx.ModelProto) -> None:
    """No float32 anywhere: every float initializer, graph input/output and Cast target is float64."""
    types = initializer_types(proto)
    assert all(counts["FLOAT"] == 0 for counts in types.values()), types
    assert any(counts["DOUBLE"] for counts in types.values()), types
    for value in [*proto.graph.input, *proto.graph.output]:
        assert value.type.tensor_type.elem_type != TensorProto.FLOAT, value.name
    for path, graph in _graphs(proto.graph):
        casts = [n.name for n in graph.node if n.op_type == "Cast"
                 and any(a.name == "to" and a.i == TensorProto.FLOAT for a in n.attribute)]
        assert not casts, f"{path}: casts to float32 {casts}"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["rnngraph.dtype"] == "float64"
    assert all(e["dtype"] in ("float64", "int64", "int32") for e in json.loads(meta["rnngraph.inputs"]))


def assert_matches64(model: Model, params: dict[str, np.ndarray], feeds: dict[str, np.ndarray],
                     tolerance: str = "float64", options: rg.ExportOptions = FLOAT64, opset: int = 17) -> float:
    """Export in float64, run, compare with the oracle on the same float64 feeds; returns the largest error."""
    proto = build_model_proto(model, params, opset, options=options)
    assert_float64_graph(proto)
    got = Session(proto).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    worst = 0.0
    for name in model.outputs:
        if ref[name].dtype.kind == "f":
            assert got[name].dtype == np.float64, name
        row = compare(name, got[name], ref[name], tolerance)
        assert row.ok, f"{name}: max abs err {row.max_abs:.3e} ({tolerance})"
        worst = max(worst, row.max_abs)
    return worst


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_in_float64(path):
    mf = load_model_file(path)
    params = unrounded(mf.params, 1)
    tolerance = for_dtype(mf.tolerance, "float64")
    for opset in (13, max_opset()):
        assert_matches64(mf.model, params, unrounded(mf.example_inputs(3, 6, 0), 2), tolerance, opset=opset)
    assert_matches64(mf.model, params, unrounded(mf.example_inputs(1, 1, 0), 2), tolerance)
    # the whole check as `rnngraph verify --dtype float64` runs it: the NaN rule too
    report = verify(mf.model, params, feeds=mf.example_inputs(3, 5, 0), tolerance=mf.tolerance, dtype="float64")
    assert report.ok, report.table()
    assert all(row.tolerance.atol <= 1e-9 for row in report.rows)


def cases() -> list[object]:
    """Every example of every registered cell; Clockwork in both of its step forms."""
    out = []
    for i, cell in enumerate(registry.examples()):
        for form in ("dense", "ladder") if isinstance(cell, Clockwork) else (None,):
            out.append(pytest.param(cell, form, id=f"{type(cell).__name__}{i}{'-' + form if form else ''}"))
    return out


@pytest.mark.parametrize("lengths", ["lengths", None])
@pytest.mark.parametrize("cell,form", cases())
def test_every_registered_cell_in_float64(cell, form, lengths):
    x = rg.Input("x", features=3, lengths=lengths)
    forward = rg.Recurrent(cell, returns=("sequence", "last", "mean", "max", "state"))(x)
    backward = rg.Recurrent(cell, reverse=True, returns=("sequence", "last"))(x)
    outs = {f"f{i}": t for i, t in enumerate(forward)} | {f"b{i}": t for i, t in enumerate(backward)}
    model = rg.Model(x, outs)
    params = unrounded(model.init(5), 6)
    options = rg.ExportOptions(dtype="float64", clockwork_form=form)
    for batch, time in SHAPES:  # odd sizes, B=1, T=1, ragged lengths
        assert_matches64(model, params, unrounded(model.example_inputs(batch, time, batch + time), 7), options=options)


@pytest.mark.parametrize("cell", registry.examples(), ids=lambda c: type(c).__name__)
def test_every_registered_cell_streams_in_float64(cell):
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Stack([cell, rg.GRU(5, linear_before_reset=True)])(x)})
    params = unrounded(model.init(8), 9)
    feeds = unrounded(model.example_inputs(4, 9, 10), 11)
    proto = build_model_proto(model, params, options=rg.ExportOptions(dtype="float64", streaming=True))
    assert_float64_graph(proto)
    states = json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.state"])["states"]
    assert states and all(s["dtype"] == "float64" for s in states)
    ref = oracle.run(model, params, **feeds)
    streams = StreamingSession(proto).open(4)
    assert all(v.dtype == np.float64 for k, v in streams.state.items() if k != "state_in/steps")
    got = streams.feed_in_chunks(3, **feeds)
    assert got["y"].dtype == np.float64
    row = compare("y", got["y"], ref["y"], "float64")
    assert row.ok, f"chunks of 3: max abs err {row.max_abs:.3e}"


def test_weights_go_in_unrounded_and_read_back_bit_for_bit(tmp_path):
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Dense(2)(rg.Recurrent(rg.LSTM(5, peephole=True, coupled=True))(x))})
    params = unrounded(model.init(3), 4)
    path = tmp_path / "m.onnx"
    proto = rg.export(model, params, path, dtype="float64")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert np.array_equal(inits["dense0/W_T"], params["dense0/W"].T)  # float64, bit for bit
    found = read_onnx(path)
    assert found.options == FLOAT64 and found.options.lowering == "scan"
    for name, value in params.items():
        assert found.params[name].dtype == np.float64 and np.array_equal(found.params[name], value), name
    again = rg.export(found.model, found.params, options=found.options)
    assert again.SerializeToString() == proto.SerializeToString()


def test_float64_inputs_reach_the_graph_unrounded():
    """A float64 model reads float64 inputs as they are (a float32 one is widened, not refused)."""
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Dense(1, activation="none")(x)})
    params = {"dense0/W": np.array([[1.0, 0.0]]), "dense0/b": np.zeros(1)}
    session = Session(build_model_proto(model, params, options=FLOAT64))
    xs = np.full((1, 1, 2), 1 + 2.0**-40)  # 1 in float32
    assert session.run(x=xs)["y"][0, 0, 0] == 1 + 2.0**-40
    assert session.run(x=xs.astype(np.float32))["y"].dtype == np.float64


def test_native_lowering_is_refused_in_float64():
    with pytest.raises(ExportError, match=r"lowering='native' cannot export in float64: onnxruntime has no float64 "
                                          r"kernel for ONNX's LSTM/GRU/RNN ops; use lowering='scan'"):
        rg.ExportOptions(dtype="float64", lowering="native")
    assert rg.ExportOptions(dtype="float64").lowering == "scan"  # auto takes the Scan lowering
    with pytest.raises(ExportError, match=r"expected one of \('float32', 'float64'\), received 'float16'\. float16 "
                                          r"is written from the float32 export"):
        rg.ExportOptions(dtype="float16")
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(3, linear_before_reset=False))(x)})
    with pytest.raises(ExportError, match=r"the dtype is given twice: `dtype='float32'` and `options.dtype="
                                          r"'float64'`"):
        rg.export(model, model.init(0), dtype="float32", options=FLOAT64)


@pytest.mark.parametrize("op,gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_onnxruntime_still_has_no_float64_native_recurrent_op(op, gates):
    """Why the refusal above: onnxruntime's CPU LSTM/GRU/RNN run float32 only. If this fails, a newer onnxruntime
    runs them in float64 and `ExportOptions` may let float64 take the native lowering."""
    rng = np.random.default_rng(0)
    weights = [helper.make_tensor(n, TensorProto.DOUBLE, [1, gates * 2, 2], rng.standard_normal(4 * gates))
               for n in ("W", "R")]
    graph = helper.make_graph([helper.make_node(op, ["x", "W", "R"], ["y"], hidden_size=2)], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [3, 1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)], weights)
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    probe.ir_version = 8
    with pytest.raises(Exception, match="does not support double|Could not find an implementation"):
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        session.run(None, {"x": rng.standard_normal((3, 1, 2))})


def test_cli_export_run_verify_and_triton(tmp_path, capsys):
    sample = str(next(p for p in SAMPLES if p.stem == "streaming_keyword"))
    out = tmp_path / "kws.onnx"
    assert main(["export", sample, "-o", str(out), "--dtype", "float64"]) == 0
    assert "float64" in capsys.readouterr().out
    proto = onnx.load(str(out))
    assert_float64_graph(proto)
    mf = load_model_file(sample)
    feeds = unrounded(mf.example_inputs(2, 4, 0), 1)
    np.save(tmp_path / "frames.npy", feeds["frames"])
    assert main(["run", str(out), "--input", f"frames={tmp_path / 'frames.npy'}", "--input", "lengths=[4, 3]",
                 "-o", str(tmp_path / "o.npz")]) == 0
    got = np.load(tmp_path / "o.npz")
    ref = oracle.run(mf.model, mf.params, frames=feeds["frames"], lengths=np.array([4, 3]))
    for name in mf.model.outputs:
        assert got[name].dtype == np.float64 and compare(name, got[name], ref[name], "float64").ok
    capsys.readouterr()
    assert main(["verify", str(out), "--quiet"]) == 0  # the file itself, read back in float64
    assert main(["verify", sample, "--dtype", "float64", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "1e-12" in table and "verified" in table
    triton = tmp_path / "triton"
    assert main(["export", sample, "-o", str(tmp_path / "s.onnx"), "--dtype", "float64", "--streaming",
                 "--triton", str(triton)]) == 0
    config = (triton / "s" / "config.pbtxt").read_text()
    assert "TYPE_FP64" in config and "TYPE_FP32" not in config


def test_cli_refusals(tmp_path, capsys):
    sample = str(next(p for p in SAMPLES if p.stem == "gru"))
    assert main(["export", sample, "-o", str(tmp_path / "a.onnx"), "--dtype", "float64", "--lowering", "native"]) != 0
    assert "lowering='native' cannot export in float64" in capsys.readouterr().err
    assert main(["export", sample, "-o", str(tmp_path / "b.onnx"), "--dtype", "float64", "--quantize", "int8"]) != 0
    assert "--quantize int8 and --dtype float64 cannot be combined" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_mackey_glass_free_run_nrmse_equals_the_oracle():
    """The ESN sample's 84-step free run (30 trials): float64 onnxruntime gives the oracle's NRMSE, float32 does not.

    Printed (``pytest -rP``): the NRMSE of the oracle, of the float64 export and of the float32 export.
    """
    mg = runpy.run_path(str(next(p for p in SAMPLES if p.stem == "esn_mackey_glass")), run_name="__rnngraph_model__")
    test, horizon = mg["TEST_PART"], mg["HORIZON"]
    prime, trials = 300, 30
    starts = np.linspace(0, len(test) - prime - horizon - 1, trials).astype(int)
    windows = np.stack([test[s: s + prime] for s in starts])[:, :, None]  # float64
    truth = np.stack([test[s + prime: s + prime + horizon] for s in starts])
    feeds = {"u": windows, "steps": np.array(horizon - 1)}

    def nrmse(out: dict[str, np.ndarray]) -> float:
        continuation = np.concatenate([out["y"][:, -1:, 0], out["generated"][:, :, 0]], axis=1)
        return float(mg["nrmse"](continuation, truth))

    model, params = mg["model"], mg["params"]
    ref = oracle.run(model, params, **feeds)
    got64 = Session(rg.export(model, params, dtype="float64")).run(**feeds)
    got32 = Session(rg.export(model, params)).run(**feeds)
    row = compare("generated", got64["generated"], ref["generated"], "float64-long")
    assert row.ok, f"max abs err {row.max_abs:.3e}"
    print(f"84-step free-run NRMSE: oracle {nrmse(ref):.6e}, float64 onnxruntime {nrmse(got64):.6e}, "
          f"float32 onnxruntime {nrmse(got32):.6e}; float64 max abs err {row.max_abs:.2e}")
    assert abs(nrmse(got64) - nrmse(ref)) <= 1e-9 * nrmse(ref)
    assert abs(nrmse(got32) - nrmse(ref)) > 1e3 * abs(nrmse(got64) - nrmse(ref))


@pytest.mark.parametrize("precision", ["int8", "float16"])
def test_reduced_precision_copies_refuse_a_float64_export(precision, tmp_path):
    from rnngraph.exporters.onnx.precision import quantize_int8, to_float16

    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(5, linear_before_reset=True))(x)})
    src = tmp_path / "m.onnx"
    rg.export(model, model.init(0), src, dtype="float64")
    convert = quantize_int8 if precision == "int8" else to_float16
    with pytest.raises(ExportError, match=rf"is a float64 export; {precision} copies are made from a float32 export"):
        convert(src, tmp_path / f"m.{precision}.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
