"""Writes a decoder step export: the encoder model and the step model (`rnngraph.compiler.decoder_step`).

    files = export_decoder_step(model, params, "mt.encoder.onnx", "mt.step.onnx")
    files.encoder, files.step                                   # the two onnx.ModelProto

Both files carry the same layout as metadata ``rnngraph.state`` (``"kind": "decoder_step"``), and
each its own ``rnngraph.inputs`` / ``rnngraph.outputs`` with meanings, ``rnngraph.tokens``,
``rnngraph.dtype`` and ``rnngraph.version`` (docs/deploy.md), so a caller without Python
reads how to drive them from onnxruntime's metadata API. Both pass onnx's full checker
before either is written; each is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from rnngraph.compiler import CompiledGraph
from rnngraph.compiler.decoder_step import compile_decoder_step
from rnngraph.compiler.guards import VERSION as GUARDS_VERSION
from rnngraph.compiler.options import ExportOptions, resolve
from rnngraph.dsl.model import Model
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import DEFAULT_OPSET, EXTERNAL_DATA_BYTES, VERSION, check_opset, write
from rnngraph.exporters.onnx.metadata import LENGTHS_RULE


@dataclass(frozen=True)
class StepExport:
    encoder: onnx.ModelProto
    step: onnx.ModelProto


def step_paths(output: str | os.PathLike[str]) -> tuple[str, str]:
    """``mt.onnx`` → ``mt.encoder.onnx``, ``mt.step.onnx`` (the files the CLI writes for a decoder)."""
    path = os.fspath(output)
    stem = path[:-len(".onnx")] if path.endswith(".onnx") else path
    return f"{stem}.encoder.onnx", f"{stem}.step.onnx"


def export_decoder_step(model: Model, params: Mapping[str, np.ndarray],
                        encoder_path: str | os.PathLike[str] | None = None,
                        step_path: str | os.PathLike[str] | None = None, *, opset: int = DEFAULT_OPSET,
                        lowering: str = "auto", options: ExportOptions | None = None) -> StepExport:
    """Export the decoder of `model` for stepping one token at a time (module docstring); write the two files
    when both paths are given. `lowering`/`options`: as for `export` (the encoder's recurrent layers)."""
    if (encoder_path is None) != (step_path is None):
        raise ExportError("give both `encoder_path` and `step_path` (the two files of one export), or neither.")
    options = resolve(lowering, options)
    if options.dtype != "float32":
        raise ExportError(f"a decoder step export is float32 only; received dtype={options.dtype!r}. Export the "
                          "whole model for float64 (its greedy decoding runs in the graph), or step it in float32.")
    if options.streaming:  # the flag that asked for it; the graphs themselves are not chunk models
        options = ExportOptions(lowering=options.lowering, clockwork_form=options.clockwork_form)
    opset = check_opset(opset)
    graphs = compile_decoder_step(model, params, opset, options)
    layout = json.dumps(graphs.layout)
    encoder = _assemble(graphs.encoder, opset, model, layout, "encoder")
    step = _assemble(graphs.step, opset, model, layout, "step")
    for proto in (encoder, step):
        write.check(proto, proto.graph.name)
    if encoder_path is not None and step_path is not None:
        for proto, path in ((encoder, encoder_path), (step, step_path)):
            write.write_model(proto, os.fspath(path), EXTERNAL_DATA_BYTES, name=proto.graph.name, checked=True)
    return StepExport(encoder, step)


def _meanings(layout: dict[str, object], role: str) -> dict[str, str]:
    """Graph value name -> its meaning, from the layout."""
    out: dict[str, str] = {}
    token, steps = layout["token"], layout["steps"]
    assert isinstance(token, dict) and isinstance(steps, dict)
    out[token["input"]] = token["meaning"]
    out[steps["input"]] = "steps decoded before this step (0 at the first)"
    out[steps["output"]] = "steps decoded after this step (feed back as " + steps["input"] + ")"
    for slot in layout["states"]:  # type: ignore[attr-defined]
        node, before, after = f"the decoder node {slot['layer']!r}", slot["input"], slot["output"]
        out[before] = f"state of {node} before this step (the encoder's {after} at the first step)"
        out[after] = (f"initial state of {node} (feed as {before})" if role == "encoder"
                      else f"state of {node} after this step (feed back as {before})")
    for slot in layout["context"]:  # type: ignore[attr-defined]
        out[slot["name"]] = slot["meaning"] + (" (feed to every step)" if role == "encoder" else "")
    out["scores"] = "the readout's output at this step, (batch, vocab)"
    out["argmax"] = "the greedy token of this step (feed as token at the next step)"
    out["weights"] = "the attention weights of this step over the memory steps"
    return out


def _entries(values: list[onnx.ValueInfoProto], meanings: Mapping[str, str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for v in values:
        t = v.type.tensor_type
        out.append({"name": v.name, "dtype": helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                    "dims": [d.dim_param or d.dim_value for d in t.shape.dim],
                    "meaning": meanings.get(v.name, "model input")})
    return out


def _assemble(compiled: CompiledGraph, opset: int, model: Model, layout: str, role: str) -> onnx.ModelProto:
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(compiled.filled(), opset_imports=opset_ids, producer_name="rnngraph",
                              producer_version=VERSION,
                              doc_string=f"rnngraph decoder step export of {model.name!r}: the {role} model "
                              "(docs/deploy.md, 'Decoders, one token at a time').")
    proto.ir_version = helper.find_min_ir_version_for(opset_ids)
    parsed = json.loads(layout)
    read = {v.name for v in proto.graph.input}  # the encoder reads the inputs before the decoder only
    lengths = {n: v for n, v in model.lengths.items() if n in read}
    meanings = {**_meanings(parsed, role), **{n: "valid steps per row of " + "/".join(v) + " (rnngraph."
                                              "lengths_convention)" for n, v in lengths.items()}}
    vocab = {n: s.vocab for n, s in model.inputs.items() if s.vocab is not None and n in read}
    tokens: dict[str, dict[str, int]] = {n: {"vocab": v} for n, v in vocab.items()}
    tokens[parsed["decoder"]] = {k: parsed[k] for k in ("bos", "eos", "pad", "vocab")}
    # the encoder answers empty inputs and any lengths itself, as every export (rnngraph/compiler/guards.py)
    guarded = {"rnngraph.guards": GUARDS_VERSION} if role == "encoder" else {}
    helper.set_model_props(proto, {
        "rnngraph.version": VERSION,
        "rnngraph.model": model.name,
        "rnngraph.role": role,
        "rnngraph.state": layout,
        "rnngraph.inputs": json.dumps(_entries(list(proto.graph.input), meanings)),
        "rnngraph.outputs": json.dumps(_entries(list(proto.graph.output), meanings)),
        "rnngraph.tokens": json.dumps(tokens, sort_keys=True),
        "rnngraph.lengths": json.dumps(lengths, sort_keys=True),
        "rnngraph.vocab": json.dumps(vocab, sort_keys=True),
        **guarded,
        "rnngraph.paths": json.dumps(compiled.paths, sort_keys=True),
        "rnngraph.lengths_convention": LENGTHS_RULE,
        "rnngraph.dtype": "float32",
    })
    return proto
