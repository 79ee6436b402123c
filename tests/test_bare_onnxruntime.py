"""benchmarks/bare_onnxruntime.py on a few samples: each exported file run in a bare onnxruntime process.

The samples cover a kernel that aborts on empty tensors (GRU), a count (Generate) and a
greedy decoder with attention; the script runs them all (`python benchmarks/bare_onnxruntime.py`).
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import sys

import numpy as np
import pytest

from tests.test_error_catalogue import foreign_gru_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUBSET = ("gru", "vec2seq_every", "attention")


@functools.cache
def script():
    spec = importlib.util.spec_from_file_location("bare_onnxruntime", ROOT / "benchmarks" / "bare_onnxruntime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("sample", SUBSET)
def test_sample_survives_every_case_in_bare_onnxruntime(sample, tmp_path):
    outcome = script().run_sample(ROOT / "samples" / f"{sample}.py", str(tmp_path))
    assert {"ordinary", "batch0"} <= set(outcome)
    assert {case: problems for case, problems in outcome.items() if problems} == {}


def test_the_checks_catch_a_wrong_answer(tmp_path):
    """A broken graph's outputs are reported, case by case (the checks are not vacuous)."""
    bare = script()
    sig = bare.Signature({"y": ["batch", "time", 2]}, {"lengths": ["x"]}, {}, {"x": "time"})
    feeds = {"x": np.zeros((3, 5, 1), np.float32), "lengths": np.array([0, 5, 5])}
    nonzero = {"y": np.ones((3, 5, 2), np.float32)}
    assert bare.check_case("lengths0", sig, feeds, nonzero, {}) == ["y: row 0 (length 0) is not zero"]
    assert bare.check_case("ordinary", sig, feeds, {"y": np.ones((3, 4, 2), np.float32)}, {}) == [
        "y: shape (3, 4, 2), expected [3, 5, 2]"]
    assert bare.check_case("ordinary", sig, feeds, {"y": np.full((3, 5, 2), np.nan, np.float32)}, {}) == [
        "y: not finite"]
    status, out = bare.run_bare(str(tmp_path / "missing.onnx"), feeds, str(tmp_path))
    assert status == 1 and out == {}


def test_an_abort_is_caught_and_reported(tmp_path):
    """Without guards, onnxruntime's GRU kills the process on time 0; the harness sees the signal."""
    path = tmp_path / "foreign.onnx"
    path.write_bytes(foreign_gru_model().SerializeToString())
    status, out = script().run_bare(str(path), {"x": np.zeros((0, 2, 4), np.float32)}, str(tmp_path))
    assert status < 0 and out == {}
