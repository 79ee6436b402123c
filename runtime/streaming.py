"""Running a streaming chunk model: the recurrent state carried between calls, per stream.

    model = StreamingSession("kws.onnx")          # exported with ExportOptions(streaming=True)
    streams = model.open(4)                       # 4 independent streams, each from zero state
    out = streams.feed(x=chunk)                   # chunk (4, time, features): the next steps of each stream
    out = streams.feed(x=chunk, lengths=lens)     # lens in 0..time: a row with 0 waits, its state untouched
    streams.reset([2])                            # stream 2 starts over at its next chunk

The state layout is read from the model's metadata (``rnngraph.state``, see
docs/deploy.md), so any chunk model works, whatever its layers. Row b of every chunk
belongs to stream b; `open` may be called any number of times, and each `Streams`
keeps its own state (several independent groups of streams over one onnxruntime session).

Imports numpy and onnxruntime only (and rnngraph's error classes, which import nothing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from rnngraph.errors import InputError, RnnGraphError
from rnngraph.runtime.session import ORT_DTYPES, as_array, inference_session


class StreamingSession:
    """An onnxruntime session over a chunk model; `open` gives a group of streams with their state.

    `model` is a path or serialized bytes (or an ``onnx.ModelProto``).
    """

    def __init__(self, model: str | os.PathLike[str] | bytes | Any, device: str = "cpu",
                 threads: int | None = None) -> None:
        self.session = inference_session(model, device, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        state = json.loads(meta.get("rnngraph.state", '{"streaming": false}'))
        if state.get("kind") == "decoder_step":
            raise RnnGraphError("this model is part of a decoder step export (metadata `rnngraph.state` kind "
                                "'decoder_step'), not a chunk model; run it with rnngraph.runtime.StepDecoder("
                                "ENCODER.onnx, STEP.onnx).")
        if not state.get("streaming"):
            raise RnnGraphError("this model is not a streaming chunk model (its metadata `rnngraph.state` says "
                                "streaming: false); export it with ExportOptions(streaming=True).")
        self.layout: dict[str, Any] = state
        self.lengths: list[str] = list(json.loads(meta.get("rnngraph.lengths", "{}")))
        carried = [state["steps"], *state["states"]]
        #: state input -> (state output, dtype, trailing dims)
        self.carried = {s["input"]: (s["output"], np.dtype(s["dtype"]).type, tuple(s["dims"][1:])) for s in carried}
        self.start: str = state["start"]["input"]
        inner = set(self.carried) | {self.start} | set(self.lengths)
        self.inputs = [i.name for i in self.session.get_inputs() if i.name not in inner]
        self.dtypes = {i.name: ORT_DTYPES[i.type] for i in self.session.get_inputs()}
        outs = {out for out, _, _ in self.carried.values()}
        self.outputs = [o.name for o in self.session.get_outputs() if o.name not in outs]

    def open(self, streams: int = 1) -> Streams:
        """`streams` independent streams, each starting from zero state."""
        if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
            raise InputError(f"invalid number of streams: expected a positive integer, received {streams!r}.")
        return Streams(self, streams)


class Streams:
    """The state of a batch of independent streams over one `StreamingSession` (row b is stream b)."""

    def __init__(self, model: StreamingSession, count: int) -> None:
        self.model, self.count = model, count
        self.state = {name: np.zeros((count, *dims), dtype) for name, (_, dtype, dims) in model.carried.items()}
        self._fresh = np.ones((count, 1), np.int32)

    @property
    def steps(self) -> np.ndarray:
        """``(streams,)`` int64: the steps each stream has processed since it (re)started."""
        steps_in = self.model.layout["steps"]["input"]
        return np.where(self._fresh[:, 0] == 1, 0, self.state[steps_in][:, 0])

    def reset(self, rows: Iterable[int] | None = None) -> None:
        """Start the given streams (all when None) over from zero state at their next chunk."""
        index = list(range(self.count)) if rows is None else list(rows)
        bad = [r for r in index if not (isinstance(r, int | np.integer) and 0 <= r < self.count)]
        if bad:
            raise InputError(f"reset: stream numbers must be in 0..{self.count - 1}, received {bad}.")
        self._fresh[index] = 1

    def feed(self, **inputs: Any) -> dict[str, np.ndarray]:
        """Run the next chunk of every stream; returns the model's outputs for it (the state is kept here).

        Each model input is ``(streams, time, ·)`` with ``time`` ≥ 1; the model's lengths input,
        when it has one, gives each stream's steps in this chunk, 0..time (None: all of them).
        """
        model = self.model
        unknown = sorted(set(inputs) - set(model.inputs) - set(model.lengths))
        missing = [n for n in model.inputs if n not in inputs]
        if unknown or missing:
            raise InputError(f"a chunk takes {model.inputs + model.lengths} (lengths optional); "
                             f"unknown {unknown}, missing {missing}.")
        feeds: dict[str, np.ndarray] = {}
        time = None
        for name in model.inputs:
            array = as_array(name, inputs[name])
            if array.ndim < 2 or array.shape[0] != self.count or array.shape[1] < 1:
                raise InputError(f"input {name!r}: expected ({self.count}, time ≥ 1, ...) for {self.count} streams, "
                                 f"received shape {array.shape}.")
            time = array.shape[1] if time is None else time
            feeds[name] = np.ascontiguousarray(array, model.dtypes[name])
        assert time is not None
        for name in model.lengths:
            feeds[name] = self._lengths(name, inputs.get(name), time)
        feeds.update(self.state)
        feeds[model.start] = self._fresh
        names = model.outputs + [out for out, _, _ in model.carried.values()]
        try:
            values = dict(zip(names, model.session.run(names, feeds), strict=True))
        except Exception as exc:  # noqa: BLE001
            raise RnnGraphError(f"onnxruntime failed while running the chunk: {exc}") from exc
        self.state = {name: values[out] for name, (out, _, _) in model.carried.items()}
        self._fresh = np.zeros((self.count, 1), np.int32)
        return {name: values[name] for name in model.outputs}

    def feed_in_chunks(self, size: int, **inputs: Any) -> dict[str, np.ndarray]:
        """Feed whole sequences ``(streams, time, ·)`` as consecutive chunks of `size` steps (the last may be
        shorter); returns the outputs joined over time (a per-row output: its value after the last chunk).

        The model's lengths input, when given, is each stream's length over the whole sequence.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InputError(f"invalid chunk size: expected a positive integer, received {size!r}.")
        lengths = {n: as_array(n, inputs.pop(n)) for n in self.model.lengths if inputs.get(n) is not None}
        arrays = {n: as_array(n, v) for n, v in inputs.items()}
        time = min((a.shape[1] for a in arrays.values() if a.ndim >= 2), default=0)
        pieces: dict[str, list[np.ndarray]] = {}
        for begin in range(0, time, size):
            chunk = {n: a[:, begin:begin + size] for n, a in arrays.items()}
            chunk.update({n: np.clip(v - begin, 0, size) for n, v in lengths.items()})
            for name, value in self.feed(**chunk).items():
                pieces.setdefault(name, []).append(value)
        return {n: np.concatenate(v, axis=1) if v[0].ndim >= 3 else v[-1] for n, v in pieces.items()}

    def _lengths(self, name: str, value: Any, time: int) -> np.ndarray:
        if value is None:
            return np.full(self.count, time, np.int64)
        array = as_array(name, value)
        if not np.issubdtype(array.dtype, np.integer) or array.shape != (self.count,):
            raise InputError(f"input {name!r}: expected integer lengths of shape ({self.count},), one per stream, "
                             f"received dtype {array.dtype} shape {array.shape}.")
        if array.size and (array.min() < 0 or array.max() > time):
            raise InputError(f"input {name!r}: each chunk length must be in 0..{time} (0: the stream has no step "
                             f"in this chunk), received {array.tolist()}.")
        return array.astype(np.int64)

