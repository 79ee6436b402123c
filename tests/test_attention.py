"""Attention (docs/attention.md): scores, masking, hoisting, primitive ops, near-ties in greedy verification."""

from __future__ import annotations

import pathlib
import runpy

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.errors import ModelError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import follow_near_ties, load_model_file, verify
from tests.conftest import SHAPES, assert_matches, count_nodes
from tests.test_decoder import CELL_FACTORIES, TGT_VOCAB, feeds_for, seq2seq

SCORES = {"additive": rg.Attention("additive", units=5), "dot": rg.Attention("dot"),
          "general": rg.Attention("general")}


def attention_model(score: str, **kwargs: object) -> rg.Model:
    # dot needs the decoder state (7) to match the memory (enc_hidden 7)
    return seq2seq(rg.RNN(7 if score == "dot" else 8), attention=SCORES[score], enc_hidden=7, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch,time", SHAPES)
@pytest.mark.parametrize("score", sorted(SCORES))
def test_scores_match_oracle(score: str, batch: int, time: int) -> None:
    model = attention_model(score)
    got = assert_matches(model, model.init(seed=time), feeds=feeds_for(model, batch, time))
    assert got["weights"].shape == (batch, time + 2, time)
    assert got["greedy_weights"].shape == (batch, got["tokens"].shape[1], time)


@pytest.mark.parametrize("score", sorted(SCORES))
def test_weights_are_masked_by_source_and_target_lengths(score: str) -> None:
    model = attention_model(score)
    feeds = feeds_for(model, 4, 9, seed=2)
    got = assert_matches(model, model.init(seed=1), feeds=feeds)
    for b, (src_len, tgt_len) in enumerate(zip(feeds["lengths"], feeds["tgt_lengths"], strict=True)):
        w = got["weights"][b]
        np.testing.assert_allclose(w[:tgt_len].sum(axis=-1), 1.0, rtol=1e-5)
        assert not w[:, src_len:].any(), "no weight past the source length"
        assert not w[tgt_len:].any(), "no weight past the target length"
        assert (w[:tgt_len, :src_len] > 0).all()
        gw = got["greedy_weights"][b]
        assert not gw[:, src_len:].any()
        live = gw.sum(axis=-1)
        np.testing.assert_allclose(live[live > 0], 1.0, rtol=1e-5)


@pytest.mark.parametrize("cell", sorted(CELL_FACTORIES))
def test_every_cell_with_additive_attention(cell: str) -> None:
    model = seq2seq(CELL_FACTORIES[cell](6), attention=SCORES["additive"], context="last_dense", use="every")
    assert_matches(model, model.init(seed=3), feeds=feeds_for(model, 3, 5))


@pytest.mark.parametrize("context,use", [(None, "init"), ("all_dense", "init"), ("last", "every")])
def test_attention_with_or_without_a_context(context: str | None, use: str) -> None:
    model = attention_model("general", context=context, use=use, pool="max")
    assert_matches(model, model.init(seed=8), feeds=feeds_for(model, 4, 9))


# the encoder's by-batch If (rnngraph/compiler/by_batch.py) runs the bare native op: no NaN-rule nodes in
# its native branch (a NaN takes the Scan), and squeezes y after the If: 11 fewer than before (233, 223, 227)
@pytest.mark.parametrize("score,nodes", [("additive", 222), ("dot", 212), ("general", 216)])
def test_node_count_does_not_depend_on_source_length(score: str, nodes: int) -> None:
    """One export of a fixed size (loop bodies included) serves every source length."""
    model = attention_model(score, runtime_max_len=True)
    params = model.init(seed=4)
    proto = build_model_proto(model, params)
    assert count_nodes(proto.graph) == nodes
    for time in (5, 300):
        feeds = feeds_for(model, 2, time, tgt_time=3, max_len=5)
        assert_matches(model, params, feeds=feeds)
        assert Session(proto).run(**feeds)["greedy_weights"].shape[2] == time


def body_graphs(graph: object) -> list[object]:
    out = []
    for node in graph.node:  # type: ignore[attr-defined]
        for attr in node.attribute:
            if attr.g.node:
                out += [attr.g, *body_graphs(attr.g)]
    return out


def all_nodes(graph: object) -> list[object]:
    return list(graph.node) + [n for body in body_graphs(graph) for n in body.node]  # type: ignore[attr-defined]


@pytest.mark.parametrize("score", ["additive", "general"])
def test_keys_are_computed_once_outside_the_loops(score: str) -> None:
    model = attention_model(score)
    proto = build_model_proto(model, model.init(seed=0))
    key_weights = "U_T" if score == "additive" else "attention/W_T"
    top = [i.name for i in proto.graph.initializer if i.name.split("/")[-1].startswith(key_weights.split("/")[-1])
           and "/attention/" in i.name and "body" not in i.name]
    assert len(top) == 2, f"one key projection per decoder node at the top level, found {top}"
    keys = [n for n in proto.graph.node if n.op_type == "MatMul" and n.name.endswith("attention/keys")]
    assert len(keys) == 2
    for body in body_graphs(proto.graph):
        inits = {i.name for i in body.initializer}  # type: ignore[attr-defined]
        assert not any(name in inits for name in top)
        assert not any(n.name.endswith("attention/keys") for n in body.node)  # type: ignore[attr-defined]


def test_attention_uses_primitive_onnx_ops_only() -> None:
    model = attention_model("additive")
    proto = build_model_proto(model, model.init(seed=0))
    assert all(n.domain in ("", "ai.onnx") for n in all_nodes(proto.graph)), "no contrib ops"
    ops = set(op_histogram(proto.graph))
    assert {"MatMul", "Add", "Tanh", "Softmax", "Loop", "Scan", "ArgMax"} <= ops
    assert not ops & {"Attention", "MultiHeadAttention"}
    primitive = {"Add", "ArgMax", "Cast", "Concat", "Equal", "Gather", "Gemm", "Greater", "Identity", "MatMul", "Mul",
                 "Not", "Or", "ReduceSum", "Softmax", "Squeeze", "Sub", "Tanh", "Unsqueeze", "Where"}
    loop = next(n for n in proto.graph.node if n.op_type == "Loop")
    assert set(op_histogram(loop.attribute[0].g)) <= primitive


# -- greedy verification with near-ties -------------------------------------------------------------------------
def tied_model() -> tuple[rg.Model, dict[str, np.ndarray]]:
    """Tokens 5 and 6 dominate every step and differ by 1e-10 in float64, by nothing in float32."""
    model = attention_model("additive", teacher=False, max_len=5)
    params = {k: v.astype(np.float64) for k, v in model.init(seed=0).items()}
    params["decoder0/readout/W"][6] = params["decoder0/readout/W"][5]
    params["decoder0/readout/b"][[5, 6]] = 8.0
    params["decoder0/readout/b"][6] += 1e-10
    return model, params


def test_near_tie_is_followed_not_failed() -> None:
    model, params = tied_model()
    feeds = feeds_for(model, 3, 6)
    got = Session(build_model_proto(model, params)).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    assert (got["tokens"] == 5).all() and (ref["tokens"] == 6).all(), "the float32 tie and the float64 order differ"
    report = verify(model, params, feeds=feeds)
    assert report.ok, report.table()
    row = {r.output: r for r in report.rows}["tokens"]
    assert row.note == "15 near-tie(s): compared conditioned on onnxruntime's tokens"


def test_a_real_token_mismatch_still_fails() -> None:
    model, params = tied_model()
    feeds = feeds_for(model, 3, 6)
    ref = oracle.run(model, params, **feeds)
    got = dict(ref)
    got["tokens"] = ref["tokens"].copy()
    got["tokens"][1, 2] = 9  # a token far below the best score
    ref2, notes = follow_near_ties(model, params, feeds, got, ref)
    assert ref2 is ref
    assert notes["tokens"].startswith("row 1 step 2: onnxruntime chose token 9 (score ")
    assert notes["tokens"].endswith("not a near-tie")


def test_a_different_stopping_step_fails() -> None:
    model, params = tied_model()
    feeds = feeds_for(model, 2, 4)
    ref = oracle.run(model, params, **feeds)
    got = dict(ref)
    got["tokens"] = ref["tokens"][:, :3]
    _, notes = follow_near_ties(model, params, feeds, got, ref)
    assert notes["tokens"] == "onnxruntime stopped decoding at other steps than the oracle following its tokens"


def test_greedy_scores_are_probabilities_of_the_chosen_tokens() -> None:
    model = attention_model("dot", teacher=False)
    got = assert_matches(model, model.init(seed=9), feeds=feeds_for(model, 3, 7))
    scores, tokens = got["greedy_scores"], got["tokens"]
    live = scores.sum(axis=-1) > 0
    np.testing.assert_array_equal(scores.argmax(axis=-1)[live], tokens[live])
    assert scores.shape[-1] == TGT_VOCAB


# -- errors -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    ({"score": "cosine"}, r"Attention: invalid value for `score`: expected one of 'additive', 'dot', 'general', "
                          r"received 'cosine'"),
    ({"score": "additive"}, r"Attention: invalid value for `units`: expected a positive integer for the additive "
                            r"score .* received None. For example Attention\('additive', units=32\)"),
    ({"score": "additive", "units": 0}, r"Attention: invalid value for `units`: expected a positive integer, "
                                        r"received 0"),
    ({"score": "dot", "units": 8}, r"Attention: invalid value for `units`: expected None: the 'dot' score has no "
                                   r"hidden units, received 8"),
])
def test_attention_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        rg.Attention(**kwargs)  # type: ignore[arg-type]


def test_dot_needs_equal_sizes() -> None:
    dec = rg.Decoder(rg.RNN(4), attention=rg.Attention("dot"), readout=rg.Dense(5, "softmax"))
    with pytest.raises(ModelError, match=r"GreedyDecode: the 'dot' attention score sᵀh needs the decoder state \(4\) "
                                         r"and the memory features \(6\) to have the same size; use score='general'"):
        dec.greedy(rg.Input("memory", features=6))


# -- the sample -------------------------------------------------------------------------------------------------
SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "samples" / "attention.py"


def test_sample_draws_the_heatmap_only_as_a_script(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    load_model_file(SAMPLE)
    assert not list(tmp_path.iterdir()), "loading the sample writes nothing"
    sample = runpy.run_path(str(SAMPLE), run_name="__rnngraph_model__")
    sample["plot"](str(tmp_path / "attention.png"))
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "greedy decoding (untrained weights):" in out and f"wrote {tmp_path / 'attention.png'}" in out


def test_teacher_forced_body_multiplies_only_the_attention_context() -> None:
    """The embedded targets' (and the context's) share of the cell's input projection is one MatMul before the
    Scan: the body has no Concat, and its input Gemm reads the attention context a ``(batch, 7)`` alone
    (issue 10, target 3)."""
    from rnngraph.bench.graphs import step_nodes

    model = seq2seq(rg.RNN(8), attention=SCORES["additive"], enc_hidden=7, use="every", context="last_dense",
                    greedy=False)
    params = model.init(seed=2)
    proto = build_model_proto(model, params)
    (scan,) = [b for b in step_nodes(proto.SerializeToString()) if "Softmax" in b.ops]  # the decoder's, not the RNN's
    assert scan.op == "Scan" and "Concat" not in scan.ops and scan.ops["Gemm"] == 1
    (body,) = [b for b in body_graphs(proto.graph) if any(n.op_type == "Softmax" for n in b.node)]
    weights = {t.name: t.dims for t in body.initializer}
    gemm_weights = sorted(list(weights[n.input[1]]) for n in body.node if n.op_type == "Gemm" and n.input[1] in weights)
    assert gemm_weights == [[8, 7], [8, 8]]  # the input projection of a (hidden, H) only; the recurrent weights
    assert_matches(model, params, feeds=feeds_for(model, 3, 6))
