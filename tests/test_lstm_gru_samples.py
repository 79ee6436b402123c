"""The LSTM and GRU samples verify against the oracle at T = 1, 7 and 300, on both lowering paths."""

import pathlib

import pytest

from rnngraph.verify import load_model_file, verify

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "samples"
NAMES = ["lstm", "lstm_peephole", "lstm_coupled", "gru"]


@pytest.mark.parametrize("lowering", ["auto", "scan"])
@pytest.mark.parametrize("time", [1, 7, 300])
@pytest.mark.parametrize("name", NAMES)
def test_sample_verifies(name, time, lowering):
    mf = load_model_file(SAMPLES / f"{name}.py")
    report = verify(mf.model, mf.params, feeds=mf.example_inputs(3, time, time), lowering=lowering,
                    tolerance=mf.tolerance)
    assert report.ok, f"{name}.py at T={time}, {lowering}\n{report.table()}"
    expected = "native" if lowering == "auto" else "scan"
    assert set(report.paths.values()) == {expected}, report.paths
