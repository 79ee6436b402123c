"""Batch inference of an exported model over Dask collections, one onnxruntime session per worker.

    outputs = predict("model.onnx", bag_of_sequences, client=client)        # a Bag: one dict per sequence
    outputs = predict_arrays("model.onnx", {"x": x}, lengths={"lengths": n}, client=client)  # NumPy dict

The model file is read once on the client and shipped once to every worker inside a
`distributed.WorkerPlugin`; the plugin opens the `Session` when the worker starts it (once per
worker process, for any number of partitions and calls: registering the same model again is a
no-op) and the partition tasks look the session up on their worker. A partition of sequences of
different lengths is padded to its longest, run as one batch with `lengths`, and each
sequence's time-aligned outputs are cut back to its length, so the results equal a
single-process `Session.run` on each sequence.
"""

from __future__ import annotations

import collections
import hashlib
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.errors import InputError
from rnngraph.runtime.session import Session
from rnngraph.scaleout.cluster import client_or_default, require_dask

try:
    from distributed import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - every entry point says how to install Dask (client_or_default)
    _WorkerPlugin = object  # type: ignore[misc,assignment]

#: sessions opened in this process, per plugin name: lets tests check "once per worker"
SESSIONS_OPENED: collections.Counter[str] = collections.Counter()


class SessionPlugin(_WorkerPlugin):  # type: ignore[misc,valid-type]
    """Holds one `Session` over the model bytes on each worker (defined at module level so that
    workers import it by name rather than receive a pickled copy)."""

    idempotent = True  # the same model registered again keeps the open sessions

    def __init__(self, model: bytes, threads: int | None) -> None:
        self.model, self.threads = model, threads
        self.session: Session | None = None
        self.name = "rnngraph-session-" + hashlib.sha256(model + repr(threads).encode()).hexdigest()[:16]

    def setup(self, worker: Any) -> None:
        self.session = Session(self.model, threads=self.threads)
        SESSIONS_OPENED[self.name] += 1


def worker_session(plugin_name: str) -> Session:
    """The session the plugin opened on the worker running this task."""
    from distributed import get_worker

    plugin = get_worker().plugins[plugin_name]
    assert isinstance(plugin, SessionPlugin) and plugin.session is not None
    session: Session = plugin.session
    return session


def _install(model: Any, client: Any, threads: int | None) -> tuple[str, Session]:
    """Register the session plugin (once per model); return its name and a client-side session for signatures."""
    if hasattr(model, "SerializeToString"):  # an onnx.ModelProto, as rnngraph.export returns without a path
        model = model.SerializeToString()
    data = model if isinstance(model, bytes) else _read(model)
    local = Session(data)  # fails here, on the client, for a broken file
    plugin = SessionPlugin(data, threads)
    client.register_plugin(plugin, name=plugin.name)
    return plugin.name, local


def _read(path: str | os.PathLike[str]) -> bytes:
    if not os.path.isfile(os.fspath(path)):
        raise InputError(f"no model file at {os.fspath(path)!r}; export one with `rnngraph export`.")
    with open(path, "rb") as f:
        return f.read()


def run_padded(session: Session, elements: list[Mapping[str, np.ndarray]],
               feeds: Mapping[str, Any]) -> list[dict[str, np.ndarray]]:
    """Run sequences of different lengths as one padded batch; cut each one's time-aligned outputs back.

    `elements`: one dict per sequence, input name -> ``(time_i, ...)``; `feeds`: inputs shared by all
    (e.g. a ``steps`` count).
    """
    if not elements:
        return []
    names = list(elements[0])
    padded: dict[str, Any] = dict(feeds)
    times: dict[str, np.ndarray] = {}
    for name in names:
        arrays = [np.asarray(e[name]) for e in elements]
        times[name] = np.array([a.shape[0] for a in arrays], dtype=np.int64)
        batch = np.zeros((len(arrays), int(times[name].max()), *arrays[0].shape[1:]), dtype=arrays[0].dtype)
        for b, a in enumerate(arrays):
            batch[b, : len(a)] = a
        padded[name] = batch
    axis_lengths: dict[str, np.ndarray] = {}
    for lengths_name, inputs in session.lengths.items():
        first = next((i for i in inputs if i in times), None)
        if first is not None:
            padded[lengths_name] = times[first]
            axis_lengths[str(session.inputs[first].shape[1])] = times[first]
    out = session.run(**padded)
    results: list[dict[str, np.ndarray]] = [{} for _ in elements]
    for name, value in out.items():
        shape = session.outputs[name].shape
        per_row = axis_lengths.get(str(shape[1])) if len(shape) > 1 and isinstance(shape[1], str) else None
        for b, result in enumerate(results):
            result[name] = value[b, : per_row[b]] if per_row is not None else value[b]
    return results


def _partition(elements: list[Any], plugin_name: str, input_name: str | None,
               feeds: Mapping[str, Any]) -> list[dict[str, np.ndarray]]:
    session = worker_session(plugin_name)
    if input_name is None and not all(isinstance(e, Mapping) for e in elements):
        raise InputError("this model has several sequence inputs: give each sequence as a dict input name -> array.")
    as_dicts: list[Mapping[str, np.ndarray]] = [e if isinstance(e, Mapping) else {str(input_name): e}
                                                for e in elements]
    return run_padded(session, as_dicts, feeds)


def predict(model: str | os.PathLike[str] | bytes, sequences: Any, *, client: Any = None,
            feeds: Mapping[str, Any] | None = None, threads: int | None = 1) -> Any:
    """A lazy `dask.bag.Bag` of output dicts, one per sequence of `sequences`.

    `model`: an ``.onnx`` path, its bytes or an ``onnx.ModelProto``. `sequences`: a Bag whose
    elements are ``(time_i, K)`` arrays (a model with one sequence
    input) or dicts input name -> array. `feeds`: inputs shared by every sequence. `threads`:
    onnxruntime threads per worker session (1 suits one Dask thread per worker).
    """
    import dask.bag as db

    client = client_or_default(client)
    if not isinstance(sequences, db.Bag):
        raise InputError(f"`sequences`: expected a dask.bag.Bag of arrays or dicts of arrays, received "
                         f"{type(sequences).__name__}; for Dask arrays use predict_arrays().")
    plugin_name, local = _install(model, client, threads)
    sequence_inputs = [n for n, i in local.inputs.items() if len(i.shape) > 1 and n not in local.lengths]
    input_name = sequence_inputs[0] if len(sequence_inputs) == 1 else None
    return sequences.map_partitions(_partition, plugin_name, input_name, dict(feeds or {}))


def _block(plugin_name: str, inputs: Mapping[str, np.ndarray], feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return worker_session(plugin_name).run(**inputs, **feeds)


def predict_arrays(model: str | os.PathLike[str] | bytes, inputs: Mapping[str, Any], *,
                   lengths: Mapping[str, Any] | None = None, feeds: Mapping[str, Any] | None = None,
                   client: Any = None, threads: int | None = 1) -> dict[str, np.ndarray]:
    """Run the model over Dask arrays ``(batch, time, ...)`` chunked along batch; outputs joined along batch.

    `lengths`: lengths inputs by name (Dask or NumPy ``(batch,)``), chunked like the inputs.
    """
    import dask
    import dask.array as da

    client = client_or_default(client)
    require_dask()
    arrays = {n: da.asarray(a) for n, a in inputs.items()}
    arrays.update({n: da.asarray(a) for n, a in (lengths or {}).items()})
    if not arrays:
        raise InputError("`inputs`: expected at least one Dask array (batch, time, ...).")
    first = next(iter(arrays.values()))
    chunks = first.chunks[0]
    blocks: dict[str, list[Any]] = {}
    for name, a in arrays.items():
        if a.shape[0] != first.shape[0]:
            raise InputError(f"`{name}` has batch {a.shape[0]}, other inputs {first.shape[0]}; all must agree.")
        a = a.rechunk({0: chunks, **{axis: -1 for axis in range(1, a.ndim)}})
        blocks[name] = list(a.to_delayed().ravel())
    plugin_name, _ = _install(model, client, threads)
    tasks = [dask.delayed(_block)(plugin_name, {n: blocks[n][i] for n in blocks}, dict(feeds or {}))
             for i in range(len(chunks))]
    results = client.gather(client.compute(tasks))
    return {name: np.concatenate([r[name] for r in results], axis=0) for name in results[0]}


__all__ = ["SESSIONS_OPENED", "predict", "predict_arrays", "run_padded", "worker_session"]
