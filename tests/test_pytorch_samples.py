"""The trained samples: their saved weights reproduce what the README reports.

`samples/attention_reverse.py` and `samples/clockwork_generation.py` were trained through
`rnngraph.pytorch` by the scripts under samples/train/; their weights are saved next to
them. These checks run the exported models in onnxruntime (no torch needed).
"""

from __future__ import annotations

import pathlib
import runpy

import numpy as np

import rnngraph as rg
from rnngraph.verify import load_model_file

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "samples"


def run_sample(name: str) -> dict:
    return runpy.run_path(str(SAMPLES / f"{name}.py"), run_name="__test__")


def test_trained_weights_are_saved_next_to_each_trained_sample() -> None:
    for name in ("attention_reverse", "clockwork_generation"):
        assert (SAMPLES / f"{name}.npz").is_file() and (SAMPLES / "train" / f"{name}.py").is_file()
        mf = load_model_file(SAMPLES / f"{name}.py")
        assert not any(np.array_equal(v, mf.model.init(seed=0)[k]) for k, v in mf.params.items()
                       if mf.model.param_specs()[k].trainable), f"{name}: some weights were never trained"


def test_the_attention_sample_reverses_held_out_sequences() -> None:
    s = run_sample("attention_reverse")
    held_out = s["examples"](1000, seed=12345)
    out = rg.runtime.Session(rg.export(s["model"], s["params"])).run(src=held_out["src"], lengths=held_out["lengths"])
    assert s["exact_match"](out["tokens"], held_out["target"], held_out["lengths"]) >= 0.95
    # the alignment is known: decoding step i attends most to source step L-1-i
    for b, n in enumerate(held_out["lengths"][:50]):
        np.testing.assert_array_equal(out["weights"][b, :n].argmax(axis=1), np.arange(n)[::-1])


def test_the_clockwork_sample_reproduces_its_mse_table() -> None:
    s = run_sample("clockwork_generation")
    table = s["mse_table"](s["params"])
    rows = {line.split("|")[1].strip(): float(line.split("|")[3]) for line in table.splitlines()[2:]}
    assert rows["clockwork"] < 0.01 and rows["clockwork"] < rows["srn"] / 10 and rows["clockwork"] < rows["lstm"] / 10
    assert all(450 <= s["trainable"](name) <= 600 for name in rows), "equal parameter counts, about 500"
