"""Decoder step export (rnngraph/compiler/decoder_step.py, runtime/step_decoder.py): greedy decoding driven one
token at a time from Python equals the whole model's in-graph greedy Loop and the oracle — tokens exactly, scores
and attention weights within float32 tolerance — for every sample decoder and every registered cell as a decoder."""

from __future__ import annotations

import json
import pathlib
import runpy
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.compiler.options import ExportOptions
from rnngraph.dsl import registry
from rnngraph.errors import ExportError, InputError, RnnGraphError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.runtime.step_decoder import StepDecoder
from rnngraph.runtime.streaming import StreamingSession
from rnngraph.verify import compare
from tests.test_decoder import SRC_VOCAB, TGT_VOCAB, cell_with_output

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def step_decoder(model: rg.Model, params: Mapping[str, np.ndarray], lowering: str = "auto") -> StepDecoder:
    files = rg.export_decoder_step(model, params, lowering=lowering)
    return StepDecoder(files.encoder, files.step)


def assert_step_equals_whole(model: rg.Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray],
                             max_len: int | None = None, lowering: str = "auto") -> dict[str, np.ndarray]:
    """Step-driven greedy decoding vs the whole model in onnxruntime and vs the oracle; returns the stepped outputs.

    The model's greedy outputs are found by their layer outputs: tokens, scores[, weights]."""
    decoder = step_decoder(model, params, lowering)
    sources = {k: v for k, v in feeds.items() if k in decoder.encoder.inputs}
    got = decoder.greedy(max_len, **sources)
    whole = Session(build_model_proto(model, params, options=ExportOptions(lowering=lowering))).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    names = [n for n, s in model.outputs.items() if s.node == decoder.layout["decoder"]]
    assert len(names) == len(got), (names, list(got))
    for mine, theirs in zip(got, names, strict=True):  # tokens, scores[, weights], in the layer's output order
        for side, value in (("whole model", whole[theirs]), ("oracle", ref[theirs])):
            assert got[mine].shape == value.shape, f"{mine}: stepped {got[mine].shape} vs {side} {value.shape}"
            row = compare(mine, got[mine], value)
            assert row.ok, f"{mine} vs {side}: max abs err {row.max_abs:.3e} ({row.note})"
    return got


def source_feeds(batch: int, time: int, seed: int, ragged: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {"src": rng.integers(0, SRC_VOCAB, (batch, time))}
    if ragged:
        feeds["lengths"] = rng.integers(1, time + 1, batch)
        feeds["lengths"][0] = time
    return feeds


def greedy_model(cell: rg.Cell, attention: rg.Attention | None, *, context: str | None = "last", use: str = "init",
                 enc_hidden: int = 7, lengths: bool = True, max_len: int = 7, runtime_max_len: bool = False,
                 **decoder: object) -> rg.Model:
    src = rg.Input("src", tokens=SRC_VOCAB, **({} if lengths else {"lengths": None}))
    memory = rg.Recurrent(rg.RNN(enc_hidden))(rg.Embedding(SRC_VOCAB, 6)(src))
    dec = rg.Decoder(cell, attention=attention, context=context, use=use, readout=rg.Dense(TGT_VOCAB, "softmax"),
                     embedding=5, max_len=max_len, **decoder)
    n = rg.Input("max_len", count=True)
    out = dec.greedy(memory, n if runtime_max_len else None, name="decoder")
    names = ("tokens", "scores", "weights")
    return rg.Model([src, n] if runtime_max_len else src, dict(zip(names, out, strict=False)), name="greedy")


# -- every sample decoder ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", ["attention", "attention_reverse"])
def test_sample_attention_decoders_step_equals_whole(sample: str) -> None:
    ns = runpy.run_path(str(SAMPLES / f"{sample}.py"))
    model = ns["model"]
    params = ns.get("params") or model.init(seed=3)
    feeds = ns["feeds"](5, 7, 1)
    got = assert_step_equals_whole(model, params, feeds, int(feeds["max_len"]) if "max_len" in feeds else None)
    assert got["tokens"].shape[1] >= 1


@pytest.mark.parametrize("context,use", [(c, u) for c in ("last", "last_dense", "all_dense")
                                         for u in ("init", "every")])
def test_sample_encoder_decoder_step_equals_whole(context: str, use: str) -> None:
    ns = runpy.run_path(str(SAMPLES / "encoder_decoder.py"))
    model = ns["build"](context, use, "greedy")
    feeds = ns["make_feeds"](model, 4, 6, 2)
    assert_step_equals_whole(model, model.init(seed=5), feeds)


def test_trained_reversal_decodes_the_same_token_by_token() -> None:
    """The trained sample: the stepped decode reverses its sources exactly as the in-graph one does."""
    ns = runpy.run_path(str(SAMPLES / "attention_reverse.py"))
    held = ns["examples"](64, seed=99)
    decoder = step_decoder(ns["model"], ns["params"])
    got = decoder.greedy(src=held["src"], lengths=held["lengths"])
    whole = Session(rg.export(ns["model"], ns["params"])).run(src=held["src"], lengths=held["lengths"])
    np.testing.assert_array_equal(got["tokens"], whole["tokens"])
    assert ns["exact_match"](got["tokens"], held["target"], held["lengths"]) == \
        ns["exact_match"](whole["tokens"], held["target"], held["lengths"])


# -- every registered cell as the decoder's cell -------------------------------------------------------------------
ATTENTIONS = [rg.Attention("additive", units=3), rg.Attention("dot"), rg.Attention("general"), None]
CELLS = [(f"{entry.name}{i}", cell) for entry in registry.entries() for i, cell in enumerate(entry.examples)]


@pytest.mark.parametrize("case", range(len(CELLS)), ids=[name for name, _ in CELLS])
def test_every_registered_cell_steps_like_the_whole_decoder(case: int) -> None:
    """Each example of each cell (odd sizes), with an attention kind, context and use that rotate over the cases."""
    _, example = CELLS[case]
    attention = ATTENTIONS[case % len(ATTENTIONS)]
    hidden = 5 + case % 3
    cell = cell_with_output(example, hidden)
    state = next(iter(cell.state_sizes().values()))
    context, use = [("last", "init"), ("all_dense", "every"), ("last_dense", "init"), (None, "init")][case % 4]
    if attention is None and context is None:
        context = "last"
    model = greedy_model(cell, attention, context=context, use=use,
                         enc_hidden=state if attention is not None and attention.score == "dot" else 7)
    assert_step_equals_whole(model, model.init(seed=case), source_feeds(3, 6, case))


@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_batch_of_one_unpadded_and_a_runtime_max_len(lowering: str) -> None:
    model = greedy_model(rg.LSTM(9, peephole=True), rg.Attention("additive", units=5), lengths=False,
                         runtime_max_len=True)
    feeds = {**source_feeds(1, 5, 0, ragged=False), "max_len": np.array(4, np.int64)}
    got = assert_step_equals_whole(model, model.init(seed=1), feeds, max_len=4, lowering=lowering)
    assert got["tokens"].shape[0] == 1 and got["tokens"].shape[1] <= 4


def test_ragged_sources_with_a_time_of_one_and_zero_steps() -> None:
    model = greedy_model(rg.GRU(7, linear_before_reset=False), rg.Attention("general"))
    params = model.init(seed=4)
    assert_step_equals_whole(model, params, source_feeds(3, 1, 2))
    empty = step_decoder(model, params).greedy(0, **source_feeds(2, 4, 0))
    assert empty["tokens"].shape == (2, 0) and empty["scores"].shape == (2, 0, TGT_VOCAB)
    assert empty["weights"].shape == (2, 0, 4)


def test_a_teacher_forced_decoder_fed_its_targets_token_by_token_gives_its_scores() -> None:
    src = rg.Input("src", tokens=SRC_VOCAB)
    tgt = rg.Input("tgt", tokens=TGT_VOCAB, time="tgt_time", lengths=None)
    memory = rg.Recurrent(rg.GRU(6, linear_before_reset=True))(rg.Embedding(SRC_VOCAB, 4)(src))
    dec = rg.Decoder(rg.LSTM(6), attention=rg.Attention("dot"), readout=rg.Dense(TGT_VOCAB), embedding=3)
    scores, weights = dec.teacher_forced(memory, tgt, name="decoder")
    model = rg.Model([src, tgt], {"scores": scores, "weights": weights})
    params = model.init(seed=8)
    feeds = {**source_feeds(3, 5, 3), "tgt": np.random.default_rng(0).integers(0, TGT_VOCAB, (3, 4))}
    ref = oracle.run(model, params, **feeds)
    streams = step_decoder(model, params).open(src=feeds["src"], lengths=feeds["lengths"])
    for t in range(4):
        out = streams.step(feeds["tgt"][:, t])
        np.testing.assert_allclose(out["scores"], ref["scores"][:, t], atol=1e-4, rtol=1e-3)
        np.testing.assert_allclose(out["weights"], ref["weights"][:, t], atol=1e-4, rtol=1e-3)
        np.testing.assert_array_equal(out["argmax"], ref["scores"][:, t].argmax(-1))


def test_independent_groups_of_streams_interleaved() -> None:
    """Two groups opened on one decoder, stepped alternately, each equal to its own greedy run."""
    model = greedy_model(rg.Clockwork(8, periods=(1, 3)), rg.Attention("additive", units=4), use="every",
                         context="last_dense")
    decoder = step_decoder(model, model.init(seed=6))
    a_src, b_src = source_feeds(2, 5, 10), source_feeds(3, 4, 11)
    a, b = decoder.open(**a_src), decoder.open(**b_src)
    token_a, token_b = np.full(2, 1), np.full(3, 1)
    stepped_a, stepped_b = [], []
    for _ in range(5):
        out_a, out_b = a.step(token_a), b.step(token_b)
        token_a, token_b = out_a["argmax"], out_b["argmax"]
        stepped_a.append(token_a)
        stepped_b.append(token_b)
    for stepped, src in ((stepped_a, a_src), (stepped_b, b_src)):
        whole = decoder.greedy(5, **src)  # the same, with EOS handling: equal up to each row's EOS
        for row, tokens in enumerate(whole["tokens"]):
            n = len(tokens) if 2 not in tokens else list(tokens).index(2) + 1
            np.testing.assert_array_equal(np.stack(stepped, 1)[row, :n], tokens[:n])


# -- layout, metadata, CLI -----------------------------------------------------------------------------------------
def test_both_files_carry_one_layout_and_the_step_signature_follows_it() -> None:
    model = greedy_model(rg.LSTM(5), rg.Attention("additive", units=3), use="every", context="all_dense")
    files = rg.export_decoder_step(model, model.init(seed=0))
    meta = [{p.key: p.value for p in proto.metadata_props} for proto in (files.encoder, files.step)]
    layout = json.loads(meta[1]["rnngraph.state"])
    assert meta[0]["rnngraph.state"] == meta[1]["rnngraph.state"]
    assert (layout["kind"], layout["bos"], layout["eos"], layout["pad"], layout["vocab"]) == \
        ("decoder_step", 1, 2, 0, TGT_VOCAB)
    assert [i.name for i in files.step.graph.input] == ["token", "state_in/steps", "state_in/decoder/h",
                                                          "state_in/decoder/c", "context/memory", "context/keys",
                                                          "context/bias", "context/c"]
    assert [o.name for o in files.encoder.graph.output] == ["context/memory", "context/keys", "context/bias",
                                                            "context/c", "state_out/decoder/h", "state_out/decoder/c"]
    assert [i["name"] for i in json.loads(meta[1]["rnngraph.inputs"])] == [i.name for i in files.step.graph.input]
    assert [s["dims"] for s in layout["states"]] == [["batch", 5], ["batch", 5]]


def test_cli_export_streaming_writes_the_encoder_and_the_step_model(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "att.onnx"
    done = subprocess.run([sys.executable, "-m", "rnngraph.cli", "export", str(SAMPLES / "attention.py"),
                           "--streaming", "-o", str(out)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "att.encoder.onnx" in done.stdout and "att.step.onnx" in done.stdout and "StepDecoder(" in done.stdout
    assert not out.exists()
    ns = runpy.run_path(str(SAMPLES / "attention.py"))
    feeds = ns["feeds"](3, 6, 4)
    got = StepDecoder(tmp_path / "att.encoder.onnx", tmp_path / "att.step.onnx").greedy(
        int(feeds["max_len"]), src=feeds["src"], lengths=feeds["lengths"])
    whole = Session(rg.export(ns["model"], ns["model"].init(seed=0))).run(**feeds)
    np.testing.assert_array_equal(got["tokens"], whole["tokens"])
    shown = subprocess.run([sys.executable, "-m", "rnngraph.cli", "show", str(tmp_path / "att.step.onnx")],
                           capture_output=True, text=True, check=True).stdout
    assert '"kind": "decoder_step"' in shown and "state_in/decoder/c" in shown


# -- refusals ------------------------------------------------------------------------------------------------------
def test_whole_model_streaming_export_of_a_decoder_points_at_the_step_export() -> None:
    ns = runpy.run_path(str(SAMPLES / "attention.py"))
    with pytest.raises(ExportError, match=r"layer 'decoder' .*export_decoder_step\(model, params"):
        rg.export(ns["model"], ns["model"].init(), options=ExportOptions(streaming=True))


def test_a_model_without_exactly_one_decoder_is_refused() -> None:
    x = rg.Input("x", features=3)
    plain = rg.Model(x, rg.Recurrent(rg.GRU(4, linear_before_reset=True))(x))
    with pytest.raises(ExportError, match=r"has no decoder; a decoder step export needs exactly one Decoder node"):
        rg.export_decoder_step(plain, plain.init())
    src = rg.Input("src", tokens=SRC_VOCAB)
    memory = rg.Recurrent(rg.RNN(5))(rg.Embedding(SRC_VOCAB, 3)(src))
    dec = rg.Decoder(rg.RNN(5), readout=rg.Dense(TGT_VOCAB), embedding=3)
    two = rg.Model(src, {"a": dec.greedy(memory, name="d1")[0], "b": dec.greedy(memory, name="d2")[0]})
    with pytest.raises(ExportError, match=r"has 2 decoder nodes \(d1, d2\)"):
        rg.export_decoder_step(two, two.init())
    with pytest.raises(ExportError, match="give both `encoder_path` and `step_path`"):
        rg.export_decoder_step(two, two.init(), "only.onnx")
    one = greedy_model(rg.RNN(5), None)
    with pytest.raises(ExportError, match=r"a decoder step export is float32 only; received dtype='float64'"):
        rg.export_decoder_step(one, one.init(), options=ExportOptions(dtype="float64"))


def test_the_cli_refuses_flags_the_step_export_does_not_take(tmp_path: pathlib.Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rnngraph.cli", "export", str(SAMPLES / "attention.py"),
                           "--streaming", "--quantize", "int8", "-o", str(tmp_path / "a.onnx")],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "--quantize cannot be combined with --streaming for a decoder model" in done.stderr
    assert not list(tmp_path.iterdir())


def test_runtime_errors_name_the_file_kind_and_the_bad_tokens(tmp_path: pathlib.Path) -> None:
    model = greedy_model(rg.RNN(5), None)
    params = model.init(seed=0)
    files = rg.export_decoder_step(model, params)
    with pytest.raises(RnnGraphError, match=r"part of a decoder step export .*StepDecoder\(ENCODER.onnx, STEP.onnx\)"):
        StreamingSession(files.step)
    with pytest.raises(RnnGraphError, match="encoder model is not part of a decoder step export"):
        StepDecoder(rg.export(model, params), files.step)
    other = rg.export_decoder_step(greedy_model(rg.RNN(6), None), greedy_model(rg.RNN(6), None).init())
    with pytest.raises(RnnGraphError, match="not one pair"):
        StepDecoder(files.encoder, other.step)
    streams = StepDecoder(files.encoder, files.step).open(**source_feeds(2, 3, 0))
    with pytest.raises(InputError, match=r"ids must be in \[0, 13\) .*received \[1, 13\]"):
        streams.step([1, 13])
    with pytest.raises(InputError, match=r"expected integer token ids of shape \(2,\), one per stream"):
        streams.step([1.0, 2.0])
    with pytest.raises(InputError, match="max_len: expected a count ≥ 0, received -1"):
        streams.greedy(-1)


def test_a_step_file_is_not_written_as_a_triton_model(tmp_path: pathlib.Path) -> None:
    from rnngraph.exporters.triton import write_triton_repository

    model = greedy_model(rg.RNN(5), None)
    files = rg.export_decoder_step(model, model.init())
    with pytest.raises(ExportError, match="part of a decoder step export; Triton's sequence batcher starts every "
                                          "state at zero"):
        write_triton_repository(files.step, str(tmp_path), "step")
    assert not list(tmp_path.iterdir())
