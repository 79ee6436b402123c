"""Checking and writing a ModelProto: one file, or a model file plus its weights as external data.

Small models (weights up to `threshold` bytes) are checked in memory and written as one
file, atomically (`rnngraph.files`). Larger ones never become one giant protobuf: the
weights stream, tensor by tensor, into a data file beside the model, whose name carries
a digest of its contents (``model.onnx.<digest>.data``); the model file keeps only
references to it. The pair is checked by onnx's checker on the files, then committed:

1. the new data file is renamed into place (a new name: the old model still reads its own);
2. the new model file is renamed over the old one (one atomic step: from here on the new
   model reads the new data);
3. the data files the old model referenced are removed.

A crash between steps leaves either the old pair or the new pair in place, plus at most
one data file no model refers to — never a model reading another model's weights. Work
happens in a ``.rnngraph-tmp-*`` folder beside the target, removed on every error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator

import onnx

from rnngraph.errors import ExportError
from rnngraph.files import TEMP_PREFIX, check_target, commit, write_atomic

#: tensors up to this size stay inline in the model file (axes, small constants)
INLINE_BYTES = 1024


def tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every initializer of `graph` and of every Scan/Loop/If body in it (recurrent weights live there)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from tensors(body)


def external_locations(graph: onnx.GraphProto) -> set[str]:
    """The data files (relative to the model's folder) that external-data tensors of `graph` and its bodies read."""
    return {entry.value for tensor in tensors(graph) if tensor.data_location == onnx.TensorProto.EXTERNAL
            for entry in tensor.external_data if entry.key == "location"}


def initializer_bytes(graph: onnx.GraphProto) -> int:
    return sum(len(t.raw_data) for t in tensors(graph))


def needs_external_data(proto: onnx.ModelProto, threshold: int) -> bool:
    """Whether the weights that would move to a data file (tensors above `INLINE_BYTES`) exceed `threshold`."""
    return sum(len(t.raw_data) for t in tensors(proto.graph) if len(t.raw_data) > INLINE_BYTES) > threshold


def check(proto: onnx.ModelProto, name: str) -> None:
    """onnx's full check and strict shape inference, in memory (models well under protobuf's 2 GiB)."""
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported graph of {name!r} failed ONNX's checks (a bug in rnngraph): {exc}") from exc


def check_file(path: str, name: str) -> None:
    """The same checks on a written model file, which may read external data beside it."""
    try:
        onnx.checker.check_model(path, full_check=True)  # with a path: strict shape inference, types checked
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported graph of {name!r} failed ONNX's checks (a bug in rnngraph): {exc}") from exc


def write_model(proto: onnx.ModelProto, path: str, threshold: int, *, name: str, checked: bool,
                keep_external: bool = False) -> None:
    """Write `proto` to `path`; above `threshold` weight bytes with external data (see the module docstring).

    `checked`: whether `proto` already passed `check` (large models are checked here, on the files).
    `keep_external`: leave `proto` referring to the written data file instead of taking its weights
    back in. protobuf keeps a cleared field's memory until the whole message is freed, so taking
    the weights back would hold them twice: an export above the threshold keeps its peak memory
    near twice the weights only this way.
    """
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors(proto.graph)):
        raise ExportError(f"the model {name!r} refers to weights in a data file beside another model file (an "
                          "export above the external-data threshold returns it so); read it back with "
                          "onnx.load(path), which loads the weights, before writing it elsewhere.")
    if not needs_external_data(proto, threshold):
        if not checked:
            check(proto, name)
        write_atomic(path, lambda f: f.write(proto.SerializeToString()), ExportError, "model")
        return
    directory = check_target(path, ExportError, "model")
    previous = referenced_data_files(path)
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=TEMP_PREFIX) as tmp:
            data_name = stage_external(proto, tmp, os.path.basename(path), name=name, check=not checked,
                                       keep_external=keep_external)
            commit(os.path.join(tmp, data_name), os.path.join(directory, data_name))
            commit(os.path.join(tmp, os.path.basename(path)), path)
    except OSError as exc:
        raise ExportError(f"cannot write model {path!r}: {exc.strerror or exc}.") from exc
    for old in previous - {data_name}:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, old))


def check_external(proto: onnx.ModelProto, name: str) -> None:
    """Check a model too large for an in-memory check, through files in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as tmp:
        stage_external(proto, tmp, "model.onnx", name=name, check=True)


def stage_external(proto: onnx.ModelProto, folder: str, model_name: str, *, name: str, check: bool,
                   keep_external: bool = False) -> str:
    """Write `model_name` and its data file into `folder`; returns the data file's name.

    The weights move into the data file one tensor at a time. Unless `keep_external` (and on
    any error) they are read back into `proto` after the model file is written, so the
    caller's `proto` ends as it began.
    """
    large = [t for t in tensors(proto.graph) if len(t.raw_data) > INLINE_BYTES]
    digest = hashlib.blake2b(digest_size=8)
    for tensor in large:  # the name follows the contents: the same export gives the same files
        digest.update(tensor.name.encode())
        digest.update(tensor.raw_data)
    data_name = f"{model_name}.{digest.hexdigest()}.data"
    data_path = os.path.join(folder, data_name)
    spans = []
    with open(data_path, "wb") as f:
        for tensor in large:
            raw = tensor.raw_data
            spans.append((f.tell(), len(raw)))
            f.write(raw)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data_name), ("offset", str(spans[-1][0])), ("length", str(len(raw)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
    try:
        model_path = os.path.join(folder, model_name)
        with open(model_path, "wb") as f:
            f.write(proto.SerializeToString())
        if check:
            check_file(model_path, name)
    except BaseException:
        take_back(large, spans, data_path)
        raise
    if not keep_external:
        take_back(large, spans, data_path)
    return data_name


def take_back(large: list[onnx.TensorProto], spans: list[tuple[int, int]], data_path: str) -> None:
    """Read the weights written to `data_path` back into their tensors (inline again)."""
    with open(data_path, "rb") as f:
        for tensor, (offset, length) in zip(large, spans, strict=True):
            f.seek(offset)
            tensor.raw_data = f.read(length)
            tensor.ClearField("external_data")
            tensor.data_location = onnx.TensorProto.DEFAULT


def referenced_data_files(path: str) -> set[str]:
    """The data files an existing model at `path` reads (none if there is no readable model there).

    Only names that an rnngraph export writes (``<model file name>[.<digest>].data``) are
    returned: a file someone else's model shares is never removed.
    """
    if not os.path.isfile(path):
        return set()
    try:
        old = onnx.load(path, load_external_data=False)
    except Exception:  # noqa: BLE001 - an unreadable old file simply has nothing to clean up
        return set()
    base = os.path.basename(path)
    return {n for n in external_locations(old.graph)
            if n.startswith(base + ".") and n.endswith(".data") and os.sep not in n}
