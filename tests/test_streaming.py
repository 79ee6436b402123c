"""Streaming chunk models: a sequence run in chunks of 1, 3, 7 and whole, the state carried by
`rnngraph.runtime.streaming`, equals the whole-sequence export, for every registered cell (alone, in
a residual Stack), with ragged lengths inside chunks; non-causal models are refused by layer name.

The agreement is printed (``pytest -rP tests/test_streaming.py``)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.compiler.streaming import streaming_refusal
from rnngraph.dsl import registry
from rnngraph.errors import ExportError, InputError, RnnGraphError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime.session import Session
from rnngraph.runtime.streaming import StreamingSession
from rnngraph.verify import load_model_file, nan_feeds, verify

CHUNKS = (1, 3, 7, None)  # None: the whole sequence as one chunk
FEATURES, TIME = 5, 11
LENGTHS = np.array([11, 4, 1, 8])  # row 2 ends in the first chunk, rows 1 and 3 inside later ones
STREAMING = rg.ExportOptions(streaming=True)
CELLS = registry.examples()
TOLERANCE = 2e-5


def cell_id(cell: object) -> str:
    return repr(cell).replace(" ", "")[:60]


def run_in_chunks(proto: object, feeds: dict[str, np.ndarray], chunk: int | None,
                  lengths: np.ndarray | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Model outputs joined over the chunks (`Streams.feed_in_chunks`), and the state after the last chunk."""
    first = next(iter(feeds.values()))
    streams = StreamingSession(proto).open(len(first))
    out = streams.feed_in_chunks(chunk or first.shape[1], **feeds, **({} if lengths is None else {"lengths": lengths}))
    return out, streams.state


def chunked_error(model: rg.Model, params: dict[str, np.ndarray], lengths: np.ndarray | None,
                  lowering: str = "auto") -> float:
    """The largest difference, over every chunk size, between chunked and whole runs (outputs and final states)."""
    feeds = model.example_inputs(len(LENGTHS), TIME, seed=3)
    feeds.pop("lengths", None)
    whole = Session(build_model_proto(model, params)).run(**feeds, **({} if lengths is None else {"lengths": lengths}))
    proto = build_model_proto(model, params, options=rg.ExportOptions(lowering=lowering, streaming=True))
    worst = 0.0
    for chunk in CHUNKS:
        got, _ = run_in_chunks(proto, feeds, chunk, lengths)
        for name, value in whole.items():
            assert got[name].shape == value.shape, (name, chunk)
            worst = max(worst, float(np.max(np.abs(got[name] - value))))
    return worst


def single(cell: rg.Cell) -> rg.Model:
    x = rg.Input("x", features=FEATURES)
    y, *states = rg.Recurrent(cell, returns=("sequence", "state"))(x)
    return rg.Model(x, {"y": rg.Dense(3, "tanh")(y), **{f"s{i}": s for i, s in enumerate(states)}})


def stacked(cell: rg.Cell) -> rg.Model:
    x = rg.Input("x", features=FEATURES)
    below = rg.Recurrent(rg.GRU(4, linear_before_reset=True))(x)
    top, *states = rg.Stack([rg.LSTM(4), cell], residual=(0,), returns=("sequence", "state"))(below)
    return rg.Model(x, {"y": top, **{f"s{i}": s for i, s in enumerate(states)}})


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("cell", CELLS, ids=[cell_id(c) for c in CELLS])
def test_every_cell_chunked_equals_whole(cell, lowering):
    """`native`: ONNX's own op where it computes the cell exactly (a Scan elsewhere), rows of length 0 included."""
    model = single(cell)
    params = model.init(seed=7)
    errors = {"ragged": chunked_error(model, params, LENGTHS, lowering),
              "full": chunked_error(model, params, None, lowering)}
    print(f"{cell!r}, {lowering}: max |chunked - whole| over chunks {CHUNKS}: {errors}")
    assert max(errors.values()) <= TOLERANCE


@pytest.mark.parametrize("cell", CELLS, ids=[cell_id(c) for c in CELLS])
def test_every_cell_in_a_residual_stack(cell):
    model = stacked(cell)
    error = chunked_error(model, model.init(seed=11), LENGTHS)
    print(f"Recurrent(GRU) → Stack[LSTM, {cell!r}]: max |chunked - whole| = {error:.2e}")
    assert error <= TOLERANCE


@pytest.mark.parametrize("form", ["dense", "ladder"])
def test_clockwork_phase_is_part_of_the_state(form):
    """A chunk of 3 under periods (1, 2, 4) starts mid-cycle; without the carried steps it would differ."""
    x = rg.Input("x", features=FEATURES)
    model = rg.Model(x, {"y": rg.Recurrent(rg.Clockwork(6, periods=(1, 2, 4)))(x)})
    params = model.init(seed=1)
    proto = build_model_proto(model, params, options=rg.ExportOptions(streaming=True, clockwork_form=form))
    feeds = {"x": np.random.default_rng(0).normal(size=(4, TIME, FEATURES)).astype(np.float32)}
    whole = Session(build_model_proto(model, params)).run(**feeds, lengths=LENGTHS)["y"]
    got, state = run_in_chunks(proto, feeds, 3, LENGTHS)
    np.testing.assert_allclose(got["y"], whole, atol=TOLERANCE)
    assert state["state_in/steps"][:, 0].tolist() == LENGTHS.tolist()
    # the same chunks with the clock restarted at each chunk (steps fed as 0) differ
    session = ort.InferenceSession(proto.SerializeToString())
    h = np.zeros((4, 6), np.float32)
    restarted = []
    for begin in range(0, TIME, 3):
        y, _, h = session.run(None, {"x": feeds["x"][:, begin:begin + 3], "lengths": np.clip(LENGTHS - begin, 0, 3),
                                     "start": np.zeros((4, 1), np.int32), "state_in/steps": np.zeros((4, 1), np.int64),
                                     "state_in/clockwork0/h": h})
        restarted.append(y)
    assert np.max(np.abs(np.concatenate(restarted, axis=1) - whole)) > 1e-2


def test_streams_are_independent_and_reset():
    """Two groups of streams over one session keep their own state; a reset stream starts over from zero."""
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(5, linear_before_reset=False))(x)})
    params = model.init(seed=2)
    session = StreamingSession(build_model_proto(model, params, options=STREAMING))
    data = np.random.default_rng(1).normal(size=(2, 6, 3)).astype(np.float32)
    whole = Session(build_model_proto(model, params)).run(x=data)["y"]
    a, b = session.open(2), session.open(1)
    first = a.feed(x=data[:, :4])["y"]
    b.feed(x=data[1:, :2])  # another group, other state
    np.testing.assert_allclose(np.concatenate([first, a.feed(x=data[:, 4:])["y"]], axis=1), whole, atol=TOLERANCE)
    assert a.steps.tolist() == [6, 6] and b.steps.tolist() == [2]
    a.reset([1])  # stream 1 restarts with data[0]: its output is stream 0's first step
    assert a.steps.tolist() == [6, 0]
    np.testing.assert_allclose(a.feed(x=data[:, :1][[1, 0]])["y"][1], whole[0, :1], atol=TOLERANCE)


@pytest.mark.parametrize("build,named", [
    (lambda x: rg.Bidirectional(rg.GRU(4, linear_before_reset=True))(x), "layer 'bigru0' (Bidirectional"),
    (lambda x: rg.Recurrent(rg.RNN(4), returns="last")(x), "returns 'last'"),
    (lambda x: rg.Recurrent(rg.LSTM(4), returns="mean")(x), "returns 'mean'"),
    (lambda x: rg.Recurrent(rg.RNN(4), reverse=True)(x), "runs in reverse"),
    (lambda x: rg.Stack([rg.RNN(4), rg.Recurrent(rg.RNN(4), reverse=True)])(x), "'stack0'/l1"),
    (lambda x: rg.Stack([rg.RNN(4), rg.Bidirectional(rg.RNN(4))])(x), "reads every sequence backward"),
])
def test_non_causal_models_are_refused_by_layer(build, named):
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": build(x)})
    with pytest.raises(ExportError, match="cannot be exported for streaming") as info:
        build_model_proto(model, model.init(0), options=STREAMING)
    assert named in str(info.value)


def test_a_name_the_chunk_model_needs_is_refused():
    start = rg.Input("start", features=3)
    model = rg.Model(start, {"y": rg.Recurrent(rg.RNN(4))(start)})
    with pytest.raises(ExportError, match="'start' has the name of the chunk model's reset input; rename it"):
        build_model_proto(model, model.init(0), options=STREAMING)


def test_token_streams_through_an_embedding():
    """Token ids (an Embedding is a per-step lookup) stream like features; ragged chunks of 2."""
    tokens = rg.Input("ids", tokens=11)
    model = rg.Model(tokens, {"y": rg.Recurrent(rg.LSTM(5, peephole=True))(rg.Embedding(11, 4)(tokens))})
    params = model.init(seed=8)
    ids = np.random.default_rng(5).integers(0, 11, size=(3, 7))
    lengths = np.array([7, 2, 5])
    whole = Session(build_model_proto(model, params)).run(ids=ids, lengths=lengths)["y"]
    got, _ = run_in_chunks(build_model_proto(model, params, options=STREAMING), {"ids": ids}, 2, lengths)
    np.testing.assert_allclose(got["y"], whole, atol=TOLERANCE)
    meta = ort.InferenceSession(build_model_proto(model, params, options=STREAMING).SerializeToString())
    assert json.loads(meta.get_modelmeta().custom_metadata_map["rnngraph.tokens"]) == {"ids": {"vocab": 11}}


def test_metadata_describes_the_state_layout():
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.LSTM(4))(rg.Recurrent(rg.ESN(6, outputs=2, feedback=True))(x))})
    proto = build_model_proto(model, model.init(0), options=STREAMING)
    meta = ort.InferenceSession(proto.SerializeToString()).get_modelmeta().custom_metadata_map
    state = json.loads(meta["rnngraph.state"])
    assert [s["input"] for s in state["states"]] == ["state_in/esn0/y", "state_in/esn0/x",
                                                    "state_in/lstm0/h", "state_in/lstm0/c"]
    assert [s["dims"] for s in state["states"]] == [["batch", 2], ["batch", 6], ["batch", 4], ["batch", 4]]
    graph_inputs = [i.name for i in proto.graph.input]
    assert [e["name"] for e in json.loads(meta["rnngraph.inputs"])] == graph_inputs
    assert graph_inputs == ["x", "lengths", "start", "state_in/steps", *[s["input"] for s in state["states"]]]
    assert [e["name"] for e in json.loads(meta["rnngraph.outputs"])] == [o.name for o in proto.graph.output]
    assert meta["rnngraph.dtype"] == "float32" and meta["rnngraph.version"] == rg.__version__


def test_bad_chunks_are_refused_in_words():
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.RNN(4))(x)})
    streams = StreamingSession(build_model_proto(model, model.init(0), options=STREAMING)).open(2)
    with pytest.raises(InputError, match=r"each chunk length must be in 0\.\.2"):
        streams.feed(x=np.zeros((2, 2, 3)), lengths=np.array([3, 1]))
    with pytest.raises(InputError, match=r"expected \(2, time ≥ 1"):
        streams.feed(x=np.zeros((3, 2, 3)))
    with pytest.raises(RnnGraphError, match="not a streaming chunk model"):
        StreamingSession(build_model_proto(model, model.init(0)))


SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))


def test_streaming_keyword_sample_frame_by_frame():
    """samples/streaming_keyword.py fed one frame at a time (ragged: a stream with no frame feeds length 0)."""
    mf = load_model_file(SAMPLES[0].parent / "streaming_keyword.py")
    feeds = mf.example_inputs(3, 20, 0)
    lengths = np.array([20, 13, 1])
    whole = Session(build_model_proto(mf.model, mf.params)).run(frames=feeds["frames"], lengths=lengths)
    got, state = run_in_chunks(build_model_proto(mf.model, mf.params, options=STREAMING),
                               {"frames": feeds["frames"]}, 1, lengths)
    error = float(np.max(np.abs(got["scores"] - whole["scores"])))
    print(f"streaming_keyword, frame by frame, lengths {lengths.tolist()}: max |by frame - whole| = {error:.2e}")
    assert error <= TOLERANCE and state["state_in/steps"][:, 0].tolist() == lengths.tolist()


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_streams_or_is_refused_by_name(path):
    """Each sample either streams (chunks of 3, ragged, equal to the whole run) or is refused naming a layer."""
    mf = load_model_file(path)
    if (reason := streaming_refusal(mf.model)) is not None:
        with pytest.raises(ExportError, match="cannot be exported for streaming: (layer|input) '"):
            build_model_proto(mf.model, mf.params, options=STREAMING)
        print(f"{path.stem}: refused: {reason}")
        return
    feeds = mf.example_inputs(3, 9, 0)
    lengths = feeds.pop("lengths", None)
    whole = Session(build_model_proto(mf.model, mf.params)).run(**feeds, **({} if lengths is None
                                                                              else {"lengths": lengths}))
    got, _ = run_in_chunks(build_model_proto(mf.model, mf.params, options=STREAMING), feeds, 3, lengths)
    error = max(float(np.max(np.abs(got[n] - v))) for n, v in whole.items())
    print(f"{path.stem}: streams; chunks of 3, lengths {None if lengths is None else lengths.tolist()}: "
          f"max |chunked - whole| = {error:.2e}")
    assert error <= TOLERANCE


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("cell", CELLS, ids=[cell_id(c) for c in CELLS])
def test_a_chunk_model_keeps_the_nan_rule(cell, lowering):
    """A NaN in a valid step of a chunk makes that step and every later one of its row NaN, on the native
    path too, where onnxruntime's LSTM/GRU/RNN alone would carry on with ordinary numbers: `verify` feeds the
    file in chunks, once clean and once with a NaN (its second pass), against the oracle."""
    model = single(cell)
    params = model.init(seed=3)
    proto = build_model_proto(model, params, lowering=lowering, options=rg.ExportOptions(lowering=lowering,
                                                                                         streaming=True))
    report = verify(model, params, batch=4, time=9, proto=proto, nan=True)
    assert report.ok, report.table()
    # verify skips the NaN pass only where the rule gives nothing to compare (a Clockwork cell, `nan_feeds`)
    has_nan_pass = nan_feeds(model, model.example_inputs(4, 9, 0)) is not None
    assert has_nan_pass == any(row.output.endswith("NaN step") for row in report.rows), report.table()
    assert has_nan_pass or isinstance(cell, rg.Clockwork)


def test_a_model_without_lengths_advances_every_stream_by_the_chunk():
    x = rg.Input("x", features=3, lengths=None)
    model = rg.Model(x, {"y": rg.Recurrent(rg.Clockwork(6, periods=(1, 3)))(x)})
    params = model.init(seed=1)
    data = np.random.default_rng(0).normal(size=(2, 8, 3)).astype(np.float32)
    got, state = run_in_chunks(build_model_proto(model, params, options=STREAMING), {"x": data}, 3, None)
    np.testing.assert_allclose(got["y"], Session(build_model_proto(model, params)).run(x=data)["y"], atol=TOLERANCE)
    assert state["state_in/steps"][:, 0].tolist() == [8, 8]


def test_a_chunk_model_file_verifies_against_the_oracle(tmp_path, capsys):
    """`rnngraph verify FILE.onnx` on a chunk model feeds it in chunks of 2 (the state carried) against the
    float64 oracle of the whole sequence."""
    x = rg.Input("x", features=FEATURES)
    h = rg.Recurrent(rg.ESN(7, outputs=3, feedback=True, leak=0.7))(rg.Recurrent(rg.Clockwork(6, periods=(1, 3)))(x))
    model = rg.Model(x, {"y": h}, name="chunked")
    params = model.init(seed=9)
    report = verify(model, params, batch=4, time=9, proto=build_model_proto(model, params, options=STREAMING))
    assert report.ok, report.table()
    rg.export(model, params, tmp_path / "chunked.onnx", options=STREAMING)
    assert main(["verify", str(tmp_path / "chunked.onnx"), "--time", "7"]) == 0
    assert "verified" in capsys.readouterr().out


@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_empty_chunks_in_bare_onnxruntime(lowering):
    """A chunk of 0 streams or of 0 steps: right shapes, states passed through (no kernel sees an empty tensor)."""
    import onnxruntime as ort

    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(5, linear_before_reset=True))(x)})
    proto = build_model_proto(model, model.init(0), options=rg.ExportOptions(lowering=lowering, streaming=True))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for batch, time in ((0, 3), (2, 0), (0, 0)):
        state = np.random.default_rng(batch + time).standard_normal((batch, 5)).astype(np.float32)
        feeds = {"x": np.zeros((batch, time, 3), np.float32), "start": np.zeros((batch, 1), np.int32),
                 "state_in/steps": np.full((batch, 1), 7, np.int64), "state_in/gru0/h": state}
        out = dict(zip(names, session.run(None, feeds), strict=True))
        assert out["y"].shape == (batch, time, 5)
        np.testing.assert_array_equal(out["state_out/gru0/h"], state)  # no step: the state passes through
        np.testing.assert_array_equal(out["state_out/steps"], np.full((batch, 1), 7))
