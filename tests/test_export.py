"""The exporter: opsets, checks, names, metadata, atomic writes, O(1) graph size."""

import json
import os
import re

import numpy as np
import onnx
import pytest

import rnngraph as rg
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import MIN_OPSET, max_opset
from rnngraph.runtime.session import Session
from tests.conftest import assert_matches, assert_size_independent_of_time, tagger


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 17, max_opset()}))
@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_every_supported_opset_exports_and_runs(opset, lowering):
    model, params = tagger()
    proto = rg.export(model, params, opset=opset, lowering=lowering)
    assert proto.opset_import[0].version == opset
    onnx.checker.check_model(proto, full_check=True)
    assert_matches(model, params, lowering=lowering)


@pytest.mark.parametrize("opset", [12, max_opset() + 1, "17", 17.0])
def test_unsupported_opsets_are_refused(opset):
    model, params = tagger()
    with pytest.raises(ExportError, match=rf"`opset`: expected an integer from 13 to {max_opset()}"):
        rg.export(model, params, opset=opset)


def test_bad_lowering_is_refused():
    model, params = tagger()
    with pytest.raises(ExportError, match=r"`lowering`: expected one of \('auto', 'scan', 'native'\), received 'fast'"):
        rg.export(model, params, lowering="fast")


def test_names_are_readable_and_deterministic():
    model, params = tagger()
    a = rg.export(model, params).SerializeToString()
    b = rg.export(*tagger()).SerializeToString()
    assert a == b
    proto = onnx.load_from_string(a)
    names = [i.name for i in proto.graph.initializer] + [n.name for n in proto.graph.node]
    assert "rnn0/W_T" in names and "dense0/W_T" in names
    scan_export = onnx.load_from_string(rg.export(model, params, lowering="scan").SerializeToString())
    scan = next(n for n in scan_export.graph.node if n.op_type == "Scan")
    assert scan.name == "rnn0/scan"
    body = scan.attribute[0].g
    assert [i.name for i in body.initializer] == ["rnn0/body/R"]


def test_graph_size_does_not_depend_on_sequence_length():
    """One export (a fixed node count, bodies included) serves T=5 and T=500, matching the oracle at both."""
    model, params = tagger()
    # auto: the by-batch If's native branch runs the bare op (a NaN takes the Scan), 88 before; native: the op
    # in both branches of its NaN-rule If, 56 before (rnngraph/compiler/by_batch.py, nan_rule.py)
    assert_size_independent_of_time(model, params, nodes={"auto": 77, "scan": 52, "native": 62},
                                    shapes=((2, 5), (2, 500)))


def test_metadata_and_dynamic_axes():
    model, params = tagger()
    proto = rg.export(model, params, lowering="native")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["rnngraph.model"] == "tagger"
    assert json.loads(meta["rnngraph.lengths"]) == {"lengths": ["x"]}
    assert json.loads(meta["rnngraph.paths"]) == {"rnn0": "native"}
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "time", 4]
    assert "lengths: int64 (batch,)" in proto.doc_string


def test_auto_picks_the_classic_rnn_path_by_batch():
    """A small RNN: native op at small batches, Scan at large ones, chosen in the graph (test_by_batch.py)."""
    model, params = tagger()
    proto = rg.export(model, params)
    assert "If" in {n.op_type for n in proto.graph.node}
    assert json.loads({p.key: p.value for p in proto.metadata_props}["rnngraph.paths"]) == {
        "rnn0": "native if batch <= 22, else scan"}


def test_written_file_matches_and_nothing_is_left_behind(tmp_path):
    model, params = tagger()
    path = tmp_path / "m.onnx"
    proto = rg.export(model, params, path)
    assert onnx.load(str(path)).SerializeToString() == proto.SerializeToString()
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


def test_failed_export_leaves_old_file_untouched(tmp_path):
    model, params = tagger()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    bad = {**params, "rnn0/W": np.zeros((7, 5), np.float32)}
    with pytest.raises(rg.ParameterError):
        rg.export(model, bad, path)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


@pytest.mark.parametrize("external", [False, True], ids=["one_file", "external_data"])
def test_a_write_that_dies_halfway_leaves_the_old_model_whole(tmp_path, monkeypatch, external):
    """The disk fills up after half of the new file is written (at its flush to disk): the old model (and its
    weights file) must still load and run, and nothing else is left behind. A writer that writes in place fails."""
    import rnngraph.exporters.onnx as exporter

    if external:  # the model goes to external data (R is 6.4 kB): the weights file is replaced with the model
        monkeypatch.setattr(exporter, "EXTERNAL_DATA_BYTES", 0)
    model, params = tagger(rg.RNN(40))
    path = tmp_path / "m.onnx"
    rg.export(model, params, path)
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert len(before) == (2 if external else 1) and "m.onnx" in before
    written: list[int] = []

    def dies_halfway(fd: int) -> None:
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        written.append(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", dies_halfway)
    with pytest.raises(ExportError, match=r"cannot write .*No space left on device"):
        rg.export(model, model.init(1), path)
    assert written, "the export never started writing"
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    feeds = model.example_inputs(2, 5, 0)
    old = Session(rg.export(model, params)).run(**feeds)["y"]
    np.testing.assert_array_equal(Session(str(path)).run(**feeds)["y"], old)


def test_missing_directory_is_a_clear_error(tmp_path):
    model, params = tagger()
    with pytest.raises(ExportError, match=r"directory .* does not exist"):
        rg.export(model, params, tmp_path / "no" / "m.onnx")


def test_large_weights_go_to_external_data(tmp_path, monkeypatch):
    import rnngraph.exporters.onnx as exporter

    monkeypatch.setattr(exporter, "EXTERNAL_DATA_BYTES", 100)
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Dense(3)(rg.Recurrent(rg.RNN(40))(x))})
    params = model.init(0)
    path = tmp_path / "m.onnx"
    rg.export(model, params, path)
    names = sorted(os.listdir(tmp_path))
    assert names[0] == "m.onnx" and re.fullmatch(r"m\.onnx\.[0-9a-f]{16}\.data", names[1]) and len(names) == 2
    feeds = model.example_inputs(2, 4)
    in_memory = rg.export(model, params)  # the same model, never written: its weights stay inline
    np.testing.assert_array_equal(Session(path).run(**feeds)["y"], Session(in_memory).run(**feeds)["y"])


def test_export_options_travel_as_one_object():
    """`options=` gives every export choice; `lowering=` alone is the short form; both at once must agree."""
    model, params = tagger(rg.LSTM(5))
    by_options = rg.export(model, params, options=rg.ExportOptions(lowering="scan"))
    by_keyword = rg.export(model, params, lowering="scan")
    assert by_options.SerializeToString() == by_keyword.SerializeToString()
    assert "Scan" in {n.op_type for n in by_options.graph.node}
    with pytest.raises(ExportError, match=r"the lowering is given twice: `lowering='native'` and "
                                          r"`options.lowering='scan'`; give it in the options only"):
        rg.export(model, params, lowering="native", options=rg.ExportOptions(lowering="scan"))
    with pytest.raises(ExportError, match=r"invalid value for `options`: expected an rnngraph ExportOptions, "
                                          r"received dict"):
        rg.export(model, params, options={"lowering": "scan"})
    with pytest.raises(ExportError, match=r"invalid value for `lowering`: expected one of \('auto', 'scan', "
                                          r"'native'\), received 'fast'"):
        rg.ExportOptions(lowering="fast")
    with pytest.raises(AttributeError):  # frozen: an export cannot be steered by changing the object later
        rg.ExportOptions().lowering = "scan"  # type: ignore[misc]
