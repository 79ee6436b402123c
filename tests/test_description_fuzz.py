"""Random models of every cell, option and topology survive the description and a self-describing export.

The models are the differential fuzzer's (tests/fuzz_models.py), at every lowering and opset: each
must come back from its JSON description equal, and from its exported file with the parameters it
was exported with (bit for bit, as the model computes with them), re-exporting the same bytes.
Profiles as in tests/test_fuzz.py (``RNNGRAPH_FUZZ``); the fast one runs a fixed set.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnngraph as rg
from rnngraph.dsl.params import effective
from rnngraph.loading import read_onnx
from tests.fuzz_models import TOPOLOGIES, cases

EXAMPLES = {"fast": 12, "long": 200}.get(os.environ.get("RNNGRAPH_FUZZ", "fast"), 12)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES == 12, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_models_round_trip(topology: str, data: st.DataObject) -> None:
    case = data.draw(cases((topology,)))
    model, params = case.model, case.model.init(case.seed)
    text = model.to_json()
    assert rg.Model.from_json(text).to_json() == text, case.describe()

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.onnx")
        proto = rg.export(model, params, path, opset=case.opset, lowering=case.lowering)
        found = read_onnx(path)
    assert (found.opset, found.lowering) == (case.opset, case.lowering)
    for name, value in effective(model.param_specs(), params).items():
        np.testing.assert_array_equal(found.params[name].view(np.uint32),
                                      value.astype(np.float32).view(np.uint32), f"{name}\n{case.describe()}")
    again = rg.export(found.model, found.params, opset=found.opset, options=found.options)
    assert again.SerializeToString() == proto.SerializeToString(), case.describe()
