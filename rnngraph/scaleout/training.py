"""ESN readout training on a Dask cluster: partial sums where the data lives, a tree reduction, one solve.

    fit = rnngraph.scaleout.fit_ridge(model, params, bag, washout=100, ridge=[1e-8, 1e-6, 1e-4],
                                      validation=validation_bag, client=client)
    fit.params, fit.ridge, fit.validation_errors

The readout needs only Z Zᵀ, Y Zᵀ (and Y Yᵀ to score a split), and these add over
sequences (`rnngraph.ridge`). Each partition runs the reservoir over its own sequences with a
`RidgeTrainer` (blocked, bounded memory) on the worker that holds it and returns its sums
(~F² float64 each); the sums are added in a tree (`split_every` at a time), and the client
solves once, for one ridge value or a whole path. The result equals the single-process
`rnngraph.fit_ridge` on the same data up to the order of floating-point additions.

`data` (and `validation`) can be:
- a `dask.bag.Bag` whose elements are ``(inputs (time_i, K), targets (time_i, L))`` pairs;
- a tuple ``(inputs, targets)`` or ``(inputs, targets, lengths)`` of Dask arrays ``(batch, time, ·)``
  chunked along batch (`lengths` ``(batch,)``, Dask or NumPy, gives each row's valid steps);
- a list of `dask.delayed` loaders, each returning one pair, a list of pairs or an iterator of
  pairs (files that the workers read themselves; an iterator streams a long file chunk by chunk
  as separate sequences);
- a list of ``(inputs, targets)`` NumPy pairs (spread over the cluster as a bag).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rnngraph.dsl.model import Model
from rnngraph.errors import InputError
from rnngraph.progress import Progress, Reporter
from rnngraph.ridge import RidgeAccumulator, RidgeFit, check_ridges, choose
from rnngraph.scaleout.cluster import client_or_default
from rnngraph.train import RidgeTrainer, feed_sequences

#: partial sums added per reduction task: a tree of depth log_8(partitions)
SPLIT_EVERY = 8


def partition_sums(model: Model, params: Mapping[str, np.ndarray], washout: int, node: str | None,
                   partition: Any) -> RidgeAccumulator:
    """Runs on a worker: the ridge sums of one partition (a pair, a list or an iterator of pairs)."""
    trainer = RidgeTrainer(model, params, node=node, washout=washout, progress=False)
    return feed_sequences(trainer, _pairs(partition))


def _pairs(partition: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(partition, tuple) and len(partition) == 2 and not isinstance(partition[0], tuple):
        return [partition]  # one (inputs, targets) pair
    return partition


def merge(*sums: RidgeAccumulator) -> RidgeAccumulator:
    """The sums of several partitions, added."""
    return functools.reduce(RidgeAccumulator.merge, sums)


def _rows(inputs: np.ndarray, targets: np.ndarray, lengths: np.ndarray | None) -> list[tuple[Any, Any]]:
    """One block of a Dask array: the whole batch as one unit, or each row cut to its length."""
    if lengths is None:
        return [(inputs, targets)]
    lengths = np.asarray(lengths)
    if lengths.shape != (inputs.shape[0],) or lengths.size and (lengths.min() < 1 or lengths.max() > inputs.shape[1]):
        raise InputError(f"`lengths` must hold one integer length in 1..{inputs.shape[1]} per row, received "
                         f"{lengths.tolist()}.")
    return [(inputs[b, : int(n)], targets[b, : int(n)]) for b, n in enumerate(lengths)]


def partitions(data: Any, name: str = "data") -> list[Any]:
    """`data` in any of the accepted forms as a list of Dask objects, one per partition."""
    import dask
    import dask.array as da
    import dask.bag as db
    from dask.delayed import Delayed

    if isinstance(data, db.Bag):
        return list(data.to_delayed())
    if isinstance(data, tuple) and data and isinstance(data[0], da.Array):
        if len(data) not in (2, 3) or not isinstance(data[1], da.Array):
            raise InputError(f"`{name}`: Dask arrays come as (inputs, targets) or (inputs, targets, lengths), "
                             f"received a tuple of {len(data)}.")
        inputs, targets = data[0], data[1]
        if inputs.ndim != 3 or targets.ndim != 3 or inputs.shape[:2] != targets.shape[:2]:
            raise InputError(f"`{name}`: inputs and targets must be (batch, time, ·) with the same batch and time, "
                             f"received shapes {inputs.shape} and {targets.shape}.")
        inputs = inputs.rechunk({1: -1, 2: -1})  # a partition holds whole sequences
        targets = targets.rechunk({0: inputs.chunks[0], 1: -1, 2: -1})
        blocks = [b for b in inputs.to_delayed().ravel()]
        target_blocks = [b for b in targets.to_delayed().ravel()]
        if len(data) == 3:
            lengths = da.asarray(data[2]).rechunk((inputs.chunks[0],))
            length_blocks: list[Any] = list(lengths.to_delayed().ravel())
        else:
            length_blocks = [None] * len(blocks)
        return [dask.delayed(_rows)(u, d, n) for u, d, n in zip(blocks, target_blocks, length_blocks, strict=True)]
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, Delayed) for p in data):
        return list(data)
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, tuple) and len(p) == 2 for p in data):
        return list(db.from_sequence(data, partition_size=max(1, len(data) // 16)).to_delayed())
    raise InputError(f"`{name}`: expected a dask.bag.Bag of (inputs, targets) pairs, a tuple of Dask arrays "
                     "(inputs, targets[, lengths]) chunked along batch, a non-empty list of dask.delayed loaders, "
                     f"or a non-empty list of (inputs, targets) pairs; received {type(data).__name__}.")


def fit_ridge(model: Model, params: Mapping[str, np.ndarray], data: Any, *, washout: int = 0,
              ridge: float | Sequence[float] = 1e-6, validation: Any = None, node: str | None = None,
              client: Any = None, split_every: int = SPLIT_EVERY, progress: Progress = None) -> RidgeFit:
    """Train the ESN readout over a Dask collection; `ridge` is one value or a list chosen on `validation`.

    `progress` counts finished partitions (training and validation together): a bar on a
    terminal, False for silence, or a callable ``(done_partitions, total_partitions)``.
    Returns a `RidgeFit` (`params`, `solution` in float64, `ridge`, `validation_errors`).
    """
    ridges = check_ridges([ridge] if np.ndim(ridge) == 0 else list(ridge))  # type: ignore[arg-type]
    local = RidgeTrainer(model, params, node=node, washout=washout, progress=False)  # checks everything up front
    client = client_or_default(client)
    import dask
    from distributed import as_completed

    model_f, params_f = client.scatter([model, dict(params)], broadcast=True, hash=False)
    split = max(2, int(split_every))
    groups = {"train": partitions(data, "data")}
    if validation is not None:
        groups["validation"] = partitions(validation, "validation")
    reporter = Reporter(progress, sum(len(g) for g in groups.values()), "distributed ridge harvest")
    roots, parts = {}, []
    for key, group in groups.items():
        tasks = [dask.delayed(partition_sums)(model_f, params_f, washout, local.node, p) for p in group]
        futures = client.compute(tasks)
        parts += futures
        while len(futures) > 1:  # the tree: merges start as soon as their partitions are done
            futures = [client.submit(merge, *futures[i:i + split]) for i in range(0, len(futures), split)]
        roots[key] = futures[0]
    for _ in as_completed(parts):
        reporter.advance(1)
    reporter.close()
    del parts
    train_sums = roots["train"].result()
    held = roots["validation"].result() if "validation" in roots else None
    W, chosen, errors = choose(train_sums, held, ridges)
    return RidgeFit(local.readout(W), W, chosen, ridges, errors, train_sums.count, held.count if held else 0)


__all__ = ["fit_ridge", "merge", "partition_sums", "partitions"]
