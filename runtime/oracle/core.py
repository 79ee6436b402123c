"""The oracle's interpreter loop and registries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Layer
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.params import effective
from rnngraph.dsl.registry import implementation
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec
from rnngraph.errors import InputError, RnnGraphError

#: step(cell, p, x_t (in,), states {name: (size,)}, t) -> (new states, y_t (out,)); t counts from 0
Step = Callable[[Any, Mapping[str, np.ndarray], np.ndarray, dict[str, np.ndarray], int],
                tuple[dict[str, np.ndarray], np.ndarray]]


def step_for(cell: Cell) -> Step:
    """The oracle step of `cell`, from the cell registry (`rnngraph.dsl.registry`, backend ``oracle``)."""
    step: Step = implementation(cell, "oracle")
    return step


@dataclass
class Env:
    """What an evaluator sees: the model, effective parameters (float64), the feeds, computed values.

    `forced` maps an argmax-looping node (greedy decoding, 1-to-N generation with tokens) to the
    tokens ``(batch, steps)`` it must emit instead of its own argmax (`run_forced`); each such
    node leaves its scores ``(batch, steps, vocab)`` in `scores`.
    """

    model: Model
    params: dict[str, np.ndarray]
    feeds: dict[str, np.ndarray]
    values: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    forced: Mapping[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    #: told the number of steps each time a row of a recurrent layer has run (progress of long runs)
    on_steps: Callable[[int], Any] | None = None

    def stepped(self, steps: int) -> None:
        if self.on_steps is not None:
            self.on_steps(steps)

    def token(self, node: str, b: int, t: int, scores: np.ndarray) -> int:
        """The token node `node` emits at step t of row b: the forced one where given, else argmax(scores)."""
        forced = self.forced.get(node)
        if forced is not None and t < forced.shape[1]:
            return int(forced[b, t])
        return int(np.argmax(scores))

    def value(self, source: Source) -> np.ndarray:
        return self.values[(source.node, source.index)]

    def lengths(self, spec: TensorSpec, time: int, batch: int) -> np.ndarray:
        """Valid steps per row of a sequence with `spec` (all `time` when unpadded)."""
        if spec.lengths is None:
            return np.full(batch, time, dtype=np.int64)
        return self.feeds[spec.lengths]

    def node_params(self, node: str) -> dict[str, np.ndarray]:
        return self.model.node_params(node, self.params)

    def outputs(self) -> dict[str, np.ndarray]:
        return {name: self.value(source) for name, source in self.model.outputs.items()}


Evaluator = Callable[[Env, str, Any, Mapping[str, Source]], tuple[np.ndarray, ...]]
EVALUATORS: dict[type, Evaluator] = {}


def evaluates(layer_type: type) -> Callable[[Evaluator], Evaluator]:
    """Register the oracle evaluator of a layer type."""

    def register(fn: Evaluator) -> Evaluator:
        EVALUATORS[layer_type] = fn
        return fn

    return register


def evaluator_for(layer: Layer) -> Evaluator:
    for klass in type(layer).__mro__:
        if klass in EVALUATORS:
            return EVALUATORS[klass]
    raise RnnGraphError(f"the oracle cannot evaluate layer {type(layer).__name__}.")


def run(model: Model, params: Mapping[str, np.ndarray], /, **feeds: Any) -> dict[str, np.ndarray]:
    """Evaluate `model` on `feeds`; returns every output by name (float64, or int64 token ids)."""
    return evaluate(model, params, feeds).outputs()


def run_reporting(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, Any],
                  on_steps: Callable[[int], Any]) -> dict[str, np.ndarray]:
    """`run`, calling ``on_steps(n)`` each time a row of a recurrent layer has run n steps (a progress bar's feed)."""
    return evaluate(model, params, feeds, on_steps=on_steps).outputs()


def run_forced(model: Model, params: Mapping[str, np.ndarray], tokens: Mapping[str, np.ndarray], /,
               **feeds: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Evaluate `model` with argmax node `name` emitting ``tokens[name][b, i]`` at step i of row b (where given).

    Greedy decoding and argmax feedback then follow another decoder's path (the near-tie
    comparison of `rnngraph.verify`). Returns the outputs and, per argmax node, its scores
    ``(batch, steps, vocab)`` whether or not they are a model output.
    """
    env = evaluate(model, params, feeds, tokens)
    return env.outputs(), env.scores


def evaluate(model: Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, Any],
             forced: Mapping[str, np.ndarray] | None = None,
             on_steps: Callable[[int], Any] | None = None) -> Env:
    """Evaluate every node; `forced` tokens as in `run_forced`; `on_steps(n)` after each row of a recurrent run."""
    model.check_params(params)
    env = Env(model, effective(model.param_specs(), params), prepare_feeds(model, feeds), forced=dict(forced or {}),
              on_steps=on_steps)
    for name, node in model.nodes():
        outs = evaluator_for(node.layer)(env, name, node.layer, model.sources(name))
        for index, value in enumerate(outs):
            env.values[(name, index)] = value
    return env


def prepare_feeds(model: Model, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check names, cast floats to float64, fill missing lengths with full ones."""
    expected = set(model.inputs) | set(model.lengths)
    unknown = sorted(set(feeds) - expected)
    missing = sorted(set(model.inputs) - set(feeds))
    if unknown or missing:
        raise InputError(f"oracle feeds do not match the model: unknown {unknown}, missing {missing}; "
                         f"the model takes {sorted(expected)}.")
    out: dict[str, np.ndarray] = {}
    for name, spec in model.inputs.items():
        array = np.asarray(feeds[name])
        dims = spec.dims()
        wrong = [axis for axis, dim in enumerate(dims) if isinstance(dim, int) and array.shape[axis] != dim] \
            if array.ndim == len(dims) else []
        if array.ndim != len(dims) or wrong:
            shape = "(" + ", ".join(str(d) for d in dims) + ")"
            raise InputError(f"oracle: input {name!r} must have shape {shape}, received shape {array.shape}.")
        if spec.kind == SEQUENCE and array.shape[0] and not array.shape[1]:
            raise InputError(f"oracle: `{name}` has time 0; every sequence needs at least one step "
                             "(lengths are 1..time).")
        out[name] = array.astype(np.int64) if spec.dtype == "int64" else array.astype(np.float64)
    for lengths, owners in model.lengths.items():
        first = out[owners[0]]
        if feeds.get(lengths) is None:
            out[lengths] = np.full(first.shape[0], first.shape[1], dtype=np.int64)
        else:
            out[lengths] = np.asarray(feeds[lengths]).astype(np.int64)
        lens = out[lengths]
        if lens.shape != (first.shape[0],) or (lens.size and (lens.min() < 1 or lens.max() > first.shape[1])):
            raise InputError(f"oracle: `{lengths}` must hold one length in 1..{first.shape[1]} per row, "
                             f"received {lens.tolist()}.")
    return out


def is_sequence(spec: TensorSpec) -> bool:
    return spec.kind == SEQUENCE
