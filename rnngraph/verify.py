"""Differential verification: onnxruntime output vs the NumPy oracle on the same inputs.

The tolerance table below is the one place tolerances live; the tests and
`rnngraph verify` both read it. ``allclose`` semantics: an element passes when
``|ort - oracle| <= atol + rtol·|oracle|``.
"""

from __future__ import annotations

import json
import os
import runpy
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.model import Model
from rnngraph.errors import ModelError, RnnGraphError
from rnngraph.progress import Progress


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
    # reduced-precision exports (exporters.onnx.precision) vs the float64 oracle, bounds from the measured
    # errors of every sample (docs/deploy.md has the table): float16 keeps ~3 significant digits per step
    # (worst 7.7e-3, attention weights); dynamic int8 quantizes weights and each step's activations with one
    # scale per tensor, about 1% of the values' range (worst 4.8e-2, attention weights). "-long": models that
    # generate freely (a count input), where each step's rounding is fed back (worst: the chaotic
    # Mackey-Glass ESN, 4.0e-3 in float16, 0.15 in int8)
    "float16": Tolerance(atol=2e-3, rtol=2e-2),
    "float16-long": Tolerance(atol=1e-2, rtol=5e-2),
    "int8": Tolerance(atol=6e-2, rtol=5e-2),
    "int8-long": Tolerance(atol=0.3, rtol=0.2),
    # float64 exports (ExportOptions(dtype="float64")) compute what the oracle computes, in another order:
    # measured, every sample and cell within 1e-14 over tens of steps; "-long": long or chaotic closed loops
    # (the Mackey-Glass ESN's free run over 84 steps), where the last bits of each step are fed back
    "float64": Tolerance(atol=1e-12, rtol=1e-10),
    "float64-long": Tolerance(atol=1e-9, rtol=1e-7),
}


def for_dtype(tolerance: str, dtype: str) -> str:
    """The entry of `TOLERANCES` for an export in `dtype`: a model file's ``float32``/``float32-long`` becomes
    ``float64``/``float64-long`` for a float64 export; other names stay."""
    if dtype == "float64" and tolerance.startswith("float32"):
        return "float64" + tolerance[len("float32"):]
    return tolerance


def file_dtype(proto: Any) -> str:
    """The float type an exported file computes in (metadata ``rnngraph.dtype``; float32 when absent)."""
    return next((p.value for p in proto.metadata_props if p.key == "rnngraph.dtype"), "float32")


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
    """Values within `tol`; a NaN must be NaN on both sides (the NaN rule), and is then equal."""
    got64 = np.asarray(got, dtype=np.float64)
    ref64 = np.asarray(ref, dtype=np.float64)
    if got64.shape != ref64.shape:
        return Row(name, float("inf"), float("inf"), tol, False, f"shape {got64.shape} != oracle {ref64.shape}")
    nan = np.isnan(ref64)
    if not np.array_equal(np.isnan(got64), nan):
        where = np.argwhere(np.isnan(got64) != nan)[0].tolist()
        return Row(name, float("inf"), float("inf"), tol, False,
                   f"NaN on one side only, first at {where} (onnxruntime {got64[tuple(where)]}, "
                   f"oracle {ref64[tuple(where)]})")
    got64, ref64 = got64[~nan], ref64[~nan]
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
           tolerance: str = "float32", proto: Any = None, nan: bool = True,
           progress: Progress = False, dtype: str = "float32") -> Report:
    """Export `model`, run it with onnxruntime and the oracle on the same random ragged inputs, compare.

    `dtype`: the export's float type (``float64``: the export runs in float64 and `tolerance` is
    read as its float64 entry, `for_dtype`). A given `proto` computes in its own (`file_dtype`).

    With `proto` (an exported ModelProto, e.g. a shipped file read back by `rnngraph.loading.read_onnx`),
    that file is run instead of a fresh export. With `nan`, the same inputs again with a NaN in one
    valid step (`nan_feeds`), where the NaN rule applies: rows ``<output>, NaN step`` (NaN where the
    oracle has NaN, equal elsewhere). `progress` reports the oracle's steps (its Python loop is what
    takes long): None for a bar on a terminal, a callable ``(done_steps, None)``, or False (the
    default: silent).
    """
    from rnngraph.exporters.onnx import DEFAULT_OPSET, build_model_proto
    from rnngraph.progress import Reporter
    from rnngraph.runtime import oracle

    if proto is None:
        proto = build_model_proto(model, params, opset or DEFAULT_OPSET, lowering, dtype=dtype)
    tolerance = for_dtype(tolerance, file_dtype(proto))
    feeds = dict(feeds) if feeds is not None else model.example_inputs(batch, time, seed)
    got = run_file(proto, feeds)
    reporter = Reporter(progress, None, "oracle")
    try:
        ref = oracle.run_reporting(model, params, feeds, reporter.advance)
    finally:
        reporter.close()
    ref, notes = follow_near_ties(model, params, feeds, got, ref, tolerance)
    report = Report(paths=dict(_paths(proto)))
    for name in model.outputs:
        row = compare(name, got[name], ref[name], tolerance)
        row.note = notes.get(name, row.note)
        report.rows.append(row)
    poisoned = nan_feeds(model, feeds) if nan else None
    if poisoned is not None:
        got, ref = run_file(proto, poisoned), oracle.run(model, params, **poisoned)
        report.rows += [compare(f"{name}, NaN step", got[name], ref[name], tolerance) for name in model.outputs]
    return report


#: the chunk size a streaming chunk model is verified with: state carried across chunks, ragged rows ending inside
STREAMING_CHUNK = 2


def run_file(proto: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outputs of an exported file on whole-sequence `feeds`; a streaming chunk model (metadata
    ``rnngraph.state``) is fed them in chunks of `STREAMING_CHUNK` steps, its state carried between them."""
    from rnngraph.runtime.session import Session
    from rnngraph.runtime.streaming import StreamingSession

    meta = {p.key: p.value for p in proto.metadata_props}
    if not json.loads(meta.get("rnngraph.state", '{"streaming": false}')).get("streaming"):
        return Session(proto).run(**feeds)
    batch = len(next(iter(feeds.values())))
    return StreamingSession(proto).open(batch).feed_in_chunks(STREAMING_CHUNK, **feeds)


def model_cells(model: Model) -> list[Cell]:
    """The cells the model's layers run, in node order."""
    from rnngraph.dsl.decoder import DecoderLayer
    from rnngraph.dsl.esn_generate import Generative
    from rnngraph.dsl.generate import Generate
    from rnngraph.dsl.layers import Recurrent
    from rnngraph.dsl.wrappers import Bidirectional, Stack

    def cells_of(layer: object) -> list[Cell]:
        if isinstance(layer, Stack):
            return [c for item in layer.layers for c in ([item] if isinstance(item, Cell) else cells_of(item))]
        if isinstance(layer, DecoderLayer):
            assert layer.decoder is not None and layer.decoder.cell is not None
            return [layer.decoder.cell]
        if isinstance(layer, (Recurrent, Bidirectional, Generate, Generative)):
            return list(layer.cell) if isinstance(layer.cell, tuple) else [layer.cell] if layer.cell else []
        return []

    return [cell for _, node in model.nodes() for cell in cells_of(node.layer)]


def nan_feeds(model: Model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """`feeds` with a NaN in the middle valid step of row 0 of every float sequence input, or None.

    None where the NaN rule gives nothing to compare: no float sequence input; tokens chosen
    by an argmax (greedy decoding, generated tokens or argmax feedback: the argmax of NaN
    scores is no number); a Clockwork cell, whose dense form breaks the rule (its Gemm
    multiplies the structural zeros of R by a faster group's NaN, 0·NaN, and its blend
    does the same for a resting group; the ladder form keeps it).
    """
    from rnngraph.dsl.cells.clockwork import Clockwork
    from rnngraph.dsl.decoder import GreedyDecode
    from rnngraph.dsl.generate import Generate
    from rnngraph.dsl.tensor import SEQUENCE

    layers = [node.layer for _, node in model.nodes()]
    if any(isinstance(layer, GreedyDecode) or (isinstance(layer, Generate) and (layer.tokens or layer.feedback
                                                                                 == "argmax"))
           for layer in layers) or any(isinstance(cell, Clockwork) for cell in model_cells(model)):
        return None
    out = dict(feeds)
    for name, spec in model.inputs.items():
        if spec.kind != SEQUENCE or spec.is_tokens or out[name].shape[0] == 0:
            continue
        length = int(out[spec.lengths][0]) if spec.lengths is not None and spec.lengths in out else out[name].shape[1]
        if length < 1:
            continue
        x = np.array(out[name], dtype=np.float32)
        x[0, (length - 1) // 2, 0] = np.nan
        out[name] = x
    return None if all(out[name] is feeds[name] for name in feeds) else out


def follow_near_ties(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray],
                     got: Mapping[str, np.ndarray], ref: dict[str, np.ndarray],
                     tolerance: str = "float32") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The oracle's outputs to compare greedy decoding with, allowing for near-ties.

    Where onnxruntime's decoded tokens differ from the oracle's, the oracle runs again
    forced to onnxruntime's tokens (`runtime.oracle.run_forced`). Every step where
    onnxruntime chose a token other than that run's argmax must be a near-tie: the
    chosen token's score within `tolerance` of the best score (float32 rounding may pick
    either). If all are, the forced run (the same path as onnxruntime's, so its scores
    and attention weights are comparable) is the reference; if not, the first run stays
    the reference, so the comparison fails, with a note naming the step.
    Returns the reference outputs and a note per output name.
    """
    from rnngraph.dsl.decoder import GreedyDecode
    from rnngraph.dsl.generate import Generate
    from rnngraph.runtime import oracle

    greedy = {name for name, node in model.nodes() if isinstance(node.layer, GreedyDecode)}
    token_outputs = {out: src.node for out, src in model.outputs.items() if src.node in greedy and src.index == 0}
    # 1-to-N generation's token ids (its output 1), fed back into the next step with feedback="argmax"
    generating = {name for name, node in model.nodes() if isinstance(node.layer, Generate) and node.layer.tokens}
    token_outputs.update({out: src.node for out, src in model.outputs.items()
                          if src.node in generating and src.index == 1})
    differs = {node: np.asarray(got[out]) for out, node in token_outputs.items()
               if np.asarray(got[out]).shape != ref[out].shape or not np.array_equal(got[out], ref[out])}
    if not differs:
        return ref, {}
    forced, scores = oracle.run_forced(model, params, differs, **feeds)
    tol = TOLERANCES[tolerance]
    notes: dict[str, str] = {}
    for out, node in token_outputs.items():
        if node not in differs:
            continue
        chosen, s = differs[node], scores[node]
        if forced[out].shape != chosen.shape or not np.array_equal(forced[out], chosen):
            notes[out] = "onnxruntime stopped decoding at other steps than the oracle following its tokens"
            return ref, notes
        ties = 0
        for b, i in zip(*np.nonzero(chosen != s.argmax(axis=-1)), strict=True):
            best, picked = float(s[b, i].max()), float(s[b, i, chosen[b, i]])
            if not s[b, i].any():  # past the row's end: both emit padding
                continue
            if best - picked > tol.atol + tol.rtol * abs(best):
                notes[out] = (f"row {b} step {i}: onnxruntime chose token {chosen[b, i]} (score {picked:.6g}), the "
                              f"oracle {int(s[b, i].argmax())} (score {best:.6g}); not a near-tie")
                return ref, notes
            ties += 1
        notes[out] = f"{ties} near-tie(s): compared conditioned on onnxruntime's tokens"
    return forced, notes


def _paths(proto: Any) -> dict[str, str]:
    import json

    for prop in proto.metadata_props:
        if prop.key == "rnngraph.paths":
            return dict(json.loads(prop.value))
    return {}


@dataclass
class ModelFile:
    """What a model file defines: `model`, optionally `params`, `tolerance`, `feeds(batch, time, seed)`.

    For an ``.onnx`` file, `onnx` holds what it was read as (`rnngraph.loading.OnnxModel`).
    """

    path: str
    model: Model
    params: dict[str, np.ndarray]
    tolerance: str = "float32"
    feeds: Callable[[int, int, int], dict[str, np.ndarray]] | None = None
    onnx: Any = None

    def example_inputs(self, batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
        if self.feeds is not None:
            return self.feeds(batch, time, seed)
        return self.model.example_inputs(batch, time, seed)


def load_model_file(path: str | os.PathLike[str], seed: int = 0, kind: str | None = None) -> ModelFile:
    """Read a model file: a Python file defining `model`, a ``.json``/``.toml`` description, or an ONNX export.

    `kind` (``python``, ``description``, ``onnx``; see `rnngraph.cli_args.model_kind`) is found from
    the name (``.py``, ``.json``, ``.toml``) or, for ONNX, the file's first bytes when not given.
    Parameters: the Python file's `params`, those stored in the ONNX file, else ``model.init(seed)``.
    """
    from rnngraph.cli_args import looks_like_onnx

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"no model file at {path!r}.")
    if kind is None:
        with open(path, "rb") as f:
            head = f.read(2)
        lower = path.lower()
        kind = "python" if lower.endswith(".py") else "description" if lower.endswith((".json", ".toml")) \
            else "onnx" if looks_like_onnx(head) else None
    if kind == "description":
        from rnngraph.dsl.description import load_description

        described = load_description(path)
        return ModelFile(path, described, described.init(seed))
    if kind == "onnx":
        from rnngraph.loading import read_onnx

        found = read_onnx(path)
        return ModelFile(path, found.model, found.params, onnx=found)
    if kind != "python":
        raise ModelError(f"{path}: not a model file rnngraph reads: give a Python model file (.py), a model "
                         "description (.json or .toml) or an ONNX file written by rnngraph export.")
    try:
        namespace = runpy.run_path(path, run_name="__rnngraph_model__")
    except RnnGraphError:
        raise
    except SystemExit as exc:  # a script's exit must not pass for success (nor end the caller's process)
        raise ModelError(f"{path}: the model file called sys.exit({exc.code!r}){_where(exc, path)}; a model file "
                         f"must define `model` and return. Put script-only code under "
                         f"`if __name__ == \"__main__\":`.") from exc
    except Exception as exc:  # noqa: BLE001 - the user's file: say where it failed, in one line
        raise ModelError(f"{path}: running the model file failed{_where(exc, path)}: "
                         f"{type(exc).__name__}: {exc}") from exc
    model = namespace.get("model")
    if not isinstance(model, Model):
        raise ModelError(f"{path}: defines no `model` (a rnngraph.Model); found {type(model).__name__}.")
    params = namespace.get("params")
    if params is None:
        params = model.init(seed)
    if not isinstance(params, Mapping):
        raise ModelError(f"{path}: `params` must be a dict of parameter name -> array (as model.init(seed) "
                         f"returns), received {type(params).__name__}.")
    model.check_params(params)
    tolerance = namespace.get("tolerance", "float32")
    if tolerance not in TOLERANCES:
        raise ModelError(f"{path}: `tolerance` must be one of {sorted(TOLERANCES)}, received {tolerance!r}.")
    return ModelFile(path, model, dict(params), tolerance, namespace.get("feeds"))


def _where(exc: BaseException, path: str) -> str:
    """`` at line N`` of the model file where `exc` was raised, if it was raised there."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    return f" at line {line}" if line else ""
