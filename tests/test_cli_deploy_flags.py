"""`rnngraph export --streaming --ort-format --triton DIR`: the deployment files from the command line."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
from google.protobuf import text_format

from rnngraph.cli import main
from rnngraph.runtime import oracle
from rnngraph.runtime.streaming import StreamingSession
from rnngraph.verify import compare, load_model_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "streaming_keyword.py"


def test_streaming_export_with_ort_and_triton_files(tmp_path, capsys, model_config_pb2):
    out = tmp_path / "kws.onnx"
    assert main(["export", str(SAMPLE), "-o", str(out), "--streaming", "--ort-format",
                 "--triton", str(tmp_path / "models")]) == 0
    printed = capsys.readouterr().out
    assert "streaming chunk model" in printed and "kws.ort" in printed and "Triton" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kws.onnx", "kws.ort", "kws.required_operators.config", "models"]
    # the chunk model, fed in chunks, equals the oracle's whole run
    mf = load_model_file(SAMPLE)
    feeds = mf.example_inputs(2, 9, 0)
    chunked = StreamingSession(out).open(2).feed_in_chunks(3, **feeds)
    ref = oracle.run(mf.model, mf.params, **feeds)
    for name in mf.model.outputs:
        assert compare(name, chunked[name], ref[name]).ok
    # the .ort file loads; the Triton config batches sequences with implicit state
    names = {i.name for i in ort.InferenceSession(str(tmp_path / "kws.ort"),
                                                  providers=["CPUExecutionProvider"]).get_inputs()}
    assert "start" in names
    config = text_format.Parse((tmp_path / "models" / "kws" / "config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    assert config.HasField("sequence_batching") and len(config.sequence_batching.state) >= 2
    assert (tmp_path / "models" / "kws" / "1" / "model.onnx").read_bytes() == out.read_bytes()


def test_a_non_causal_model_is_refused_for_streaming_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "b.onnx"
    assert main(["export", str(ROOT / "samples" / "bidirectional.py"), "-o", str(out), "--streaming"]) == 2
    assert "Bidirectional" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_plain_export_is_unchanged_by_the_new_flags(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    assert main(["export", str(SAMPLE), "-o", str(a)]) == 0
    from rnngraph.exporters.onnx import export

    mf = load_model_file(SAMPLE)
    export(mf.model, mf.params, b)
    assert a.read_bytes() == b.read_bytes()
