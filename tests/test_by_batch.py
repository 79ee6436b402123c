"""`auto` for the tanh RNN: native op at small batches, Scan at large ones, chosen in the graph by an If.

Both sides of the limit are held to the oracle (random weights, odd sizes, T=1, B=1, ragged
lengths); the branch that ran is read from onnxruntime's profile; every weight is stored once.
"""

import json

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.bench.graphs import activation_transposes
from rnngraph.bench.profile import op_profile
from rnngraph.compiler.cells.rnn import CROSSOVER
from rnngraph.compiler.prune import initializer_names
from tests.conftest import assert_matches

INPUT, HIDDEN = 5, 9


def rnn_model(*, lengths: bool, reverse: bool = False, below: rg.Cell | None = None) -> rg.Model:
    x = rg.Input("x", features=INPUT, lengths="lengths" if lengths else None)
    h = rg.Recurrent(below)(x) if below is not None else x
    h = rg.Recurrent(rg.RNN(HIDDEN), reverse=reverse)(h)
    return rg.Model(x, {"y": rg.Dense(3)(h)}, name="by_batch")


def paths(proto: onnx.ModelProto) -> dict[str, str]:
    return json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.paths"])


def limit(padded: bool) -> int:
    return CROSSOVER[padded] // HIDDEN


def ops_run(model: rg.Model, params: dict[str, np.ndarray], batch: int) -> set[str]:
    proto = rg.export(model, params)
    return {o.op for o in op_profile(proto.SerializeToString(), model.example_inputs(batch, 4, 0), runs=1)}


@pytest.mark.parametrize("padded", [True, False], ids=["ragged", "unpadded"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_both_sides_of_the_limit_match_the_oracle(padded, reverse):
    model = rnn_model(lengths=padded, reverse=reverse)
    params = model.init(3)
    proto = rg.export(model, params)
    node = next(iter(paths(proto)))
    assert paths(proto)[node] == f"native if batch <= {limit(padded)}, else scan"
    for batch in (1, limit(padded), limit(padded) + 1, 2 * limit(padded) + 3):
        for time in (1, 6):
            assert_matches(model, params, batch=batch, time=time, ragged=padded, seed=batch + time)


def test_the_branch_that_runs_follows_the_batch():
    model = rnn_model(lengths=True)
    params = model.init(1)
    small, large = ops_run(model, params, limit(True)), ops_run(model, params, limit(True) + 1)
    assert "RNN" in small and "Scan" not in small
    assert "Scan" in large and "RNN" not in large


def test_every_weight_is_stored_once_in_the_enclosing_graph():
    model = rnn_model(lengths=True)
    params = model.init(2)
    proto = rg.export(model, params)
    top = [t for t in proto.graph.initializer if np.prod(t.dims) > 16]
    inner = initializer_names(proto.graph) - {t.name for t in proto.graph.initializer}
    assert inner and all(np.prod(t.dims) <= 16 for t in subgraph_initializers(proto.graph) if t.name in inner), (
        "no branch or body holds a weight (only small constants)")
    blobs = [onnx.numpy_helper.to_array(t).tobytes() for t in top]
    assert len(blobs) == len(set(blobs)), "a weight is stored twice"
    scan_only = rg.export(model, params, lowering="scan")
    # exactly the Scan export's weights (R there in its body); the native branch adds only the zero half of its
    # bias, H floats, below the 16-element line here
    assert sum(len(b) for b in blobs) == weight_bytes(scan_only.graph)


def subgraph_initializers(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """The initializers of every subgraph below `graph`."""
    out = []
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                out += list(sub.initializer) + subgraph_initializers(sub)
    return out


def weight_bytes(graph: onnx.GraphProto) -> int:
    """Bytes of the initializers above 16 elements, in `graph` and its subgraphs."""
    total = sum(onnx.numpy_helper.to_array(t).nbytes for t in graph.initializer if np.prod(t.dims) > 16)
    for node in graph.node:
        for attr in node.attribute:
            total += sum(weight_bytes(sub) for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs))
    return total


def test_after_a_native_layer_the_sequence_stays_time_major():
    model = rnn_model(lengths=True, below=rg.GRU(7, linear_before_reset=True))
    params = model.init(4)
    proto = rg.export(model, params)
    assert activation_transposes(proto.graph) == 2  # in before the GRU, out after the RNN: none in the branches
    for batch in (1, limit(True) + 2):
        assert_matches(model, params, batch=batch, time=5, seed=batch)


def test_a_large_rnn_is_a_scan_and_forced_lowerings_have_no_if():
    x = rg.Input("x", features=INPUT)
    large = rg.Model(x, {"y": rg.Recurrent(rg.RNN(CROSSOVER[True] + 1))(x)}, name="large")
    assert set(paths(rg.export(large, large.init(0))).values()) == {"scan"}
    model = rnn_model(lengths=True)
    for lowering in ("scan", "native"):
        proto = rg.export(model, model.init(0), lowering=lowering)
        assert set(paths(proto).values()) == {lowering}
        # no choice by batch (the native path's one If is its NaN rule's, rnngraph/compiler/nan_rule.py)
        assert not [n.name for n in proto.graph.node if n.op_type == "If" and "by_batch" in n.name]
