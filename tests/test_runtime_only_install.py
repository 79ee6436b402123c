"""A runtime-only install, built fresh: a new virtual environment (no system site packages) with numpy and
onnxruntime only, and rnngraph's own wheel installed without its dependencies (docs/deploy.md). There,
`Session`, `StreamingSession`, ``rnngraph run`` and ``rnngraph show FILE.onnx`` work on exported models and
give what the full install gives; onnx and networkx are absent. Slow (about a minute: pip installs
onnxruntime into the new environment): ``make test-slow``."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.exporters.onnx import export
from rnngraph.runtime.session import Session
from rnngraph.runtime.streaming import StreamingSession

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    from rnngraph.runtime import Session, StreamingSession
    absent = [m for m in ("onnx", "networkx") if importlib.util.find_spec(m) is not None]
    data = np.load("data.npz")
    whole = Session("whole.onnx").run(x=data["x"], lengths=data["lengths"])["y"]
    streams = StreamingSession("chunk.onnx").open(len(data["x"]))
    pieces = [streams.feed(x=data["x"][:, t:t + 2], lengths=np.clip(data["lengths"] - t, 0, 2))["y"]
              for t in range(0, data["x"].shape[1], 2)]
    np.savez("got.npz", whole=whole, chunked=np.concatenate(pieces, axis=1))
    print(json.dumps({"present": absent, "modules": sorted(m for m in ("onnx", "networkx") if m in sys.modules)}))
""")


def run(args: list[str], cwd: pathlib.Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_runtime_only_environment_runs_exported_models(tmp_path):
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Dense(2)(rg.Recurrent(rg.Clockwork(6, periods=(1, 2)))(
        rg.Recurrent(rg.LSTM(5))(x)))}, name="runtime_only")
    params = model.init(seed=4)
    export(model, params, tmp_path / "whole.onnx")
    export(model, params, tmp_path / "chunk.onnx", options=rg.ExportOptions(streaming=True))
    data = {"x": np.random.default_rng(2).normal(size=(3, 7, 4)).astype(np.float32), "lengths": np.array([7, 3, 5])}
    np.savez(tmp_path / "data.npz", **data)
    expected = Session(tmp_path / "whole.onnx").run(**data)["y"]

    # the environment: only numpy and onnxruntime (the versions this checkout runs), then rnngraph without deps
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"), str(ROOT)], tmp_path)
    env = tmp_path / "env"
    run([sys.executable, "-m", "venv", str(env)], tmp_path)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, f"numpy=={np.__version__}", f"onnxruntime=={importlib.metadata.version('onnxruntime')}"], tmp_path)
    run([*pip, "--no-deps", *map(str, (tmp_path / "wheel").glob("rnngraph-*.whl"))], tmp_path)
    (tmp_path / "check.py").write_text(SCRIPT)
    report = json.loads(run([str(env / "bin" / "python"), "check.py"], tmp_path))
    assert report == {"present": [], "modules": []}
    got = np.load(tmp_path / "got.npz")
    np.testing.assert_allclose(got["whole"], expected, atol=1e-6)
    np.testing.assert_allclose(got["chunked"], expected, atol=2e-5)

    # the command line: run and show read models with onnxruntime alone
    rnngraph = str(env / "bin" / "rnngraph")
    out = run([rnngraph, "run", "whole.onnx", "--input", "x=" + json.dumps(data["x"][:1, :2].tolist())], tmp_path)
    one = Session(tmp_path / "whole.onnx").run(x=data["x"][:1, :2])["y"]
    assert out.startswith("y (1, 2, 2) float32") and f"{one[0, 0, 0]:.5f}" in out
    shown = run([rnngraph, "show", "chunk.onnx"], tmp_path)
    assert "read with onnxruntime" in shown
    state = json.loads(StreamingSession(tmp_path / "chunk.onnx").session.get_modelmeta()
                       .custom_metadata_map["rnngraph.state"])
    for slot in state["states"]:
        assert f"input  {slot['input']}" in shown and f"output {slot['output']}" in shown
    assert "rnngraph.state: " + json.dumps(state) in shown
