"""LSTM (docs/lstm.md): every option combination, on every lowering path, against the oracle."""

import json

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.dsl.gates import join_gates, split_gates
from rnngraph.errors import ModelError, ParameterError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from tests.conftest import SHAPES, assert_close, assert_matches, assert_size_independent_of_time, every_node

OPTIONS = {
    "plain": {},
    "peephole": {"peephole": True},
    "coupled": {"coupled": True},
    "peephole_coupled": {"peephole": True, "coupled": True},
}
HIDDEN, FEATURES = 7, 4


def lstm_model(options, reverse=False, lengths="lengths", hidden=HIDDEN):
    """y (every step) and the final h and c of one LSTM layer."""
    x = rg.Input("x", features=FEATURES, lengths=lengths)
    y, h, c = rg.Recurrent(rg.LSTM(hidden, **options), reverse=reverse, returns=("sequence", "state"))(x)
    return rg.Model(x, {"y": y, "h": h, "c": c}, name="lstm")


def paths(proto):
    return json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.paths"])


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lowering", ["scan", "native", "auto"])
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("batch,time", SHAPES)
def test_lstm_matches_oracle(option, lowering, reverse, batch, time):
    assert_matches(lstm_model(OPTIONS[option], reverse), batch=batch, time=time, lowering=lowering, seed=batch + time)


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_maps_onto_the_native_op_and_auto_takes_it(option):
    model = lstm_model(OPTIONS[option])
    params = model.init(3)
    for lowering, expected in [("auto", "native"), ("native", "native"), ("scan", "scan")]:
        proto = build_model_proto(model, params, lowering=lowering)
        assert paths(proto) == {"lstm0": expected}
        ops = op_histogram(proto.graph)
        # native: the op in both branches of its NaN-rule If (rnngraph/compiler/nan_rule.py)
        assert (ops["LSTM"], ops["Scan"]) == ((2, 0) if expected == "native" else (0, 1))
    native = next(n for n in every_node(build_model_proto(model, params, lowering="native").graph)
                  if n.op_type == "LSTM")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in native.attribute}
    assert attrs.get("input_forget", 0) == int(OPTIONS[option].get("coupled", False))
    assert (len(native.input) == 8 and native.input[7] != "") == OPTIONS[option].get("peephole", False)


@pytest.mark.parametrize("option,body_nodes", [("plain", 10), ("peephole", 17), ("coupled", 10),
                                               ("peephole_coupled", 15)])
def test_scan_body_is_lean(option, body_nodes):
    """Gemm+activation per gate group, sigmoid gates contiguous, weights inside the body."""
    model = lstm_model(OPTIONS[option], lengths=None)
    proto = build_model_proto(model, model.init(0), lowering="scan")
    scan = next(n for n in proto.graph.node if n.op_type == "Scan")
    body = scan.attribute[0].g
    ops = [n.op_type for n in body.node]
    assert len(ops) == body_nodes + 1 and ops[-1] == "Identity"  # the driver's y_t = Identity(h_t)
    assert ops.count("Gemm") == (2 if option in ("plain", "coupled") else 3)
    assert {t.name.rsplit("/", 1)[-1] for t in body.initializer} >= {"R_c"}  # recurrent weights live in the body
    assert len(scan.input) == 2 + (2 if option in ("plain", "coupled") else 3)  # h, c + one input per group


def test_coupled_native_is_exact_with_saturated_gates():
    """Large weights push σ to 0 and 1, where 1 - σ(-a) and σ(a) could part in float32; they do not."""
    model = lstm_model(OPTIONS["peephole_coupled"])
    params = {k: v * 4.0 for k, v in model.init(5).items()}
    feeds = model.example_inputs(4, 30, seed=2)
    ref = oracle.run(model, params, **feeds)
    for lowering in ("native", "scan"):
        got = Session(build_model_proto(model, params, lowering=lowering)).run(**feeds)
        for name in ("y", "h", "c"):
            assert_close(got[name], ref[name], "float32", what=f"{lowering} {name}")


@pytest.mark.parametrize("peephole", [False, True])
def test_coupled_equals_plain_lstm_with_negated_forget_weights_as_input_gate(peephole):
    """Metamorphic: i = 1 - f = σ(-a_f), so a plain LSTM whose input gate holds the negated
    forget-gate weights (and peephole) computes the coupled LSTM, in the oracle and exported."""
    coupled = lstm_model({"coupled": True, "peephole": peephole})
    plain = lstm_model({"peephole": peephole})
    cp = coupled.init(11)
    cell_c, cell_p = rg.LSTM(HIDDEN, peephole=peephole, coupled=True), rg.LSTM(HIDDEN, peephole=peephole)

    def plain_params(sign):
        def widen(array, order_c, order_p):
            blocks = split_gates(array, order_c)
            blocks["i"] = sign * blocks["f"]
            return join_gates(blocks, order_p)

        wb, rb = np.split(cp["lstm0/B"], 2)
        pp = {"lstm0/W": widen(cp["lstm0/W"], cell_c.gates, cell_p.gates),
              "lstm0/R": widen(cp["lstm0/R"], cell_c.gates, cell_p.gates),
              "lstm0/B": np.concatenate([widen(wb, cell_c.gates, cell_p.gates),
                                         widen(rb, cell_c.gates, cell_p.gates)])}
        if peephole:
            pp["lstm0/P"] = widen(cp["lstm0/P"], cell_c.peephole_gates, cell_p.peephole_gates)
        return pp

    pp = plain_params(-1.0)
    feeds = coupled.example_inputs(3, 8, seed=4)
    ref_c, ref_p = oracle.run(coupled, cp, **feeds), oracle.run(plain, pp, **feeds)
    got_c = Session(build_model_proto(coupled, cp, lowering="scan")).run(**feeds)
    got_p = Session(build_model_proto(plain, pp, lowering="scan")).run(**feeds)
    for name in ("y", "h", "c"):
        assert_close(ref_p[name], ref_c[name], "reference", what=f"oracle {name}")
        assert_close(got_p[name], got_c[name], "reference", what=f"exported {name}")
    # the test can fail: without the negation (i = f) the plain LSTM computes something else
    assert not np.allclose(ref_c["y"], oracle.run(plain, plain_params(1.0), **feeds)["y"], atol=1e-3)


@pytest.mark.parametrize("option,nodes", [("plain", {"scan": 71, "native": 71}),
                                          ("peephole_coupled", {"scan": 76, "native": 71})])
# native: +6 for the NaN-rule If (the op twice, rnngraph/compiler/nan_rule.py), 65 before
def test_graph_size_does_not_depend_on_sequence_length(option, nodes):
    """A small constant whatever the length: nothing is unrolled over time."""
    model = lstm_model(OPTIONS[option])
    assert_size_independent_of_time(model, model.init(2), nodes=nodes)


def test_param_layout_by_option():
    shapes = {name: {k: s.shape for k, s in rg.LSTM(7, **o).param_specs(4).items()} for name, o in OPTIONS.items()}
    assert shapes["plain"] == {"W": (28, 4), "R": (28, 7), "B": (56,)}
    assert shapes["peephole"] == {"W": (28, 4), "R": (28, 7), "B": (56,), "P": (21,)}
    assert shapes["coupled"] == {"W": (21, 4), "R": (21, 7), "B": (42,)}
    assert shapes["peephole_coupled"] == {"W": (21, 4), "R": (21, 7), "B": (42,), "P": (14,)}
    assert rg.LSTM(7, coupled=True).gates == ("o", "f", "c")
    assert rg.LSTM(7, peephole=True, coupled=True).peephole_gates == ("o", "f")
    assert rg.LSTM(7, peephole=True).describe() == "LSTM(hidden=7, peephole=True)"


@pytest.mark.parametrize("build,match", [
    (lambda: rg.LSTM(0), r"LSTM\(hidden=0\): invalid value for `hidden`: expected a positive integer, received 0"),
    (lambda: rg.LSTM(7, peephole="yes"), r"invalid value for `peephole`: expected True or False, received 'yes'"),
    (lambda: rg.LSTM(7, coupled=1), r"invalid value for `coupled`: expected True or False, received 1"),
])
def test_bad_hyperparameters(build, match):
    with pytest.raises(ModelError, match=match):
        build()


def test_params_of_another_layout_are_refused():
    """Plain-LSTM weights (4 gates) given to a coupled LSTM (3 gates) name the parameter and both shapes."""
    plain, coupled = lstm_model({}), lstm_model({"coupled": True})
    with pytest.raises(ParameterError, match=r"parameter `lstm0/W`: expected shape \(21, 4\), received \(28, 4\)"):
        build_model_proto(coupled, plain.init(0))
    with pytest.raises(ParameterError, match=r"missing \['lstm0/P'\]"):
        oracle.run(lstm_model({"peephole": True}), plain.init(0), **plain.example_inputs(1, 2))


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("opset", [13, "newest"])
def test_exports_at_the_lowest_and_newest_opset(opset, lowering):
    from rnngraph.exporters.onnx import max_opset

    model = lstm_model(OPTIONS["peephole_coupled"])
    params = model.init(6)
    feeds = model.example_inputs(3, 6, seed=6)
    proto = build_model_proto(model, params, max_opset() if opset == "newest" else opset, lowering)
    got, ref = Session(proto).run(**feeds), oracle.run(model, params, **feeds)
    for name in ("y", "h", "c"):
        assert_close(got[name], ref[name], "float32", what=f"opset {opset} {name}")
