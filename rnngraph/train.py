"""Training the readout of an Echo State Network by ridge regression (docs/esn.md).

    params = rg.fit_ridge(model, params, inputs=u, targets=d, washout=100, ridge=1e-6)

The reservoir runs with teacher forcing (y(n-1) := target(n-1), through W_back and
into the readout), the first `washout` steps of every sequence are discarded, and
the readout solves

    [W_out  b_out] = Y Zᵀ (Z Zᵀ + β I)⁻¹          z(n) = [u(n); x(n); y(n-1); 1]  (the parts the ESN reads)

where Z and Y hold one column per kept step. Only the sums Z Zᵀ ((F+1)², float64)
and Y Zᵀ are kept, so data can be fed in chunks that never have to be in memory
together (`RidgeTrainer`), over any number of sequences. β regularises every column,
the bias's included, as docs/esn.md writes it. `fit_ridge_path` serves a list of ridge
values from the same sums and picks one on a validation split (`rnngraph.ridge`).

Speed: the reservoir steps with a sparse W (scipy.sparse CSR, ~d·N² multiply-adds per
step instead of N²) when scipy is installed and W is at most `SPARSE_MAX_DENSITY` full,
else with a dense product; states and sums stay float64. The sums are updated once per
block of `BLOCK_ROWS` rows × steps (one symmetric product Zᵀ Z per block, written into a
preallocated Z), so memory is bounded by the block, whatever the sequence length.
`tests/test_esn_train.py` checks the harvest against the oracle's one-row step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.dsl.cells.esn import ESN
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.layers import InputLayer, Recurrent
from rnngraph.dsl.model import Model
from rnngraph.dsl.params import effective
from rnngraph.errors import InputError, ModelError
from rnngraph.progress import Progress, Reporter
from rnngraph.ridge import RidgeAccumulator, RidgeFit, check_ridge, choose

#: W with at most this fraction of nonzero entries steps as a sparse matrix (when scipy is there);
#: measured here at N = 2000: CSR at 1% density is ~15× faster than the dense product, at 20% about even
SPARSE_MAX_DENSITY = 0.1
#: rows × steps per Gram update: large enough for BLAS to run near peak, small enough to bound memory
#: (1024 × (F = 2000) × 8 bytes = 16 MB)
BLOCK_ROWS = 1024


class Reservoir:
    """The fixed part of one ESN, prepared for stepping many rows at once.

    `p`: the node's effective parameters (float64). `sparse`: step W as a CSR matrix (needs scipy);
    None picks it when scipy is installed and W is sparse enough.
    """

    def __init__(self, cell: ESN, p: Mapping[str, np.ndarray], sparse: bool | None = None) -> None:
        self.cell = cell
        self.leak = float(cell.leak)
        W = np.asarray(p["W"], dtype=np.float64)
        self.bias = p["W_in"][:, 0]
        self.W_in_T = np.ascontiguousarray(p["W_in"][:, 1:].T)
        self.W_back_T = np.ascontiguousarray(p["W_back"].T) if cell.feedback else None
        if sparse is None:
            sparse = _has_scipy_sparse() and bool(np.count_nonzero(W) <= SPARSE_MAX_DENSITY * W.size)
        self.sparse = bool(sparse)
        if self.sparse:
            import scipy.sparse

            self._W: Any = scipy.sparse.csr_matrix(W)
        else:
            self._W = np.ascontiguousarray(W)  # x @ Wᵀ reads W row by row: BLAS gemv without a transpose

    def drive(self, u: np.ndarray, y_prev: np.ndarray) -> np.ndarray:
        """W_in [1; u(n)] (+ W_back y(n-1)) for every step: ``(time, batch, N)`` from ``(batch, time, ·)``."""
        drive = u.transpose(1, 0, 2) @ self.W_in_T + self.bias
        if self.W_back_T is not None:
            drive += y_prev.transpose(1, 0, 2) @ self.W_back_T
        return drive

    def run(self, drive: np.ndarray, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Step over `drive` ``(time, batch, N)`` from state `x` ``(batch, N)``; x(n) into `out` ``(time, batch, N)``.

        x(n) = (1 - a) x(n-1) + a tanh(drive(n) + W x(n-1)); returns the last state.
        """
        for t in range(drive.shape[0]):
            x = self.step(x, drive[t])
            out[t] = x
        return x

    def step(self, x: np.ndarray, drive: np.ndarray) -> np.ndarray:
        """One step for every row: x ``(batch, N)``, drive ``(batch, N)`` -> the next x (a new array)."""
        pre = (self._W @ x.T).T if self.sparse else x @ self._W.T
        pre += drive
        np.tanh(pre, out=pre)
        if self.leak != 1.0:
            pre *= self.leak
            pre += (1.0 - self.leak) * x
        return pre


def _has_scipy_sparse() -> bool:
    try:
        import scipy.sparse  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is in the extras; the dense product is the fallback
        return False
    return True


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
    it may be left out when the model has exactly one. Its input must be a model input,
    so that the chunks fed are what the ESN reads. `progress`: see `rnngraph.progress`
    (steps are rows × time; `total_steps`, when known, sizes the bar). `sparse`: see `Reservoir`.
    """

    def __init__(self, model: Model, params: Mapping[str, np.ndarray], *, node: str | None = None,
                 washout: int = 0, progress: Progress = None, total_steps: int | None = None,
                 sparse: bool | None = None) -> None:
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
        self.reservoir = Reservoir(self.cell, self.p, sparse)
        self.washout = int(washout)
        self.reads = self.cell.read_sizes(self.input_size)
        self.features = sum(self.reads.values()) + 1  # F: the columns read, and the bias's
        self.accumulator = RidgeAccumulator(self.features, self.cell.outputs)
        self.reporter = Reporter(progress, total_steps, f"ridge harvest {self.node}")
        self.end_sequence()

    def end_sequence(self) -> None:
        """Forget the reservoir state: the next `feed` starts new sequences."""
        self.accumulator.commit()
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
        skip = min(time, max(0, self.washout - self._seen))
        self._seen += time
        span = max(1, BLOCK_ROWS // batch)
        for start in range(0, time, span):
            stop = min(time, start + span)
            self._feed_block(u[:, start:stop], d[:, start:stop], max(0, skip - start))
            self.reporter.advance(batch * (stop - start))

    def _feed_block(self, u: np.ndarray, d: np.ndarray, skip: int) -> None:
        """One block of steps: states written straight into Z's columns, then one Gram update."""
        assert self._x is not None and self._y is not None
        batch, steps = u.shape[:2]
        y_prev = np.concatenate([self._y[:, None], d[:, :-1]], axis=1)
        Z = np.empty((steps, batch, self.features))  # rows (step, row): order is free in a sum
        parts = {"input": u.transpose(1, 0, 2), "output": y_prev.transpose(1, 0, 2)}
        column, states = 0, None
        for read, size in self.reads.items():
            if read == "state":
                states = Z[:, :, column:column + size]
            else:
                Z[:, :, column:column + size] = parts[read]
            column += size
        Z[:, :, -1] = 1.0
        if states is None:
            states = np.empty((steps, batch, self.cell.hidden))
        self._x = self.reservoir.run(self.reservoir.drive(u, y_prev), self._x, states)
        self._y = d[:, -1]
        if skip < steps:
            self.accumulator.add(Z[skip:].reshape(-1, Z.shape[2]),
                                 d[:, skip:].transpose(1, 0, 2).reshape(-1, d.shape[2]))

    def readout(self, solution: np.ndarray) -> dict[str, np.ndarray]:
        """The parameters with ``[W_out b_out]`` = `solution` ``(L, F + 1)`` (float32)."""
        out = dict(self.params)
        out[f"{self.node}/W_out"] = solution[:, :-1].astype(np.float32)
        out[f"{self.node}/b_out"] = solution[:, -1].astype(np.float32)
        return out

    def solve(self, ridge: float = 1e-6) -> dict[str, np.ndarray]:
        """The parameters with the readout solved from everything fed so far (float32)."""
        self.reporter.close()
        return self.readout(self.accumulator.solve(ridge))


def harvest(cell: ESN, p: Mapping[str, np.ndarray], u: np.ndarray, teacher: np.ndarray, x0: np.ndarray,
            y0: np.ndarray, sparse: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reservoir states under teacher forcing, vectorised over rows.

    `u` ``(batch, time, K)``, `teacher` ``(batch, time, L)``, `x0` ``(batch, N)`` and
    `y0` ``(batch, L)`` the state and teacher output before the chunk. Returns
    x(n) ``(batch, time, N)`` and y(n-1) ``(batch, time, L)`` (the teacher shifted by one).
    """
    y_prev = np.concatenate([y0[:, None], teacher[:, :-1]], axis=1)
    reservoir = Reservoir(cell, p, sparse)
    states = np.empty(u.shape[:2] + (cell.hidden,))
    reservoir.run(reservoir.drive(u, y_prev), np.asarray(x0, dtype=np.float64), states.transpose(1, 0, 2))
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


def sequences(trainer: RidgeTrainer, inputs: Any, targets: Any,
              lengths: Sequence[int] | np.ndarray | None = None) -> list[tuple[Any, Any]]:
    """Split `inputs`/`targets` (one sequence, a batch with optional `lengths`, or lists) into fed units."""
    if isinstance(inputs, (list, tuple)):
        if not isinstance(targets, (list, tuple)) or len(targets) != len(inputs):
            raise InputError(f"`targets` must be a list of as many sequences as `inputs` ({len(inputs)}), "
                             f"received {type(targets).__name__}.")
        return list(zip(inputs, targets, strict=True))
    if lengths is None:
        return [(inputs, targets)]
    u = _as_batch("inputs", inputs, trainer.input_size)
    d = _as_batch("targets", targets, trainer.cell.outputs)
    lens = np.asarray(lengths)
    if (lens.shape != (u.shape[0],) or not np.issubdtype(lens.dtype, np.integer) or lens.size == 0
            or lens.min() < 1 or lens.max() > u.shape[1]):
        raise InputError(f"`lengths` must hold one integer length in 1..{u.shape[1]} per row, "
                         f"received {lens.tolist()}.")
    return [(u[b, : lens[b]], d[b, : lens[b]]) for b in range(u.shape[0])]


def feed_sequences(trainer: RidgeTrainer, pairs: Iterable[tuple[Any, Any]]) -> RidgeAccumulator:
    """Feed each (inputs, targets) pair as its own sequences (zero state, washout); return the sums."""
    for u, d in pairs:
        trainer.feed(u, d)
        trainer.end_sequence()
    return trainer.accumulator


def _steps(pairs: Sequence[tuple[Any, Any]]) -> int:
    """Rows × time over the pairs (the progress total)."""
    return sum(int(np.prod(np.shape(u)[:-1])) for u, _ in pairs)


def fit_ridge(model: Model, params: Mapping[str, np.ndarray], inputs: Any, targets: Any, *, washout: int = 0,
              ridge: float = 1e-6, lengths: Sequence[int] | np.ndarray | None = None,
              node: str | None = None, progress: Progress = None) -> dict[str, np.ndarray]:
    """Train the readout of the model's ESN node on whole sequences; returns new parameters.

    `inputs` ``(time, K)``, ``(batch, time, K)`` or a list of ``(time_i, K)`` arrays
    (sequences of different lengths); `targets` alike with L features. With a batch,
    `lengths` gives each row's valid steps (the rest is ignored). Each sequence starts
    from a zero state and loses its first `washout` steps. `progress`: a bar on a terminal
    (default), False for silence, or a callable ``(done_steps, total_steps)``.
    """
    check_ridge(ridge)
    trainer = RidgeTrainer(model, params, node=node, washout=washout, progress=False)  # its bar is set below
    pairs = sequences(trainer, inputs, targets, lengths)
    trainer.reporter = Reporter(progress, _steps(pairs), f"ridge harvest {trainer.node}")
    feed_sequences(trainer, pairs)
    return trainer.solve(ridge)


def fit_ridge_path(model: Model, params: Mapping[str, np.ndarray], inputs: Any, targets: Any, *,
                   ridges: Sequence[float], validation: tuple[Any, ...] | None = None, washout: int = 0,
                   lengths: Sequence[int] | np.ndarray | None = None, node: str | None = None,
                   progress: Progress = None) -> RidgeFit:
    """One pass over the data for a whole list of ridge values; the one with the least validation error wins.

    `validation`: ``(inputs, targets)`` or ``(inputs, targets, lengths)`` in the forms `fit_ridge`
    takes, harvested the same way (zero state, washout per sequence). Returns a `RidgeFit`:
    the chosen ridge, each ridge's validation mean squared error, and the parameters.
    """
    trainer = RidgeTrainer(model, params, node=node, washout=washout, progress=False)  # one bar for both, below
    held_out = RidgeTrainer(model, params, node=node, washout=washout, progress=False)
    pairs = sequences(trainer, inputs, targets, lengths)
    if validation is not None and not (isinstance(validation, tuple) and len(validation) in (2, 3)):
        raise InputError("`validation` must be a tuple (inputs, targets) or (inputs, targets, lengths), "
                         f"received {type(validation).__name__}.")
    held_pairs = sequences(held_out, *validation) if validation is not None else []
    reporter = Reporter(progress, _steps(pairs) + _steps(held_pairs), f"ridge harvest {trainer.node}")
    trainer.reporter = held_out.reporter = reporter
    train_sums = feed_sequences(trainer, pairs)
    held_sums = feed_sequences(held_out, held_pairs) if validation is not None else None
    reporter.close()
    W, chosen, errors = choose(train_sums, held_sums, ridges)
    return RidgeFit(trainer.readout(W), W, chosen, tuple(float(r) for r in ridges), errors, train_sums.count,
                    held_sums.count if held_sums is not None else 0)


__all__ = ["RidgeAccumulator", "RidgeFit", "RidgeTrainer", "Reservoir", "fit_ridge", "fit_ridge_path", "harvest"]
