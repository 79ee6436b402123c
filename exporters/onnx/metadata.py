"""What a device reads from an exported file without Python or rnngraph: ONNX ``metadata_props``.

Every value is a string; the structured ones are JSON. onnxruntime gives them to any
caller: ``session.get_modelmeta().custom_metadata_map`` in Python,
``Ort::ModelMetadata::LookupCustomMetadataMapAllocated`` in C++, ``OrtSession.getMetadata()``
on Android/Java. docs/deploy.md documents each key.

    rnngraph.inputs    [{"name", "dtype", "dims", "meaning"}, ...]   every graph input, in order
    rnngraph.outputs   [{"name", "dtype", "dims", "meaning"}, ...]   every graph output, in order
    rnngraph.state     {"streaming": false} or the chunk model's state layout (`compiler.streaming.layout`);
                       a decoder step export's two files: its layout (`compiler.decoder_step.step_layout`,
                       written by `exporters.onnx.decoder_step` with ``rnngraph.role`` encoder or step)
    rnngraph.tokens    {"<input>": {"vocab": V}, "<decoder node>": {"bos", "eos", "pad", "vocab"}}
    rnngraph.lengths_convention   the lengths rule, in words
    rnngraph.dtype     the float type of every float input, output and weight ("float32" or "float64")
    rnngraph.version   (written by the exporter beside these)
"""

from __future__ import annotations

import json

from rnngraph.compiler import CompiledGraph
from rnngraph.dsl.decoder import DecoderLayer
from rnngraph.dsl.model import Model
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, TensorSpec

LENGTHS_RULE = ("A lengths input (int64, (batch,)) gives each row's valid steps of the sequences it pads: "
                "1..time; steps past a row's length are ignored and its outputs there are 0. Omitted by "
                "rnngraph's Session it means every row is full; a C++ caller feeds time for every row. "
                "In a streaming chunk model a length may be 0..time: a row with no step in this chunk keeps "
                "its state and steps exactly.")


def _meaning(spec: TensorSpec, what: str) -> str:
    if spec.kind == SCALAR:
        return f"{what}: a count (int64 scalar)"
    shape = "(batch, time, ·)" if spec.kind == SEQUENCE else "(batch, ·)"
    if spec.is_tokens:
        return f"{what}: token ids in [0, {spec.vocab}) {shape}"
    return f"{what}: {spec.features} features per {'step' if spec.kind == SEQUENCE else 'row'} {shape}"


def device_metadata(model: Model, compiled: CompiledGraph) -> dict[str, str]:
    """The ``rnngraph.*`` keys above (but the version), for `model` as compiled."""

    def _entry(name: str, dtype: str, dims: list[str | int], meaning: str) -> dict[str, object]:
        # the DSL's float tensors ("float32") take the export's float type
        return {"name": name, "dtype": compiled.dtype if dtype == "float32" else dtype, "dims": dims,
                "meaning": meaning}

    inputs = [_entry(n, s.dtype, s.dims(), _meaning(s, "model input")) for n, s in model.inputs.items()]
    inputs += [_entry(n, "int64", ["batch"], f"valid steps per row of {'/'.join(v)} (rnngraph.lengths_convention)")
               for n, v in model.lengths.items()]
    outputs = []
    for name, source in model.outputs.items():
        title = model.graph.nodes[source.node]["node"].layer.title()
        outputs.append(_entry(name, source.spec.dtype, source.spec.dims(),
                              _meaning(source.spec, f"output {source.index} of {title}")))
    state: dict[str, object] = {"streaming": False}
    if compiled.state is not None:
        state = compiled.state
        start, steps = state["start"], state["steps"]
        assert isinstance(start, dict) and isinstance(steps, dict) and isinstance(state["states"], list)
        inputs.append(_entry(start["input"], start["dtype"], start["dims"], start["meaning"]))
        inputs.append(_entry(steps["input"], steps["dtype"], steps["dims"], steps["meaning"]))
        outputs.append(_entry(steps["output"], steps["dtype"], steps["dims"], "steps processed after this chunk"))
        for slot in state["states"]:
            inputs.append(_entry(slot["input"], slot["dtype"], slot["dims"], f"state of {slot['layer']} before "
                                 "this chunk (0 for a new stream)"))
            outputs.append(_entry(slot["output"], slot["dtype"], slot["dims"], f"state of {slot['layer']} after "
                                  "this chunk (feed it back as " + str(slot["input"]) + ")"))
    tokens: dict[str, dict[str, int]] = {n: {"vocab": s.vocab} for n, s in model.inputs.items() if s.vocab is not None}
    for name, node in model.nodes():
        layer = node.layer
        if isinstance(layer, DecoderLayer):
            decoder = layer.dec
            tokens[name] = {"bos": decoder.bos, "eos": decoder.eos, "pad": decoder.pad, "vocab": decoder.vocab}
    return {
        "rnngraph.inputs": json.dumps(inputs),
        "rnngraph.outputs": json.dumps(outputs),
        "rnngraph.state": json.dumps(state),
        "rnngraph.tokens": json.dumps(tokens, sort_keys=True),
        "rnngraph.lengths_convention": LENGTHS_RULE,
        "rnngraph.dtype": compiled.dtype,
    }
