"""Every sample under samples/ exports and verifies against the oracle (what `rnngraph demo` shows)."""

import pathlib

import pytest

from rnngraph.verify import load_model_file, verify

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))


def test_there_are_samples():
    assert {"classic_rnn", "srn"} <= {p.stem for p in SAMPLES}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_verifies(path):
    mf = load_model_file(path)
    report = verify(mf.model, mf.params, feeds=mf.example_inputs(3, 9, 0), tolerance=mf.tolerance)
    assert report.ok, f"{path.name}\n{report.table()}"
