"""Assembles, checks and writes the ONNX model.

    export(model, params, "tagger.onnx", opset=17, lowering="auto") -> onnx.ModelProto

The ModelProto carries the opset, the lowest IR version that opset needs, named
dynamic axes (``batch``, ``time``), metadata (rnngraph version, which input pads
which sequence, vocabularies, the lowering path of each recurrent node) and doc
strings. It passes `onnx.checker` (full) and strict shape inference before
anything is written; the file is written atomically (temp file + rename), with
weights as external data beside it when they are too large for one protobuf.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper

from rnngraph.compiler import compile_model
from rnngraph.dsl.description import to_json
from rnngraph.dsl.fields import DescriptionError
from rnngraph.dsl.model import Model
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import layout

DEFAULT_OPSET = 17
MIN_OPSET = 13
#: initializer bytes above which weights go to an external data file (protobuf's limit is 2 GiB)
EXTERNAL_DATA_BYTES = 1 << 30
VERSION = "0.1.0"


@functools.lru_cache(maxsize=1)
def max_opset() -> int:
    """The newest opset that both the installed onnx and onnxruntime support."""
    import onnxruntime as ort

    newest = onnx.defs.onnx_opset_version()
    for opset in range(newest, MIN_OPSET - 1, -1):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "probe",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
        probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        probe.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
        try:
            ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - any refusal means "not supported"
            continue
        return opset
    raise ExportError("the installed onnxruntime supports no opset from 13 on; upgrade onnxruntime.")


def check_opset(opset: object) -> int:
    high = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= high:
        raise ExportError(
            f"invalid value for `opset`: expected an integer from {MIN_OPSET} to {high} "
            f"(the newest both the installed onnx and onnxruntime support), received {opset!r}."
        )
    return opset


def build_model_proto(model: Model, params: Mapping[str, np.ndarray], opset: int = DEFAULT_OPSET,
                      lowering: str = "auto") -> onnx.ModelProto:
    """Compile, assemble and check; writes nothing."""
    opset = check_opset(opset)
    compiled = compile_model(model, params, opset, lowering)
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        compiled.graph, opset_imports=opset_ids, producer_name="rnngraph", producer_version=VERSION,
        doc_string=f"rnngraph model {model.name!r}. Inputs: "
        + ", ".join(f"{n}: {s.describe()}" for n, s in model.inputs.items())
        + "".join(f", {n}: int64 (batch,) valid steps of {'/'.join(v)}, 1..time" for n, v in model.lengths.items()),
    )
    proto.ir_version = helper.find_min_ir_version_for(opset_ids)
    metadata = {
        "rnngraph.version": VERSION,
        "rnngraph.model": model.name,
        "rnngraph.lengths": json.dumps(model.lengths, sort_keys=True),
        "rnngraph.vocab": json.dumps({n: s.vocab for n, s in model.inputs.items() if s.vocab is not None},
                                     sort_keys=True),
        "rnngraph.paths": json.dumps(compiled.paths, sort_keys=True),
        **self_description(model, params, compiled.graph, opset, lowering),
    }
    helper.set_model_props(proto, metadata)
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(
            f"the exported graph of {model.name!r} failed ONNX's checks (a bug in rnngraph): {exc}"
        ) from exc
    return proto


def self_description(model: Model, params: Mapping[str, np.ndarray], graph: onnx.GraphProto, opset: int,
                     lowering: str) -> dict[str, str]:
    """Metadata that makes the file stand alone (`rnngraph.load`, ``rnngraph verify FILE.onnx``).

    ``rnngraph.description``: the model description (`rnngraph.dsl.description`, JSON);
    ``rnngraph.lowering``: the `lowering` option it was exported with;
    ``rnngraph.params``: where each parameter lives among the initializers (`layout.record`),
    left out for models of 2^24 parameter values or more. Models with a layer type the description
    does not know get none of these keys.
    """
    try:
        description = to_json(model, indent=None).strip()
    except DescriptionError:  # a layer type the description does not know (e.g. defined in a test): no self-description
        return {}
    out = {"rnngraph.description": description, "rnngraph.lowering": lowering}
    found = layout.record(model, params, graph, opset, lowering)
    if found is not None:
        out["rnngraph.params"] = json.dumps(found, separators=(",", ":"))
    return out


def export(model: Model, params: Mapping[str, np.ndarray], path: str | os.PathLike[str] | None = None, *,
           opset: int = DEFAULT_OPSET, lowering: str = "auto") -> onnx.ModelProto:
    """Export `model` with `params` to ONNX; write it to `path` if given. Returns the ModelProto.

    `lowering`: ``auto`` (per cell, the faster of ONNX's native op and a Scan, as
    measured), ``scan`` (Scan everywhere), ``native`` (ONNX's native op wherever a
    cell maps onto it exactly, Scan elsewhere).
    """
    proto = build_model_proto(model, params, opset, lowering)
    if path is not None:
        write_atomic(proto, os.fspath(path))
    return proto


def initializer_bytes(graph: onnx.GraphProto) -> int:
    """Bytes of the initializers of `graph` and of every Scan/Loop/If body in it (recurrent weights live there)."""
    total = sum(len(t.raw_data) for t in graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                total += initializer_bytes(attr.g)
            total += sum(initializer_bytes(sub) for sub in attr.graphs)
    return total


def write_atomic(proto: onnx.ModelProto, path: str) -> None:
    """Write `proto` to `path` so that `path` is either the old file or the whole new one."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ExportError(f"cannot write {path!r}: directory {directory!r} does not exist.")
    if os.path.isdir(path):
        raise ExportError(f"cannot write {path!r}: it is a directory; give a file name, e.g. "
                          f"{os.path.join(path, 'model.onnx')!r}.")
    external = initializer_bytes(proto.graph) > EXTERNAL_DATA_BYTES
    data_name = os.path.basename(path) + ".data"
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".rnngraph-") as tmp:
            tmp_model = os.path.join(tmp, os.path.basename(path))
            if external:
                proto_copy = onnx.ModelProto()
                proto_copy.CopyFrom(proto)  # saving as external data rewrites the tensors in place
                onnx.save_model(proto_copy, tmp_model, save_as_external_data=True, all_tensors_to_one_file=True,
                                location=data_name, size_threshold=1024)  # small constants (axes) stay inline
                os.replace(os.path.join(tmp, data_name), os.path.join(directory, data_name))
            else:
                onnx.save_model(proto, tmp_model)
            os.replace(tmp_model, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path!r}: {exc.strerror or exc}.") from exc
