"""The ORT format (onnxruntime's mobile and minimal builds): every sample converts, loads and matches the oracle."""

from __future__ import annotations

import pathlib

import numpy as np
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import export
from rnngraph.exporters.onnx.ort_format import operators, write_ort_format
from rnngraph.runtime import oracle
from rnngraph.verify import compare, load_model_file

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))


def required_operators(config: pathlib.Path) -> dict[str, set[str]]:
    """The config's ``domain;opset;Op1,Op2`` lines as {domain: ops}."""
    found: dict[str, set[str]] = {}
    for line in config.read_text().splitlines():
        if line and not line.startswith("#"):
            domain, _opset, ops = line.split(";")
            found.setdefault(domain, set()).update(ops.split(","))
    return found


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_runs_from_its_ort_file(path, tmp_path):
    mf = load_model_file(path)
    onnx_path = tmp_path / f"{path.stem}.onnx"
    proto = export(mf.model, mf.params, onnx_path)
    files = write_ort_format(onnx_path)
    assert files.ort == tmp_path / f"{path.stem}.ort" and files.ort.stat().st_size > 0
    session = ort.InferenceSession(str(files.ort), providers=["CPUExecutionProvider"])
    feeds = mf.example_inputs(2, 6, 0)
    # lengths are optional inputs (an initializer of the same name), listed apart by onnxruntime
    names = [i.name for i in [*session.get_inputs(), *session.get_overridable_initializers()]]
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {n: feeds[n] for n in names}), strict=True))
    ref = oracle.run(mf.model, mf.params, **feeds)
    for name in mf.model.outputs:
        row = compare(name, got[name], ref[name], mf.tolerance)
        assert row.ok, f"{path.stem}/{name}: max abs err {row.max_abs:.3e}"
    # the loops the export uses are among the operators a minimal build must include
    needed = required_operators(files.required_operators)
    loops = {op.split(":")[1] for op in operators(proto.graph)} & {"Scan", "Loop", "If", "LSTM", "GRU", "RNN"}
    assert loops <= needed["ai.onnx"], f"{sorted(loops)} not all in {sorted(needed['ai.onnx'])}"


def test_output_dir_and_replacing_old_files(tmp_path):
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(4, linear_before_reset=True))(x)})
    params = model.init(0)
    export(model, params, tmp_path / "m.onnx")
    out = tmp_path / "device"
    out.mkdir()
    (out / "m.ort").write_bytes(b"old")
    files = write_ort_format(tmp_path / "m.onnx", out)
    assert sorted(p.name for p in out.iterdir()) == ["m.ort", "m.required_operators.config"]
    assert files.ort.read_bytes() != b"old"
    x_in = np.random.default_rng(0).standard_normal((1, 4, 3)).astype(np.float32)
    session = ort.InferenceSession(str(files.ort), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": x_in, "lengths": np.array([4])})[0]
    np.testing.assert_allclose(y, oracle.run(model, params, x=x_in)["y"], atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rnngraph-ort-")]  # no temp folder left


def test_missing_model_and_directory_are_clear_errors(tmp_path):
    with pytest.raises(ExportError, match=r"no such file; export the model first"):
        write_ort_format(tmp_path / "absent.onnx")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ExportError, match=r"no such directory"):
        write_ort_format(tmp_path / "m.onnx", tmp_path / "nowhere")


def test_a_file_that_is_not_a_model_is_refused_with_the_converter_log(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00 not a model")
    with pytest.raises(ExportError, match=r"could not convert .*bad\.onnx"):
        write_ort_format(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]
