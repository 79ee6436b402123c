"""A Triton Inference Server model repository for an exported model (the ONNX Runtime backend).

    write_triton_repository(proto, "models", name="tagger")
    # models/tagger/config.pbtxt
    # models/tagger/1/model.onnx

The configuration is derived from the exported graph's own signature:

- Every input and output whose first axis is the batch axis (rnngraph names it
  ``batch``) lets Triton batch requests: ``max_batch_size`` > 0, ``dynamic_batching``
  on, and the ``dims`` listed without the batch axis (``-1`` for the time axis, which
  varies per request; Triton batches only requests of equal shapes, so sequences of
  equal length are batched together). A ``(batch,)`` tensor such as ``lengths`` becomes
  ``dims: [1]`` with ``reshape: { shape: [] }``, Triton's form for one value per row.
- A model with a count input (an int64 scalar, e.g. the number of steps to generate)
  cannot be batched by Triton (a scalar has no batch axis): ``max_batch_size: 0`` and
  full shapes, with ``-1`` for the batch axis; the scalar itself is ``dims: [1]`` with
  ``reshape: { shape: [] }``.

A streaming chunk model (exported with ``ExportOptions(streaming=True)``; its metadata
``rnngraph.state`` lists the carried state) gets Triton's sequence batcher instead, with
implicit state: each ``state_in/…`` → ``state_out/…`` pair becomes a ``sequence_batching.state``
entry (data type, dims without the batch axis, initial state zero), so the server keeps every
sequence's state between its requests and a client sends only the chunk (and its lengths).
The chunk model's ``start`` input is the ``CONTROL_SEQUENCE_START`` control (``int32``: 1 on a
sequence's first request): the model zeroes that row's state itself, whatever Triton holds in
the slot. The ``oldest`` strategy batches only requests that are ready, so no READY control is
needed (a row of a batch is always a real request of its sequence). Neither the state tensors
nor ``start`` appear among the config's inputs and outputs: Triton supplies them.

Nothing here needs Triton or tritonclient: the configuration is protobuf text format,
which the tests parse into tritonclient's `ModelConfig` message to validate it.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import onnx

from rnngraph.errors import ExportError

#: ONNX element types rnngraph exports use, as Triton's data types
TRITON_TYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}
BATCH_AXIS = "batch"
DEFAULT_MAX_BATCH_SIZE = 64
#: how long the sequence batcher keeps an idle sequence's state (Triton's default is 1 s)
SEQUENCE_IDLE_MICROSECONDS = 60_000_000
INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}


@dataclass(frozen=True)
class Tensor:
    """One graph input or output: its name, Triton data type and dims (``None`` for a named, dynamic axis)."""

    name: str
    data_type: str
    dims: tuple[int | None, ...]

    @property
    def batched(self) -> bool:
        return bool(self.dims) and self.dims[0] is None


def signature(values: list[onnx.ValueInfoProto]) -> list[Tensor]:
    out = []
    for value in values:
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type not in TRITON_TYPES:
            raise ExportError(f"{value.name!r}: ONNX element type {tensor_type.elem_type} has no Triton data type "
                              "in rnngraph's table (TRITON_TYPES).")
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
        out.append(Tensor(value.name, TRITON_TYPES[tensor_type.elem_type], dims))
    return out


def batch_first(proto: onnx.ModelProto) -> bool:
    """Whether every input and output has rnngraph's batch axis first (then Triton may batch requests)."""
    values = [*proto.graph.input, *proto.graph.output]
    return all(v.type.tensor_type.shape.dim and v.type.tensor_type.shape.dim[0].dim_param == BATCH_AXIS
               for v in values)


def tensor_entry(tensor: Tensor, batching: bool) -> str:
    dims = tensor.dims[1:] if batching else tensor.dims
    listed = [-1 if d is None else d for d in dims]
    reshape = ""
    if not listed:  # one value per row (lengths (batch,)) or a scalar (a count): Triton's form for no dims
        listed, reshape = [1], " reshape: { shape: [ ] }"
    return (f'  {{ name: "{tensor.name}" data_type: {tensor.data_type} '
            f'dims: [ {", ".join(str(d) for d in listed)} ]{reshape} }}')


def triton_config(proto: onnx.ModelProto, name: str, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                  device: str = "cpu") -> str:
    """The ``config.pbtxt`` text of `proto` for Triton's ONNX Runtime backend (see the module docstring).

    `device`: ``cpu`` or ``gpu``, where Triton places the model's instances (``instance_group``).
    """
    if device not in INSTANCE_KINDS:
        raise ExportError(f"invalid value for `device`: expected one of {sorted(INSTANCE_KINDS)}, received {device!r}.")
    if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool) or max_batch_size < 1:
        raise ExportError(f"invalid value for `max_batch_size`: expected a positive integer, received "
                          f"{max_batch_size!r}.")
    batching = batch_first(proto)
    state = streaming_state(proto)
    implicit = set() if state is None else {state["start"]["input"]} | {
        name for slot in [state["steps"], *state["states"]] for name in (slot["input"], slot["output"])}
    inputs = [t for t in signature(list(proto.graph.input)) if t.name not in implicit]
    outputs = [t for t in signature(list(proto.graph.output)) if t.name not in implicit]
    lines = [f'name: "{name}"', 'backend: "onnxruntime"', f"max_batch_size: {max_batch_size if batching else 0}"]
    lines.append("input [\n" + ",\n".join(tensor_entry(t, batching) for t in inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(tensor_entry(t, batching) for t in outputs) + "\n]")
    if state is not None:
        lines.append(sequence_batching(proto, state, max_batch_size))
    elif batching:
        lines.append("dynamic_batching { }")
    lines.append(f"instance_group [ {{ kind: {INSTANCE_KINDS[device]} }} ]")
    return "\n".join(lines) + "\n"


def streaming_state(proto: onnx.ModelProto) -> dict[str, Any] | None:
    """A chunk model's state layout (its metadata ``rnngraph.state``), or None for a whole-sequence model."""
    meta = {p.key: p.value for p in proto.metadata_props}
    state = json.loads(meta.get("rnngraph.state", '{"streaming": false}'))
    if state.get("kind") == "decoder_step":  # its state starts from the encoder's outputs, not from zero
        raise ExportError(f"model {proto.graph.name!r} is part of a decoder step export; Triton's sequence batcher "
                          "starts every state at zero, so it is not written as a Triton model. Serve the whole "
                          "model (greedy decoding in the graph) instead.")
    return state if state.get("streaming") else None


def sequence_batching(proto: onnx.ModelProto, state: dict[str, Any], max_batch_size: int) -> str:
    """The ``sequence_batching`` block of a chunk model: the START control and the implicit state."""
    types = {t.name: t for t in signature(list(proto.graph.input))}
    entries = []
    for slot in [state["steps"], *state["states"]]:
        tensor = types[slot["input"]]
        dims = ", ".join(str(d) for d in tensor.dims[1:])
        entries.append(f'    {{ input_name: "{slot["input"]}" output_name: "{slot["output"]}" '
                       f'data_type: {tensor.data_type} dims: [ {dims} ]\n'
                       f'      initial_state: {{ name: "zero" data_type: {tensor.data_type} dims: [ {dims} ] '
                       'zero_data: true } }')
    start = state["start"]["input"]
    return ("sequence_batching {\n"
            f"  max_sequence_idle_microseconds: {SEQUENCE_IDLE_MICROSECONDS}\n"
            f"  oldest {{ max_candidate_sequences: {max_batch_size} }}\n"
            f'  control_input [ {{ name: "{start}" control [ {{ kind: CONTROL_SEQUENCE_START '
            "int32_false_true: [ 0, 1 ] } ] } ]\n"
            "  state [\n" + ",\n".join(entries) + "\n  ]\n}")


def write_triton_repository(proto: onnx.ModelProto, directory: str | os.PathLike[str], name: str,
                            version: int = 1, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                            device: str = "cpu") -> pathlib.Path:
    """Write ``<directory>/<name>/config.pbtxt`` and ``<directory>/<name>/<version>/model.onnx``.

    Returns the model's folder ``<directory>/<name>``. Both files are written atomically;
    other versions already in the folder are kept.
    """
    from rnngraph.exporters.onnx import write_atomic

    if not name or any(c in name for c in "/\\") or name in (".", ".."):
        raise ExportError(f"invalid Triton model name {name!r}: give a plain folder name such as 'tagger'.")
    root = pathlib.Path(directory)
    if root.exists() and not root.is_dir():
        raise ExportError(f"cannot write a Triton model repository into {str(root)!r}: it is a file.")
    config = triton_config(proto, name, max_batch_size, device)
    folder = root / name
    (folder / str(version)).mkdir(parents=True, exist_ok=True)
    write_atomic(proto, str(folder / str(version) / "model.onnx"))
    tmp = folder / ".config.pbtxt.rnngraph-tmp"
    tmp.write_text(config)
    os.replace(tmp, folder / "config.pbtxt")
    return folder
