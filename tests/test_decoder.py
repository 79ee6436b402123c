"""Encoder-decoder (docs/encoder-decoder.md): every context × use, teacher-forced and greedy, every cell, padding.

Each model here has both a teacher-forced and a greedy node on the same memory, so
one export checks both lowerings against the oracle.
"""

from __future__ import annotations

import pathlib
import re
import runpy
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.dsl import registry
from rnngraph.dsl.cells.base import Cell
from rnngraph.errors import ModelError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime.session import Session
from rnngraph.verify import TOLERANCES, compare, verify
from tests.conftest import SHAPES, assert_matches, count_nodes, run_both

SRC_VOCAB, TGT_VOCAB = 11, 13

def cell_with_output(example: Cell, h: int) -> Cell:
    """`example` resized so that its output state has `h` units (Clockwork: 2h units in two groups)."""
    if isinstance(example, rg.ESN):
        return replace(example, outputs=h)
    if isinstance(example, rg.Clockwork):
        return rg.Clockwork(2 * h, periods=(1, 2), activation=example.activation)
    return replace(example, hidden=h)


#: every example of every registered cell (`rnngraph.dsl.registry`), resizable to a given output size
CELL_FACTORIES: dict[str, Callable[[int], Cell]] = {
    f"{entry.name}{i}": (lambda h, cell=cell: cell_with_output(cell, h))
    for entry in registry.entries() for i, cell in enumerate(entry.examples)
}


def seq2seq(dec_cell: Cell | None = None, *, attention: rg.Attention | None = None, context: str | None = "last",
            use: str = "init", pool: str = "mean", enc_hidden: int = 7, runtime_max_len: bool = False,
            max_len: int = 6, greedy: bool = True, teacher: bool = True, **decoder: object) -> rg.Model:
    """Token source → Embedding → RNN encoder → decoder (teacher-forced and/or greedy)."""
    src = rg.Input("src", tokens=SRC_VOCAB)
    tgt = rg.Input("tgt", tokens=TGT_VOCAB, time="tgt_time", lengths="tgt_lengths")
    n = rg.Input("max_len", count=True)
    memory = rg.Recurrent(rg.RNN(enc_hidden))(rg.Embedding(SRC_VOCAB, 6)(src))
    dec = rg.Decoder(dec_cell or rg.RNN(8), attention=attention, context=context, use=use, pool=pool,
                     readout=rg.Dense(TGT_VOCAB, "softmax"), embedding=5, max_len=max_len, **decoder)
    inputs, outputs = [src], {}
    if teacher:
        inputs.append(tgt)
        tf = dec.teacher_forced(memory, tgt)
        outputs.update(zip(("scores", "weights"), tf if isinstance(tf, tuple) else (tf,), strict=False))
    if greedy:
        if runtime_max_len:
            inputs.append(n)
        gr = dec.greedy(memory, n if runtime_max_len else None)
        outputs.update(zip(("tokens", "greedy_scores", "greedy_weights"), gr, strict=False))
    return rg.Model(inputs, outputs, name="seq2seq")


def feeds_for(model: rg.Model, batch: int, time: int, seed: int = 0, tgt_time: int | None = None,
              max_len: int = 6) -> dict[str, np.ndarray]:
    """Ragged source (`time` steps) and target (`tgt_time`, default time + 2) token batches."""
    rng = np.random.default_rng(seed)
    m = tgt_time if tgt_time is not None else time + 2
    feeds = {"src": rng.integers(0, SRC_VOCAB, (batch, time)), "lengths": rng.integers(1, time + 1, batch)}
    feeds["lengths"][0] = time
    if "tgt" in model.inputs:
        feeds["tgt"] = rng.integers(0, TGT_VOCAB, (batch, m))
        feeds["tgt_lengths"] = rng.integers(1, m + 1, batch)
        feeds["tgt_lengths"][-1] = m
    if "max_len" in model.inputs:
        feeds["max_len"] = np.array(max_len, dtype=np.int64)
    return feeds


COMBINATIONS = [(c, u) for c in ("last", "last_dense", "all_dense") for u in ("init", "every")]


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
@pytest.mark.parametrize("context,use", COMBINATIONS)
def test_context_and_use_match_oracle(context: str, use: str, batch: int, time: int, lowering: str) -> None:
    model = seq2seq(rg.RNN(8), context=context, use=use)
    got = assert_matches(model, model.init(seed=batch + time), feeds=feeds_for(model, batch, time), lowering=lowering)
    assert got["scores"].shape == (batch, time + 2, TGT_VOCAB)
    assert got["tokens"].shape[0] == batch and got["tokens"].shape[1] <= 6


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("cell", ["LSTM0", "GRU0"])  # the cells with a native op
@pytest.mark.parametrize("context,use", COMBINATIONS)
def test_context_and_use_with_gated_cells(context: str, use: str, cell: str, lowering: str) -> None:
    model = seq2seq(CELL_FACTORIES[cell](8), context=context, use=use, enc_hidden=5)
    assert_matches(model, model.init(seed=7), feeds=feeds_for(model, 4, 9), lowering=lowering)


@pytest.mark.parametrize("attention", [None, rg.Attention("additive", units=4)])
def test_teacher_forcing_greedy_tokens_reproduces_greedy_scores(attention: rg.Attention | None) -> None:
    """The two lowerings agree with each other: same node name, same parameters, same path."""
    src = rg.Input("src", tokens=SRC_VOCAB)
    tgt = rg.Input("tgt", tokens=TGT_VOCAB, time="tgt_time", lengths=None)
    memory = rg.Recurrent(rg.RNN(7))(rg.Embedding(SRC_VOCAB, 6)(src))
    dec = rg.Decoder(rg.RNN(8), attention=attention, readout=rg.Dense(TGT_VOCAB, "softmax"), embedding=5, max_len=7)
    greedy = rg.Model(src, dict(zip(("tokens", "scores"), dec.greedy(memory, name="decoder"), strict=False)))
    tf = dec.teacher_forced(memory, tgt, name="decoder")
    teacher = rg.Model([src, tgt], {"scores": tf[0] if isinstance(tf, tuple) else tf})
    params = greedy.init(seed=2)
    teacher.check_params(params)  # one parameter set serves both models
    feeds = {"src": np.random.default_rng(0).integers(0, SRC_VOCAB, (1, 6))}
    out = Session(build_model_proto(greedy, params)).run(**feeds)
    fed = np.concatenate([[[1]], out["tokens"][:, :-1]], axis=1)  # BOS, then each emitted token
    again = Session(build_model_proto(teacher, params)).run(**feeds, tgt=fed)
    tol = TOLERANCES["float32"]
    np.testing.assert_allclose(again["scores"], out["scores"], atol=tol.atol, rtol=tol.rtol)


@pytest.mark.parametrize("attention", [None, "additive", "dot", "general"])
@pytest.mark.parametrize("context,pool", [("last", "mean"), ("all_dense", "mean"), ("all_dense", "max")])
def test_unpadded_source_and_target(context: str, pool: str, attention: str | None) -> None:
    """Inputs declared without lengths take the unmasked paths (Gather of the last step, ReduceMean/Max, no bias)."""
    src = rg.Input("src", tokens=SRC_VOCAB, lengths=None)
    tgt = rg.Input("tgt", tokens=TGT_VOCAB, time="tgt_time", lengths=None)
    memory = rg.Recurrent(rg.RNN(7))(rg.Embedding(SRC_VOCAB, 6)(src))
    att = rg.Attention(attention, units=3 if attention == "additive" else None) if attention else None
    dec = rg.Decoder(rg.RNN(7), attention=att, context=context, pool=pool, use="every",
                     readout=rg.Dense(TGT_VOCAB, "softmax"), embedding=4, max_len=5)
    tf = dec.teacher_forced(memory, tgt)
    outputs = {"scores": tf[0] if isinstance(tf, tuple) else tf}
    outputs.update(zip(("tokens", "greedy_scores", "greedy_weights"), dec.greedy(memory), strict=False))
    model = rg.Model([src, tgt], outputs)
    assert not model.lengths
    rng = np.random.default_rng(5)
    feeds = {"src": rng.integers(0, SRC_VOCAB, (3, 6)), "tgt": rng.integers(0, TGT_VOCAB, (3, 4))}
    assert_matches(model, model.init(seed=5), feeds=feeds)


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("context_units", [8, 3])  # 3 ≠ hidden 8: the init projection
def test_all_dense_pooling_and_projection(pool: str, context_units: int) -> None:
    model = seq2seq(rg.RNN(8), context="all_dense", use="init", pool=pool, context_units=context_units,
                    context_activation="relu")
    assert ("decoder0/init/W" in model.param_specs()) == (context_units != 8)
    assert_matches(model, model.init(seed=5), feeds=feeds_for(model, 4, 9), lowering="scan")


def test_last_context_with_a_projection_into_a_larger_state() -> None:
    model = seq2seq(rg.RNN(10), context="last", use="init", enc_hidden=7)
    assert model.param_specs()["decoder0/init/W"].shape == (10, 7)
    assert_matches(model, model.init(seed=2), feeds=feeds_for(model, 3, 5))


@pytest.mark.parametrize("cell", sorted(CELL_FACTORIES))
@pytest.mark.parametrize("use", ["init", "every"])
def test_every_cell_decodes(cell: str, use: str) -> None:
    model = seq2seq(CELL_FACTORIES[cell](6), context="last_dense", use=use)
    for lowering in ("scan", "native", "auto"):
        assert_matches(model, model.init(seed=1), feeds=feeds_for(model, 3, 5), lowering=lowering)


def test_every_registered_cell_is_covered() -> None:
    covered = {type(f(4)) for f in CELL_FACTORIES.values()}
    assert {entry.cell_type for entry in registry.entries()} <= covered


def test_greedy_stops_when_every_row_emitted_eos_and_pads_after() -> None:
    model = seq2seq(rg.RNN(8), teacher=False, max_len=12)
    params = model.init(seed=0)
    params["decoder0/readout/b"] = params["decoder0/readout/b"].copy()
    params["decoder0/readout/b"][2] += 3.0  # EOS (id 2) likely, but not at once for every row
    got = assert_matches(model, params, feeds=feeds_for(model, 4, 6))
    tokens, scores = got["tokens"], got["greedy_scores"]
    assert tokens.shape[1] < 12, "decoding should stop before max_len once every row has emitted EOS"
    assert (tokens == 2).any(axis=1).all()
    for row, row_scores in zip(tokens, scores, strict=True):
        end = int(np.argmax(row == 2))
        assert (row[end + 1:] == 0).all() and not row_scores[end + 1:].any()
        np.testing.assert_allclose(row_scores[: end + 1].sum(axis=-1), 1.0, rtol=1e-5)
    assert tokens[:, -1].tolist().count(2) >= 1


@pytest.mark.parametrize("max_len", [0, 1, 4, 20])
def test_runtime_max_len(max_len: int) -> None:
    model = seq2seq(rg.RNN(8), teacher=False, runtime_max_len=True)
    got = assert_matches(model, model.init(seed=3), feeds=feeds_for(model, 3, 5, max_len=max_len))
    assert got["tokens"].shape[0] == 3 and got["tokens"].shape[1] <= max_len
    assert got["greedy_scores"].shape == (3, got["tokens"].shape[1], TGT_VOCAB)


# native layers: the NaN rule behind an If (rnngraph/compiler/nan_rule.py, by_batch.py); 228 and 273 before
@pytest.mark.parametrize("attention,nodes", [(None, 225), (rg.Attention("additive", units=4), 262)])
def test_node_count_does_not_depend_on_sequence_length(attention: rg.Attention | None, nodes: int) -> None:
    """One export of a fixed size (loop bodies included) serves every source and target length."""
    model = seq2seq(rg.LSTM(7), attention=attention, context="all_dense",
                    use="every")
    params = model.init(seed=6)
    proto = build_model_proto(model, params)
    assert count_nodes(proto.graph) == nodes
    hist = op_histogram(proto.graph)
    assert hist["Loop"] == 1 and hist["Scan"] >= 1
    session = Session(proto)
    for time in (5, 300):
        feeds = feeds_for(model, 2, time, tgt_time=time)  # source and target lengths both vary
        assert_matches(model, params, feeds=feeds)
        assert session.run(**feeds)["tokens"].shape[0] == 2


# -- errors -------------------------------------------------------------------------------------------------------
READOUT = rg.Dense(TGT_VOCAB, "softmax")


@pytest.mark.parametrize("kwargs,message", [
    ({"cell": None}, r"Decoder: invalid value for `cell`: expected a cell such as RNN\(32\)"),
    ({"attention": "additive"}, r"Decoder: invalid value for `attention`: expected an Attention\(...\) or None, "
                                r"received 'additive'"),
    ({"context": None}, r"invalid value for `context`: .*None only with attention.*never read the source"),
    ({"context": "first"}, r"invalid value for `context`: expected one of 'last', 'last_dense', 'all_dense', "
                           r"received 'first'"),
    ({"use": "both"}, r"invalid value for `use`: expected one of 'init', 'every', received 'both'"),
    ({"pool": "sum"}, r"invalid value for `pool`: expected one of 'mean', 'max', received 'sum'"),
    ({"context_activation": "gelu"}, r"invalid value for `context_activation`: expected one of 'none', 'softmax'"),
    ({"context_units": 0}, r"invalid value for `context_units`: expected a positive integer, received 0"),
    ({"readout": None}, r"invalid value for `readout`: expected a Dense\(vocab, activation\) layer"),
    ({"embedding": 0}, r"invalid value for `embedding`: expected a positive integer, received 0"),
    ({"max_len": -3}, r"invalid value for `max_len`: expected a positive integer, received -3"),
    ({"bos": 13}, r"invalid value for `bos`: expected a token id in \[0, 13\) \(the readout's units\), received 13"),
    ({"eos": -1}, r"invalid value for `eos`: expected a token id in \[0, 13\)"),
    ({"pad": True}, r"invalid value for `pad`: expected a token id in \[0, 13\)"),
])
def test_decoder_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"cell": rg.RNN(4), "readout": READOUT, **kwargs}
    with pytest.raises(ModelError, match=message):
        rg.Decoder(**args)


def test_decoder_layer_needs_a_decoder() -> None:
    from rnngraph.dsl.decoder import GreedyDecode

    with pytest.raises(ModelError, match=r"GreedyDecode: invalid value for `decoder`: expected a Decoder\(...\)"):
        GreedyDecode(decoder=rg.RNN(3))  # type: ignore[arg-type]


def test_memory_must_be_a_float_sequence() -> None:
    dec = rg.Decoder(rg.RNN(4), readout=READOUT)
    with pytest.raises(ModelError, match=r"GreedyDecode: input `memory` must be a sequence of features, "
                                         r"received vector \(batch, 5\) float32"):
        dec.greedy(rg.Input("v", features=5, sequence=False))
    with pytest.raises(ModelError, match=r"input `memory` must be a sequence of features, received sequence "
                                         r"\(batch, time\) int64"):
        dec.greedy(rg.Input("ids", tokens=5))


def test_target_errors() -> None:
    dec = rg.Decoder(rg.RNN(4), readout=READOUT)
    memory = rg.Input("memory", features=4)
    with pytest.raises(ModelError, match=r"TeacherForced: input `tgt` must be a sequence of token ids, "
                                         r"received sequence \(batch, tgt_time, 3\) float32"):
        dec.teacher_forced(memory, rg.Input("tgt", features=3, time="tgt_time"))
    with pytest.raises(ModelError, match=r"input `tgt` holds ids of a vocabulary of 9, but the decoder's readout has "
                                         r"13 units; declare Input\(..., tokens=13\)"):
        dec.teacher_forced(memory, rg.Input("tgt", tokens=9, time="tgt_time"))
    with pytest.raises(ModelError, match=r"`tgt` and `memory` share the time axis name 'time'.*time='tgt_time'"):
        dec.teacher_forced(memory, rg.Input("tgt", tokens=13))
    with pytest.raises(ModelError, match=r"share the lengths input 'lengths'.*lengths='tgt_lengths'"):
        dec.teacher_forced(memory, rg.Input("tgt", tokens=13, time="tgt_time"))


def test_max_len_must_be_a_count() -> None:
    dec = rg.Decoder(rg.RNN(4), readout=READOUT)
    memory = rg.Input("memory", features=4)
    with pytest.raises(ModelError, match=r"input `max_len` must be a count, Input\('max_len', count=True\); "
                                         r"received vector \(batch, 1\) float32"):
        dec.greedy(memory, rg.Input("n", features=1, sequence=False))


def test_input_time_axis_name_is_checked() -> None:
    with pytest.raises(ModelError, match=r"Input 'tgt': invalid value for `time`: expected a name made of letters"):
        rg.Input("tgt", tokens=5, time="tgt time")


# -- the sample ---------------------------------------------------------------------------------------------------
SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "samples" / "encoder_decoder.py"


@pytest.mark.parametrize("mode", ["greedy", "teacher_forced"])
@pytest.mark.parametrize("context,use", COMBINATIONS)
def test_sample_all_six_structures(context: str, use: str, mode: str) -> None:
    sample = runpy.run_path(str(SAMPLE), run_name="__rnngraph_model__")
    model = sample["build"](context, use, mode)
    params = model.init(seed=1)
    report = verify(model, params, feeds=sample["make_feeds"](model, 3, 9, 0))
    assert report.ok, report.table()


@pytest.mark.parametrize("opset", [13, 17, 18, "newest"])
@pytest.mark.parametrize("pool", ["mean", "max"])
def test_every_supported_opset(opset: int | str, pool: str) -> None:
    from rnngraph.exporters.onnx import max_opset

    model = seq2seq(rg.RNN(8), attention=rg.Attention("additive", units=4), context="all_dense", pool=pool)
    params = model.init(seed=3)
    feeds = feeds_for(model, 3, 6)
    got, ref = run_both(model, params, feeds, opset=max_opset() if opset == "newest" else int(opset))
    for name in model.outputs:
        assert compare(name, got[name], ref[name]).ok, name


def test_readme_section_runs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Encoder-decoder, attention, greedy decoding"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = namespace["out"]
    assert out["tokens"].shape[:1] == (1,) and out["weights"].shape[2] == 4  # type: ignore[index]
