"""The 1-to-N samples verify at the numbers of steps the issue names; near-ties in fed-back tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import rnngraph as rg
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import follow_near_ties, load_model_file
from tests.conftest import assert_close

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_sample_generates_the_requested_number_of_tokens():
    mf = load_model_file(SAMPLES / "vec2seq_first.py")
    session = Session(build_model_proto(mf.model, mf.params))
    image = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    for steps in (0, 3, 17):
        out = session.run(image=image, steps=steps)
        assert out["tokens"].shape == (2, steps) and out["probs"].shape == (2, steps, 30)
        if steps:
            assert_close(out["probs"].sum(-1), np.ones((2, steps)), "float32", "softmax sums")
            np.testing.assert_array_equal(out["tokens"], out["probs"].argmax(-1))


def tied_model() -> tuple[rg.Model, dict[str, np.ndarray]]:
    """Tokens 0 and 1 score exactly alike at every step (equal readout rows and embeddings)."""
    v = rg.Input("v", features=3, sequence=False)
    n = rg.Input("n", count=True)
    y, ids = rg.Generate(rg.RNN(5), mode="every", readout=rg.Dense(4, "softmax"), feedback="argmax",
                         embedding=2, tokens=True)(v, n)
    model = rg.Model([v, n], {"y": y, "ids": ids})
    params = model.init(0)
    params["generate0/readout/W"][1] = params["generate0/readout/W"][0]
    params["generate0/readout/b"][1] = params["generate0/readout/b"][0] + 5.0  # make tokens 0/1 the top two
    params["generate0/readout/b"][0] += 5.0
    params["generate0/embedding"][1] = params["generate0/embedding"][0]
    return model, params


def test_a_tie_resolved_the_other_way_is_accepted():
    """If onnxruntime picked the other of two tied tokens, the oracle follows its choice and the rest must agree."""
    model, params = tied_model()
    feeds = {"v": np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32), "n": np.int64(6)}
    got = Session(build_model_proto(model, params)).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    assert set(ref["ids"].ravel()) == {0}  # argmax takes the first of the tied tokens
    got["ids"] = got["ids"].copy()
    got["ids"][1, 2:] = 1  # as if float32 rounding had tipped the tie at step 2 of row 1
    followed, notes = follow_near_ties(model, params, feeds, got, ref)
    assert notes == {"ids": "4 near-tie(s): compared conditioned on onnxruntime's tokens"}
    np.testing.assert_array_equal(followed["ids"], got["ids"])
    assert_close(got["y"], followed["y"], "float32", "y along onnxruntime's tokens")


def test_a_real_disagreement_is_not_excused():
    model, params = tied_model()
    feeds = {"v": np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32), "n": np.int64(6)}
    got = Session(build_model_proto(model, params)).run(**feeds)
    ref = oracle.run(model, params, **feeds)
    got["ids"] = got["ids"].copy()
    got["ids"][0, 3] = 3  # far from the best score
    _, notes = follow_near_ties(model, params, feeds, got, ref)
    assert notes["ids"].startswith("row 0 step 3: onnxruntime chose token 3")
    assert notes["ids"].endswith("not a near-tie")


def test_readme_generation_example_runs():
    readme = (SAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("## 1-to-N generation"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = namespace["out"]
    assert out["probs"].shape == (2, 12, 30) and out["tokens"].shape == (2, 12)
