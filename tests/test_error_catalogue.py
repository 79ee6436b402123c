"""docs/errors.md, the bad-input catalogue: every line is a case here, raised and checked against the page.

The page's table is the source of the expected error (an rnngraph exception class, or the
command's exit code) and of the message; this file only holds how to cause each case. A
case must also write nothing: the folder it may write to stays empty.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.errors import RnnGraphError

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "errors.md"
CLASSIC = str(ROOT / "samples" / "classic_rnn.py")


def rows() -> dict[str, tuple[str, str]]:
    """case id -> (error, message) from the page's table rows ``| `id` | what | error | message |``."""
    out = {}
    for line in PAGE.read_text().splitlines():
        match = re.match(r"^\| `([a-z0-9-]+)` \|[^|]*\| `?([A-Za-z]+Error|exit \d+)`? \| (.*) \|$", line)
        if match:
            assert match.group(1) not in out, f"case {match.group(1)} listed twice"
            out[match.group(1)] = (match.group(2), match.group(3).replace("\\|", "|"))
    return out


def recurrent(cell: rg.Cell, features: int = 4) -> rg.Model:
    x = rg.Input("x", features=features)
    return rg.Model(x, {"y": rg.Recurrent(cell)(x)})


def session() -> rg.runtime.Session:
    model = recurrent(rg.RNN(3))
    return rg.runtime.Session(rg.export(model, model.init(0)))


def tokens_session() -> rg.runtime.Session:
    t = rg.Input("t", tokens=5)
    model = rg.Model(t, {"y": rg.Recurrent(rg.RNN(3))(rg.Embedding(5, 2)(t))})
    return rg.runtime.Session(rg.export(model, model.init(0)))


def count_session(**count: int) -> rg.runtime.Session:
    v, n = rg.Input("v", features=3, sequence=False), rg.Input("n", count=True, **count)
    model = rg.Model([v, n], {"y": rg.Generate(rg.RNN(3))(v, n)})
    return rg.runtime.Session(rg.export(model, model.init(0)))


def foreign_gru_session() -> rg.runtime.Session:
    return rg.runtime.Session(foreign_gru_model())


def foreign_gru_model() -> onnx.ModelProto:
    """A GRU model built with onnx.helper, with none of rnngraph's metadata (x is (time, batch, 4))."""
    rng = np.random.default_rng(0)
    weights = [helper.make_tensor(name, TensorProto.FLOAT, shape, rng.standard_normal(shape).ravel())
               for name, shape in (("W", [1, 9, 4]), ("R", [1, 9, 3]))]
    graph = helper.make_graph([helper.make_node("GRU", ["x", "W", "R"], ["y"], hidden_size=3)], "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def dot_attention_mismatch() -> None:
    src = rg.Input("src", tokens=5)
    memory = rg.Recurrent(rg.RNN(5))(rg.Embedding(5, 2)(src))
    rg.Decoder(rg.RNN(3), attention=rg.Attention("dot"), context=None,
               readout=rg.Dense(4, "softmax")).greedy(memory)


def write(path: pathlib.Path, content: str | bytes) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


X = np.zeros((2, 5, 4), np.float32)

#: case id -> what causes it, given a folder with inputs and the folder it may write to (which must stay empty)
def int8_copy(folder: pathlib.Path) -> str:
    """The classic RNN sample exported, and its int8 copy (both in `folder`)."""
    from rnngraph.exporters.onnx.precision import quantize_int8
    from rnngraph.verify import load_model_file

    mf = load_model_file(CLASSIC)
    rg.export(mf.model, mf.params, folder / "m.onnx")
    return str(quantize_int8(folder / "m.onnx", folder / "m.int8.onnx"))


CASES: dict[str, Callable[[pathlib.Path, pathlib.Path], object]] = {
    # describing a model
    "hidden-zero": lambda i, o: rg.RNN(0),
    "activation": lambda i, o: rg.RNN(4, activation="gelu"),
    "flag-not-bool": lambda i, o: rg.LSTM(4, peephole=1),
    "gru-reset": lambda i, o: rg.GRU(8),
    "keras-spelling": lambda i, o: rg.Recurrent(rg.LSTM(8), return_sequences=True),
    "torch-spelling": lambda i, o: rg.LSTM(8, num_layers=2),
    "typo": lambda i, o: rg.Dense(4, activaton="tanh"),
    "clockwork-split": lambda i, o: rg.Clockwork(10, groups=3),
    "clockwork-periods": lambda i, o: rg.Clockwork(8, periods=(1, 1)),
    "returns": lambda i, o: rg.Recurrent(rg.RNN(3), returns="all"),
    "merge-sizes": lambda i, o: rg.Bidirectional((rg.RNN(3), rg.RNN(4)), merge="sum")(rg.Input("x", features=4)),
    "residual-width": lambda i, o: rg.Stack([rg.RNN(3), rg.RNN(5)], residual=True)(rg.Input("x", features=4)),
    "stack-returns": lambda i, o: rg.Stack([rg.Recurrent(rg.RNN(3), returns="last")]),
    "dense-tokens": lambda i, o: rg.Dense(3)(rg.Input("t", tokens=5)),
    "attention-units": lambda i, o: rg.Attention("additive"),
    "attention-dot": lambda i, o: dot_attention_mismatch(),
    "input-name": lambda i, o: rg.Input("my input", features=3),
    "input-features": lambda i, o: rg.Input("x", features=0),
    "count-max-zero": lambda i, o: rg.Input("n", count=True, max=0),
    "max-not-count": lambda i, o: rg.Input("x", features=3, max=5),
    "model-output": lambda i, o: rg.Model(rg.Input("x", features=4), {"y": 3}),
    # parameters
    "params-missing": lambda i, o: recurrent(rg.RNN(3)).check_params({}),
    "params-shape": lambda i, o: recurrent(rg.RNN(3)).check_params(
        {**recurrent(rg.RNN(3)).init(0), "rnn0/W": np.zeros((3, 5), np.float32)}),
    "params-file": lambda i, o: recurrent(rg.RNN(3)).load_params(str(i / "none.npz")),
    # exporting
    "opset": lambda i, o: rg.export(recurrent(rg.RNN(3)), recurrent(rg.RNN(3)).init(0), opset=12),
    "lowering": lambda i, o: rg.export(recurrent(rg.RNN(3)), recurrent(rg.RNN(3)).init(0), lowering="fast"),
    "dtype": lambda i, o: rg.export(recurrent(rg.RNN(3)), recurrent(rg.RNN(3)).init(0), dtype="float16"),
    "float64-native": lambda i, o: rg.export(recurrent(rg.RNN(3)), recurrent(rg.RNN(3)).init(0), dtype="float64",
                                             lowering="native"),
    "export-no-dir": lambda i, o: rg.export(recurrent(rg.RNN(3)), recurrent(rg.RNN(3)).init(0),
                                            str(o / "missing" / "m.onnx")),
    "export-to-dir": lambda i, o: rg.export(recurrent(rg.RNN(3)), recurrent(rg.RNN(3)).init(0), str(i)),
    # running
    "no-model-file": lambda i, o: rg.runtime.Session(str(i / "none.onnx")),
    "feature-size": lambda i, o: session().run(x=np.zeros((2, 5, 3), np.float32)),
    "rank": lambda i, o: session().run(x=np.zeros((2, 4), np.float32)),
    "lengths-range": lambda i, o: session().run(x=X, lengths=np.array([6, 1])),
    "lengths-shape": lambda i, o: session().run(x=X, lengths=np.array([5])),
    "unknown-input": lambda i, o: session().run(x=X, z=X),
    "missing-input": lambda i, o: session().run(),
    "unknown-output": lambda i, o: session().run(["z"], x=X),
    "empty-foreign": lambda i, o: foreign_gru_session().run(x=np.zeros((0, 2, 4), np.float32)),
    "strings": lambda i, o: session().run(x=np.array([["a"]])),
    "token-range": lambda i, o: tokens_session().run(t=np.array([[1, 7]])),
    "token-floats": lambda i, o: tokens_session().run(t=np.array([[1.0, 2.0]])),
    "count-negative": lambda i, o: count_session().run(v=np.zeros((1, 3), np.float32), n=np.array(-1)),
    "count-max": lambda i, o: count_session().run(v=np.zeros((1, 3), np.float32), n=np.array(10_001)),
    "count-memory": lambda i, o: count_session(max=100).run(v=np.zeros((1, 3), np.float32), n=np.array(10**9)),
    "count-uint64": lambda i, o: count_session().run(v=np.zeros((1, 3), np.float32),
                                                     n=np.array(2**63 + 5, dtype=np.uint64)),
    # the command line
    "cli-empty": lambda i, o: main(["show", write(i / "e.onnx", b"")]),
    "cli-garbage": lambda i, o: main(["show", write(i / "g.onnx", "not a model\n")]),
    "cli-not-py": lambda i, o: main(["show", write(i / "model.txt", "import os\n")]),
    "cli-run-py": lambda i, o: main(["run", CLASSIC]),
    "cli-onnx-to-verify": lambda i, o: main(["verify", write(i / "m.onnx", b"\x08\x08")]),
    "cli-verify-int8-copy": lambda i, o: main(["verify", int8_copy(i)]),
    "cli-no-model": lambda i, o: main(["export", write(i / "m.py", "x = 1\n"), "-o", str(o / "m.onnx")]),
    "cli-model-raises": lambda i, o: main(["export", write(i / "m.py", "import rnngraph as rg\n\nrg.RNN(-1)\n"),
                                          "-o", str(o / "m.onnx")]),
    "cli-syntax": lambda i, o: main(["export", write(i / "m.py", "model = (\n"), "-o", str(o / "m.onnx")]),
    "cli-sys-exit": lambda i, o: main(["export", write(i / "m.py", "import sys\nsys.exit(0)\n"),
                                      "-o", str(o / "m.onnx")]),
    "cli-output-suffix": lambda i, o: main(["export", CLASSIC, "-o", str(o / "o.json")]),
    "cli-run-output-suffix": lambda i, o: main(["run", write(i / "m.onnx", b"\x08\x08"), "-o", str(o / "o.txt")]),
    "cli-input": lambda i, o: main(["export", CLASSIC, "-o", str(i / "m.onnx")]) or main(
        ["run", str(i / "m.onnx"), "--input", "x=abc"]),
    "cli-time": lambda i, o: main(["verify", CLASSIC, "--time", "0"]),
    "cli-unknown-option": lambda i, o: main(["export", CLASSIC, "-o", str(o / "m.onnx"), "--outptu", "x"]),
}


def test_page_and_cases_list_the_same_cases():
    assert sorted(rows()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_gets_the_documented_error(case, tmp_path, capsys):
    error, message = rows()[case]
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    if error.startswith("exit "):
        assert CASES[case](inputs, out) == int(error.split()[1])
        stderr = capsys.readouterr().err
        assert message in stderr and "Traceback" not in stderr
    else:
        with pytest.raises(RnnGraphError) as info:
            CASES[case](inputs, out)
        assert type(info.value).__name__ == error or any(c.__name__ == error for c in type(info.value).__mro__)
        assert message in str(info.value)
    assert list(out.iterdir()) == [], "nothing may be written"
