"""Shared test helpers. Tolerances come from `rnngraph.verify.TOLERANCES` (the one table)."""

from __future__ import annotations

import importlib.util
import os
import pathlib
from collections.abc import Iterator, Mapping
from types import ModuleType

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.cli import op_histogram
from rnngraph.compiler.options import ExportOptions
from rnngraph.dsl.model import Model
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import TOLERANCES, compare

# Keras 3 runs on its torch backend in the tests (torch is a test dependency, TensorFlow is not); set before
# any test module imports keras
os.environ.setdefault("KERAS_BACKEND", "torch")

#: the sizes every differential test runs over: odd sizes, T=1, B=1, ragged
SHAPES = [(3, 5), (1, 5), (3, 1), (1, 1), (4, 9)]


def run_ort(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray],
            lowering: str = "scan", opset: int = 17, clockwork_form: str | None = None) -> dict[str, np.ndarray]:
    """Export `model` (`lowering`, and the Clockwork form when given) and run it in onnxruntime."""
    options = ExportOptions(lowering=lowering, clockwork_form=clockwork_form)
    return Session(build_model_proto(model, params, opset, options=options)).run(**feeds)


def run_both(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray],
             lowering: str = "auto", opset: int = 17,
             clockwork_form: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """onnxruntime's outputs and the oracle's, on the same feeds."""
    return run_ort(model, params, feeds, lowering, opset, clockwork_form), oracle.run(model, params, **feeds)


def tagger(cell: rg.Cell | None = None, activation: str = "softmax", *, extra_layer: bool = False,
           dense_name: str | None = None) -> tuple[Model, dict[str, np.ndarray]]:
    """The smallest useful model, ``x (batch, time, 4) → Recurrent(cell) [→ Recurrent(RNN(7))] → Dense(3)``
    (cell: RNN(7) by default), and its parameters (seed 0)."""
    x = rg.Input("x", features=4)
    h = rg.Recurrent(cell if cell is not None else rg.RNN(7))(x)
    if extra_layer:
        h = rg.Recurrent(rg.RNN(7))(h)
    model = rg.Model(x, {"y": rg.Dense(3, activation=activation, name=dense_name)(h)}, name="tagger")
    return model, model.init(0)


def assert_matches(model: Model, params: Mapping[str, np.ndarray] | None = None, *, batch: int = 3, time: int = 5,
                   lowering: str = "auto", seed: int = 0, ragged: bool = True, tolerance: str = "float32",
                   feeds: Mapping[str, np.ndarray] | None = None,
                   clockwork_form: str | None = None) -> dict[str, np.ndarray]:
    """Export and run `model` with onnxruntime and the oracle on random inputs; assert every output agrees."""
    params = params if params is not None else model.init(seed)
    feeds = feeds if feeds is not None else model.example_inputs(batch, time, seed, ragged)
    got, ref = run_both(model, params, feeds, lowering, clockwork_form=clockwork_form)
    for name in model.outputs:
        assert got[name].shape == ref[name].shape, (
            f"{name}: shape onnxruntime {got[name].shape} != oracle {ref[name].shape}")
        row = compare(name, got[name], ref[name], tolerance)
        assert row.ok, (f"{name} ({lowering}): max abs err {row.max_abs:.3e}, max rel {row.max_rel:.3e} "
                        f"(atol {row.tolerance.atol}, rtol {row.tolerance.rtol})\n"
                        f"onnxruntime:\n{got[name]}\noracle:\n{ref[name]}")
    return got


def assert_close(got: np.ndarray, ref: np.ndarray, tolerance: str = "reference", what: str = "value") -> None:
    """Shape, then values, within the named entry of the tolerance table."""
    tol = TOLERANCES[tolerance]
    assert np.shape(got) == np.shape(ref), f"{what}: shape {np.shape(got)} != reference {np.shape(ref)}"
    np.testing.assert_allclose(got, ref, rtol=tol.rtol, atol=tol.atol, err_msg=what)


def count_nodes(graph: object) -> int:
    """Nodes of an ONNX graph, its Scan/Loop/If bodies included."""
    return sum(op_histogram(graph).values())


def every_node(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """The nodes of an ONNX graph and of its Scan/Loop/If bodies, depth first."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from every_node(sub)


def assert_size_independent_of_time(model: Model, params: Mapping[str, np.ndarray], nodes: Mapping[str, int],
                                    shapes: tuple[tuple[int, int], ...] = ((2, 5), (1, 300), (4, 17))) -> None:
    """One export per lowering serves every (batch, time) and matches the oracle at each: no unrolling.

    `nodes` gives, per lowering, the fixed node count of the export (loop bodies included):
    the graph is built once for every length, so its size is a constant that a change to the
    lowering (an unrolled or bloated loop body) must move on purpose.
    """
    protos = {lowering: build_model_proto(model, params, 17, lowering) for lowering in nodes}
    counts = {lowering: count_nodes(proto.graph) for lowering, proto in protos.items()}
    assert counts == dict(nodes), f"node counts {counts}, expected {dict(nodes)}"
    for lowering, proto in protos.items():
        session = Session(proto)
        for batch, time in shapes:
            feeds = model.example_inputs(batch=batch, time=time, seed=time)
            got, ref = session.run(**feeds), oracle.run(model, params, **feeds)
            for name in model.outputs:
                row = compare(name, got[name], ref[name])
                assert row.ok, f"{name} at batch {batch}, time {time} ({lowering}): max abs err {row.max_abs:.3e}"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def model_config_pb2() -> ModuleType:
    """tritonclient's generated ModelConfig module, loaded by path: the package `tritonclient.grpc` would
    import grpcio, which only the network client needs."""
    tritonclient = pytest.importorskip("tritonclient")
    path = pathlib.Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("tritonclient_model_config_pb2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
