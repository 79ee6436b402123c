"""onnxruntime sessions for rnngraph models, with input checking.

    session = Session("tagger.onnx")                # CPU; device="cuda" or "auto" to ask for CUDA
    out = session.run(x=batch, lengths=lens)        # {"y": ndarray, ...}

Every input is checked before onnxruntime sees it: names, ranks, dtypes, fixed
sizes, one batch size, one time size per time axis, lengths in ``1..time``,
token ids in ``[0, vocab)``. A missing lengths input means "every row is full".

Empty inputs never reach onnxruntime (some of its recurrent kernels abort the
process on them):
- batch 0: every output is returned empty, with batch 0 and its other sizes
  (a time axis takes the time of the inputs, feature axes their declared size);
- time 0: refused with an InputError, since every row has at least one step
  (lengths are ``1..time``).

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

ORT_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(float16)": np.float16,
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


def inference_session(model: str | os.PathLike[str] | bytes | Any, device: str = "cpu",
                      threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime session over a path, serialized bytes or an ``onnx.ModelProto``, with rnngraph's errors."""
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif not isinstance(model, bytes):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise RnnGraphError(f"no model file at {path!r}; export one with `rnngraph export`.")
        model = path
    options = ort.SessionOptions()
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
    `provider` tells which execution provider runs the model.
    """

    def __init__(self, model: str | os.PathLike[str] | bytes | Any, device: str = "cpu",
                 threads: int | None = None) -> None:
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
        self.metadata: dict[str, str] = dict(meta)
        self.inputs = {i.name: i for i in self._session.get_inputs()}
        self.outputs = {o.name: o for o in self._session.get_outputs()}

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    def run(self, outputs: Sequence[str] | None = None, /, **feeds: Any) -> dict[str, np.ndarray]:
        """Run the model on named inputs; returns the requested (default: all) outputs by name.

        `outputs` is one output name or a list of them.
        """
        if outputs is None:
            names = self.output_names
        else:  # one name or a sequence of names (a bare string is one name, not its letters)
            names = [outputs] if isinstance(outputs, str) else list(outputs)
        unknown = [n for n in names if n not in self.outputs]
        if unknown:
            raise InputError(f"unknown outputs {unknown}; this model has {self.output_names}.")
        checked, sizes = self._check(feeds)
        if sizes.get("batch") == 0:
            return {n: self._empty(n, sizes) for n in names}
        try:
            values = self._session.run(names, checked)
        except Exception as exc:  # noqa: BLE001
            raise RnnGraphError(f"onnxruntime failed while running the model: {exc}") from exc
        return dict(zip(names, values, strict=True))

    # -- checking -----------------------------------------------------------
    def _check(self, feeds: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        unknown = sorted(set(feeds) - set(self.inputs))
        if unknown:
            raise InputError(f"unknown inputs {unknown}; this model takes {sorted(self.inputs)}.")
        missing = [n for n in self.inputs if n not in feeds and n not in self.lengths]
        if missing:
            raise InputError(f"missing inputs {missing}; this model takes {sorted(self.inputs)}.")
        sizes: dict[str, int] = {}
        checked: dict[str, np.ndarray] = {}
        for name, value in feeds.items():
            if name in self.lengths:
                continue
            checked[name] = self._check_one(name, value, sizes)
        if sizes.get("batch") == 0:
            return checked, sizes
        empty_time = sorted(axis for axis in self._time_axes() if sizes.get(axis) == 0)
        if empty_time:
            raise InputError(f"{empty_time[0]} is 0: every sequence needs at least one step (lengths are 1..time).")
        for name in self.lengths:
            checked[name] = self._check_lengths(name, feeds.get(name), sizes)
        for name, vocab in self.vocab.items():
            ids = checked[name]
            if ids.size and (ids.min() < 0 or ids.max() >= vocab):
                raise InputError(f"input {name!r}: token ids must be in [0, {vocab}), "
                                 f"received values from {ids.min()} to {ids.max()}.")
        return checked, sizes

    def _time_axes(self) -> set[str]:
        """Symbolic names of the time axes of the sequence inputs (axis 1)."""
        shapes = [info.shape for info in self.inputs.values()]
        return {shape[1] for shape in shapes if len(shape) > 1 and isinstance(shape[1], str)}

    def _check_one(self, name: str, value: Any, sizes: dict[str, int]) -> np.ndarray:
        info = self.inputs[name]
        dtype = ORT_DTYPES[info.type]
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
            sizes[name] = int(array)  # outputs generated for a count have an axis named after it
            return np.asarray(array, dtype=np.int64)
        if array.ndim != len(info.shape):
            raise InputError(f"input {name!r}: expected rank {len(info.shape)} {self._shape_text(info.shape)}, "
                             f"received shape {array.shape}.")
        for axis, (dim, size) in enumerate(zip(info.shape, array.shape, strict=True)):
            if isinstance(dim, int) and dim != size:
                raise InputError(f"input {name!r}: axis {axis} must be {dim} {self._shape_text(info.shape)}, "
                                 f"received shape {array.shape}.")
            if isinstance(dim, str):
                if dim in sizes and sizes[dim] != size:
                    raise InputError(f"input {name!r}: axis {axis} ({dim}) is {size}, but another input has "
                                     f"{dim} = {sizes[dim]}; all inputs must agree.")
                sizes[dim] = size
        return np.ascontiguousarray(array, dtype=dtype)

    def _check_lengths(self, name: str, value: Any, sizes: dict[str, int]) -> np.ndarray:
        time_axis = self._time_of(self.lengths[name][0])
        time = sizes.get(time_axis, 0)
        batch = sizes.get("batch", 0)
        if value is None:
            return np.full(batch, time, dtype=np.int64)
        array = as_array(name, value)
        if not np.issubdtype(array.dtype, np.integer) or array.shape != (batch,):
            raise InputError(f"input {name!r}: expected int64 lengths of shape ({batch},) (one per row), "
                             f"received dtype {array.dtype} shape {array.shape}.")
        if array.size and (array.min() < 1 or array.max() > time):
            raise InputError(f"input {name!r}: each length must be in 1..{time} (the time axis of "
                             f"{'/'.join(self.lengths[name])}), received {array.tolist()}.")
        return array.astype(np.int64)

    def _time_of(self, input_name: str) -> str:
        shape = self.inputs[input_name].shape
        return shape[1] if len(shape) > 1 and isinstance(shape[1], str) else "time"

    @staticmethod
    def _shape_text(shape: Sequence[Any]) -> str:
        return "(" + ", ".join(str(d) for d in shape) + ")"

    def _empty(self, name: str, sizes: Mapping[str, int]) -> np.ndarray:
        info = self.outputs[name]
        shape = [d if isinstance(d, int) else sizes.get(d, 0) if isinstance(d, str) else 0 for d in info.shape]
        return np.zeros(shape, dtype=ORT_DTYPES[info.type])
