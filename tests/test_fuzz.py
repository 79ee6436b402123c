"""Differential fuzzing: random models of every cell, option and topology, onnxruntime vs the oracle.

Profiles (environment variable ``RNNGRAPH_FUZZ``): ``fast`` (the default, in `make test`:
a fixed, derandomized set of models), ``long`` (`make fuzz`: at least 2 000 models, random
each run; a failure is shrunk by Hypothesis and printed with the model's summary — add it
to tests/test_fuzz_regressions.py). Statistics: ``pytest --hypothesis-show-statistics``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rnngraph.verify import verify
from tests.fuzz_models import TOPOLOGIES, Case, cases, cell_names

settings.register_profile("fast", max_examples=40, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=400, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("RNNGRAPH_FUZZ", "fast")
settings.register_profile("custom", max_examples=int(os.environ.get("RNNGRAPH_FUZZ_EXAMPLES", "100")),
                          deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(case: Case) -> None:
    """Every output of the export matches the oracle (near-tied greedy tokens allowed, see `verify`)."""
    report = verify(case.model, case.model.init(case.seed), feeds=case.feeds, lowering=case.lowering,
                    opset=case.opset)
    assert report.ok, f"{case.describe()}\n{report.table()}"
    for row in report.rows:  # every output, then (where the NaN rule applies) every output with a NaN step
        assert np.isfinite(row.max_abs), f"{row.output}: non-finite error\n{case.describe()}"


@pytest.mark.parametrize("topology", TOPOLOGIES)
@settings(settings.get_profile(PROFILE))
@given(data=st.data())
def test_random_models_match_the_oracle(topology: str, data: st.DataObject) -> None:
    case = data.draw(cases((topology,)))
    event(f"lowering {case.lowering}")
    for name in cell_names(case.model):
        event(f"cell {name}")
    check(case)
