"""Self-describing exports: a shipped .onnx reads back to (model, params), verifies and shows on its own."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.dsl.params import effective
from rnngraph.exporters.onnx import layout
from rnngraph.loading import DESCRIPTION_KEY, PARAMS_KEY
from rnngraph.verify import load_model_file
from tests.test_description import CASES, topologies

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples").glob("*.py"))
ATTENTION = str(ROOT / "samples" / "attention.py")


def assert_reads_back(model: rg.Model, params: dict[str, np.ndarray], path: pathlib.Path, lowering: str) -> None:
    """Export, load: same description, parameters bit for bit as the model computes with them, same bytes again."""
    rg.export(model, params, path, lowering=lowering)
    loaded, back = rg.load(path)
    assert loaded.to_json() == model.to_json()
    want = effective(model.param_specs(), params)
    assert set(back) == set(want)
    for name, value in want.items():
        assert back[name].dtype == np.float32
        np.testing.assert_array_equal(back[name].view(np.uint32), value.astype(np.float32).view(np.uint32), name)
    again = path.with_name("again.onnx")
    rg.export(loaded, back, again, lowering=lowering)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
@pytest.mark.parametrize("lowering", ["auto", "scan"])
def test_every_sample_reads_back_from_its_export(tmp_path, path, lowering):
    mf = load_model_file(path)
    assert_reads_back(mf.model, mf.params, tmp_path / "m.onnx", lowering)


@pytest.mark.parametrize("label,cell,topology", CASES, ids=[c[0] for c in CASES])
def test_every_cell_in_every_topology_reads_back(tmp_path, label, cell, topology):
    model = topologies(cell)[topology]
    assert_reads_back(model, model.init(seed=3), tmp_path / "m.onnx", "auto")


def test_the_same_model_params_and_options_give_the_same_bytes_in_a_fresh_process(tmp_path):
    """Also in another process with another hash seed (no set or dict order may leak into the file)."""
    out = tmp_path / "m.onnx"
    code = (f"from rnngraph.verify import load_model_file; import rnngraph as rg; "
            f"mf = load_model_file({ATTENTION!r}); rg.export(mf.model, mf.params, {str(out)!r}, lowering='scan')")
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONHASHSEED": seed})
    mf = load_model_file(ATTENTION)
    first = rg.export(mf.model, mf.params, lowering="scan").SerializeToString()
    assert rg.export(mf.model, mf.params, lowering="scan").SerializeToString() == first
    assert out.read_bytes() == first


def test_layout_runs_describe_a_transpose_in_one_group_and_the_bias_halves_as_stored(tmp_path):
    mf = load_model_file(ROOT / "samples" / "classic_rnn.py")
    proto = rg.export(mf.model, mf.params, lowering="scan")
    meta = {p.key: p.value for p in proto.metadata_props}
    params = json.loads(meta[PARAMS_KEY])["params"]
    # the Scan lowering stores B's halves as they are (onnxruntime folds their sum when it loads the file):
    # two runs, no values; every weight is runs
    assert "values" not in params["rnn0/B"] and len(params["rnn0/B"]["runs"]) == 2
    assert all("values" not in params[n] for n in ("rnn0/W", "rnn0/R", "dense0/W", "dense0/b"))
    # run groups on crafted places: a (3, 4) matrix stored transposed is one group of 3 runs of stride 3
    e = np.arange(12)
    rows, cols = np.divmod(e, 4)
    groups = layout._runs(e, np.zeros(12, int), cols * 3 + rows, np.ones(12))
    assert groups == [[0, 1, 0, 0, 4, 3, 3, 4, 1]]


def test_cli_exports_then_verifies_the_shipped_file_alone(tmp_path, capsys):
    out = tmp_path / "a.onnx"
    assert main(["export", ATTENTION, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    text = capsys.readouterr().out
    assert "the file itself, opset 17" in text and "verified" in text and "FAIL" not in text
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model 'attention'" in text and "GreedyDecode" in text and "total parameters: 18408" in text
    assert main(["show", str(out), "--svg", str(tmp_path / "a.svg")]) == 0  # drawn from the file alone
    assert "decoder: GreedyDecode" in (tmp_path / "a.svg").read_text()


def test_verify_checks_the_file_not_a_fresh_export(tmp_path, capsys):
    """A graph changed after export (tanh -> sigmoid in the readout path) fails verification of the file."""
    mf = load_model_file(ROOT / "samples" / "classic_rnn.py")
    proto = rg.export(mf.model, mf.params, lowering="scan")
    hits = 0
    for node in proto.graph.node:
        for attr in node.attribute:
            for body_node in attr.g.node:
                if body_node.op_type == "Tanh":
                    body_node.op_type, hits = "Sigmoid", hits + 1
    assert hits == 1
    onnx.save(proto, tmp_path / "tampered.onnx")
    assert main(["verify", str(tmp_path / "tampered.onnx")]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_files_without_a_description_are_refused_with_a_way_out(tmp_path, capsys):
    mf = load_model_file(ROOT / "samples" / "classic_rnn.py")
    proto = rg.export(mf.model, mf.params)
    keep = [p for p in proto.metadata_props if p.key != DESCRIPTION_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    onnx.save(proto, tmp_path / "bare.onnx")
    assert main(["verify", str(tmp_path / "bare.onnx")]) == 2
    err = capsys.readouterr().err
    assert "carries no model description (metadata 'rnngraph.description')" in err and "rnngraph export" in err
    assert main(["show", str(tmp_path / "bare.onnx")]) == 0  # still described as a graph
    assert "input  x" in capsys.readouterr().out
    assert main(["show", str(tmp_path / "bare.onnx"), "--png", str(tmp_path / "p.png")]) == 2
    assert "no model description to draw" in capsys.readouterr().err


def test_run_on_a_model_file_says_to_export_first(capsys):
    assert main(["run", ATTENTION]) == 2
    err = capsys.readouterr().err
    assert "is a Python model file; `run` needs" in err and "Export it first: rnngraph export" in err
    assert "-o model.onnx && rnngraph run model.onnx" in err
    assert main(["run", str(ROOT / "samples" / "lstm.toml")]) == 2
    assert "is a model description (.json or .toml); `run` needs" in capsys.readouterr().err


def test_load_reads_descriptions_and_python_model_files():
    model, params = rg.load(ROOT / "samples" / "lstm.toml", seed=4)
    python, _ = rg.load(ROOT / "samples" / "lstm.py")
    assert model.to_json() == python.to_json()
    np.testing.assert_array_equal(params["lstm0/W"], model.init(seed=4)["lstm0/W"])
    with pytest.raises(rg.ModelError, match=r"not a model file rnngraph reads: give a Python model file \(.py\), a"):
        rg.load(ROOT / "README.md")

