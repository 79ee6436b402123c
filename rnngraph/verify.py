"""Differential verification: onnxruntime output vs the NumPy oracle on the same inputs.

The tolerance table below is the one place tolerances live; the tests and
`rnngraph verify` both read it. ``allclose`` semantics: an element passes when
``|ort - oracle| <= atol + rtol·|oracle|``.
"""

from __future__ import annotations

import os
import runpy
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.dsl.model import Model
from rnngraph.errors import ModelError


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


#: float32 onnxruntime against the float64 oracle
TOLERANCES: dict[str, Tolerance] = {
    # one or a few hundred float32 steps of a contracting cell
    "float32": Tolerance(atol=1e-4, rtol=1e-3),
    # long closed loops (generative ESN, thousands of driven steps): float32 rounding compounds
    "float32-long": Tolerance(atol=1e-3, rtol=1e-2),
    # float32 references computed by others (ONNX backend cases, onnxruntime kernels, PyTorch) vs the oracle
    "reference": Tolerance(atol=1e-5, rtol=1e-5),
    # token ids from greedy decoding: exact, except at near-ties (see compare_tokens)
    "int64": Tolerance(atol=0.0, rtol=0.0),
}


@dataclass
class Row:
    output: str
    max_abs: float
    max_rel: float
    tolerance: Tolerance
    ok: bool
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def max_abs(self) -> float:
        return max((r.max_abs for r in self.rows), default=0.0)

    def table(self) -> str:
        lines = [f"{'output':<12} {'max abs err':>12} {'max rel err':>12} {'atol':>8} {'rtol':>8}  verdict"]
        for r in self.rows:
            lines.append(f"{r.output:<12} {r.max_abs:>12.3e} {r.max_rel:>12.3e} {r.tolerance.atol:>8.0e} "
                         f"{r.tolerance.rtol:>8.0e}  {'ok' if r.ok else 'FAIL'}{'  ' + r.note if r.note else ''}")
        return "\n".join(lines)


def compare_floats(name: str, got: np.ndarray, ref: np.ndarray, tol: Tolerance) -> Row:
    got64 = np.asarray(got, dtype=np.float64)
    ref64 = np.asarray(ref, dtype=np.float64)
    if got64.shape != ref64.shape:
        return Row(name, float("inf"), float("inf"), tol, False, f"shape {got64.shape} != oracle {ref64.shape}")
    if got64.size == 0:
        return Row(name, 0.0, 0.0, tol, True)
    err = np.abs(got64 - ref64)
    rel = err / np.maximum(np.abs(ref64), 1e-12)
    ok = bool(np.all(err <= tol.atol + tol.rtol * np.abs(ref64)))
    return Row(name, float(err.max()), float(np.where(err > 0, rel, 0).max()), tol, ok)


Comparator = Callable[[str, np.ndarray, np.ndarray, Mapping[str, np.ndarray]], Row]


def compare(name: str, got: np.ndarray, ref: np.ndarray, tolerance: str = "float32") -> Row:
    """Compare one output: shape, then dtype family, then values."""
    if np.issubdtype(np.asarray(ref).dtype, np.integer):
        exact = np.array_equal(got, ref)
        return Row(name, 0.0 if exact else float("inf"), 0.0 if exact else float("inf"), TOLERANCES["int64"], exact)
    return compare_floats(name, got, ref, TOLERANCES[tolerance])


def verify(model: Model, params: Mapping[str, np.ndarray], *, batch: int = 3, time: int = 5, seed: int = 0,
           lowering: str = "auto", opset: int | None = None, feeds: Mapping[str, np.ndarray] | None = None,
           tolerance: str = "float32") -> Report:
    """Export `model`, run it with onnxruntime and the oracle on the same random ragged inputs, compare."""
    from rnngraph.exporters.onnx import DEFAULT_OPSET, build_model_proto
    from rnngraph.runtime import oracle
    from rnngraph.runtime.session import Session

    proto = build_model_proto(model, params, opset or DEFAULT_OPSET, lowering)
    feeds = dict(feeds) if feeds is not None else model.example_inputs(batch, time, seed)
    got = Session(proto).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    report = Report(paths=dict(_paths(proto)))
    for name in model.outputs:
        report.rows.append(compare(name, got[name], ref[name], tolerance))
    return report


def _paths(proto: Any) -> dict[str, str]:
    import json

    for prop in proto.metadata_props:
        if prop.key == "rnngraph.paths":
            return dict(json.loads(prop.value))
    return {}


@dataclass
class ModelFile:
    """What a model file defines: `model`, optionally `params`, `tolerance`, `feeds(batch, time, seed)`."""

    path: str
    model: Model
    params: dict[str, np.ndarray]
    tolerance: str = "float32"
    feeds: Callable[[int, int, int], dict[str, np.ndarray]] | None = None

    def example_inputs(self, batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
        if self.feeds is not None:
            return self.feeds(batch, time, seed)
        return self.model.example_inputs(batch, time, seed)


def load_model_file(path: str | os.PathLike[str], seed: int = 0) -> ModelFile:
    """Run a model file (a Python file defining `model`) and collect what it defines."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"no model file at {path!r}.")
    namespace = runpy.run_path(path, run_name="__rnngraph_model__")
    model = namespace.get("model")
    if not isinstance(model, Model):
        raise ModelError(f"{path}: defines no `model` (a rnngraph.Model); found {type(model).__name__}.")
    params = namespace.get("params")
    if params is None:
        params = model.init(seed)
    model.check_params(params)
    tolerance = namespace.get("tolerance", "float32")
    if tolerance not in TOLERANCES:
        raise ModelError(f"{path}: `tolerance` must be one of {sorted(TOLERANCES)}, received {tolerance!r}.")
    return ModelFile(path, model, dict(params), tolerance, namespace.get("feeds"))


def temp_onnx_path() -> str:
    fd, path = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    return path
