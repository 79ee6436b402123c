"""The native path's NaN rule behind an If (rnngraph/compiler/nan_rule.py): the bare op unless x holds a NaN.

Graphs run in plain onnxruntime against the oracle: random weights, odd sizes, B=1, T=1, ragged
lengths, both directions, with and without lengths. tests/test_guards.py checks the rule itself
for every cell and return.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.bench.profile import op_profile
from rnngraph.dsl import registry
from rnngraph.runtime import oracle
from tests.conftest import every_node

NATIVE_OPS = {"LSTM", "GRU", "RNN"}
#: the cells whose native lowering the export takes when asked (`lowering="native"`)
CELLS = [cell for cell in registry.examples("onnx")
         if registry.implementation(cell, "onnx").native is not None
         and registry.implementation(cell, "onnx").native_exact(cell)]


def model_of(cell: rg.Cell, reverse: bool, lengths: bool) -> rg.Model:
    x = rg.Input("x", features=3, lengths="lengths" if lengths else None)
    y, last = rg.Recurrent(cell, reverse=reverse, returns=("sequence", "last"))(x)
    return rg.Model(x, {"y": y, "last": last})


def run(model: rg.Model, params: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    proto = rg.export(model, params, lowering="native")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def test_cells_with_a_native_op_are_found():
    assert {type(c).__name__ for c in CELLS} >= {"LSTM", "GRU", "RNN"}


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_the_op_sits_bare_in_one_branch_and_marked_in_the_other_its_weights_stored_once(cell):
    model = model_of(cell, reverse=False, lengths=True)
    proto = rg.export(model, model.init(1), lowering="native")
    rules = [n for n in proto.graph.node if n.op_type == "If" and n.name.endswith("nan_rule")]
    assert len(rules) == 1
    branches = {a.name: a.g for a in rules[0].attribute}
    ops = {name: [n for n in g.node if n.op_type in NATIVE_OPS] for name, g in branches.items()}
    assert [n.op_type for n in branches["else_branch"].node] == [n.op_type for n in ops["else_branch"]]
    assert {"CumSum", "Add"} <= {n.op_type for n in branches["then_branch"].node}
    assert len(ops["else_branch"]) == len(ops["then_branch"]) == 1
    # the weights: initializers of the enclosing graph, read by both branches, each stored once
    assert not any(np.prod(t.dims) > 16 for g in branches.values() for t in g.initializer)
    large = [t.raw_data or t.SerializeToString() for t in proto.graph.initializer if np.prod(t.dims) > 16]
    assert large and len(set(large)) == len(large)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("reverse", [False, True])
def test_a_nan_only_in_padded_steps_changes_nothing(cell, reverse):
    """The If takes the marked branch (the sum of x is NaN) yet no valid step is NaN: the clean results."""
    model = model_of(cell, reverse, lengths=True)
    params = model.init(7)
    x = np.random.default_rng(2).standard_normal((3, 5, 3)).astype(np.float32)
    lengths = np.array([5, 1, 3])
    clean = run(model, params, {"x": x, "lengths": lengths})
    x[1, 2:, 0] = np.nan
    x[2, 4, 2] = np.nan
    got = run(model, params, {"x": x, "lengths": lengths})
    want = oracle.run(model, params, x=x, lengths=lengths)
    for name, value in want.items():
        assert not np.isnan(got[name]).any()
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(got[name], clean[name], err_msg=name)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (4, 1)])
@pytest.mark.parametrize("reverse", [False, True])
def test_small_shapes_with_and_without_a_nan_match_the_oracle(cell, shape, reverse):
    model = model_of(cell, reverse, lengths=False)
    params = model.init(4)
    batch, time = shape
    x = np.random.default_rng(3).standard_normal((batch, time, 3)).astype(np.float32)
    for with_nan in (False, True):
        if with_nan:
            x[batch - 1, time // 2, 1] = np.nan
        got, want = run(model, params, {"x": x}), oracle.run(model, params, x=x)
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, equal_nan=True,
                                       err_msg=f"{name}, NaN: {with_nan}")
        assert np.isnan(got["y"]).any() == with_nan


@pytest.mark.parametrize("batch", [1, 9])
def test_a_nan_sends_the_by_batch_choice_to_the_scan_which_keeps_the_rule(batch):
    """`auto` tanh RNN (native up to batch 160 // 41 = 3): the bare native op runs only for an input without a
    NaN; with one, the Scan runs at every batch (it keeps the rule by itself), so no rule If sits inside."""
    x_in = rg.Input("x", features=3, lengths="lengths")
    model = rg.Model(x_in, {"y": rg.Recurrent(rg.RNN(41), returns=("sequence", "last"))(x_in)[0]})
    params = model.init(2)
    proto = rg.export(model, params)
    assert [n.name for n in every_node(proto.graph) if n.op_type == "If"] == ["rnn0/by_batch"]
    x = np.random.default_rng(6).standard_normal((batch, 6, 3)).astype(np.float32)
    lengths = np.arange(batch) % 6 + 1
    for with_nan in (False, True):
        if with_nan:
            x[0, 0, 2] = np.nan
        feeds = {"x": x, "lengths": lengths}
        ran = {o.op for o in op_profile(proto.SerializeToString(), feeds, runs=1)}
        assert ("RNN" in ran) == (batch == 1 and not with_nan) and ("Scan" in ran) != ("RNN" in ran)
        want = oracle.run(model, params, **feeds)["y"]
        got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, equal_nan=True)
        assert np.isnan(got[0, :1]).all() == with_nan and not np.isnan(got[1:]).any()
