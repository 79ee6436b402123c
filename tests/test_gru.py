"""GRU (docs/gru.md): both reset placements, on every lowering path, against the oracle."""

import json

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.errors import ModelError, ParameterError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from tests.conftest import SHAPES, assert_close, assert_matches, assert_size_independent_of_time, every_node

HIDDEN, FEATURES = 7, 4
VARIANTS = {"reset_before": False, "reset_after": True}  # linear_before_reset


def gru_model(linear_before_reset, reverse=False, lengths="lengths"):
    x = rg.Input("x", features=FEATURES, lengths=lengths)
    cell = rg.GRU(HIDDEN, linear_before_reset=linear_before_reset)
    y, h = rg.Recurrent(cell, reverse=reverse, returns=("sequence", "state"))(x)
    return rg.Model(x, {"y": y, "h": h}, name="gru")


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lowering", ["scan", "native", "auto"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch,time", SHAPES)
def test_gru_matches_oracle(variant, lowering, reverse, batch, time):
    assert_matches(gru_model(VARIANTS[variant], reverse), batch=batch, time=time, lowering=lowering,
                   seed=batch + time)


@pytest.mark.parametrize("variant", VARIANTS)
def test_native_op_carries_the_reset_placement_and_auto_takes_it(variant):
    model = gru_model(VARIANTS[variant])
    params = model.init(1)
    for lowering, expected in [("auto", "native"), ("native", "native"), ("scan", "scan")]:
        proto = build_model_proto(model, params, lowering=lowering)
        meta = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(meta["rnngraph.paths"]) == {"gru0": expected}
        ops = op_histogram(proto.graph)
        # native: the op in both branches of its NaN-rule If (rnngraph/compiler/nan_rule.py)
        assert (ops["GRU"], ops["Scan"]) == ((2, 0) if expected == "native" else (0, 1))
    node = next(n for n in every_node(build_model_proto(model, params, lowering="native").graph)
                  if n.op_type == "GRU")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["linear_before_reset"] == int(VARIANTS[variant])


@pytest.mark.parametrize("variant,body_nodes", [("reset_before", 9), ("reset_after", 10)])
def test_scan_body_is_lean(variant, body_nodes):
    model = gru_model(VARIANTS[variant], lengths=None)
    proto = build_model_proto(model, model.init(0), lowering="scan")
    scan = next(n for n in proto.graph.node if n.op_type == "Scan")
    ops = [n.op_type for n in scan.attribute[0].g.node]
    assert len(ops) == body_nodes + 1 and ops[-1] == "Identity"  # the driver's y_t = Identity(h_t)
    assert ops.count("Gemm") == 2
    assert len(scan.input) == 1 + 2  # h + u_zr, u_h


def test_the_two_reset_placements_differ():
    """Same weights, other option, other numbers: the option is not cosmetic (and the tests can tell)."""
    before, after = gru_model(False), gru_model(True)
    params = before.init(4)
    feeds = before.example_inputs(3, 6, seed=1)
    y0, y1 = oracle.run(before, params, **feeds)["y"], oracle.run(after, params, **feeds)["y"]
    assert np.abs(y0 - y1).max() > 1e-2


def test_graph_size_does_not_depend_on_sequence_length():
    """A small constant whatever the length: nothing is unrolled over time."""
    model = gru_model(True)
    assert_size_independent_of_time(model, model.init(2), nodes={"scan": 63, "native": 66})
    # native: +6 for the NaN-rule If (the op twice, rnngraph/compiler/nan_rule.py), 60 before


def test_linear_before_reset_has_no_default():
    with pytest.raises(TypeError, match="linear_before_reset"):
        rg.GRU(7)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        rg.GRU(7, True)  # type: ignore[misc] - keyword only: a bare True would not say what it means


@pytest.mark.parametrize("build,match", [
    (lambda: rg.GRU(0, linear_before_reset=True), r"GRU\(hidden=0, linear_before_reset=True\): invalid value for "
                                                  r"`hidden`: expected a positive integer, received 0"),
    (lambda: rg.GRU(7, linear_before_reset=1), r"invalid value for `linear_before_reset`: expected True or False, "
                                               r"received 1\. Use True for weights from PyTorch"),
    (lambda: rg.GRU(7, linear_before_reset=None), r"received None\. .*False for ONNX's default"),
])
def test_bad_hyperparameters(build, match):
    with pytest.raises(ModelError, match=match):
        build()


def test_params_of_another_cell_are_refused():
    lstm = rg.Input("x", features=FEATURES)
    lstm_model = rg.Model(lstm, rg.Recurrent(rg.LSTM(HIDDEN), name="gru0")(lstm))
    with pytest.raises(ParameterError, match=r"parameter `gru0/W`: expected shape \(21, 4\), received \(28, 4\)"):
        build_model_proto(gru_model(True), lstm_model.init(0))


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("opset", [13, "newest"])
def test_exports_at_the_lowest_and_newest_opset(opset, lowering):
    from rnngraph.exporters.onnx import max_opset

    model = gru_model(True)
    params = model.init(6)
    feeds = model.example_inputs(3, 6, seed=6)
    proto = build_model_proto(model, params, max_opset() if opset == "newest" else opset, lowering)
    got, ref = Session(proto).run(**feeds), oracle.run(model, params, **feeds)
    for name in ("y", "h"):
        assert_close(got[name], ref[name], "float32", what=f"opset {opset} {name}")
