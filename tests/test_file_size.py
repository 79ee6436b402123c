"""File size: each weight stored once, a compact layout, an overhead that grows with neither T nor the weights."""

from __future__ import annotations

import json

import numpy as np

import rnngraph as rg
from rnngraph.exporters.onnx.write import tensors
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare


def generative_esn(size: int = 40) -> rg.Model:
    """A reservoir run over the priming sequence (a Scan) and then on its own output (a Loop): W in both bodies."""
    u, n = rg.Input("u", features=2), rg.Input("steps", count=True)
    generated, primed = rg.Generative(rg.ESN(size, outputs=2, density=0.3, leak=0.6, reads=("input", "state")))(u, n)
    return rg.Model([u, n], {"generated": generated, "primed": primed})


def weight_bytes(params: dict[str, np.ndarray]) -> int:
    return sum(np.asarray(v).size * 4 for v in params.values())


def test_a_weight_read_in_two_loop_bodies_is_stored_once(tmp_path):
    model = generative_esn(120)
    params = model.init(3)
    path = tmp_path / "esn.onnx"
    proto = rg.export(model, params, path)
    reservoirs = [t for t in tensors(proto.graph) if list(t.dims) == [120, 120]]
    assert len(reservoirs) == 1 and reservoirs[0] in proto.graph.initializer  # the top level, read by both bodies
    assert len(path.read_bytes()) - weight_bytes(params) < 0.3 * weight_bytes(params)  # twice W: over 1.0
    feeds = model.example_inputs(3, 9, 0) | {"steps": np.array(6)}
    got, want = Session(proto).run(**feeds), oracle.run(model, params, **feeds)
    for name in model.outputs:
        assert compare(name, got[name], want[name]).ok, name
    loaded, back = rg.load(path)
    for name, value in params.items():
        np.testing.assert_array_equal(back[name], np.asarray(value, np.float32), err_msg=name)


def test_a_parameter_split_between_two_initializers_is_two_runs():
    """The ESN's W_in: column 0 is the drive's bias, the others its weight; element by element the places alternate
    between the two initializers, and the layout gives each initializer one run group (not one run per element)."""
    model = generative_esn(50)
    proto = rg.export(model, model.init(0))
    layout = json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.params"])
    w_in = next(entry for name, entry in layout["params"].items() if name.endswith("W_in"))
    assert len(w_in["runs"]) == 2 and "values" not in w_in
    assert {run[6] for run in w_in["runs"]} == {50}  # 50 rows each, one element apart in the parameter


def test_the_overhead_grows_with_neither_time_nor_the_weights():
    """The bytes on top of the weights (graph structure, self-description) are a fixed cost of the model's structure:
    the same structure at 8 and at 96 hidden units differs by a few hundred bytes (names and shapes), while its weights
    grow 70-fold; and the time axis is symbolic, so one file serves every T."""
    def overhead(hidden: int) -> tuple[int, int]:
        x = rg.Input("x", features=5)
        model = rg.Model(x, {"y": rg.Dense(3)(rg.Recurrent(rg.LSTM(hidden, peephole=True))(x))})
        params = model.init(1)
        size = len(rg.export(model, params, lowering="scan").SerializeToString())
        return size - weight_bytes(params), weight_bytes(params)

    small, small_weights = overhead(8)
    large, large_weights = overhead(96)
    assert large_weights > 70 * small_weights
    assert abs(large - small) < 0.1 * small, (small, large)
