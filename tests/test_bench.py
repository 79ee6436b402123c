"""The benchmark machinery and the suite's output (structure and arithmetic only: timings never gate tests)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.bench.graphs import graph_stats, madds_per_step, step_nodes
from rnngraph.bench.measure import exports
from rnngraph.bench.profile import op_profile
from rnngraph.bench.timing import Rounds, Timings, interleaved, ort_feeds
from rnngraph.bench.torch_baseline import torch_available
from rnngraph.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the suite's modules (a folder of scripts, not a package)
HAS_TORCH = torch_available()


def lstm_model(features: int = 4, hidden: int = 7) -> rg.Model:
    x = rg.Input("x", features=features, lengths=None)
    return rg.Model(x, {"y": rg.Dense(3)(rg.Recurrent(rg.LSTM(hidden))(x))}, name="lstm")


# -- timing arithmetic ---------------------------------------------------------------------
def test_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians() -> None:
    t = Timings({"a": [1.0, 2.0, 9.0], "b": [2.0, 1.0, 3.0], "c": [4.0, 4.0, 1.0]})
    assert t.ratio("a", "b") == pytest.approx(2.0)  # per round 0.5, 2, 3 -> 2 (medians would give 2/2 = 1)
    assert t.median("a") == 2.0
    # a over the faster of b and c in each round: 1/2, 2/1, 9/1 -> 2
    assert t.ratio_to_best("a", ["b", "c"]) == pytest.approx(2.0)
    assert t.quartiles("a")[0] <= t.median("a") <= t.quartiles("a")[1]


def test_interleaved_rotates_the_order_and_drops_warmup() -> None:
    calls: list[str] = []
    runs = {name: (lambda n=name: calls.append(n)) for name in ("x", "y", "z")}
    timings = interleaved(runs, Rounds(warmup=1, min_rounds=3, max_rounds=3, budget_s=0.0))
    assert calls == ["x", "y", "z", "y", "z", "x", "z", "x", "y", "x", "y", "z"]  # 4 rounds, each shifted by one
    assert timings.rounds == 3 and all(len(v) == 3 for v in timings.times.values())


def test_rounds_stop_at_the_budget_once_the_minimum_is_kept() -> None:
    timings = interleaved({"a": lambda: None}, Rounds(warmup=0, min_rounds=4, max_rounds=50, budget_s=0.0))
    assert timings.rounds == 4


def test_bare_feeds_take_the_declared_types_and_keep_counts_scalar() -> None:
    class Declared:  # what onnxruntime's session.get_inputs() gives: names and element types
        def get_inputs(self) -> list[SimpleNamespace]:
            return [SimpleNamespace(name="x", type="tensor(float)"),
                    SimpleNamespace(name="steps", type="tensor(int64)")]

    x = np.arange(6.0).reshape(2, 3).T  # float64, not C-contiguous
    cast = ort_feeds(Declared(), {"x": x, "steps": np.array(7), "unused": np.zeros(1)})
    assert set(cast) == {"x", "steps"}
    assert cast["x"].dtype == np.float32 and cast["x"].flags.c_contiguous and np.array_equal(cast["x"], x)
    assert cast["steps"].shape == () and cast["steps"].dtype == np.int64 and int(cast["steps"]) == 7


# -- what an export costs --------------------------------------------------------------------
def test_madds_count_every_weight_matrix_once_per_step() -> None:
    # LSTM W (4·7, 4), R (4·7, 7); Dense W (3, 7); biases add nothing
    assert madds_per_step(lstm_model()) == 28 * 4 + 28 * 7 + 3 * 7


def test_madds_leave_out_embedding_tables() -> None:
    src = rg.Input("src", tokens=50, lengths=None)
    y = rg.Recurrent(rg.GRU(5, linear_before_reset=True))(rg.Embedding(50, 6)(src))
    model = rg.Model(src, {"y": y}, name="emb")
    assert madds_per_step(model) == 15 * 6 + 15 * 5


def test_graph_stats_and_identical_lowerings() -> None:
    model = lstm_model()
    params = model.init(0)
    distinct, same_as = exports(model, params)
    assert same_as == {"native": "auto"}  # an LSTM's auto lowering is the native op: timed once
    assert set(distinct) == {"auto", "scan"}
    stats = graph_stats(model, distinct["auto"].proto, params)
    assert stats.weight_bytes == 4 * model.count_params()
    assert stats.file_bytes == len(distinct["auto"].data)
    assert stats.file_over_weights == pytest.approx((stats.file_bytes - stats.weight_bytes) / stats.weight_bytes)
    assert stats.symbolic_time and stats.nodes >= stats.top_nodes > 0


def test_step_nodes_are_counted_after_onnxruntime_optimizes() -> None:
    distinct, _ = exports(lstm_model(), lstm_model().init(0), ["scan"])
    proto = distinct["scan"].proto
    raw = [len(a.g.node) for n in proto.graph.node if n.op_type == "Scan" for a in n.attribute if a.name == "body"]
    bodies = step_nodes(distinct["scan"].data)
    assert [b.op for b in bodies] == ["Scan"]
    assert 0 < bodies[0].nodes <= raw[0]
    assert sum(bodies[0].ops.values()) == bodies[0].nodes


def test_profile_counts_body_kernels_once_per_step() -> None:
    model = lstm_model()
    distinct, _ = exports(model, model.init(0), ["scan"])
    steps = 5
    ops = {o.op: o for o in op_profile(distinct["scan"].data, model.example_inputs(2, steps, 0, ragged=False), runs=2)}
    assert ops["Scan"].calls_per_run == 1
    body_nodes = step_nodes(distinct["scan"].data)[0].ops
    for op, count in body_nodes.items():  # every body node runs once per step (plus any of its kind outside)
        assert ops[op].calls_per_run >= count * steps, (op, ops[op])
    assert all(o.us_per_run >= 0 for o in ops.values())


# -- rnngraph bench MODEL.py ------------------------------------------------------------------
def test_bench_command_on_a_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lstm.json"
    code = cli_main(["bench", str(ROOT / "samples" / "lstm.py"), "--batch", "1", "2", "--time", "4", "--rounds", "2",
                     "--no-memory", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert [r["batch"] for r in result["runs"]] == [1, 2]
    for run in result["runs"]:
        assert {"auto/session", "auto/ort", "scan/ort", "oracle"} <= set(run["contenders"])
        assert run["oracle_max_abs"] < 1e-4  # the export computes what the oracle does
        assert all(math.isfinite(v) and v > 0 for v in run["ratios"].values())
    assert result["same_as"] == {"native": "auto"}
    assert "| 2 | 4 | auto/ort |" in capsys.readouterr().out


def test_bench_command_refuses_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "no/such/model.py", "--no-memory"]) == 2
    assert "no model file at 'no/such/model.py'" in capsys.readouterr().err


def test_bench_command_refuses_a_zero_batch(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", str(ROOT / "samples" / "lstm.py"), "--batch", "0"]) == 2  # a usage error
    assert "must be at least 1" in capsys.readouterr().err


# -- the suite, tiny setting ------------------------------------------------------------------
@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "benchmarks/suite.py", "--setting", "tiny", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SGEMM peak" not in done.stderr  # progress lines go to a terminal only, never to a pipe
    return json.loads((out / "latest.json").read_text()), (out / "latest.md").read_text()


def finite_positive(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def test_suite_json_says_where_and_how_it_ran(suite: tuple[dict, str]) -> None:
    result, _ = suite
    assert {"date", "cpu", "cores", "versions"} <= set(result["machine"])
    assert result["machine"]["versions"]["onnxruntime"]
    assert result["command"] == "python benchmarks/suite.py --setting tiny --out " + result["command"].split()[-1]
    assert result["torch"] == HAS_TORCH and (result["machine"]["versions"]["torch"] is not None) == HAS_TORCH
    assert finite_positive(result["peak"]["gflops"]) and result["peak"]["threads"] == 1
    assert result["threads"]["onnxruntime_intra_op"] == 1 and "@2t" in result["threads"]["two_threads"]


def test_suite_cases_ratios_are_finite_and_positive(suite: tuple[dict, str]) -> None:
    result, _ = suite
    cells = {c["cell"] for c in result["cases"]}
    assert {"lstm", "gru", "rnn", "lstm_peephole", "clockwork", "esn_leaky", "esn_feedback", "attention"} == cells
    assert {c["shape"]["name"] for c in result["cases"]} == {"a", "b", "c"}
    for case in result["cases"]:
        assert {"auto/ort", "auto/session"} <= set(case["contenders"])
        assert case["ratios"] and all(finite_positive(v) for v in case["ratios"].values()), case["ratios"]
        for name, stats in case["contenders"].items():
            assert finite_positive(stats["median_ms"]), (case["cell"], name)
        assert ("auto/ort@2t" in case["contenders"]) == (case["shape"]["name"] == "b")
        assert case["checks"].get("oracle_max_abs", 0.0) < 1e-4
    assert finite_positive(result["cases"][0]["memory"]["auto/ort"]["peak_mib"])


def test_suite_torch_columns_present_iff_torch_is_installed(suite: tuple[dict, str]) -> None:
    result, md = suite
    for case in result["cases"]:
        has_torch_cell = case["cell"] in ("lstm", "gru", "rnn")
        assert ("torch/eager" in case["contenders"]) == (HAS_TORCH and has_torch_cell)
        assert ("torch/onnx" in case["contenders"]) == (HAS_TORCH and has_torch_cell)
        assert ("bound/lstm-native" in case["contenders"]) == (not (HAS_TORCH and has_torch_cell))
        if HAS_TORCH and has_torch_cell:  # same weights: the baselines compute what the export computes
            assert case["checks"]["torch_eager_max_abs"] < 1e-5
            assert case["checks"]["torch_onnx_max_abs"] < 1e-5
    assert ("| lstm | torch/eager |" in md) == HAS_TORCH


def test_suite_reports_every_target(suite: tuple[dict, str]) -> None:
    result, md = suite
    rows = result["targets"]
    assert {r["target"] for r in rows} == set(range(1, 9))
    for r in rows:
        if r["met"] is not None and not isinstance(r["measured"], str):
            assert math.isfinite(r["measured"]), r
            assert r["met"] == (r["measured"] <= r["limit"] if r["sense"] == "≤" else
                                r["measured"] < r["limit"] if r["sense"] == "<" else r["measured"] >= r["limit"])
    sixes = [r for r in rows if r["target"] == 6]
    assert len(sixes) == 2 and all(finite_positive(r["measured"]) and r["met"] is not None for r in sixes)
    assert result["decoding"]["checks"]["tokens_equal"] and result["decoding"]["checks"]["tokens_decoded"] == 5
    (deep,) = [s for s in result["samples"] if s["name"] == "deep"]
    assert [r["measured"] for r in rows if r["target"] == 5] == [deep["graph"]["transposes"]]
    from targets import summary, verdict

    for t, met in summary(rows).items():
        assert f"\n| {t} | {verdict(met)} |" in md
    for heading in ("## Targets", "## Canonical cells", "## Clockwork step forms", "## Samples"):
        assert heading in md
