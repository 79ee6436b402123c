"""Every sample exports and verifies at opset 13 (the oldest supported), 17 (the default) and the newest
opset both the installed onnx and onnxruntime support, on every lowering."""

from __future__ import annotations

import pathlib

import pytest

from rnngraph.exporters.onnx import MIN_OPSET, build_model_proto, max_opset
from rnngraph.verify import load_model_file, verify

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))
OPSETS = sorted({MIN_OPSET, 17, max_opset()})


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_verifies_at_opset(path, opset):
    mf = load_model_file(path)
    feeds = mf.example_inputs(3, 9, 0)
    for lowering in ("auto", "scan", "native"):
        proto = build_model_proto(mf.model, mf.params, opset, lowering)
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
        report = verify(mf.model, mf.params, feeds=feeds, tolerance=mf.tolerance, lowering=lowering, opset=opset)
        assert report.ok, f"{path.name} at opset {opset}, lowering {lowering}\n{report.table()}"
