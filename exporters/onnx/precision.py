"""Reduced-precision copies of an exported model: dynamic int8 and float16.

Both are post-processing of a float32 export by the standard tools, so the compiler is
unchanged and the two files keep the export's inputs, outputs, metadata and guards:

    quantize_int8("tagger.onnx", "tagger.int8.onnx")    # onnxruntime.quantization.quantize_dynamic
    to_float16("tagger.onnx", "tagger.f16.onnx")        # onnxconverter_common's float16 converter

int8 (dynamic quantization): each MatMul/Gemm weight ``W`` (float32) is stored as int8
``q`` with one scale ``s`` and zero point ``z``, ``W ≈ s·(q − z)``; at run time each
activation ``x`` is quantized per call (``DynamicQuantizeLinear``) and the product runs
as ``MatMulInteger``. ``EnableSubgraph`` makes the quantizer reach the weights inside
Scan and Loop bodies, where rnngraph's recurrent steps live; `initializer_types` shows
where the int8 weights ended up. Inputs and outputs stay float32.

float16: every float32 weight and intermediate becomes float16; inputs and outputs stay
float32 (``keep_io_types``: callers feed and read the same arrays as for the float32
export, with one Cast at each edge). onnxruntime has no float16 CPU kernel for the native
LSTM/GRU/RNN (`NATIVE_OPS`) and runs them in float32 through casts it inserts itself; they
give the right results in every sample. But the float16 form of a streaming chunk model with
native recurrent nodes crashes onnxruntime 1.32 when it creates the session (a segmentation
fault in its NchwcTransformer at the default optimization level; keeping those nodes in
float32 through the converter's ``op_block_list`` does not avoid it): such models are refused
here, and `rnngraph export --dtype float16 --streaming` uses the Scan lowering unless
another is asked for. The same crash comes from a float16 ``Transpose`` (a native op's
time-major output turned batch-first) read directly by a ``MatMul`` (a Scan's hoisted input
projection, attention keys): such Transposes are kept float32 (`_transposes_into_matmul`).
The converter retypes every float32 tensor to float16 but leaves the ``to`` attribute
of ``Cast(to=FLOAT)`` nodes as it is, so those casts (the lengths mask and the NaN rule
turn booleans into float32) would contradict their declared float16 outputs and fail to
load; they are passed in the converter's own ``node_block_list``, which keeps them float32
and casts their outputs to float16 after them.

Both files record ``rnngraph.precision`` ("int8" or "float16") in their metadata. Both start
from a float32 export: a float64 one (``ExportOptions(dtype="float64")``, compiled in float64 by
the compiler, not post-processed) is refused, since neither tool converts its double tensors.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import pathlib
import sys
import tempfile
from collections.abc import Iterator

import onnx

from rnngraph.errors import ExportError
from rnngraph.exporters.onnx.branch_weights import localize_lstm_weights, share_branch_weights
from rnngraph.exporters.onnx.write import write_model

PRECISION_KEY = "rnngraph.precision"
QUANTIZE_CHOICES = ("int8",)
DTYPE_CHOICES = ("float32", "float16")
#: onnxruntime's native recurrent ops: no float16 CPU kernel (it runs them in float32 through casts it inserts)
NATIVE_OPS = ("LSTM", "GRU", "RNN")


def _graphs(graph: onnx.GraphProto, path: str = "main") -> Iterator[tuple[str, onnx.GraphProto]]:
    """`graph` and every body graph under it (Scan, Loop, If), named by node path."""
    yield path, graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g, f"{node.name}/{attr.name}")
            for i, sub in enumerate(attr.graphs):
                yield from _graphs(sub, f"{node.name}/{attr.name}[{i}]")


def initializer_types(model: onnx.ModelProto) -> dict[str, collections.Counter[str]]:
    """For the main graph ("main") and each body graph (named by its node): counts of initializer types.

    E.g. ``{"main": Counter({"INT64": 12, "INT8": 4}), "gru0/scan/body": Counter({"INT8": 2, ...})}``.
    """
    return {path: collections.Counter(onnx.TensorProto.DataType.Name(t.data_type) for t in g.initializer)
            for path, g in _graphs(model.graph)}


def _source(src: str | os.PathLike[str]) -> pathlib.Path:
    path = pathlib.Path(src)
    if not path.is_file():
        raise ExportError(f"cannot convert {str(path)!r}: no such file; export the model first "
                          f"(rnngraph export MODEL.py -o FILE.onnx).")
    return path


def _target(src: pathlib.Path, dst: str | os.PathLike[str]) -> pathlib.Path:
    path = pathlib.Path(dst)
    if path.resolve() == src.resolve():
        raise ExportError(f"the reduced-precision copy of {str(src)!r} would replace the float32 export; "
                          f"give another output file (e.g. {src.with_suffix('.int8.onnx').name}).")
    if not path.parent.is_dir():
        raise ExportError(f"cannot write {str(path)!r}: no such directory {str(path.parent)!r}.")
    return path


def _float32_export(model: onnx.ModelProto, source: pathlib.Path, precision: str) -> None:
    """Refuse a float64 export (metadata ``rnngraph.dtype``): the converters leave its double tensors as they are."""
    dtype = next((p.value for p in model.metadata_props if p.key == "rnngraph.dtype"), "float32")
    if dtype != "float32":
        raise ExportError(f"{str(source)!r} is a {dtype} export; {precision} copies are made from a float32 export. "
                          f"Export the model without dtype={dtype!r} first (rnngraph export MODEL.py -o FILE.onnx).")


def _external(model: onnx.ModelProto) -> bool:
    return any(t.data_location == onnx.TensorProto.EXTERNAL
               for _, g in _graphs(model.graph) for t in g.initializer)


def _mark(model: onnx.ModelProto, precision: str) -> None:
    for prop in model.metadata_props:
        if prop.key == PRECISION_KEY:
            prop.value = precision
            return
    model.metadata_props.add(key=PRECISION_KEY, value=precision)


def _save(model: onnx.ModelProto, dst: pathlib.Path, external: bool) -> None:
    """Write through the exporter's writer (`write.write_model`): atomically, and with the weights beside it as
    external data (named after their digest, replaced together with the model) when the source had them."""
    write_model(model, str(dst), 0 if external else sys.maxsize, name=dst.stem, checked=True)


@contextlib.contextmanager
def _root_warnings_off() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> pathlib.Path:
    """Write `dst`: `src` (a float32 export) with int8 weights, by onnxruntime's `quantize_dynamic`.

    Weights of MatMul/Gemm nodes, in the main graph and in every Scan/Loop body, become int8
    (scale and zero point per tensor); activations are quantized per call. Inputs, outputs,
    metadata and the optional ``lengths`` input are kept. Returns `dst` as a Path.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = _source(src)
    target = _target(source, dst)
    proto = onnx.load(str(source), load_external_data=False)
    _float32_export(proto, source, "int8")
    external = _external(proto)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".rnngraph-int8-") as tmp:
        staged = pathlib.Path(tmp) / target.name
        # the quantizer logs a generic advice ("consider pre-processing") on the root logger at every call;
        # rnngraph's exports need none, so it is kept off the user's terminal
        # native LSTMs in If branches: weights copied in for the quantizer, shared again after (branch_weights.py)
        localized = onnx.load(str(source))
        if localize_lstm_weights(localized):
            source = pathlib.Path(tmp) / f"localized-{target.name}"
            onnx.save(localized, str(source), save_as_external_data=external)
        with _root_warnings_off():
            quantize_dynamic(str(source), str(staged), weight_type=QuantType.QInt8,
                             use_external_data_format=external, extra_options={"EnableSubgraph": True})
        model = onnx.load(str(staged))
        share_branch_weights(model)
    _mark(model, "int8")
    _save(model, target, external)
    return target


def to_float16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> pathlib.Path:
    """Write `dst`: `src` (a float32 export) computing in float16, with float32 inputs and outputs.

    Uses onnxconverter_common's ``convert_float_to_float16(keep_io_types=True)``; the
    ``Cast(to=FLOAT)`` nodes stay float32 through its ``node_block_list`` (module docstring).
    Weights outside float16's range are clipped by the converter (to ±1e4, tiny ones to ±1e-7).
    Returns `dst` as a Path.
    """
    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise ExportError(f"float16 export needs the `onnxconverter-common` package ({exc}); install it with "
                          f"pip install 'rnngraph[float16]' (or pip install onnxconverter-common).") from exc
    source = _source(src)
    target = _target(source, dst)
    model = onnx.load(str(source))
    _float32_export(model, source, "float16")
    meta = {p.key: p.value for p in model.metadata_props}
    native = sorted({n.op_type for _, g in _graphs(model.graph) for n in g.node if n.op_type in NATIVE_OPS})
    if native and json.loads(meta.get("rnngraph.state", "{}")).get("streaming"):
        raise ExportError(f"{str(source)!r} is a streaming chunk model with native {'/'.join(native)} nodes, whose "
                          f"float16 form crashes onnxruntime 1.32 when it optimizes the graph (its "
                          f"NchwcTransformer); export it with --lowering scan (ExportOptions(lowering='scan')).")
    external = _external(onnx.load(str(source), load_external_data=False))
    float_casts = [node.name for _, g in _graphs(model.graph) for node in g.node
                   if node.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT
                                                     for a in node.attribute)]
    converted = float16.convert_float_to_float16(model, keep_io_types=True,
                                                 node_block_list=float_casts + _transposes_into_matmul(model))
    _mark(converted, "float16")
    _save(converted, target, external)
    return target


def _transposes_into_matmul(model: onnx.ModelProto) -> list[str]:
    """Transposes whose output a MatMul reads, by name: kept float32 (see the module docstring)."""
    names = []
    for _, graph in _graphs(model.graph):
        producers = {out: node for node in graph.node if node.op_type == "Transpose" for out in node.output}
        names += [producers[i].name for node in graph.node if node.op_type in ("MatMul", "Gemm")
                  for i in node.input if i in producers]
    return names
