"""Echo State Network cell (docs/esn.md): validation, reservoir draw, driven export vs the oracle."""

from __future__ import annotations

import time

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.dsl.cells.esn import reservoir, spectral_radius
from rnngraph.dsl.params import generator
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare
from tests.conftest import SHAPES, assert_matches

VARIANTS = {
    "plain": lambda: rg.ESN(7, outputs=3, density=0.4),
    "leaky_feedback": lambda: rg.ESN(7, outputs=3, density=0.4, leak=0.6, feedback=True, feedback_scaling=0.5),
    "state_output": lambda: rg.ESN(9, outputs=2, density=1.0, leak=0.3, feedback=True, reads=("state", "output")),
    "input_output": lambda: rg.ESN(6, outputs=4, density=0.5, leak=0.8, feedback=True, reads=("input", "output")),
}


def driven(cell: rg.ESN, features: int = 4, **kwargs: object) -> rg.Model:
    x = rg.Input("x", features=features)
    return rg.Model(x, {"y": rg.Recurrent(cell, **kwargs)(x)})


# -- validation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,field,expected", [
    ({"hidden": 0}, "hidden", "a positive integer"),
    ({"outputs": 0}, "outputs", "a positive integer"),
    ({"density": 0.0}, "density", r"a number in \(0.0, 1.0\]"),
    ({"density": 1.5}, "density", r"a number in \(0.0, 1.0\]"),
    ({"spectral_radius": 0}, "spectral_radius", r"a number in \(0.0, inf\)"),
    ({"leak": 0.0}, "leak", r"a number in \(0.0, 1.0\]"),
    ({"leak": 1.2}, "leak", r"a number in \(0.0, 1.0\]"),
    ({"input_scaling": -1.0}, "input_scaling", r"a number in \[0.0, inf\)"),
    ({"bias_scaling": -0.1}, "bias_scaling", r"a number in \[0.0, inf\)"),
    ({"feedback": "yes"}, "feedback", "True or False"),
    ({"feedback_scaling": -2.0}, "feedback_scaling", r"a number in \[0.0, inf\)"),
    ({"reads": ()}, "reads", "a non-empty tuple of distinct names"),
    ({"reads": ("state", "state")}, "reads", "a non-empty tuple of distinct names"),
    ({"reads": ("states",)}, "reads", "a non-empty tuple of distinct names"),
    ({"reads": ["state"]}, "reads", "a non-empty tuple of distinct names"),
])
def test_invalid_hyperparameters_are_refused_by_name(kwargs, field, expected):
    args = {"hidden": 5, **kwargs}
    with pytest.raises(rg.ModelError, match=rf"ESN\(hidden=.*invalid value for `{field}`: expected {expected}"):
        rg.ESN(**args)


def test_reservoir_that_never_has_a_cycle_is_refused():
    class ZeroValues:  # every drawn weight 0: the radius is 0 whatever the pattern
        def __init__(self) -> None:
            self.rng = np.random.default_rng(0)

        def choice(self, *args: object, **kwargs: object) -> np.ndarray:
            return self.rng.choice(*args, **kwargs)

        def uniform(self, low: float, high: float, size: int) -> np.ndarray:
            return np.zeros(size)

    with pytest.raises(rg.ModelError, match="spectral radius 0.*raise `density` or `hidden`"):
        reservoir(0.2, 0.9, "esn0")(ZeroValues(), (4, 4))  # type: ignore[arg-type]


# -- parameters ------------------------------------------------------------------------------------------
def test_parameter_shapes_and_trainability():
    cell = rg.ESN(10, outputs=2, density=0.3, feedback=True)
    specs = cell.param_specs(3)
    assert {k: s.shape for k, s in specs.items()} == {
        "W_in": (10, 4), "W": (10, 10), "W_back": (10, 2), "W_out": (2, 3 + 10 + 2), "b_out": (2,)}
    assert [k for k, s in specs.items() if s.trainable] == ["W_out", "b_out"]
    assert rg.ESN(10, outputs=2, reads=("state",)).param_specs(3)["W_out"].shape == (2, 10)
    assert "W_back" not in rg.ESN(10).param_specs(3)
    assert cell.state_sizes() == {"y": 2, "x": 10} and cell.output_size == 2 and cell.units == 10


def test_reservoir_is_sparse_scaled_and_reproducible():
    model = driven(rg.ESN(60, outputs=2, density=0.1, spectral_radius=0.8, input_scaling=0.5, bias_scaling=0.1))
    a, b, c = model.init(seed=3), model.init(seed=3), model.init(seed=4)
    W = a["esn0/W"].astype(np.float64)
    assert np.count_nonzero(W) == round(0.1 * 60 * 60)
    assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(0.8, rel=1e-6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["esn0/W"], c["esn0/W"])
    W_in = a["esn0/W_in"]
    assert np.abs(W_in[:, 0]).max() <= 0.1 and np.abs(W_in[:, 1:]).max() <= 0.5
    assert np.abs(W_in[:, 1:]).max() > 0.4  # scaled, not shrunk to nothing


def test_sparse_radius_agrees_with_dense():
    W = reservoir(0.02, 1.0)(generator(0, "esn0/W"), (400, 400))
    dense = np.abs(np.linalg.eigvals(W)).max()
    assert spectral_radius(W, "sparse") == pytest.approx(dense, rel=1e-8)
    assert dense == pytest.approx(1.0, rel=1e-8)


def test_large_sparse_reservoir_draws_fast():
    """N = 2000 at density 0.01: ARPACK, not a dense eigendecomposition (several seconds here)."""
    start = time.perf_counter()
    W = reservoir(0.01, 0.95)(generator(0, "esn0/W"), (2000, 2000))
    elapsed = time.perf_counter() - start
    assert np.count_nonzero(W) == 40_000
    assert spectral_radius(W, "sparse") == pytest.approx(0.95, rel=1e-8)
    assert elapsed < 5.0, f"drawing took {elapsed:.1f} s"


@pytest.mark.slow
def test_large_sparse_reservoir_radius_is_exact():
    W = reservoir(0.01, 0.95)(generator(0, "esn0/W"), (2000, 2000))
    assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(0.95, rel=1e-8)


# -- driven mode vs the oracle ---------------------------------------------------------------------------
@pytest.mark.parametrize("lowering", ["scan", "auto"])
@pytest.mark.parametrize("batch,time_", SHAPES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_driven_matches_oracle(variant, batch, time_, lowering):
    model = driven(VARIANTS[variant]())
    assert_matches(model, batch=batch, time=time_, lowering=lowering)


def test_there_is_no_native_path():
    """No ONNX op computes an ESN: `native` falls back to the Scan."""
    model = driven(VARIANTS["plain"]())
    proto = build_model_proto(model, model.init(0), 17, "native")
    assert dict((p.key, p.value) for p in proto.metadata_props)["rnngraph.paths"] == '{"esn0": "scan"}'
    assert_matches(model, lowering="native")


def test_scan_body_is_lean_and_graph_size_is_independent_of_time():
    model = driven(VARIANTS["leaky_feedback"]())
    params = model.init(1)
    proto = build_model_proto(model, params)
    scan = next(n for n in proto.graph.node if n.op_type == "Scan")
    body_ops = [n.op_type for n in scan.attribute[0].g.node]
    # hoisted: the input projections; in the body the recurrent Gemms, tanh, the leak and the readout
    # (8 nodes), and the driver's padding blend of the two states and the output (7 nodes)
    assert "MatMul" not in body_ops and body_ops.count("Gemm") == 4 and len(body_ops) == 15, body_ops
    total = sum(op_histogram(proto.graph).values())
    session = Session(proto)
    for t in (5, 300):
        feeds = model.example_inputs(2, t, seed=t)
        got, ref = session.run(**feeds), oracle.run(model, params, **feeds)
        assert compare("y", got["y"], ref["y"]).ok
    assert sum(op_histogram(build_model_proto(model, params).graph).values()) == total


def test_reverse_initial_state_and_bidirectional():
    """The ESN stands wherever a cell can: reversed, from a given y(0), in both directions."""
    cell = rg.ESN(8, outputs=3, density=0.5, leak=0.7, feedback=True)
    x = rg.Input("x", features=2)
    y0 = rg.Input("y0", features=3, sequence=False)
    forward = rg.Recurrent(cell)(x, initial_state=y0)
    backward = rg.Recurrent(cell, reverse=True)(x)
    both = rg.Bidirectional(cell)(x)
    model = rg.Model([x, y0], {"fwd": forward, "bwd": backward, "both": both})
    for batch, time_ in SHAPES:
        assert_matches(model, batch=batch, time=time_)


# -- metamorphic: leak 1, no feedback, dense reservoir == tanh RNN + Dense readout ------------------------
def test_esn_equals_tanh_rnn_with_those_weights():
    esn = rg.ESN(9, outputs=3, density=1.0, leak=1.0, reads=("state",))
    x = rg.Input("x", features=4)
    esn_model = rg.Model(x, {"y": rg.Recurrent(esn, name="esn")(x)})
    p = esn_model.init(seed=7)
    x2 = rg.Input("x", features=4)
    rnn_model = rg.Model(x2, {"y": rg.Dense(3, name="readout")(rg.Recurrent(rg.RNN(9), name="rnn")(x2))})
    q = {
        "rnn/W": p["esn/W_in"][:, 1:], "rnn/R": p["esn/W"],
        "rnn/B": np.concatenate([p["esn/W_in"][:, 0], np.zeros(9, np.float32)]),
        "readout/W": p["esn/W_out"], "readout/b": p["esn/b_out"],
    }
    feeds = esn_model.example_inputs(3, 11, seed=2)
    ref_esn, ref_rnn = oracle.run(esn_model, p, **feeds)["y"], oracle.run(rnn_model, q, **feeds)["y"]
    np.testing.assert_allclose(ref_esn, ref_rnn, rtol=1e-12, atol=1e-12)
    got_esn = Session(build_model_proto(esn_model, p)).run(**feeds)["y"]
    for lowering in ("scan", "native"):
        got_rnn = Session(build_model_proto(rnn_model, q, 17, lowering)).run(**feeds)["y"]
        assert compare("y", got_esn, got_rnn).ok, lowering
    assert compare("y", got_esn, ref_esn).ok
    assert np.abs(ref_esn).max() > 0.1  # not trivially zero
