"""Triton's sequence batcher for streaming chunk models: the config parses into tritonclient's ModelConfig
with the implicit state and the START control of the chunk model, and chunks of several interleaved
sequences, batched and routed as the sequence batcher does (per-sequence state, zero at a sequence's
start), give each sequence its whole-sequence run."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort

import rnngraph as rg
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.exporters.triton import triton_config, write_triton_repository
from rnngraph.runtime.session import Session

STREAMING = rg.ExportOptions(streaming=True)


def keyword_model() -> rg.Model:
    frames = rg.Input("frames", features=6)
    h = rg.Stack([rg.GRU(7, linear_before_reset=True), rg.Clockwork(6, periods=(1, 3))])(frames)
    return rg.Model(frames, {"scores": rg.Dense(3, "softmax")(h)}, name="kws")


def test_sequence_batcher_config_parses(tmp_path, model_config_pb2):
    from google.protobuf import text_format

    model = keyword_model()
    proto = build_model_proto(model, model.init(0), options=STREAMING)
    folder = write_triton_repository(proto, tmp_path, "kws", max_batch_size=4)
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.max_batch_size == 4 and not config.HasField("dynamic_batching")
    assert [i.name for i in config.input] == ["frames", "lengths"] and [o.name for o in config.output] == ["scores"]
    batcher = config.sequence_batching
    assert batcher.oldest.max_candidate_sequences == 4
    (control,) = batcher.control_input
    assert control.name == "start"
    assert model_config_pb2.ModelSequenceBatching.Control.Kind.Name(control.control[0].kind) == "CONTROL_SEQUENCE_START"
    assert list(control.control[0].int32_false_true) == [0, 1]
    layout = json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.state"])
    expected = [layout["steps"], *layout["states"]]
    assert [(s.input_name, s.output_name) for s in batcher.state] == [(e["input"], e["output"]) for e in expected]
    types = model_config_pb2.DataType
    assert [(types.Name(s.data_type), list(s.dims)) for s in batcher.state] == [
        ("TYPE_INT64", [1]), ("TYPE_FP32", [7]), ("TYPE_FP32", [6])]
    for entry in batcher.state:
        (initial,) = entry.initial_state
        assert initial.zero_data and list(initial.dims) == list(entry.dims) and initial.data_type == entry.data_type
    # every name the config gives Triton is a tensor of the model
    graph = {v.name for v in [*proto.graph.input, *proto.graph.output]}
    assert {control.name} | {n for s in batcher.state for n in (s.input_name, s.output_name)} <= graph


def test_stateless_models_keep_dynamic_batching():
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.RNN(4))(x)})
    config = triton_config(build_model_proto(model, model.init(0)), "tagger")
    assert "dynamic_batching { }" in config and "sequence_batching" not in config


def test_interleaved_sequences_as_the_sequence_batcher_runs_them():
    """Five sequences of different lengths, sent as chunks of 4 frames; at each tick the batcher takes a random
    subset of the sequences with a request pending, in random slot order, and feeds each slot its sequence's
    state (zero on its first request, with START = 1 there), keeping the state the model gives back."""
    model = keyword_model()
    params = model.init(5)
    proto = build_model_proto(model, params, options=STREAMING)
    layout = json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.state"])
    carried = {s["input"]: s["output"] for s in [layout["steps"], *layout["states"]]}
    session = ort.InferenceSession(proto.SerializeToString())
    inputs = {i.name: i for i in session.get_inputs()}
    rng = np.random.default_rng(4)
    lengths = [13, 4, 9, 1, 8]
    sequences = [rng.normal(size=(n, 6)).astype(np.float32) for n in lengths]
    chunk = 4
    sent = [0] * len(sequences)
    held: dict[int, dict[str, np.ndarray]] = {}  # the batcher's state per sequence (correlation id)
    got: list[list[np.ndarray]] = [[] for _ in sequences]
    while any(s < n for s, n in zip(sent, lengths, strict=True)):
        pending = [i for i, n in enumerate(lengths) if sent[i] < n]
        batch = list(rng.permutation(pending)[: rng.integers(1, len(pending) + 1)])
        frames = np.zeros((len(batch), chunk, 6), np.float32)
        valid = np.zeros(len(batch), np.int64)
        feeds = {name: [] for name in carried}
        start = np.zeros((len(batch), 1), np.int32)
        for slot, seq in enumerate(batch):
            piece = sequences[seq][sent[seq]:sent[seq] + chunk]
            frames[slot, :len(piece)], valid[slot] = piece, len(piece)
            if seq not in held:  # a new sequence: the initial state (zero) and the START control
                start[slot] = 1
                held[seq] = {name: np.zeros(inputs[name].shape[1:], np.int64 if "int64" in inputs[name].type
                                            else np.float32) for name in carried}
            for name in carried:
                feeds[name].append(held[seq][name])
        out = session.run(None, {"frames": frames, "lengths": valid, "start": start,
                                 **{name: np.stack(v) for name, v in feeds.items()}})
        named = dict(zip([o.name for o in session.get_outputs()], out, strict=True))
        for slot, seq in enumerate(batch):
            got[seq].append(named["scores"][slot, :valid[slot]])
            held[seq] = {name: named[output][slot] for name, output in carried.items()}
            sent[seq] += int(valid[slot])
    whole = Session(build_model_proto(model, params))
    worst = 0.0
    for seq, frames in enumerate(sequences):
        expected = whole.run(frames=frames[None])["scores"][0]
        worst = max(worst, float(np.max(np.abs(np.concatenate(got[seq]) - expected))))
        assert held[seq]["state_in/steps"].tolist() == [lengths[seq]]
    print(f"sequence batcher, 5 interleaved sequences in chunks of {chunk}: max |chunked - whole| = {worst:.2e}")
    assert worst <= 2e-5
