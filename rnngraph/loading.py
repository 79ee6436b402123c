"""Reading models back: from the self-description of an exported ``.onnx``, or from any model file.

    model, params = rnngraph.load("tagger.onnx")     # the model and its parameters, read from the file
    rnngraph.export(model, params, "again.onnx")      # the same bytes, with the same opset and lowering

An export carries its model description (metadata ``rnngraph.description``), the
`ExportOptions` it was made with (``rnngraph.options``) and where each parameter sits
among its initializers (``rnngraph.params``, see `rnngraph.exporters.onnx.layout`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngraph.dsl.description import from_json
from rnngraph.dsl.model import Model
from rnngraph.errors import ModelError

DESCRIPTION_KEY = "rnngraph.description"
PARAMS_KEY = "rnngraph.params"
OPTIONS_KEY = "rnngraph.options"


@dataclass
class OnnxModel:
    """What a self-describing ``.onnx`` holds: the model, its parameters, the options it was exported with."""

    model: Model
    params: dict[str, np.ndarray]
    proto: Any  # onnx.ModelProto
    opset: int
    options: Any  # rnngraph.ExportOptions

    @property
    def lowering(self) -> str:
        return str(self.options.lowering)


def read_proto(path: str) -> Any:
    """The ModelProto of `path`, or a ModelError saying why it is not one."""
    import onnx

    if not os.path.isfile(path):
        raise ModelError(f"no ONNX file at {path!r}.")
    try:
        return onnx.load(path)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ModelError(f"{path!r} is not a readable ONNX file: {exc}") from exc


def read_onnx(path: str | os.PathLike[str]) -> OnnxModel:
    """The model, parameters and export options of an ``.onnx`` written by `rnngraph.export`."""
    from rnngraph.compiler.options import ExportOptions
    from rnngraph.exporters.onnx import layout
    from rnngraph.exporters.onnx.precision import PRECISION_KEY

    path = os.fspath(path)
    proto = read_proto(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    if DESCRIPTION_KEY not in meta:
        made = f"{proto.producer_name} {proto.producer_version}".strip() or "an unknown producer"
        raise ModelError(f"{path}: carries no model description (metadata {DESCRIPTION_KEY!r}); it was made by "
                         f"{made}, not by an rnngraph export that describes itself. Export it again from its model "
                         "file (rnngraph export MODEL.py -o FILE.onnx), or verify the model file instead.")
    try:
        model = from_json(meta[DESCRIPTION_KEY])
    except ModelError as exc:
        raise ModelError(f"{path}: its model description does not load in this rnngraph: {exc}") from exc
    if PARAMS_KEY not in meta:
        raise ModelError(f"{path}: carries no parameter layout (metadata {PARAMS_KEY!r}): models of 2^24 parameter "
                         "values or more are exported without one. Load the model from its model file and its "
                         "parameters from their .npz instead.")
    if meta.get(PRECISION_KEY, "float32") != "float32":
        raise ModelError(f"{path}: is the {meta[PRECISION_KEY]} copy of an export; its weights were converted "
                         "(quantized or rounded), so its parameters cannot be read back. Load or verify the "
                         "float32 file it was made from, or the model file; the copy's own error against the "
                         "oracle is what `rnngraph demo` and benchmarks/precision_table.py measure.")
    shapes = {name: spec.shape for name, spec in model.param_specs().items()}
    params = layout.read(proto.graph, json.loads(meta[PARAMS_KEY]), shapes)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    return OnnxModel(model, params, proto, opset, ExportOptions(**json.loads(meta.get(OPTIONS_KEY, "{}"))))


def load(path: str | os.PathLike[str], seed: int = 0) -> tuple[Model, dict[str, np.ndarray]]:
    """``(model, params)`` from a model file.

    - ``.onnx`` written by `rnngraph.export`: the model and the parameters stored in it;
      ``rnngraph.export(model, params, ...)`` with the same `opset` and options (`read_onnx`
      gives both) writes the same bytes again.
    - ``.json`` / ``.toml``: a model description (`Model.to_json`); parameters
      ``model.init(seed)`` (load trained ones with ``model.load_params("x.npz")``).
    - ``.py``: a model file defining `model` (and optionally `params`).
    """
    from rnngraph.verify import load_model_file

    mf = load_model_file(path, seed)
    return mf.model, mf.params


__all__ = ["OnnxModel", "load", "read_onnx"]
