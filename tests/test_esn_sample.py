"""samples/esn_mackey_glass.py: the series, the trained model's accuracy, and oracle vs onnxruntime."""

from __future__ import annotations

import pathlib
import re
import runpy

import numpy as np
import pytest

from rnngraph.verify import verify

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "samples" / "esn_mackey_glass.py"


@pytest.fixture(scope="module")
def sample() -> dict:
    return runpy.run_path(str(SAMPLE), run_name="__rnngraph_model__")  # trains once for this module


def test_mackey_glass_integrator_agrees_with_fine_euler(sample):
    """RK4 at step 0.1 against an independent Euler integration at step 0.001 over 60 time units."""
    series = sample["mackey_glass"](60)
    dt, lag = 0.001, 17_000
    x = np.full(lag + 60_001, 1.2)
    for i in range(lag, lag + 60_000):
        d = x[i - lag]
        x[i + 1] = x[i] + dt * (0.2 * d / (1.0 + d**10) - 0.1 * x[i])
    euler = x[lag + 1000 :: 1000][:60]
    np.testing.assert_allclose(series, euler, atol=2e-3)
    assert np.array_equal(series, sample["mackey_glass"](60))  # deterministic


def test_series_is_the_chaotic_attractor(sample):
    series = sample["SERIES"] + 1.0
    assert 0.2 < series.min() < 0.5 and 1.2 < series.max() < 1.4
    assert len(sample["TRAIN_PART"]) == 2001 and len(sample["TEST_PART"]) == 2001


def test_driven_5000_steps_and_50_generated_steps_agree(sample):
    feeds = sample["feeds"](2, 5000, 1)
    assert int(feeds["steps"]) == 50 and feeds["u"].shape == (2, 5000, 1)
    report = verify(sample["model"], sample["params"], feeds=feeds, tolerance=sample["tolerance"])
    assert report.ok, report.table()


def test_driven_model_alone_agrees_over_5000_steps(sample):
    feeds = sample["feeds"](2, 5000, 2)
    del feeds["steps"]
    report = verify(sample["driven"], sample["params"], feeds=feeds, tolerance=sample["tolerance"])
    assert report.ok, report.table()
    assert report.paths == {"esn": "scan"}


def test_prints_test_nrmse_and_they_are_small(sample, capsys):
    sample["main"]()
    text = capsys.readouterr().out
    one_step = float(re.search(r"one-step test NRMSE over \d+ steps: (\S+)", text).group(1))
    at_84 = float(re.search(r"free-run NRMSE at step 84 over 30 trials: (\S+)", text).group(1))
    assert one_step < 1e-3 and at_84 < 1e-2, text
    assert "standard deviation of the test series" in text


def test_readme_esn_example_runs():
    text = (SAMPLE.parents[1] / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text.split("## Echo State Networks")[1], re.S)[0]
    exec(compile(code, "README.md", "exec"), {})
