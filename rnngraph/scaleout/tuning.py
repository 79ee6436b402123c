"""Hyper-parameter search for Echo State Networks on a Dask cluster.

    settings = grid(spectral_radius=[0.8, 0.9, 1.0], leak=[0.3, 0.6, 1.0], hidden=[200, 400])
    result = search(settings, train=[(u, d), ...], validation=[(u, d), ...], base={"density": 0.05},
                    ridges=np.logspace(-10, -2, 9), washout=100, error="free-run", horizon=50, client=client)
    result.table            # one row per setting: the setting, the chosen ridge, its validation error
    rg.export(result.model, result.params, "best.onnx")

One task per setting. A task builds its reservoir itself from the seed (``model.init(seed)``:
only the setting travels, never a matrix), harvests the training pairs once, solves the
readout for every ridge value from one eigendecomposition, and scores each ridge on the
validation pairs:
- ``"one-step"``: mean squared error of the driven, teacher-forced predictions past the washout
  (from validation sums, `rnngraph.ridge`);
- ``"free-run"``: the model primed on the first `washout` steps of each validation sequence
  (its own outputs fed back as y(n-1), as the `Generative` layer does), then run closed loop,
  each prediction its next input (needs as many outputs as inputs); mean squared error of the
  `horizon` predictions against the targets d(washout-1 …).
The training and validation data are scattered to every worker once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import rnngraph.dsl as dsl
from rnngraph.dsl.cells.esn import ESN
from rnngraph.errors import InputError
from rnngraph.progress import Progress, Reporter
from rnngraph.ridge import check_ridges, choose
from rnngraph.scaleout.cluster import client_or_default
from rnngraph.train import Reservoir, RidgeTrainer, feed_sequences

ERRORS = ("one-step", "free-run")
#: settings a search may vary (ESN fields)
SEARCHABLE = ("hidden", "spectral_radius", "leak", "input_scaling", "density", "bias_scaling", "feedback_scaling")


def grid(**values: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of the given values: ``grid(leak=[0.3, 1.0], hidden=[100, 200])`` has 4 settings."""
    names = list(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(values[n] for n in names))]


def random_settings(count: int, seed: int = 0, **ranges: Any) -> list[dict[str, Any]]:
    """`count` random settings: a ``(low, high)`` tuple draws uniformly, a list picks one of its values."""
    rng = np.random.default_rng(seed)
    draws: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, spec in ranges.items():
        for setting in draws:
            if isinstance(spec, tuple) and len(spec) == 2:
                setting[name] = float(rng.uniform(*spec))
            elif isinstance(spec, list) and spec:
                setting[name] = spec[int(rng.integers(len(spec)))]
            else:
                raise InputError(f"random_settings: `{name}` must be a (low, high) tuple or a non-empty list of "
                                 f"values, received {spec!r}.")
    return draws


def esn_model(cell: ESN, features: int) -> dsl.Model:
    """The driven model a search trains: input ``u`` (features K) into ``Recurrent(cell, name="esn")``, output ``y``.

    Its parameters are those of ``Generative(cell, name="esn")`` too, for closed-loop export.
    """
    u = dsl.Input("u", features=features)
    y = dsl.Recurrent(cell, name="esn")(u)
    assert isinstance(y, dsl.Tensor)  # one output: a Recurrent layer without return_state
    return dsl.Model(u, {"y": y}, name="esn_search")


def free_run(reservoir: Reservoir, solutions: np.ndarray, inputs: np.ndarray,
             prime: int, horizon: int) -> np.ndarray:
    """Closed-loop predictions ``(R, horizon, L)`` of R readouts ``[W_out b_out]`` ``(R, L, F + 1)`` at once.

    Primes on ``inputs[:prime]`` ``(time, K)`` (y(n-1) the model's own previous output), then feeds
    each prediction back as the next input. Prediction k is y(prime - 1 + k).
    """
    cell = reservoir.cell
    rows, outputs = solutions.shape[0], cell.outputs
    x, y = np.zeros((rows, cell.hidden)), np.zeros((rows, outputs))
    W_out, b_out = solutions[:, :, :-1], solutions[:, :, -1]
    predictions = np.empty((rows, horizon, outputs))
    for t in range(prime + horizon - 1):
        u = np.broadcast_to(inputs[t], (rows, inputs.shape[1])) if t < prime else y
        drive = u @ reservoir.W_in_T + reservoir.bias
        if reservoir.W_back_T is not None:
            drive += y @ reservoir.W_back_T
        x_new = reservoir.step(x, drive)
        parts = {"input": u, "state": x_new, "output": y}
        z = np.concatenate([parts[r] for r in cell.reads], axis=1)
        y, x = np.einsum("rlf,rf->rl", W_out, z) + b_out, x_new
        if t >= prime - 1:
            predictions[:, t - prime + 1] = y
    return predictions


def free_run_error(reservoir: Reservoir, solutions: np.ndarray,
                   validation: Sequence[tuple[np.ndarray, np.ndarray]], prime: int, horizon: int) -> np.ndarray:
    """Mean squared free-run error ``(R,)`` of each readout over the validation pairs."""
    total = np.zeros(solutions.shape[0])
    for inputs, targets in validation:
        truth = np.asarray(targets, dtype=np.float64)[prime - 1: prime - 1 + horizon]
        total += np.mean((free_run(reservoir, solutions, np.asarray(inputs, np.float64), prime, horizon)
                          - truth) ** 2, axis=(1, 2))
    return total / len(validation)


def evaluate(setting: Mapping[str, Any], columns: Sequence[str], base: Mapping[str, Any], seed: int, features: int,
             outputs: int,
             train: Sequence[tuple[np.ndarray, np.ndarray]], validation: Sequence[tuple[np.ndarray, np.ndarray]],
             washout: int, ridges: Sequence[float], error: str, horizon: int) -> dict[str, Any]:
    """Runs on a worker: one setting built from the seed, trained, scored; returns its row and readout.

    The row holds the cell's value of every searched name in `columns` (the base's where the
    setting leaves one out), the chosen ridge, the validation error and the task's seconds.
    """
    start = time.perf_counter()
    cell = ESN(**{**base, **setting, "outputs": outputs})
    model = esn_model(cell, features)
    params = model.init(seed)
    trainer = RidgeTrainer(model, params, washout=washout, progress=False)
    train_sums = feed_sequences(trainer, train)
    if error == "one-step":
        held = feed_sequences(RidgeTrainer(model, params, washout=washout, progress=False), validation)
        W, chosen, errors = choose(train_sums, held, ridges)
    else:
        path = train_sums.solve_path(ridges)
        scores = free_run_error(trainer.reservoir, path, validation, washout, horizon)
        best = int(np.argmin(scores))
        W, chosen, errors = path[best], ridges[best], tuple(float(e) for e in scores)
    assert errors is not None
    row = {**{name: getattr(cell, name) for name in columns}, "ridge": chosen, "error": min(errors),
           "seconds": time.perf_counter() - start}
    return {"row": row, "solution": W}


@dataclass(frozen=True)
class SearchResult:
    """`table`: one row per setting (a pandas DataFrame when pandas is installed, else a list of
    dicts), sorted by validation error; `best`: the best row; `cell`, `model`, `params`: the best
    ESN, its driven model and its trained parameters (float32), ready for `rnngraph.export`;
    `solution`: the best readout ``[W_out b_out]`` in float64, as its worker scored it."""

    table: Any
    best: dict[str, Any]
    cell: ESN
    model: dsl.Model
    params: dict[str, np.ndarray]
    solution: np.ndarray


def search(settings: Sequence[Mapping[str, Any]], *, train: Sequence[tuple[Any, Any]],
           validation: Sequence[tuple[Any, Any]], base: Mapping[str, Any] | None = None, seed: int = 0,
           washout: int = 0, ridges: Sequence[float] = (1e-8, 1e-6, 1e-4, 1e-2), error: str = "one-step",
           horizon: int | None = None, client: Any = None, progress: Progress = None) -> SearchResult:
    """Train and score every setting on the cluster (one task each); see the module docstring."""
    ridges = check_ridges(ridges)
    base = dict(base or {})
    if error not in ERRORS:
        raise InputError(f"invalid value for `error`: expected one of {ERRORS}, received {error!r}.")
    if not settings or any(not isinstance(s, Mapping) or set(s) - set(SEARCHABLE) for s in settings):
        raise InputError(f"`settings` must be a non-empty list of dicts over {SEARCHABLE} (see grid() and "
                         f"random_settings()), received {list(settings)[:3]!r}.")
    train, validation = _pairs("train", train), _pairs("validation", validation)
    features, outputs = train[0][0].shape[1], train[0][1].shape[1]
    if error == "free-run":
        if features != outputs:
            raise InputError(f"error='free-run' feeds each prediction back as the next input, so inputs and "
                             f"targets need the same features; received {features} and {outputs}.")
        shortest = min(len(t) for _, t in validation)
        horizon = shortest - washout + 1 if horizon is None else int(horizon)
        if washout < 1 or horizon < 1 or washout - 1 + horizon > shortest:
            raise InputError(f"error='free-run' primes on `washout` >= 1 steps and predicts `horizon` >= 1 more: "
                             f"washout {washout} + horizon {horizon} - 1 must fit the shortest validation "
                             f"sequence ({shortest} steps).")
    client = client_or_default(client)
    from distributed import as_completed

    train_f, validation_f = client.scatter([train, validation], broadcast=True, hash=False)
    columns = list(dict.fromkeys(name for s in settings for name in s))
    futures = [client.submit(evaluate, s, columns, base, seed, features, outputs, train_f, validation_f, washout,
                             ridges, error, horizon or 0, pure=False) for s in settings]
    reporter = Reporter(progress, len(futures), "ESN search")
    for _ in as_completed(futures):
        reporter.advance(1)
    reporter.close()
    results = client.gather(futures)
    order = sorted(range(len(results)), key=lambda i: results[i]["row"]["error"])
    rows = [results[i]["row"] for i in order]
    best = results[order[0]]
    cell = ESN(**{**base, **settings[order[0]], "outputs": outputs})
    model = esn_model(cell, features)
    params = RidgeTrainer(model, model.init(seed), progress=False).readout(best["solution"])
    return SearchResult(_table(rows), rows[0], cell, model, params, best["solution"])


def _pairs(name: str, pairs: Sequence[tuple[Any, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(pairs, (list, tuple)) or not pairs or any(not isinstance(p, tuple) or len(p) != 2
                                                                for p in pairs):
        raise InputError(f"`{name}` must be a non-empty list of (inputs (time, K), targets (time, L)) pairs.")
    return [(np.asarray(u, dtype=np.float64), np.asarray(d, dtype=np.float64)) for u, d in pairs]


def _table(rows: list[dict[str, Any]]) -> Any:
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)


__all__ = ["SearchResult", "esn_model", "evaluate", "free_run", "free_run_error", "grid", "random_settings",
           "search"]
