"""Review of the foundation and the LSTM/GRU cells: defects found after the first build, each pinned by a test.

- padded steps that hold NaN or infinity leaked into every output on the Scan path (and into Dense);
- one lengths input shared by sequences with different time axes crashed inside onnxruntime;
- exporting to a directory, a corrupt .onnx for `show`, a failing model file, `params` of the wrong
  type: tracebacks instead of rnngraph errors; `run -o out` named a file it did not write;
- weights inside Scan bodies were not counted for the external-data threshold;
- the session: ragged nested lists, and CUDA asked for but silently replaced by the CPU;
- the oracle and `load_params`: numpy errors instead of rnngraph errors, integer arrays cast silently;
- bad seeds: numpy's ValueError/TypeError; `Session.run("yz")` asked for the outputs 'y' and 'z'.
Plus a gap: the PyTorch converters were checked numerically only where torch is installed; here they
are checked against PyTorch's documented equations, written out in NumPy.
"""

import pathlib
import re

import numpy as np
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.dsl import registry
from rnngraph.errors import ExportError, InputError, ModelError, ParameterError, RnnGraphError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import verify
from tests.conftest import assert_close
from tests.conftest import tagger as shared_tagger

#: every example of every registered cell (`rnngraph.dsl.registry`): a new cell is checked here too
CELLS = {f"{entry.name}{i}": cell for entry in registry.entries() for i, cell in enumerate(entry.examples)}


def garbage_padded(feeds: dict, value: float) -> dict:
    """`feeds` with every padded step of `x` set to `value`."""
    x = feeds["x"].copy()
    for b, length in enumerate(feeds["lengths"]):
        x[b, length:] = value
    return {**feeds, "x": x}


# -- padding may hold anything -----------------------------------------------------------------------------------
@pytest.mark.parametrize("garbage", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("cell", CELLS)
def test_padded_steps_are_never_read(cell, lowering, reverse, garbage):
    """docs/README.md: past its length a row's state is frozen. What the caller put there (NaN from a
    pandas frame, inf) must not reach any output: the Scan's blend s + m·(new − s) gives
    NaN for m = 0 and new = NaN, so the padded steps must be cleared before the loop."""
    x = rg.Input("x", features=4)
    y, last = rg.Recurrent(CELLS[cell], reverse=reverse, returns=("sequence", "last"))(x)
    model = rg.Model(x, {"y": y, "last": last, "proj": rg.Dense(3)(x)}, name="padded")
    params = model.init(1)
    feeds = model.example_inputs(4, 6, seed=5)
    assert feeds["lengths"].min() < 6  # some rows are padded
    proto = build_model_proto(model, params, lowering=lowering)
    clean = Session(proto).run(**garbage_padded(feeds, 0.0))
    dirty = Session(proto).run(**garbage_padded(feeds, garbage))
    ref = oracle.run(model, params, **garbage_padded(feeds, garbage))
    for name in model.outputs:
        assert np.isfinite(dirty[name]).all(), f"{name}: padding leaked into the outputs"
        np.testing.assert_array_equal(dirty[name], clean[name], err_msg=name)
        assert_close(dirty[name], ref[name], "float32", what=name)


def test_padded_steps_are_never_read_in_a_deep_bidirectional_stack():
    x = rg.Input("x", features=4)
    h = rg.Stack([rg.Bidirectional(rg.GRU(5, linear_before_reset=True)), rg.LSTM(5)])(x)
    model = rg.Model(x, {"y": h})
    params = model.init(2)
    feeds = model.example_inputs(3, 5, seed=3)
    for lowering in ("scan", "native"):
        proto = build_model_proto(model, params, lowering=lowering)
        got = Session(proto).run(**garbage_padded(feeds, np.nan))
        assert_close(got["y"], oracle.run(model, params, **feeds)["y"], "float32", what=lowering)


def test_a_padded_input_passed_through_is_zero_past_each_length():
    """Both sides agree with docs/README.md ("outputs are 0 past the length"), also for an input that is an output."""
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"echo": x, "h": rg.Recurrent(rg.RNN(4))(x)})
    feeds = garbage_padded(model.example_inputs(3, 5, seed=1), np.nan)
    report = verify(model, model.init(0), feeds=feeds)
    assert report.ok, report.table()
    got = Session(build_model_proto(model, model.init(0))).run(**feeds)["echo"]
    for b, length in enumerate(feeds["lengths"]):
        np.testing.assert_array_equal(got[b, length:], 0.0)
        np.testing.assert_array_equal(got[b, :length], feeds["x"][b, :length])


# -- one lengths input, two time axes ----------------------------------------------------------------------------
def test_a_lengths_input_cannot_pad_two_time_axes():
    """Lengths checked against one time axis and applied to another crashed inside onnxruntime."""
    a = rg.Input("a", features=3)
    b = rg.Input("b", features=3, time="tgt_time")  # default lengths="lengths", as `a`
    with pytest.raises(ModelError, match=r"inputs 'a' \(time axis 'time'\) and 'b' \(time axis 'tgt_time'\) share "
                                         r"the lengths input 'lengths'.*lengths='b_lengths'"):
        rg.Model([a, b], {"ya": rg.Dense(2)(a), "yb": rg.Dense(2)(b)})
    b = rg.Input("b", features=3, time="tgt_time", lengths="b_lengths")
    model = rg.Model([a, b], {"ya": rg.Dense(2)(a), "yb": rg.Dense(2)(b)})
    assert model.lengths == {"lengths": ["a"], "b_lengths": ["b"]}
    same = rg.Input("c", tokens=5)  # same time axis: sharing is fine
    assert rg.Model([a, same], {"ya": rg.Dense(2)(a), "yc": same}).lengths == {"lengths": ["a", "c"]}


# -- exporter ----------------------------------------------------------------------------------------------------
def tagger() -> tuple[rg.Model, dict[str, np.ndarray]]:
    return shared_tagger(rg.LSTM(7), activation="none")


def test_export_to_a_directory_is_an_export_error(tmp_path):
    model, params = tagger()
    with pytest.raises(ExportError, match=r"it is a directory; give a file name"):
        rg.export(model, params, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_weights_inside_scan_bodies_count_for_external_data(tmp_path, monkeypatch):
    """The recurrent weights of a Scan live in its body; a model whose top level is small but
    whose bodies are large must still go to external data."""
    import rnngraph.exporters.onnx as exporter

    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Recurrent(rg.RNN(60))(x)})
    params = model.init(0)
    proto = build_model_proto(model, params, lowering="scan")
    top = sum(len(t.raw_data) for t in proto.graph.initializer)
    scan = next(n for n in proto.graph.node if n.op_type == "Scan")
    assert sum(len(t.raw_data) for t in scan.attribute[0].g.initializer) == 60 * 60 * 4  # R (60, 60) in the body
    monkeypatch.setattr(exporter, "EXTERNAL_DATA_BYTES", top + 100)
    path = tmp_path / "m.onnx"
    rg.export(model, params, path, lowering="scan")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "m.onnx" and re.fullmatch(r"m\.onnx\.[0-9a-f]{16}\.data", names[1]) and len(names) == 2
    feeds = model.example_inputs(2, 5)
    assert_close(Session(path).run(**feeds)["y"], oracle.run(model, params, **feeds)["y"], "float32")


# -- command line ------------------------------------------------------------------------------------------------
def test_show_a_corrupt_onnx_file(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not a model")
    assert main(["show", str(junk)]) == 2
    assert "is not an ONNX file (its first bytes are not an ONNX header)" in capsys.readouterr().err


@pytest.mark.parametrize("source,match", [
    ("import rnngraph as rg\nx = rg.Input('x', features=3)\nmodel = undefined\n",
     r"running the model file failed at line 3: NameError: name 'undefined' is not defined"),
    ("model = (\n", r"running the model file failed at line 1: SyntaxError"),
    ("import rnngraph as rg\nx = rg.Input('x', features=3)\nmodel = rg.Model(x, rg.Dense(2)(x))\nparams = [1]\n",
     r"`params` must be a dict of parameter name -> array .*received list"),
])
def test_a_failing_model_file_is_a_one_line_error(tmp_path, capsys, source, match):
    path = tmp_path / "m.py"
    path.write_text(source)
    for command in ("verify", "export", "show"):
        args = [command, str(path)] + (["-o", str(tmp_path / "m.onnx")] if command == "export" else [])
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("rnngraph: error: ") and "Traceback" not in err
        assert re.search(match, err), err


def test_run_names_the_file_it_writes(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    samples = pathlib.Path(__file__).resolve().parents[1] / "samples"
    assert main(["export", str(samples / "classic_rnn.py"), "-o", str(model)]) == 0
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 16), np.float32))
    capsys.readouterr()
    assert main(["run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "out")]) == 0
    assert f"wrote {tmp_path / 'out.npz'}:" in capsys.readouterr().out
    assert np.load(tmp_path / "out.npz")["y"].shape == (2, 3, 10)
    assert main(["run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "no" / "o.npz")]) == 2
    assert "cannot write" in capsys.readouterr().err


# -- session -----------------------------------------------------------------------------------------------------
def test_ragged_nested_lists_are_an_input_error():
    model, params = tagger()
    session = Session(rg.export(model, params))
    with pytest.raises(InputError, match=r"input 'x': expected a rectangular array, received list"):
        session.run(x=[[[0.0] * 4] * 3, [[0.0] * 4] * 2])
    with pytest.raises(InputError, match=r"input 'lengths': expected a rectangular array"):
        session.run(x=np.zeros((2, 3, 4)), lengths=[[1, 2], [3]])


def test_one_output_name_as_a_string():
    """``run("yz", ...)`` asked for the outputs 'y' and 'z' (the letters of the string)."""
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"yz": rg.Dense(3)(x), "w": rg.Dense(2)(x)})
    session = Session(rg.export(model, model.init(0)))
    out = session.run("yz", x=np.zeros((1, 2, 4)))
    assert list(out) == ["yz"] and out["yz"].shape == (1, 2, 3)


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider':UserWarning")
def test_cuda_that_fails_to_start_is_not_silently_the_cpu(monkeypatch):
    """onnxruntime replaces a CUDA provider that fails to start by the CPU with one log line;
    device='cuda' must then be an error, not a slow surprise."""
    import rnngraph.runtime.session as session_module

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is present here: the fallback cannot be provoked")
    available = [*ort.get_available_providers(), "CUDAExecutionProvider"]
    monkeypatch.setattr(session_module.ort, "get_available_providers", lambda: available)
    model, params = tagger()
    with pytest.raises(RnnGraphError, match=r"could not start its CUDA provider \(it would run on "
                                            r"CPUExecutionProvider\)"):
        Session(rg.export(model, params), device="cuda")


# -- oracle and parameters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3), (2, 3, 4, 1)])
def test_oracle_refuses_wrong_shapes_in_words(shape):
    model, params = tagger()
    with pytest.raises(InputError, match=rf"oracle: input 'x' must have shape \(batch, time, 4\), "
                                         rf"received shape \({', '.join(map(str, shape))}\)"):
        oracle.run(model, params, x=np.zeros(shape))


@pytest.mark.parametrize("lengths", ["lengths", None])
def test_oracle_refuses_time_zero_like_the_session(lengths):
    x = rg.Input("x", features=4, lengths=lengths)
    model = rg.Model(x, {"last": rg.Recurrent(rg.LSTM(5), returns="last")(x)})
    with pytest.raises(InputError, match=r"oracle: `x` has time 0; every sequence needs at least one step"):
        oracle.run(model, model.init(0), x=np.zeros((2, 0, 4)))
    assert oracle.run(model, model.init(0), x=np.zeros((0, 3, 4)))["last"].shape == (0, 5)  # batch 0 is fine


@pytest.mark.parametrize("seed", [-1, 1.5, None, True])
def test_a_bad_seed_is_an_rnngraph_error(seed, capsys):
    """numpy's ValueError/TypeError came out of model.init, example_inputs and `verify --seed -1`."""
    model, _ = tagger()
    with pytest.raises(ParameterError, match=rf"invalid value for `seed`: expected a non-negative integer, "
                                             rf"received {re.escape(repr(seed))}"):
        model.init(seed)
    with pytest.raises(InputError, match=r"invalid value for `seed`"):
        model.example_inputs(seed=seed)
    if seed == -1:
        samples = pathlib.Path(__file__).resolve().parents[1] / "samples"
        assert main(["verify", str(samples / "classic_rnn.py"), "--seed", "-1"]) == 2
        assert "invalid value for `seed`" in capsys.readouterr().err
    assert model.init(np.int64(3)).keys() == model.init(3).keys()


def test_load_params_refuses_other_files_and_integer_arrays(tmp_path):
    model, params = tagger()
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(ParameterError, match=r"x.npy': not an .npz archive"):
        model.load_params(tmp_path / "x.npy")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ParameterError, match=r"junk.npz': not an .npz archive"):
        model.load_params(tmp_path / "junk.npz")
    with pytest.raises(ParameterError, match=r"cannot read parameters from .*: no such file"):
        model.load_params(tmp_path / "none.npz")
    np.savez(tmp_path / "ints.npz", **{**params, "dense0/b": np.array([1, 2, 3])})
    with pytest.raises(ParameterError, match=r"`dense0/b`: expected a float array, received dtype int64"):
        model.load_params(tmp_path / "ints.npz")
    model.save_params(params, tmp_path / "ok.npz")
    loaded = model.load_params(tmp_path / "ok.npz")
    assert all(loaded[k].dtype == np.float32 and np.array_equal(loaded[k], params[k]) for k in params)



# -- PyTorch layout against PyTorch's documented equations (runs without torch installed) ------------------------
def torch_reference(kind: str, sd: dict, x: np.ndarray, nonlinearity: str = "tanh") -> np.ndarray:
    """torch.nn.RNN/LSTM/GRU (batch_first, one layer) as their docs write them, on one row ``x (time, in)``."""
    def sigmoid(a):
        return 1.0 / (1.0 + np.exp(-a))

    w_ih, w_hh, b_ih, b_hh = (sd[k].astype(np.float64) for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                                                  "bias_hh_l0"))
    hidden = w_hh.shape[1]
    h, c, ys = np.zeros(hidden), np.zeros(hidden), []
    for x_t in x:
        gi, gh = w_ih @ x_t + b_ih, w_hh @ h + b_hh
        if kind == "rnn":
            h = np.tanh(gi + gh) if nonlinearity == "tanh" else np.maximum(gi + gh, 0.0)
        elif kind == "lstm":
            i, f, g, o = np.split(gi + gh, 4)  # torch: i, f, g, o
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        else:
            (i_r, i_z, i_n), (h_r, h_z, h_n) = np.split(gi, 3), np.split(gh, 3)  # torch: r, z, n
            r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
            n = np.tanh(i_n + r * h_n)  # h_n holds b_hn: the reset gate scales it too
            h = (1.0 - z) * n + z * h
        ys.append(h)
    return np.array(ys)


@pytest.mark.parametrize("kind,cell", [
    ("rnn", lambda: rg.RNN(5)), ("rnn_relu", lambda: rg.RNN(5, activation="relu")), ("lstm", lambda: rg.LSTM(5)),
    ("gru", lambda: rg.GRU(5, linear_before_reset=True)),
])
def test_from_pytorch_matches_pytorch_equations(kind, cell):
    from rnngraph.interop import from_pytorch, set_node_params

    gates = {"rnn": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}[kind]
    rng = np.random.default_rng(8)
    shapes = {"weight_ih_l0": (gates * 5, 3), "weight_hh_l0": (gates * 5, 5), "bias_ih_l0": (gates * 5,),
              "bias_hh_l0": (gates * 5,)}
    sd = {k: rng.uniform(-0.7, 0.7, shape).astype(np.float32) for k, shape in shapes.items()}
    x = rg.Input("x", features=3, lengths=None)
    model = rg.Model(x, {"y": rg.Recurrent(cell(), name="rec")(x)})
    params = set_node_params(model, model.init(0), "rec", from_pytorch(cell(), sd))
    xs = rng.standard_normal((2, 6, 3)).astype(np.float32)
    ref = np.stack([torch_reference(kind.split("_")[0], sd, row, "relu" if kind == "rnn_relu" else "tanh")
                    for row in xs])
    assert_close(oracle.run(model, params, x=xs)["y"], ref, "reference", what="oracle")
    for lowering in ("scan", "native"):
        got = Session(build_model_proto(model, params, lowering=lowering)).run(x=xs)["y"]
        assert_close(got, ref, "float32", what=lowering)
