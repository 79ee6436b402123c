"""1-to-N generation (docs/vec2seq.md): onnxruntime's Loop against the oracle, for every cell and option."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.dsl import registry
from rnngraph.exporters.onnx import build_model_proto, max_opset
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare
from tests.conftest import SHAPES, assert_close, assert_matches, count_nodes, run_both

FEATURES = 5

#: (readout units or None, feedback, tokens output, extra Generate arguments)
CONFIGS = {
    "plain": (None, "none", False, {}),
    "readout": (6, "none", True, {}),
    "output-feedback": (None, "output", False, {}),
    "readout-output-feedback": (6, "output", False, {}),
    "argmax-feedback": (6, "argmax", True, {"embedding": 4}),
    "argmax-feedback-start": (6, "argmax", True, {"embedding": 4, "start": 2}),
}


def cell_factories() -> dict[str, rg.Cell]:
    """Every example of every registered cell (`rnngraph.dsl.registry`), with odd sizes."""
    return {f"{entry.name}{i}": cell for entry in registry.entries() for i, cell in enumerate(entry.examples)}


CELL_TYPES = cell_factories()


def generator(cell: rg.Cell, mode: str, config: str) -> rg.Model:
    units, feedback, tokens, extra = CONFIGS[config]
    v = rg.Input("v", features=FEATURES, sequence=False)
    n = rg.Input("n", count=True)
    readout = rg.Dense(units, activation="softmax") if units else None
    out = rg.Generate(cell, mode=mode, readout=readout, feedback=feedback, tokens=tokens, **extra)(v, n)
    outputs = {"y": out[0], "ids": out[1]} if tokens else {"y": out}
    return rg.Model([v, n], outputs, name=f"generate_{mode}_{config}")


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["first", "every"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_rnn_generation_matches_oracle(mode, config, batch, time):
    got = assert_matches(generator(rg.RNN(7), mode, config), batch=batch, time=time)
    assert got["y"].shape == (batch, time, 6 if CONFIGS[config][0] else 7)
    assert np.abs(got["y"]).max() > 1e-3  # values, not zeros


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["first", "every"])
@pytest.mark.parametrize("cell", sorted(CELL_TYPES))
def test_every_cell_generates(cell, mode, config):
    model = generator(CELL_TYPES[cell], mode, config)
    for batch, time in [(3, 9), (1, 1)]:
        assert_matches(model, batch=batch, time=time, seed=batch)


@pytest.mark.parametrize("lowering", ["scan", "native", "auto"])
def test_lowering_option_does_not_change_the_loop(lowering):
    """Generation always runs in a Loop (N is data): the option is accepted and changes nothing."""
    model = generator(rg.LSTM(6), "every", "argmax-feedback")
    assert_matches(model, batch=3, time=5, lowering=lowering)
    proto = build_model_proto(model, model.init(0), lowering=lowering)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert '"generate0": "loop"' in meta["rnngraph.paths"]


def test_feedback_and_mode_change_the_result():
    """The options are not silently ignored: each gives other values from the same v."""
    feeds = None
    results = {}
    for mode in ("first", "every"):
        for config in ("readout", "readout-output-feedback", "argmax-feedback"):
            model = generator(rg.RNN(7), mode, config)
            params = model.init(0)
            feeds = feeds or model.example_inputs(2, 6, 0)
            results[mode, config] = oracle.run(model, params, **feeds)["y"]
    values = list(results.values())
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            assert not np.allclose(a, b)
    for config in ("readout", "readout-output-feedback", "argmax-feedback"):  # both modes read v at step 0
        np.testing.assert_array_equal(results["first", config][:, 0], results["every", config][:, 0])


def test_zero_steps_gives_an_empty_sequence():
    model = generator(rg.RNN(7), "first", "argmax-feedback")
    params = model.init(0)
    feeds = model.example_inputs(3, 0, 0)
    got = Session(build_model_proto(model, params)).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    assert got["y"].shape == ref["y"].shape == (3, 0, 6)
    assert got["ids"].shape == ref["ids"].shape == (3, 0)
    assert got["ids"].dtype == np.int64


def test_batch_zero_keeps_the_number_of_steps():
    model = generator(rg.RNN(7), "every", "readout")
    session = Session(build_model_proto(model, model.init(0)))
    out = session.run(v=np.zeros((0, FEATURES), np.float32), n=np.int64(4))
    assert out["y"].shape == (0, 4, 6)
    assert out["ids"].shape == (0, 4)


def test_output_axis_is_named_after_the_count():
    model = generator(rg.RNN(7), "every", "argmax-feedback")
    proto = build_model_proto(model, model.init(0))
    dims = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert dims == {"y": ["batch", "n", 6], "ids": ["batch", "n"]}
    inputs = {i.name: len(i.type.tensor_type.shape.dim) for i in proto.graph.input}
    assert inputs["n"] == 0  # a scalar


@pytest.mark.parametrize("cell,nodes", [("RNN0", 42), ("LSTM0", 58), ("Clockwork0", 46)])
def test_graph_size_does_not_depend_on_the_number_of_steps(cell, nodes):
    """No unrolling: one export of a fixed size (loop body included) runs any N, matching the oracle at 5 and 300."""
    model = generator(CELL_TYPES[cell], "every", "argmax-feedback")
    params = model.init(0)
    assert count_nodes(build_model_proto(model, params).graph) == nodes
    for steps in (5, 300):
        assert_matches(model, params, batch=2, time=steps)


def loop_body(proto):
    (loop,) = [n for n in proto.graph.node if n.op_type == "Loop"]
    return loop.attribute[0].g


def test_step_independent_input_work_is_outside_the_loop():
    """mode "every", no feedback: v·W + b once before the loop; the body holds only the recurrence."""
    model = generator(rg.RNN(7), "every", "readout")
    proto = build_model_proto(model, model.init(0))
    body = loop_body(proto)
    ops = [n.op_type for n in body.node]
    assert "MatMul" not in ops and "Softmax" not in ops  # readout after the loop, over all steps at once
    assert sorted(ops) == ["Gemm", "Identity", "Identity", "Tanh"]  # step; cond and y_t copies
    assert {tuple(t.dims) for t in body.initializer} == {(7, 7)}  # R only
    top = [n.op_type for n in proto.graph.node]
    assert top.count("Softmax") == 1


@pytest.mark.parametrize("mode", ["first", "every"])
def test_feature_projection_is_hoisted_with_feedback(mode):
    """With feedback, only the small fed-back part is projected inside the loop: A_v·v is hoisted."""
    cell = rg.LSTM(6)
    model = generator(cell, mode, "argmax-feedback")
    params = model.init(0)
    body = loop_body(build_model_proto(model, params))
    gates = params["generate0/W"].shape[0]
    shapes = {tuple(t.dims) for t in body.initializer}
    assert (4, gates) in shapes  # W_fᵀ: the loop projects the 4-wide embedding only
    assert (FEATURES, gates) not in shapes and (FEATURES + 4, gates) not in shapes


def test_oracle_follows_spec_by_hand():
    """The oracle against docs/vec2seq.md's equations written out for an RNN, N = 3, mode first, argmax feedback."""
    v = rg.Input("v", features=3, sequence=False)
    n = rg.Input("n", count=True)
    y, ids = rg.Generate(rg.RNN(4), mode="first", readout=rg.Dense(5, "softmax"), feedback="argmax",
                         embedding=2, start=4, tokens=True)(v, n)
    model = rg.Model([v, n], {"y": y, "ids": ids})
    params = model.init(3)
    p = {k.split("/", 1)[1]: v.astype(np.float64) for k, v in params.items()}
    vec = np.array([[0.5, -1.0, 2.0]])
    out = oracle.run(model, params, v=vec, n=np.int64(3))

    h = np.zeros(4)
    f = p["embedding"][4]
    for t in range(3):
        a = vec[0] if t == 0 else np.zeros(3)
        h = np.tanh(p["W"] @ np.concatenate([a, f]) + p["R"] @ h + p["B"][:4] + p["B"][4:])
        logits = p["readout/W"] @ h + p["readout/b"]
        expected = np.exp(logits) / np.exp(logits).sum()
        assert_close(out["y"][0, t], expected, "reference", f"y at step {t}")
        assert out["ids"][0, t] == np.argmax(expected)
        f = p["embedding"][np.argmax(expected)]


def test_generated_sequence_feeds_further_layers():
    """The output is an ordinary (unpadded) sequence: a Recurrent and a Dense can read it."""
    v = rg.Input("v", features=FEATURES, sequence=False)
    n = rg.Input("n", count=True)
    seq = rg.Generate(rg.RNN(6), mode="every")(v, n)
    y = rg.Dense(3, activation="sigmoid")(rg.Recurrent(rg.RNN(5))(seq))
    model = rg.Model([v, n], {"y": y})
    for time in (1, 7):
        got = assert_matches(model, batch=2, time=time)
        assert got["y"].shape == (2, time, 3)


@pytest.mark.parametrize("opset", [13, 17, "newest"])
def test_every_supported_opset(opset):
    model = generator(rg.GRU(7, linear_before_reset=False), "first", "argmax-feedback-start")
    params = model.init(0)
    feeds = model.example_inputs(3, 7, 0)
    got, ref = run_both(model, params, feeds, opset=max_opset() if opset == "newest" else opset)
    for name in model.outputs:
        assert compare(name, got[name], ref[name]).ok


def test_generates_from_an_encoded_sequence():
    """N-to-1 then 1-to-N: the vector can come from a layer (a ragged encoder's last step), not only an input."""
    x = rg.Input("x", features=4)
    n = rg.Input("n", count=True)
    try:
        context = rg.Recurrent(rg.RNN(6), returns="last")(x)
    except TypeError:  # pragma: no cover - Recurrent without `returns`
        pytest.skip("Recurrent(returns=...) is not available")
    y = rg.Generate(rg.RNN(5), mode="every", readout=rg.Dense(3, "softmax"), feedback="output")(context, n)
    model = rg.Model([x, n], {"y": y})
    feeds = model.example_inputs(3, 6, 0)  # ragged encoder lengths; the count is 6 as well
    feeds["n"] = np.int64(4)
    got = assert_matches(model, feeds=feeds)
    assert got["y"].shape == (3, 4, 3)
