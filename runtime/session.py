"""onnxruntime sessions for rnngraph models, with input checking.

    session = Session("tagger.onnx")                # CPU; device="cuda" or "auto" to ask for CUDA
    out = session.run(x=batch, lengths=lens)        # {"y": ndarray, ...}

Every input is checked before onnxruntime sees it: names, ranks, dtypes, fixed
sizes, one batch size, one time size per time axis, lengths in ``0..time`` (int32
or int64), token ids in ``[0, vocab)``, counts in ``0..max``. A missing lengths
input means "every row is full".

What the session reads comes from the model file itself (its signature and
metadata), so a model that rnngraph did not write is checked too:
- a graph exported with in-graph guards (metadata ``rnngraph.guards``) answers
  batch 0, time 0 and rows of length 0 itself, with zeros of the right shape;
- any other graph never sees an input with an empty axis: onnxruntime's recurrent
  kernels abort the whole process on empty tensors (GRU on time 0 or batch 0, LSTM
  on batch 0), so such inputs are refused with an InputError;
- a count above its declared maximum (metadata ``rnngraph.counts``) is refused with
  the maximum, how to raise it and, where the output would be large, its size.

Imports numpy and onnxruntime only (and rnngraph's error classes, which import nothing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from rnngraph.errors import InputError, RnnGraphError
from rnngraph.runtime.placement import Node, Placement, measure

ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
              "tensor(float16)": np.float16,
              "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
DEVICES = ("cpu", "cuda", "auto")


def providers_for(device: str) -> list[str]:
    """onnxruntime providers for `device`: ``cpu``, ``cuda`` (must be present) or ``auto``."""
    available = ort.get_available_providers()
    if device not in DEVICES:
        raise RnnGraphError(f"invalid value for `device`: expected one of {DEVICES}, received {device!r}.")
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise RnnGraphError(
            "device='cuda' was asked for, but this onnxruntime offers only "
            f"{available}. Install the onnxruntime-gpu package with a matching CUDA, or use device='cpu'."
        )
    if device == "cuda" or (device == "auto" and has_cuda):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def as_array(name: str, value: Any) -> np.ndarray:
    """`value` as an ndarray; nested lists of unequal lengths are refused in words."""
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise InputError(f"input {name!r}: expected a rectangular array, received {type(value).__name__} "
                         f"that numpy cannot make one of ({exc}).") from exc


def model_source(model: str | os.PathLike[str] | bytes | Any) -> str | bytes:
    """What onnxruntime loads: a path (checked to exist) or serialized bytes (an ``onnx.ModelProto`` serialized)."""
    if hasattr(model, "SerializeToString"):
        return bytes(model.SerializeToString())
    if isinstance(model, bytes):
        return model
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise RnnGraphError(f"no model file at {path!r}; export one with `rnngraph export`.")
    return path


def inference_session(model: str | os.PathLike[str] | bytes | Any, device: str = "cpu",
                      threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime session over a path, serialized bytes or an ``onnx.ModelProto``, with rnngraph's errors."""
    model = model_source(model)
    options = ort.SessionOptions()
    # an optional lengths input is an initializer of the input's name, which onnxruntime reports
    # with a warning on every load; errors still show
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model, options, providers=providers_for(device))
    except RnnGraphError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
        raise RnnGraphError(f"onnxruntime could not load the model: {exc}") from exc


class Session:
    """A checked onnxruntime session over an exported rnngraph model.

    `model` is a path, serialized bytes, or an ``onnx.ModelProto``. `threads`
    sets onnxruntime's intra-op thread count (None: onnxruntime's default).
    `provider` tells which execution provider runs the model; `placement()` which provider
    runs each node (a CUDA session's `cpu_nodes` are those onnxruntime left to the CPU).
    """

    def __init__(self, model: str | os.PathLike[str] | bytes | Any, device: str = "cpu",
                 threads: int | None = None) -> None:
        self._model = model  # the caller's object, read again by `placement()` (no second copy held)
        self._placement: Placement | None = None
        self._session = inference_session(model, device, threads)
        self.provider: str = self._session.get_providers()[0]
        if device == "cuda" and self.provider != "CUDAExecutionProvider":
            # onnxruntime falls back to the CPU with only a log line when CUDA fails to start
            raise RnnGraphError(
                "device='cuda' was asked for, but onnxruntime could not start its CUDA provider (it would run "
                f"on {self.provider}); check the CUDA and cuDNN versions that onnxruntime-gpu needs, "
                "or use device='cpu' or 'auto'."
            )
        meta = self._session.get_modelmeta().custom_metadata_map
        self.lengths: dict[str, list[str]] = json.loads(meta.get("rnngraph.lengths", "{}"))
        self.vocab: dict[str, int] = json.loads(meta.get("rnngraph.vocab", "{}"))
        #: each count input's maximum (the graph caps it there)
        self.counts: dict[str, int] = json.loads(meta.get("rnngraph.counts", "{}"))
        #: whether the graph answers empty inputs and any lengths itself (rnngraph.compiler.guards)
        self.guarded = "rnngraph.guards" in meta
        self.metadata: dict[str, str] = dict(meta)
        self._required = {i.name for i in self._session.get_inputs()}
        # optional inputs (an initializer of the same name) are inputs too: the lengths of a guarded graph
        self.inputs = {i.name: i for i in [*self._session.get_inputs(), *self._session.get_overridable_initializers()]
                       if i.name in self._required or i.name in self.lengths}
        self.outputs = {o.name: o for o in self._session.get_outputs()}
        # what every run checks against, read once per model (a run's checks then cost a few µs, not tens)
        self._all_outputs = list(self.outputs)
        self._dtypes = {name: np.dtype(ORT_DTYPES[info.type]) for name, info in self.inputs.items()}
        self._axes = {name: list(enumerate(info.shape)) for name, info in self.inputs.items()}
        self._input_names = set(self.inputs)
        self._needed = {n for n in self.inputs if n not in self.lengths}

    def placement(self) -> Placement:
        """Which provider onnxruntime gave each node, main graph and Scan/Loop/If bodies (`rnngraph.runtime.placement`).

        Read once, from a second session started with this one's providers and verbose logging.
        """
        if self._placement is None:
            self._placement = measure(model_source(self._model), self._session.get_providers())
        return self._placement

    @property
    def cpu_nodes(self) -> tuple[Node, ...]:
        """The nodes onnxruntime runs on the CPU although this session asked for another provider (CUDA).

        Empty for a CPU session, whose every node is on the CPU by request (`placement().all_on`).
        """
        return self.placement().cpu_nodes

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    def run(self, outputs: Sequence[str] | None = None, /, **feeds: Any) -> dict[str, np.ndarray]:
        """Run the model on named inputs; returns the requested (default: all) outputs by name.

        `outputs` is one output name or a list of them.
        """
        if outputs is None:
            names = self._all_outputs
        else:  # one name or a sequence of names (a bare string is one name, not its letters)
            names = [outputs] if isinstance(outputs, str) else list(outputs)
            unknown = [n for n in names if n not in self.outputs]
            if unknown:
                raise InputError(f"unknown outputs {unknown}; this model has {self.output_names}.")
        checked = self._check(feeds)
        try:
            values = self._session.run(names, checked)
        except Exception as exc:  # noqa: BLE001
            raise RnnGraphError(f"onnxruntime failed while running the model: {exc}") from exc
        return dict(zip(names, values, strict=True))

    # -- checking -----------------------------------------------------------
    def _check(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if not self._input_names.issuperset(feeds):
            unknown = sorted(set(feeds) - self._input_names)
            raise InputError(f"unknown inputs {unknown}; this model takes {sorted(self.inputs)}.")
        if not self._needed.issubset(feeds):
            missing = [n for n in self.inputs if n in self._needed and n not in feeds]
            raise InputError(f"missing inputs {missing}; this model takes {sorted(self.inputs)}.")
        sizes: dict[str, int] = {}
        checked: dict[str, np.ndarray] = {}
        for name, value in feeds.items():
            if name in self.lengths:
                continue
            checked[name] = self._check_one(name, value, sizes)
        if not self.guarded:
            self._refuse_empty(checked)
        for name in self.lengths:
            lengths = self._check_lengths(name, feeds.get(name), sizes)
            if lengths is not None:
                checked[name] = lengths
        for name, vocab in self.vocab.items():
            ids = checked[name]
            if ids.size and (ids.min() < 0 or ids.max() >= vocab):
                raise InputError(f"input {name!r}: token ids must be in [0, {vocab}), "
                                 f"received values from {ids.min()} to {ids.max()}.")
        for name, limit in self.counts.items():
            if name in checked and int(checked[name]) > limit:
                raise InputError(self._over_count(name, int(checked[name]), limit, sizes))
        return checked

    def _refuse_empty(self, checked: Mapping[str, np.ndarray]) -> None:
        """A graph without in-graph guards never sees an empty axis (onnxruntime may abort the process)."""
        for name, array in checked.items():
            if array.ndim and 0 in array.shape:
                raise InputError(
                    f"input {name!r} has an empty axis (shape {array.shape}), and this model does not say that it "
                    "guards empty inputs (no `rnngraph.guards` metadata): onnxruntime's recurrent kernels abort the "
                    "whole process on empty tensors. Leave out empty batches or sequences, or re-export the model "
                    "with this rnngraph, whose graphs answer them.")

    def _over_count(self, name: str, count: int, limit: int, sizes: Mapping[str, int]) -> str:
        """The refusal of a count above its maximum, with the output's size where it is large."""
        message = (f"input {name!r}: {count} is above this model's maximum of {limit} (larger counts are capped "
                   f"by the graph); to allow more, declare Input({name!r}, count=True, max=...) and re-export.")
        nbytes = 0
        for info in self.outputs.values():
            if name in info.shape:
                dims = [count if d == name else sizes.get(d, 1) if isinstance(d, str) else d or 1 for d in info.shape]
                nbytes += int(np.prod([float(d) for d in dims])) * np.dtype(ORT_DTYPES[info.type]).itemsize
        if nbytes >= 1 << 27:
            message += f" The outputs for {count} steps would take about {nbytes / 2**30:.3g} GiB."
        return message

    def _check_one(self, name: str, value: Any, sizes: dict[str, int]) -> np.ndarray:
        info = self.inputs[name]
        dtype = self._dtypes[name]
        if type(value) is np.ndarray and value.dtype == dtype and value.ndim == len(info.shape) and value.ndim:
            # the common case, an array of the declared dtype and rank: only its sizes are left to check
            self._check_sizes(name, value, sizes)
            return value if value.flags.c_contiguous else np.ascontiguousarray(value)
        array = as_array(name, value)
        if np.issubdtype(dtype, np.floating) and not (np.issubdtype(array.dtype, np.floating)
                                                       or np.issubdtype(array.dtype, np.integer)):
            raise InputError(f"input {name!r}: expected numbers (cast to {np.dtype(dtype).name}), "
                             f"received dtype {array.dtype}.")
        if np.issubdtype(dtype, np.integer) and not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"input {name!r}: expected integers ({np.dtype(dtype).name}), "
                             f"received dtype {array.dtype}.")
        if len(info.shape) == 0:  # a count of steps
            if array.ndim != 0 or not np.issubdtype(array.dtype, np.integer) or int(array) < 0:
                raise InputError(f"input {name!r}: expected a non-negative integer count (a scalar), "
                                 f"received {array!r}.")
            if int(array) > np.iinfo(np.int64).max:  # an unsigned count that int64 cannot hold
                limit = self.counts.get(name)
                raise InputError(f"input {name!r}: {int(array)} is larger than an int64 count can be"
                                 + (f"; this model's maximum is {limit}." if limit is not None else "."))
            sizes[name] = int(array)  # outputs generated for a count have an axis named after it
            return np.asarray(array, dtype=np.int64)
        if array.ndim != len(info.shape):
            raise InputError(f"input {name!r}: expected rank {len(info.shape)} {self._shape_text(info.shape)}, "
                             f"received shape {array.shape}.")
        self._check_sizes(name, array, sizes)
        return np.ascontiguousarray(array, dtype=dtype)

    def _check_sizes(self, name: str, array: np.ndarray, sizes: dict[str, int]) -> None:
        """Fixed axes as declared; a named axis (batch, time) the same size in every input."""
        info = self.inputs[name]
        shape = array.shape
        for axis, dim in self._axes[name]:
            size = shape[axis]
            if isinstance(dim, int) and dim != size:
                raise InputError(f"input {name!r}: axis {axis} must be {dim} {self._shape_text(info.shape)}, "
                                 f"received shape {array.shape}.")
            if isinstance(dim, str):
                if dim in sizes and sizes[dim] != size:
                    raise InputError(f"input {name!r}: axis {axis} ({dim}) is {size}, but another input has "
                                     f"{dim} = {sizes[dim]}; all inputs must agree.")
                sizes[dim] = size

    def _check_lengths(self, name: str, value: Any, sizes: dict[str, int]) -> np.ndarray | None:
        """int64 lengths, or None where the graph's own default (every row full) applies."""
        time_axis = self._time_of(self.lengths[name][0])
        time = sizes.get(time_axis, 0)
        batch = sizes.get("batch", 0)
        if value is None:
            return None if name not in self._required else np.full(batch, time, dtype=np.int64)
        array = as_array(name, value)
        if not np.issubdtype(array.dtype, np.integer) or array.shape != (batch,):
            raise InputError(f"input {name!r}: expected int64 lengths of shape ({batch},) (one per row), "
                             f"received dtype {array.dtype} shape {array.shape}.")
        low = 0 if self.guarded else 1  # a guarded graph gives a row of length 0 zeros
        if array.size and (array.min() < low or array.max() > time):
            raise InputError(f"input {name!r}: each length must be in {low}..{time} (the time axis of "
                             f"{'/'.join(self.lengths[name])}), received {array.tolist()}.")
        return array.astype(np.int64)

    def _time_of(self, input_name: str) -> str:
        shape = self.inputs[input_name].shape
        return shape[1] if len(shape) > 1 and isinstance(shape[1], str) else "time"

    @staticmethod
    def _shape_text(shape: Sequence[Any]) -> str:
        return "(" + ", ".join(str(d) for d in shape) + ")"
