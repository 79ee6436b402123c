"""Assembles, checks and writes the ONNX model.

    export(model, params, "tagger.onnx", opset=17, lowering="auto") -> onnx.ModelProto
    export(model, params, "tagger.onnx", dtype="float64")       # float64 weights, inputs, outputs

The ModelProto carries the opset, the lowest IR version that opset needs, named
dynamic axes (``batch``, ``time``), metadata (rnngraph version, which input pads
which sequence, vocabularies, the lowering path of each recurrent node, each count's
maximum, the version of the in-graph guards) and doc
strings. It passes `onnx.checker` (full) and strict shape inference before
anything is written; the file is written atomically (temp file + rename), with
weights as external data beside it when they are too large for one protobuf
(`write`: the model and its weights are replaced as one unit).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper

from rnngraph.compiler import compile_model
from rnngraph.compiler.builder import fill_deferred
from rnngraph.compiler.guards import VERSION as GUARDS_VERSION
from rnngraph.compiler.options import ExportOptions, resolve
from rnngraph.dsl.description import to_json
from rnngraph.dsl.fields import DescriptionError
from rnngraph.dsl.model import Model
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import layout, write
from rnngraph.exporters.onnx.metadata import device_metadata
from rnngraph.exporters.onnx.write import initializer_bytes  # noqa: F401 - part of this module's API

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
                      lowering: str = "auto", *, options: ExportOptions | None = None, dtype: str | None = None,
                      check: bool = True) -> onnx.ModelProto:
    """Compile, assemble and (unless `check` is False) check with onnx's full checker; writes nothing.

    `options`, `dtype`: see `export`.
    """
    opset = check_opset(opset)
    options = resolve(lowering, options, dtype)
    compiled = compile_model(model, params, opset, options=options)
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        compiled.graph, opset_imports=opset_ids, producer_name="rnngraph", producer_version=VERSION,
        doc_string=f"rnngraph model {model.name!r}. Inputs: "
        + ", ".join(f"{n}: {s.describe()}" for n, s in model.inputs.items())
        + "".join(f", {n}: int64 (batch,) valid steps of {'/'.join(v)}, clamped to 0..time, optional (full rows)"
                  for n, v in model.lengths.items())
        + "".join(f", {n}: at most {s.count_max} (larger counts are capped)" for n, s in model.inputs.items()
                  if s.count_max is not None),
    )
    # the weights go straight into the model's own graph: built inline, protobuf's copies of the graph (a
    # body into its Scan node, the graph into the model) would hold them two or three times
    fill_deferred(proto.graph, compiled.deferred)
    proto.ir_version = helper.find_min_ir_version_for(opset_ids)
    metadata = {
        "rnngraph.version": VERSION,
        "rnngraph.model": model.name,
        "rnngraph.lengths": json.dumps(model.lengths, sort_keys=True),
        "rnngraph.vocab": json.dumps({n: s.vocab for n, s in model.inputs.items() if s.vocab is not None},
                                     sort_keys=True),
        "rnngraph.paths": json.dumps(compiled.paths, sort_keys=True),
        # each count input's maximum: the graph caps the count there, a session refuses more
        "rnngraph.counts": json.dumps({n: s.count_max for n, s in model.inputs.items() if s.count_max is not None},
                                      sort_keys=True),
        # the graph answers empty inputs and any lengths itself (rnngraph/compiler/guards.py)
        "rnngraph.guards": GUARDS_VERSION,
        **self_description(model, params, proto.graph, opset, options),
        **device_metadata(model, compiled),  # names, meanings, state layout, tokens: docs/deploy.md
    }
    helper.set_model_props(proto, metadata)
    if check:
        if not write.needs_external_data(proto, EXTERNAL_DATA_BYTES):
            write.check(proto, model.name)
        else:  # too large to check in memory (protobuf's 2 GiB limit, and a second copy of every weight)
            write.check_external(proto, model.name)
    return proto


def self_description(model: Model, params: Mapping[str, np.ndarray], graph: onnx.GraphProto, opset: int,
                     options: ExportOptions) -> dict[str, str]:
    """Metadata that makes the file stand alone (`rnngraph.load`, ``rnngraph verify FILE.onnx``).

    ``rnngraph.description``: the model description (`rnngraph.dsl.description`, JSON);
    ``rnngraph.options``: the `ExportOptions` it was exported with (JSON, every field);
    ``rnngraph.params``: where each parameter lives among the initializers (`layout.record`),
    left out for models of 2^24 parameter values or more. Models with a layer type the description
    does not know get none of these keys.
    """
    try:
        description = to_json(model, indent=None).strip()
    except DescriptionError:  # a layer type the description does not know (e.g. defined in a test): no self-description
        return {}
    out = {"rnngraph.description": description,
           "rnngraph.options": json.dumps(dataclasses.asdict(options), sort_keys=True)}
    found = layout.record(model, params, graph, opset, options)
    if found is not None:
        out["rnngraph.params"] = json.dumps(found, separators=(",", ":"))
    return out


def export(model: Model, params: Mapping[str, np.ndarray], path: str | os.PathLike[str] | None = None, *,
           opset: int = DEFAULT_OPSET, lowering: str = "auto", dtype: str | None = None,
           options: ExportOptions | None = None) -> onnx.ModelProto:
    """Export `model` with `params` to ONNX; write it to `path` if given. Returns the ModelProto.

    `lowering`: ``auto`` (per cell, the faster of ONNX's native op and a Scan, as
    measured), ``scan`` (Scan everywhere), ``native`` (ONNX's native op wherever a
    cell maps onto it exactly, Scan elsewhere). `options`: every export choice as one
    `ExportOptions` (the lowering, the Clockwork form, ``streaming=True`` for a chunk
    model with explicit state, `rnngraph.compiler.streaming`); give the lowering there or
    as `lowering`, not both.

    `dtype`: the float type of every float input, output, weight and computation, ``"float32"``
    (the default) or ``"float64"`` (the weights go in without passing through float32; the
    recurrent layers take the Scan lowering, the only one onnxruntime runs in float64; see
    docs/deploy.md); give it here or as ``options.dtype``, not both. float16 and int8 copies
    are written from a float32 export (`rnngraph.exporters.onnx.precision`).

    Above `EXTERNAL_DATA_BYTES` of weights, written to `path`, the weights go to a data file
    beside it and the returned ModelProto refers to that file (as onnx's own external-data
    save leaves a model): run the file (``Session(path)``), or ``onnx.load(path)`` to get the
    weights back in memory. That keeps the export's peak memory near twice the weights.
    """
    proto = build_model_proto(model, params, opset, lowering, options=options, dtype=dtype, check=False)
    large = write.needs_external_data(proto, EXTERNAL_DATA_BYTES)
    if not large:
        write.check(proto, model.name)
    elif path is None:
        write.check_external(proto, model.name)
    if path is not None:  # a large model is checked on its files, before they replace anything
        write.write_model(proto, os.fspath(path), EXTERNAL_DATA_BYTES, name=model.name, checked=not large,
                          keep_external=True)
    return proto


def write_atomic(proto: onnx.ModelProto, path: str) -> None:
    """Write a checked `proto` to `path` atomically (with external data above `EXTERNAL_DATA_BYTES`)."""
    write.write_model(proto, path, EXTERNAL_DATA_BYTES, name=proto.graph.name, checked=True)
