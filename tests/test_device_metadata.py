"""The metadata a device reads without Python (docs/deploy.md): every graph input and output named, typed
and explained in order, token ids of decoders, the lengths rule, the dtype; read back through onnxruntime."""

from __future__ import annotations

import json
import pathlib

import onnxruntime as ort
import pytest

from rnngraph.dsl.decoder import DecoderLayer
from rnngraph.exporters.onnx import VERSION, build_model_proto
from rnngraph.verify import load_model_file

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))
TYPES = {1: "float32", 7: "int64", 6: "int32"}


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_inputs_and_outputs_are_described_in_graph_order(path):
    mf = load_model_file(path)
    proto = build_model_proto(mf.model, mf.params)
    meta = {p.key: p.value for p in proto.metadata_props}
    for key, values in (("rnngraph.inputs", proto.graph.input), ("rnngraph.outputs", proto.graph.output)):
        described = json.loads(meta[key])
        assert [e["name"] for e in described] == [v.name for v in values]
        for entry, value in zip(described, values, strict=True):
            dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            assert entry["dims"] == dims and entry["dtype"] == TYPES[value.type.tensor_type.elem_type]
            assert entry["meaning"]
    assert json.loads(meta["rnngraph.state"]) == {"streaming": False}
    assert meta["rnngraph.dtype"] == "float32" and "1..time" in meta["rnngraph.lengths_convention"]


def test_decoder_token_ids_are_readable_through_onnxruntime():
    mf = load_model_file(pathlib.Path(SAMPLES[0]).parent / "encoder_decoder.py")
    proto = build_model_proto(mf.model, mf.params)
    meta = ort.InferenceSession(proto.SerializeToString()).get_modelmeta().custom_metadata_map
    tokens = json.loads(meta["rnngraph.tokens"])
    decoders = [node.layer.dec for _, node in mf.model.nodes() if isinstance(node.layer, DecoderLayer)]
    assert decoders
    decoder_entries = [v for v in tokens.values() if "bos" in v]
    assert decoder_entries == [{"bos": d.bos, "eos": d.eos, "pad": d.pad, "vocab": d.vocab} for d in decoders]
    assert meta["rnngraph.version"] == VERSION
