"""int8 and float16 copies of every sample's export run in onnxruntime within measured bounds of the oracle."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import export
from rnngraph.exporters.onnx.precision import PRECISION_KEY, initializer_types, quantize_int8, to_float16
from rnngraph.runtime import oracle
from rnngraph.verify import compare, load_model_file

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))


def run(path: pathlib.Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `path` with the feeds it takes (lengths is an optional input: an overridable initializer)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in [*session.get_inputs(), *session.get_overridable_initializers()]]
    return dict(zip([o.name for o in session.get_outputs()],
                    session.run(None, {n: feeds[n] for n in names if n in feeds}), strict=True))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_in_int8_and_float16(path, tmp_path):
    mf = load_model_file(path)
    src = tmp_path / f"{path.stem}.onnx"
    export(mf.model, mf.params, src)
    feeds = mf.example_inputs(2, 6, 0)
    ref = oracle.run(mf.model, mf.params, **feeds)
    meta32 = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    # free-running generation (a count input) feeds each step's rounding back: the "-long" bounds
    long = "-long" if mf.tolerance.endswith("-long") or json.loads(meta32["rnngraph.counts"]) else ""
    for precision, convert in (("int8", quantize_int8), ("float16", to_float16)):
        dst = convert(src, tmp_path / f"{path.stem}.{precision}.onnx")
        got = run(dst, feeds)
        for name in mf.model.outputs:
            if got[name].dtype.kind != "f":
                continue  # token ids: a near-tie may flip under reduced precision; the scores below are checked
            assert got[name].dtype == np.float32, "inputs and outputs stay float32"
            row = compare(name, got[name], ref[name], precision + long)
            assert row.ok, f"{path.stem}/{name} in {precision}: max abs err {row.max_abs:.3e}"
        meta = {p.key: p.value for p in onnx.load(str(dst), load_external_data=False).metadata_props}
        assert meta.pop(PRECISION_KEY) == precision
        assert {k: v for k, v in meta.items() if k in meta32} == meta32, "the export's metadata is kept"


def weight_bytes(path: pathlib.Path) -> int:
    """The bytes of the initializers of every graph of the file (its weights; the rest is the graph's structure,
    which the conversions grow, and which weighs in a small sample: 20 of the clockwork sample's 200 kB)."""
    model = onnx.load(str(path))
    graphs = [model.graph]
    for graph in graphs:
        graphs += [attr.g for node in graph.node for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH]
    return sum(t.ByteSize() for graph in graphs for t in graph.initializer)


@pytest.fixture(scope="module")
def clockwork(tmp_path_factory):
    """A sample whose weights live in a Scan body (and in the main graph), large enough to shrink."""
    mf = load_model_file(next(p for p in SAMPLES if p.stem == "clockwork"))
    src = tmp_path_factory.mktemp("cw") / "cw.onnx"
    export(mf.model, mf.params, src)
    return mf, src


def test_int8_reaches_the_scan_body_and_shrinks_the_file(clockwork, tmp_path):
    mf, src = clockwork
    before = initializer_types(onnx.load(str(src)))
    assert any("/" in graph and types["FLOAT"] for graph, types in before.items()), before
    dst = quantize_int8(src, tmp_path / "cw.int8.onnx")
    after = initializer_types(onnx.load(str(dst)))
    bodies = {graph: types for graph, types in after.items() if graph != "main"}
    assert bodies and all(types["INT8"] >= 1 for types in bodies.values()), after
    assert weight_bytes(dst) < 0.5 * weight_bytes(src) and dst.stat().st_size < 0.6 * src.stat().st_size


def test_float16_weights_and_smaller_file(clockwork, tmp_path):
    mf, src = clockwork
    dst = to_float16(src, tmp_path / "cw.f16.onnx")
    after = initializer_types(onnx.load(str(dst)))
    assert all(types["FLOAT"] == 0 and types["FLOAT16"] >= 1 for types in after.values()), after
    assert weight_bytes(dst) < 0.55 * weight_bytes(src) and dst.stat().st_size < 0.65 * src.stat().st_size


@pytest.mark.parametrize("lowering", ["native", "scan"])
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_without_lengths_and_at_batch_one_and_one_step(cell, lowering, tmp_path):
    # onnxruntime runs a float16 file's native LSTM/GRU through casts it inserts (no float16 CPU kernel)
    x = rg.Input("x", features=3)
    layer = rg.LSTM(5) if cell == "LSTM" else rg.GRU(5, linear_before_reset=True)
    model = rg.Model(x, {"y": rg.Recurrent(layer)(x)})
    params = model.init(1)
    src = tmp_path / "m.onnx"
    export(model, params, src, options=rg.ExportOptions(lowering=lowering))
    rng = np.random.default_rng(3)
    for batch, time in ((1, 1), (3, 4)):
        xs = rng.standard_normal((batch, time, 3)).astype(np.float32)
        ref = oracle.run(model, params, x=xs)["y"]
        for precision, convert in (("int8", quantize_int8), ("float16", to_float16)):
            got = run(convert(src, tmp_path / f"m.{precision}.onnx"), {"x": xs})["y"]  # no lengths: full rows
            row = compare("y", got, ref, precision)
            assert row.ok, f"{precision}, {lowering}, B={batch} T={time}: max abs err {row.max_abs:.3e}"


def test_cli_flags(tmp_path, capsys):
    sample = str(next(p for p in SAMPLES if p.stem == "clockwork"))
    assert main(["export", sample, "-o", str(tmp_path / "q.onnx"), "--quantize", "int8"]) == 0
    assert main(["export", sample, "-o", str(tmp_path / "h.onnx"), "--dtype", "float16"]) == 0
    out = capsys.readouterr().out
    assert "int8 (" in out and "float16 (" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.onnx", "q.onnx"]  # no float32 file left behind
    for name, precision in (("q.onnx", "int8"), ("h.onnx", "float16")):
        meta = {p.key: p.value for p in onnx.load(str(tmp_path / name)).metadata_props}
        assert meta[PRECISION_KEY] == precision
    assert main(["export", sample, "-o", str(tmp_path / "b.onnx"), "--quantize", "int8", "--dtype", "float16"]) != 0
    assert "cannot be combined" in capsys.readouterr().err
    assert main(["export", sample, "-o", str(tmp_path / "b.onnx"), "--quantize", "int4"]) != 0
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_bad_arguments(clockwork, tmp_path):
    _, src = clockwork
    with pytest.raises(ExportError, match="no such file; export the model first"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "q.onnx")
    with pytest.raises(ExportError, match="would replace the float32 export"):
        to_float16(src, src)
    with pytest.raises(ExportError, match="no such directory"):
        quantize_int8(src, tmp_path / "nowhere" / "q.onnx")


def test_weights_as_external_data_stay_external(tmp_path):
    """A large export keeps its weights in a data file beside it; so do its int8 and float16 copies."""
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(41, linear_before_reset=True))(x)})  # weights over 1 KiB
    params = model.init(2)
    proto = export(model, params, tmp_path / "small.onnx", options=rg.ExportOptions(lowering="scan"))
    src = tmp_path / "big.onnx"
    onnx.save(proto, str(src), save_as_external_data=True, location="big.onnx.data", size_threshold=0)
    xs = np.random.default_rng(4).standard_normal((2, 5, 3)).astype(np.float32)
    ref = oracle.run(model, params, x=xs)["y"]
    for precision, convert in (("int8", quantize_int8), ("float16", to_float16)):
        dst = convert(src, tmp_path / f"big.{precision}.onnx")
        pattern = rf"{re.escape(dst.name)}\.[0-9a-f]{{16}}\.data"
        [data] = [p for p in tmp_path.iterdir() if re.fullmatch(pattern, p.name)]
        assert data.stat().st_size > 0  # the exporter's writer: a data file named after its contents
        row = compare("y", run(dst, {"x": xs})["y"], ref, precision)
        assert row.ok, f"{precision}: max abs err {row.max_abs:.3e}"


def test_float16_streaming_uses_the_scan_lowering(tmp_path, capsys):
    """A float16 chunk model with a native GRU crashes onnxruntime 1.32: refused, and the CLI exports Scan loops."""
    sample = str(next(p for p in SAMPLES if p.stem == "streaming_keyword"))
    native = tmp_path / "native.onnx"
    assert main(["export", sample, "-o", str(native), "--streaming", "--lowering", "native"]) == 0
    with pytest.raises(ExportError, match="streaming chunk model with native GRU nodes.*--lowering scan"):
        to_float16(native, tmp_path / "native.f16.onnx")
    assert main(["export", sample, "-o", str(tmp_path / "kws.onnx"), "--streaming", "--dtype", "float16"]) == 0
    assert "loops Scan" in capsys.readouterr().out
    mf = load_model_file(sample)
    feeds = mf.example_inputs(2, 6, 0)
    session = ort.InferenceSession(str(tmp_path / "kws.onnx"), providers=["CPUExecutionProvider"])
    # two chunks (3 + 3 steps) with the state carried between them equal the oracle's whole run
    inputs = {i.name: i for i in session.get_inputs()}
    state = {n: np.zeros([2, *i.shape[1:]], np.int64 if i.type == "tensor(int64)" else np.float32)
             for n, i in inputs.items() if n.startswith("state_in/")}
    names = [o.name for o in session.get_outputs()]
    chunks = []
    for t0, start in ((0, 1), (3, 0)):
        chunk = {"frames": feeds["frames"][:, t0:t0 + 3], "start": np.full((2, 1), start, np.int32), **state}
        if "lengths" in feeds:
            chunk["lengths"] = np.clip(feeds["lengths"] - t0, 0, 3)
        got = dict(zip(names, session.run(None, {k: v for k, v in chunk.items() if k in inputs
                                                  or k == "lengths"}), strict=True))
        chunks.append(got["scores"])
        state = {n: got["state_out/" + n.removeprefix("state_in/")] for n in state}
    ref = oracle.run(mf.model, mf.params, **feeds)["scores"]
    row = compare("scores", np.concatenate(chunks, axis=1), ref, "float16")
    assert row.ok, f"max abs err {row.max_abs:.3e}"
