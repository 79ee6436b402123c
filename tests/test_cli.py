"""The command line: export, verify, run, show, demo."""

import pathlib
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from rnngraph.cli import main
from tests.conftest import every_node

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSIC = str(ROOT / "samples" / "classic_rnn.py")


def test_export_writes_a_checked_model(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", CLASSIC, "-o", str(out), "--lowering", "native", "--opset", "13"]) == 0
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 13
    assert "RNN" in {n.op_type for n in every_node(proto.graph)}  # in the branches of its NaN-rule If
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("time", [1, 500])
def test_verify_long_and_short(time, capsys):
    assert main(["verify", CLASSIC, "--time", str(time)]) == 0
    out = capsys.readouterr().out
    assert f"time {time}" in out and "verified" in out and "FAIL" not in out


def test_verify_fails_on_a_wrong_model(tmp_path, capsys, monkeypatch):
    """A deliberately broken lowering must make verify exit 1 (the check can fail)."""
    import rnngraph.compiler.idioms as lowering

    original = lowering.ACTIVATIONS["tanh"]
    monkeypatch.setitem(lowering.ACTIVATIONS, "tanh", "Sigmoid")
    assert main(["verify", CLASSIC, "--lowering", "scan"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert original == "Tanh"


def test_run_reads_npy_and_writes_npz(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    assert main(["export", CLASSIC, "-o", str(model)]) == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "lengths.npy", np.array([3, 1]))
    out = tmp_path / "out.npz"
    args = ["run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--input", f"lengths={tmp_path / 'lengths.npy'}"]
    assert main([*args, "-o", str(out)]) == 0
    y = np.load(out)["y"]
    assert y.shape == (2, 3, 10)
    np.testing.assert_allclose(y[0].sum(-1), 1.0, rtol=1e-5)  # softmax rows
    np.testing.assert_array_equal(y[1, 1:], 0.0)  # padded steps are zero
    assert main(args) == 0
    assert "y (2, 3, 10) float32" in capsys.readouterr().out


def test_run_errors_are_clean(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.onnx")]) == 2
    assert "rnngraph: error: no model file at" in capsys.readouterr().err
    model = tmp_path / "m.onnx"
    main(["export", CLASSIC, "-o", str(model)])
    assert main(["run", str(model), "--input", "x"]) == 2
    assert "--input takes NAME=FILE.npy" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 5), np.float32))
    assert main(["run", str(model), "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    assert "input 'x': axis 2 must be 16" in capsys.readouterr().err


def test_show_model_file_and_onnx(tmp_path, capsys):
    assert main(["show", CLASSIC]) == 0
    out = capsys.readouterr().out
    assert "Recurrent(RNN(hidden=32))" in out and "total parameters: 1930" in out and "Scan×1" in out
    model = tmp_path / "m.onnx"
    main(["export", CLASSIC, "-o", str(model)])
    capsys.readouterr()
    assert main(["show", str(model)]) == 0
    out = capsys.readouterr().out
    assert "input  x" in out and "['batch', 'time', 16]" in out and "file size" in out


def test_bad_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    assert main(["verify", str(bad)]) == 2
    assert "defines no `model`" in capsys.readouterr().err
    assert main(["verify", CLASSIC, "--time", "0"]) == 2
    assert "argument --time: must be at least 1, received 0" in capsys.readouterr().err


def test_demo_prints_a_verified_table(tmp_path, capsys):
    for name in ("classic_rnn.py", "srn.py"):
        shutil.copy(ROOT / "samples" / name, tmp_path / name)
    assert main(["demo", "--samples", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "classic_rnn" in out and "srn" in out and "2 of 2 samples verified" in out
    # the float16 and int8 copies: their sizes and the largest error of their float outputs against the oracle
    assert "f16 bytes" in out and "int8 err" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("classic_rnn"))
    f16_bytes, f16_err, int8_bytes, int8_err = int(row[-4]), float(row[-3]), int(row[-2]), float(row[-1])
    assert f16_bytes > 0 and int8_bytes > 0
    assert 0 < f16_err < 1e-2 and 0 < int8_err < 1e-1  # reduced precision: not exact, but close


def test_console_script_is_installed():
    exe = pathlib.Path(sys.executable).parent / "rnngraph"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo" in result.stdout
