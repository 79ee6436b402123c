"""Shared test helpers. Tolerances come from `rnngraph.verify.TOLERANCES` (the one table)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pytest

from rnngraph.cli import op_histogram
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


def run_both(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray],
             lowering: str = "auto", opset: int = 17) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    proto = build_model_proto(model, params, opset, lowering)
    return Session(proto).run(**feeds), oracle.run(model, params, **feeds)


def assert_matches(model: Model, params: Mapping[str, np.ndarray] | None = None, *, batch: int = 3, time: int = 5,
                   lowering: str = "auto", seed: int = 0, ragged: bool = True, tolerance: str = "float32",
                   feeds: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Export and run `model` with onnxruntime and the oracle on random inputs; assert every output agrees."""
    params = params if params is not None else model.init(seed)
    feeds = feeds if feeds is not None else model.example_inputs(batch, time, seed, ragged)
    got, ref = run_both(model, params, feeds, lowering)
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


def assert_size_independent_of_time(model: Model, params: Mapping[str, np.ndarray],
                                    lowerings: tuple[str, ...] = ("scan", "native"),
                                    shapes: tuple[tuple[int, int], ...] = ((2, 5), (1, 300), (4, 17))) -> None:
    """One export per lowering serves every (batch, time) and matches the oracle at each: no unrolling."""
    for lowering in lowerings:
        proto = build_model_proto(model, params, 17, lowering)
        nodes = count_nodes(proto.graph)
        session = Session(proto)
        for batch, time in shapes:
            feeds = model.example_inputs(batch=batch, time=time, seed=time)
            got, ref = session.run(**feeds), oracle.run(model, params, **feeds)
            for name in model.outputs:
                row = compare(name, got[name], ref[name])
                assert row.ok, f"{name} at batch {batch}, time {time} ({lowering}): max abs err {row.max_abs:.3e}"
        # the same description exports the same graph whatever the inputs will be
        assert count_nodes(build_model_proto(model, params, 17, lowering).graph) == nodes


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
