"""Training the readout of an Echo State Network by ridge regression (SPEC §2.5).

    params = rg.fit_ridge(model, params, inputs=u, targets=d, washout=100, ridge=1e-6)

The reservoir runs with teacher forcing (y(n-1) := target(n-1), through W_back and
into the readout), the first `washout` steps of every sequence are discarded, and
the readout solves

    [W_out  b_out] = Y Zᵀ (Z Zᵀ + β I)⁻¹          z(n) = [u(n); x(n); y(n-1); 1]  (the parts the ESN reads)

where Z and Y hold one column per kept step. Only the sums Z Zᵀ ((F+1)², float64)
and Y Zᵀ are kept, so data can be fed in chunks that never have to be in memory
together (`RidgeTrainer`), over any number of sequences. β regularises every column,
the bias's included, as SPEC §2.5 writes it.

The harvest computes the reservoir update itself, vectorised over rows, rather than
through the oracle's one-row step; `tests/test_esn_train.py` checks the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.dsl.cells.esn import ESN, READS
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.layers import InputLayer, Recurrent
from rnngraph.dsl.model import Model
from rnngraph.dsl.params import effective
from rnngraph.errors import InputError, ModelError, ParameterError


class RidgeAccumulator:
    """Streaming sums for ridge regression of `outputs` targets on `features` regressors.

    ``add(Z (n, F), Y (n, L))`` accumulates ``ZᵀZ`` and ``YᵀZ`` in float64;
    ``solve(β)`` returns ``W (L, F)`` minimising ``Σ‖y − W z‖² + β‖W‖²``.
    """

    def __init__(self, features: int, outputs: int) -> None:
        self.zz = np.zeros((features, features))
        self.yz = np.zeros((outputs, features))
        self.count = 0

    def add(self, Z: np.ndarray, Y: np.ndarray) -> None:
        Z = np.asarray(Z, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        self.zz += Z.T @ Z
        self.yz += Y.T @ Z
        self.count += Z.shape[0]

    def solve(self, ridge: float) -> np.ndarray:
        if isinstance(ridge, bool) or not isinstance(ridge, (int, float, np.integer, np.floating)) or not ridge >= 0:
            raise InputError(f"invalid value for `ridge`: expected a number >= 0 (the β of Z Zᵀ + β I), "
                             f"received {ridge!r}.")
        if self.count == 0:
            raise InputError("no training steps were accumulated (all were discarded as washout, or nothing was fed); "
                             "feed longer sequences or lower `washout`.")
        system = self.zz + float(ridge) * np.eye(self.zz.shape[0])
        try:
            solution = np.linalg.solve(system, self.yz.T).T
        except np.linalg.LinAlgError as exc:
            raise ParameterError(f"the ridge system is singular ({exc}); use `ridge` > 0, e.g. 1e-8.") from exc
        if not np.all(np.isfinite(solution)):
            raise ParameterError("the ridge solution is not finite; use a larger `ridge`.")
        return solution


def _as_batch(name: str, value: Any, features: int) -> np.ndarray:
    """A chunk as float64 ``(batch, time, features)``; ``(time, features)`` is one row."""
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"`{name}`: expected numbers, received dtype {array.dtype}.")
    if array.ndim not in (2, 3) or array.shape[-1] != features:
        raise InputError(f"`{name}`: expected shape (time, {features}) or (batch, time, {features}), "
                         f"received {array.shape}.")
    array = array.astype(np.float64)
    if array.ndim == 2:
        array = array[None]
    if not np.all(np.isfinite(array)):
        raise InputError(f"`{name}`: contains NaN or infinity.")
    return array


class RidgeTrainer:
    """Ridge training of one ESN node's readout, fed chunk by chunk.

        trainer = RidgeTrainer(model, params, washout=100)
        for u, d in chunks_of_sequence_1:       # (time, K) and (time, L), or (batch, time, ·)
            trainer.feed(u, d)                   # continues the reservoir state of the previous chunk
        trainer.end_sequence()                   # the next feed starts a new sequence (zero state, washout again)
        ...
        params = trainer.solve(ridge=1e-6)       # a new parameter dict: W_out, b_out replaced

    `node` names the ESN node (``Recurrent(ESN(...))`` or ``Generative(ESN(...))``);
    it may be left out when the model has exactly one. Its input must be a model
    input, so that the chunks fed are what the ESN reads.
    """

    def __init__(self, model: Model, params: Mapping[str, np.ndarray], *, node: str | None = None,
                 washout: int = 0) -> None:
        if isinstance(washout, bool) or not isinstance(washout, (int, np.integer)) or washout < 0:
            raise InputError(f"invalid value for `washout`: expected an integer >= 0 (steps discarded at the start "
                             f"of every sequence), received {washout!r}.")
        self.model = model
        self.params = dict(params)
        self.node = find_esn_node(model, node)
        model.check_params(params)
        layer = model.graph.nodes[self.node]["node"].layer
        self.cell: ESN = layer.cell
        source = model.sources(self.node)["x"]
        self.input_size = source.spec.features
        specs = {k: s for k, s in model.param_specs().items() if k.startswith(self.node + "/")}
        self.p = {k[len(self.node) + 1:]: v for k, v in effective(specs, params).items()}
        self.washout = int(washout)
        self.reads = self.cell.read_sizes(self.input_size)
        self.accumulator = RidgeAccumulator(sum(self.reads.values()) + 1, self.cell.outputs)
        self.end_sequence()

    def end_sequence(self) -> None:
        """Forget the reservoir state: the next `feed` starts new sequences."""
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._seen = 0

    def feed(self, inputs: Any, targets: Any) -> None:
        """Run the next chunk with teacher forcing and accumulate its steps past the washout."""
        u = _as_batch("inputs", inputs, self.input_size)
        d = _as_batch("targets", targets, self.cell.outputs)
        if u.shape[:2] != d.shape[:2]:
            raise InputError(f"`inputs` and `targets` must have the same batch and time, received "
                             f"{u.shape[:2]} and {d.shape[:2]}.")
        batch, time = u.shape[:2]
        if self._x is None or self._y is None:
            self._x = np.zeros((batch, self.cell.hidden))
            self._y = np.zeros((batch, self.cell.outputs))
        elif self._x.shape[0] != batch:
            raise InputError(f"this chunk has {batch} rows but the sequence being fed has {self._x.shape[0]}; "
                             "call end_sequence() before feeding other sequences.")
        states, y_prev = harvest(self.cell, self.p, u, d, self._x, self._y)
        self._x, self._y = states[:, -1], d[:, -1]
        skip = min(time, max(0, self.washout - self._seen))
        self._seen += time
        if skip == time:
            return
        parts = {"input": u, "state": states, "output": y_prev}
        z = np.concatenate([parts[r] for r in READS if r in self.reads] + [np.ones((batch, time, 1))], axis=2)
        self.accumulator.add(z[:, skip:].reshape(-1, z.shape[2]), d[:, skip:].reshape(-1, d.shape[2]))

    def solve(self, ridge: float = 1e-6) -> dict[str, np.ndarray]:
        """The parameters with the readout solved from everything fed so far (float32)."""
        solution = self.accumulator.solve(ridge)
        out = dict(self.params)
        out[f"{self.node}/W_out"] = solution[:, :-1].astype(np.float32)
        out[f"{self.node}/b_out"] = solution[:, -1].astype(np.float32)
        return out


def harvest(cell: ESN, p: Mapping[str, np.ndarray], u: np.ndarray, teacher: np.ndarray, x0: np.ndarray,
            y0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reservoir states under teacher forcing, vectorised over rows.

    `u` ``(batch, time, K)``, `teacher` ``(batch, time, L)``, `x0` ``(batch, N)`` and
    `y0` ``(batch, L)`` the state and teacher output before the chunk. Returns
    x(n) ``(batch, time, N)`` and y(n-1) ``(batch, time, L)`` (the teacher shifted by one).
    """
    y_prev = np.concatenate([y0[:, None], teacher[:, :-1]], axis=1)
    drive = u @ p["W_in"][:, 1:].T + p["W_in"][:, 0]
    if cell.feedback:
        drive = drive + y_prev @ p["W_back"].T
    states = np.empty(u.shape[:2] + (cell.hidden,))
    x, a, W_T = x0, cell.leak, p["W"].T
    for t in range(u.shape[1]):
        x = (1.0 - a) * x + a * np.tanh(drive[:, t] + x @ W_T)
        states[:, t] = x
    return states, y_prev


def find_esn_node(model: Model, node: str | None) -> str:
    """The ESN node to train: `node`, or the model's only one; its input must be a model input.

    Only ``Recurrent(ESN(...))`` and ``Generative(ESN(...))`` nodes run the ESN over their
    input as the harvest does; an ESN inside another layer (``Bidirectional``, ``Generate``,
    ``Decoder``) is refused by name rather than trained on states it never computes.
    """
    esn_nodes: list[str] = []
    elsewhere: list[str] = []
    for name, n in model.nodes():
        cell = getattr(n.layer, "cell", None)
        if not any(isinstance(c, ESN) for c in (cell if isinstance(cell, tuple) else (cell,))):
            continue
        (esn_nodes if isinstance(n.layer, (Recurrent, Generative)) else elsewhere).append(name)
    if node is None and len(esn_nodes) == 1:
        node = esn_nodes[0]
    if node in elsewhere or (node is None and not esn_nodes and elsewhere):
        name = node if node is not None else elsewhere[0]
        layer_type = type(model.graph.nodes[name]["node"].layer).__name__
        raise ModelError(f"model {model.name!r}: node {name!r} runs its ESN inside {layer_type}; ridge training "
                         "trains a Recurrent(ESN(...)) or Generative(ESN(...)) node, whose reservoir runs forward "
                         "over a model input.")
    if node is None:
        raise ModelError(f"model {model.name!r} has {len(esn_nodes)} ESN nodes {esn_nodes}; "
                         "name the one to train with `node=`.")
    if node not in esn_nodes:
        raise ModelError(f"model {model.name!r}: node {node!r} is not an ESN node; its ESN nodes are {esn_nodes}.")
    layer = model.graph.nodes[node]["node"].layer
    if getattr(layer, "reverse", False) or "initial_state" in model.sources(node):
        raise ModelError(f"model {model.name!r}: ESN node {node!r} runs in reverse or from a given initial state; "
                         "ridge training harvests forward from a zero state, so train a forward node without one.")
    source = model.sources(node)["x"]
    if not isinstance(model.graph.nodes[source.node]["node"].layer, InputLayer):
        raise ModelError(f"model {model.name!r}: ESN node {node!r} reads {source.node!r}, not a model input; "
                         "ridge training feeds the ESN's own input, so connect it to an Input.")
    return node


def fit_ridge(model: Model, params: Mapping[str, np.ndarray], inputs: Any, targets: Any, *, washout: int = 0,
              ridge: float = 1e-6, lengths: Sequence[int] | np.ndarray | None = None,
              node: str | None = None) -> dict[str, np.ndarray]:
    """Train the readout of the model's ESN node on whole sequences; returns new parameters.

    `inputs` ``(time, K)``, ``(batch, time, K)`` or a list of ``(time_i, K)`` arrays
    (sequences of different lengths); `targets` alike with L features. With a batch,
    `lengths` gives each row's valid steps (the rest is ignored). Each sequence starts
    from a zero state and loses its first `washout` steps.
    """
    trainer = RidgeTrainer(model, params, node=node, washout=washout)
    if isinstance(inputs, (list, tuple)):
        if not isinstance(targets, (list, tuple)) or len(targets) != len(inputs):
            raise InputError(f"`targets` must be a list of as many sequences as `inputs` ({len(inputs)}), "
                             f"received {type(targets).__name__}.")
        pairs = list(zip(inputs, targets, strict=True))
    elif lengths is not None:
        u = _as_batch("inputs", inputs, trainer.input_size)
        d = _as_batch("targets", targets, trainer.cell.outputs)
        lens = np.asarray(lengths)
        if (lens.shape != (u.shape[0],) or not np.issubdtype(lens.dtype, np.integer) or lens.size == 0
                or lens.min() < 1 or lens.max() > u.shape[1]):
            raise InputError(f"`lengths` must hold one integer length in 1..{u.shape[1]} per row, "
                             f"received {lens.tolist()}.")
        pairs = [(u[b, : lens[b]], d[b, : lens[b]]) for b in range(u.shape[0])]
    else:
        pairs = [(inputs, targets)]
    for u, d in pairs:
        trainer.feed(u, d)
        trainer.end_sequence()
    return trainer.solve(ridge)


__all__ = ["RidgeAccumulator", "RidgeTrainer", "fit_ridge", "harvest"]
