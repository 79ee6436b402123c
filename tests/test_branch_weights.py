"""int8 copies of native LSTMs inside If branches (exporters/onnx/branch_weights.py): quantized, weights once."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.exporters.onnx import export
from rnngraph.exporters.onnx.branch_weights import localize_lstm_weights, share_branch_weights
from rnngraph.exporters.onnx.precision import quantize_int8
from rnngraph.runtime import oracle
from rnngraph.verify import compare
from tests.conftest import every_node


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "peephole"])
def lstm(request, tmp_path_factory):
    x = rg.Input("x", features=7)
    model = rg.Model(x, {"y": rg.Recurrent(rg.LSTM(19, peephole=request.param), name="lstm")(x)})
    params = model.init(5)
    src = tmp_path_factory.mktemp("lstm") / "lstm.onnx"
    export(model, params, src, lowering="native")
    return model, params, src


def run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_both_branch_lstms_are_quantized_with_their_weights_stored_once(lstm, tmp_path):
    model, params, src = lstm
    dst = quantize_int8(src, tmp_path / "lstm.int8.onnx")
    quantized = onnx.load(str(dst))
    assert [n.op_type for n in every_node(quantized.graph) if "LSTM" in n.op_type] == ["DynamicQuantizeLSTM"] * 2
    large = [t for t in quantized.graph.initializer if np.prod(t.dims) > 16]
    ints = [t for t in large if t.data_type == onnx.TensorProto.INT8]
    # W (1, 4h, in) and R (1, 4h, h) as int8, once each; no float copy of them left
    assert sorted(int(np.prod(t.dims)) for t in ints) == sorted([4 * 19 * 7, 4 * 19 * 19])
    assert not [t.name for t in large if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) in
                (4 * 19 * 7, 4 * 19 * 19)]
    branches = [a.g for n in quantized.graph.node if n.op_type == "If" for a in n.attribute]
    assert branches and not [t.name for g in branches for t in g.initializer if np.prod(t.dims) > 16]
    # the two branches read the same int8 tensors
    reads = [tuple(n.input[1:3]) for g in branches for n in g.node if n.op_type == "DynamicQuantizeLSTM"]
    assert len(set(reads)) == 1


def test_the_int8_copy_matches_the_oracle_and_keeps_the_nan_rule(lstm, tmp_path):
    model, params, src = lstm
    dst = quantize_int8(src, tmp_path / "lstm.int8.onnx")
    x = np.random.default_rng(1).standard_normal((3, 5, 7)).astype(np.float32)
    row = compare("y", run(dst, x), oracle.run(model, params, x=x)["y"], "int8")
    assert row.ok, f"max abs err {row.max_abs:.3e}"
    x[1, 2, 4] = np.nan
    y = run(dst, x)
    assert np.isnan(y[1, 2:]).all() and not np.isnan(y[1, :2]).any() and not np.isnan(y[[0, 2]]).any()


def test_localizing_copies_only_outer_weights_of_branch_lstms(lstm):
    _, _, src = lstm
    proto = onnx.load(str(src))
    assert localize_lstm_weights(proto) == 4  # W and R of the op in each branch
    assert localize_lstm_weights(proto) == 0  # now local: nothing more to copy
    share_branch_weights(proto)  # the float copies go back to the main graph, one each, the originals unread
    floats = sorted(int(np.prod(t.dims)) for t in proto.graph.initializer if np.prod(t.dims) > 16)
    assert floats.count(4 * 19 * 7) == 1 and floats.count(4 * 19 * 19) == 1
    onnx.checker.check_model(proto, full_check=True)
