"""The command line as a new user meets it: help, versions, exit codes, inputs, file names, bad files."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rnngraph as rg
from rnngraph import cli
from rnngraph.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSIC = str(ROOT / "samples" / "classic_rnn.py")
SCRIPT = pathlib.Path(sys.executable).parent / "rnngraph"


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("tagger") / "tagger.onnx"
    assert main(["export", CLASSIC, "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize("command", [[], *([c] for c in cli.COMMANDS)])
def test_every_help_has_an_example_and_the_exit_codes(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:\n  rnngraph " in out
    assert "exit codes:\n  0    success\n  1    verification failed" in out
    assert "2    usage or input error" in out and "3    internal error" in out
    for example in cli.COMMANDS.get(command[0] if command else "", ("", "", []))[2]:
        assert example in out


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rnngraph {rg.__version__} (Python ") and "onnxruntime " in out


def test_help_imports_nothing_heavy():
    """`rnngraph --help` stays fast because building the parser loads no numpy, onnx or onnxruntime."""
    code = ("import sys; from rnngraph.cli import main; assert main(['--help']) == 0; "
            "heavy = [m for m in ('numpy', 'onnx', 'onnxruntime', 'networkx') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_help_states_the_exporters_default_opset(capsys):
    from rnngraph.exporters.onnx import DEFAULT_OPSET

    assert cli.DEFAULT_OPSET == DEFAULT_OPSET
    main(["export", "--help"])
    assert f"(default: {DEFAULT_OPSET})" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err
    assert main(["export", CLASSIC]) == 2
    assert "required: -o/--output" in capsys.readouterr().err
    assert main(["verify", CLASSIC, "--batch", "x"]) == 2
    assert "argument --batch: expected a positive integer, received 'x'" in capsys.readouterr().err


def test_internal_error_is_one_line_with_code_3(monkeypatch, capsys):
    def broken(args):
        raise ValueError("boom")

    monkeypatch.setattr(cli, "cmd_show", broken)
    assert main(["show", CLASSIC]) == 3
    err = capsys.readouterr().err
    assert err.startswith("rnngraph: internal error (a bug in rnngraph): ValueError: boom\n")
    assert "--debug" in err and "RNNGRAPH_DEBUG=1" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="boom"):
        main(["--debug", "show", CLASSIC])
    with pytest.raises(ValueError, match="boom"):
        main(["show", "--debug", CLASSIC])
    monkeypatch.setenv("RNNGRAPH_DEBUG", "1")
    with pytest.raises(ValueError, match="boom"):
        main(["show", CLASSIC])


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_show", interrupted)
    assert main(["show", CLASSIC]) == 130
    assert capsys.readouterr().err == "rnngraph: interrupted\n"


def test_input_literals_and_files(tmp_path, tagger, capsys):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 16)).round(3)
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    out = tmp_path / "out.npz"
    literal = str(x.tolist()).replace(" ", "")
    assert main(["run", str(tagger), "--input", f"x={literal}", "--input", "lengths=[3,1]", "-o", str(out)]) == 0
    from_literal = np.load(out)["y"]
    assert main(["run", str(tagger), "--input", f"x={tmp_path / 'x.npy'}", "--input", "lengths=[3,1]",
                 "-o", str(out)]) == 0
    np.testing.assert_array_equal(from_literal, np.load(out)["y"])
    expected = rg.runtime.Session(str(tagger)).run(x=x.astype(np.float32), lengths=np.array([3, 1]))["y"]
    np.testing.assert_allclose(from_literal, expected, rtol=1e-6)
    assert np.abs(from_literal[0]).sum() > 0 and not from_literal[1, 1:].any()


def test_count_literal(tmp_path, capsys):
    model_file = tmp_path / "gen.py"
    model_file.write_text(
        "import rnngraph as rg\n"
        "v = rg.Input('v', features=3, sequence=False)\n"
        "n = rg.Input('steps', count=True)\n"
        "model = rg.Model([v, n], {'y': rg.Generate(rg.RNN(4), readout=rg.Dense(2))(v, n)})\n")
    assert main(["export", str(model_file), "-o", str(tmp_path / "gen")]) == 0
    assert main(["run", str(tmp_path / "gen.onnx"), "--input", "v=[[0.5,-1,2]]", "--input", "steps=5",
                 "-o", str(tmp_path / "g")]) == 0
    assert np.load(tmp_path / "g.npz")["y"].shape == (1, 5, 2)


@pytest.mark.parametrize("value,message", [
    ("x", "--input takes NAME=FILE.npy, NAME=NUMBER or NAME=[LIST], received 'x'"),
    ("x=", "--input takes NAME=FILE.npy"),
    ("x=abc", "--input x: 'abc' is neither a .npy file nor a number or nested list of numbers"),
    ("x=True", "--input x: 'True' is neither a .npy file nor a number"),
    ("x=[[1,2],[3]]", "--input x: '[[1,2],[3]]' is not rectangular"),
    ("x=missing.npy", "--input x: cannot read 'missing.npy' as a .npy file"),
])
def test_bad_input_values(value, message, tagger, capsys):
    assert main(["run", str(tagger), "--input", value]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("given,written", [("m", "m.onnx"), ("m.onnx", "m.onnx"), ("m.ONNX", "m.ONNX")])
def test_export_output_names(given, written, tmp_path, capsys):
    assert main(["export", CLASSIC, "-o", str(tmp_path / given)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == [written]


@pytest.mark.parametrize("command,suffix", [("export", ".onnx"), ("run", ".npz")])
def test_other_output_suffixes_are_refused(command, suffix, tmp_path, tagger, capsys):
    model = CLASSIC if command == "export" else str(tagger)
    assert main([command, model, "-o", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert f"expected a {suffix} file name, received a .json one; write e.g. '{tmp_path / ('o' + suffix)}'" in err
    assert list(tmp_path.iterdir()) == []


def test_run_output_gets_npz(tmp_path, tagger, capsys):
    assert main(["run", str(tagger), "--input", "x=[[[0.1]]]".replace("0.1", ",".join(["0.1"] * 16)),
                 "-o", str(tmp_path / "res")]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["res.npz"]


def test_onnx_files_are_recognized_by_content(tmp_path, tagger, capsys):
    for name in ("model.ONNX", "weights.bin", "noextension"):
        (tmp_path / name).write_bytes(tagger.read_bytes())
        assert main(["show", str(tmp_path / name)]) == 0
        assert "input  x" in capsys.readouterr().out


def test_only_py_files_run_as_code(tmp_path, capsys):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()\nimport rnngraph as rg\n"
    for name in ("model.txt", "model.pyx", "model"):
        (tmp_path / name).write_text(code)
        assert main(["show", str(tmp_path / name)]) == 2
        assert "is not an ONNX file (its first bytes are not an ONNX header), and only files named *.py are run " \
               "as Python model files" in capsys.readouterr().err
        assert not marker.exists()
    (tmp_path / "upper.PY").write_text(code)
    assert main(["show", str(tmp_path / "upper.PY")]) == 2  # run (names are case-insensitive), but defines no model
    assert "defines no `model`" in capsys.readouterr().err and marker.exists()


@pytest.mark.parametrize("command", ["export", "verify"])
def test_onnx_given_where_a_model_file_is_needed(command, tagger, tmp_path, capsys):
    """An rnngraph export describes itself (tests/test_self_describing.py); another ONNX file is refused."""
    extra = ["-o", str(tmp_path / "x.onnx")] if command == "export" else []
    assert main([command, str(tagger), *extra]) == 0
    other = tmp_path / "other.bin"
    other.write_bytes(b"\x08\x08")  # an ONNX header (any name), no rnngraph description
    assert main([command, str(other), *extra]) == 2
    assert f"{other}: carries no model description (metadata 'rnngraph.description')" in capsys.readouterr().err


def test_run_on_a_model_file_says_export_first(capsys):
    assert main(["run", CLASSIC]) == 2
    assert f"'{CLASSIC}' is a Python model file; `run` needs an exported ONNX file. Export it first: " \
           f"rnngraph export {CLASSIC} -o model.onnx" in capsys.readouterr().err


def test_sys_exit_in_a_model_file_is_an_error(tmp_path, capsys):
    script = tmp_path / "exits.py"
    script.write_text("import sys\n\nsys.exit(0)\n")
    assert main(["export", str(script), "-o", str(tmp_path / "out.onnx")]) == 2
    assert f"{script}: the model file called sys.exit(0) at line 3; a model file must define `model` and return. " \
           'Put script-only code under `if __name__ == "__main__":`' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exits.py"]


@pytest.mark.parametrize("content,message", [
    (b"", "is empty; expected an ONNX file"),
    (b"garbage\n", "is not an ONNX file"),
    (b"\x08\x07\xff\xff\xff\xff", "is not a readable ONNX file"),
])
def test_bad_files_get_one_line_and_exit_2_from_the_console_script(content, message, tmp_path):
    bad = tmp_path / "e.onnx"
    bad.write_bytes(content)
    for command in (["show"], ["run"]):
        result = subprocess.run([str(SCRIPT), *command, str(bad)], capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("rnngraph: error: ") and "Traceback" not in result.stderr
        if command == ["show"]:
            assert message in result.stderr


def test_directory_and_missing_file(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    assert "is a directory; give a model file (.py) or an ONNX file" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "none.py")]) == 2
    assert "no model file at" in capsys.readouterr().err
