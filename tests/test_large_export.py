"""Large models: weights as external data in a file named after its contents; the model and its weights are
replaced as one unit; nothing is left behind on an error; a crash between the steps never pairs a model
with another model's weights. (The threshold is lowered here so that small models take the large path;
a real 2.2 GB export runs in `make test-slow`.)"""

from __future__ import annotations

import os
import re
import stat

import numpy as np
import onnx
import pytest

import rnngraph as rg
import rnngraph.exporters.onnx as exporter
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import write
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare

DATA = re.compile(r"m\.onnx\.[0-9a-f]{16}\.data")


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(exporter, "EXTERNAL_DATA_BYTES", 100)


def lstm(hidden: int) -> tuple[rg.Model, dict[str, np.ndarray]]:
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.LSTM(hidden), returns="last")(x)})
    return model, model.init(hidden)


def answers(path: os.PathLike[str], model: rg.Model) -> np.ndarray:
    return Session(path).run(**model.example_inputs(2, 4))["y"]


def data_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "m.onnx")


def test_a_new_export_replaces_model_and_weights_together(tmp_path, small_threshold):
    path = tmp_path / "m.onnx"
    first, p1 = lstm(16)
    rg.export(first, p1, path)
    [old_data] = data_files(tmp_path)
    assert DATA.fullmatch(old_data)
    second, p2 = lstm(19)
    rg.export(second, p2, path)
    [new_data] = data_files(tmp_path)
    assert DATA.fullmatch(new_data) and new_data != old_data  # the old weights are gone with the old model
    feeds = second.example_inputs(2, 4)
    assert compare("y", Session(path).run(**feeds)["y"], oracle.run(second, p2, **feeds)["y"]).ok


def test_the_same_export_twice_writes_the_same_files(tmp_path, small_threshold):
    model, params = lstm(17)
    path = tmp_path / "m.onnx"
    rg.export(model, params, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rg.export(model, params, path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("crash_at", [1, 2])
def test_a_crash_between_the_steps_never_mixes_two_models(tmp_path, small_threshold, monkeypatch, crash_at):
    """Step 1 renames the new weights into place, step 2 the new model: a crash after step 1 leaves the old
    model on its old weights, one after step 2 the new model on its new weights (plus an orphan file)."""
    path = tmp_path / "m.onnx"
    old_model, old_params = lstm(16)
    rg.export(old_model, old_params, path)
    old_answer = answers(path, old_model)
    new_model, new_params = lstm(18)
    real_commit, calls = write.commit, []

    def crashing_commit(tmp: str, target: str) -> None:
        real_commit(tmp, target)
        calls.append(target)
        if len(calls) == crash_at:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(write, "commit", crashing_commit)
    with pytest.raises(KeyboardInterrupt):
        rg.export(new_model, new_params, path)
    if crash_at == 1:
        np.testing.assert_array_equal(answers(path, old_model), old_answer)
    else:
        feeds = new_model.example_inputs(2, 4)
        assert compare("y", Session(path).run(**feeds)["y"], oracle.run(new_model, new_params, **feeds)["y"]).ok
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rnngraph-tmp-")]


def test_a_failed_check_leaves_the_old_pair_and_no_temporary_files(tmp_path, small_threshold, monkeypatch):
    path = tmp_path / "m.onnx"
    model, params = lstm(16)
    rg.export(model, params, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_check(model_path: str, name: str) -> None:
        raise ExportError(f"the exported graph of {name!r} failed ONNX's checks (a bug in rnngraph): injected")

    monkeypatch.setattr(write, "check_file", failing_check)
    other, other_params = lstm(15)
    with pytest.raises(ExportError, match="injected"):
        rg.export(other, other_params, path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_returned_proto_refers_to_the_written_data_file(tmp_path, small_threshold):
    """Taking the weights back into the returned proto would hold them twice (protobuf keeps a cleared
    field's memory until the message is freed): the proto refers to the data file, as onnx's own save does."""
    model, params = lstm(16)
    path = tmp_path / "m.onnx"
    proto = rg.export(model, params, path)
    [data] = data_files(tmp_path)
    external = [t for t in write.tensors(proto.graph) if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and {e.value for t in external for e in t.external_data if e.key == "location"} == {data}
    assert proto.SerializeToString() == path.read_bytes()  # the returned proto is the written file
    in_memory = rg.export(model, params)  # never written: inline, and the same model once loaded
    assert onnx.load(str(path)).SerializeToString() == in_memory.SerializeToString()
    with pytest.raises(ExportError, match=r"refers to weights in a data file .* onnx\.load\(path\)"):
        write.write_model(proto, str(tmp_path / "copy.onnx"), 100, name="m", checked=True)


def test_files_get_the_ordinary_mode(tmp_path, small_threshold):
    model, params = lstm(16)
    rg.export(model, params, tmp_path / "m.onnx")
    model.save_params(params, tmp_path / "p.npz")
    umask = os.umask(0)
    os.umask(umask)
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p.name


def test_another_models_data_file_is_never_removed(tmp_path, small_threshold):
    """Only data files named like rnngraph's for this model are cleaned up after a replace."""
    path = tmp_path / "m.onnx"
    model, params = lstm(16)
    proto = exporter.build_model_proto(model, params)
    onnx.save_model(proto, str(path), save_as_external_data=True, location="shared.bin", size_threshold=0)
    rg.export(model, params, path)
    assert "shared.bin" in {p.name for p in tmp_path.iterdir()}


# -- parameters files ------------------------------------------------------------------------------------
def test_save_params_refuses_a_directory_and_a_missing_folder(tmp_path):
    model, params = lstm(3)
    with pytest.raises(rg.ParameterError, match=r"cannot write parameters .*: it is a directory"):
        model.save_params(params, tmp_path)
    with pytest.raises(rg.ParameterError, match=r"cannot write parameters .*: directory .* does not exist"):
        model.save_params(params, tmp_path / "no" / "p.npz")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    model, params = lstm(3)
    path = tmp_path / "p.npz"
    model.save_params(params, path)
    before = path.read_bytes()

    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(np, "savez", half_written)
    with pytest.raises(KeyboardInterrupt):
        model.save_params(params, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]


def test_a_damaged_params_file_is_a_parameter_error(tmp_path):
    model, params = lstm(3)
    path = tmp_path / "p.npz"
    model.save_params(params, path)
    path.write_bytes(path.read_bytes()[:40])  # truncated: the zip header is there, the directory is not
    with pytest.raises(rg.ParameterError, match=r"cannot read parameters from .*p\.npz"):
        model.load_params(path)


@pytest.mark.slow
def test_a_2_2_gb_model_exports_loads_and_verifies():
    """4 LSTM layers of hidden 4096 (2.15 GB of float32 weights), beyond protobuf's 2 GiB limit: about 4 minutes."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "large_export.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "weights: 2048 MB" in proc.stdout and ", ok" in proc.stdout
