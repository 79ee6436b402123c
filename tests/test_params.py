"""Seeded initialisation and .npz save/load."""

import numpy as np
import pytest

from rnngraph.errors import ParameterError
from tests.conftest import tagger as shared_tagger


def tagger(extra_layer=False):
    """The shared tagger with its Dense layer named `out` (the parameter names these tests read)."""
    return shared_tagger(extra_layer=extra_layer, dense_name="out")[0]


def test_init_is_reproducible_and_seed_dependent():
    a, b, c = tagger().init(0), tagger().init(0), tagger().init(1)
    assert a.keys() == b.keys() == {"rnn0/W", "rnn0/R", "rnn0/B", "out/W", "out/b"}
    for k in a:
        assert a[k].dtype == np.float32
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.allclose(a[k], c[k])
    # random, not constant: every gate/unit gets its own value
    assert np.unique(a["rnn0/R"]).size == a["rnn0/R"].size


def test_adding_a_layer_keeps_the_other_draws():
    a, b = tagger().init(3), tagger(extra_layer=True).init(3)
    np.testing.assert_array_equal(a["rnn0/W"], b["rnn0/W"])
    np.testing.assert_array_equal(a["out/b"], b["out/b"])


def test_init_scale_is_pytorch_like():
    p = tagger().init(0)
    bound = 1 / np.sqrt(7)
    assert np.abs(p["rnn0/R"]).max() <= bound and np.abs(p["rnn0/R"]).max() > 0.8 * bound


def test_save_load_roundtrip(tmp_path):
    model = tagger()
    params = model.init(5)
    path = tmp_path / "p.npz"
    model.save_params(params, path)
    loaded = model.load_params(path)
    assert loaded.keys() == params.keys()
    for k in params:
        np.testing.assert_array_equal(loaded[k], params[k])
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]  # no temp file left behind


def test_load_checks_names_and_shapes(tmp_path):
    model = tagger()
    params = model.init(0)
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in params.items() if k != "out/b"})
    with pytest.raises(ParameterError, match=r"missing \['out/b'\]"):
        model.load_params(tmp_path / "missing.npz")
    np.savez(tmp_path / "extra.npz", **params, **{"rnn9/W": np.zeros(2)})
    with pytest.raises(ParameterError, match=r"unexpected \['rnn9/W'\]"):
        model.load_params(tmp_path / "extra.npz")
    np.savez(tmp_path / "shape.npz", **{**params, "rnn0/R": np.zeros((7, 6))})
    with pytest.raises(ParameterError, match=r"parameter `rnn0/R`: expected shape \(7, 7\), received \(7, 6\)"):
        model.load_params(tmp_path / "shape.npz")


def test_load_refuses_pickles_and_bad_files(tmp_path):
    model = tagger()
    params = dict(model.init(0))
    params["rnn0/W"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickled.npz", **params)
    with pytest.raises(ParameterError, match=r"cannot read parameters"):
        model.load_params(tmp_path / "pickled.npz")
    with pytest.raises(ParameterError, match=r"cannot read parameters from .*nope.npz"):
        model.load_params(tmp_path / "nope.npz")


def test_params_must_be_finite_floats():
    model = tagger()
    params = model.init(0)
    with pytest.raises(ParameterError, match=r"`out/b`: contains NaN or infinity"):
        model.check_params({**params, "out/b": np.array([np.nan, 0, 0])})
    with pytest.raises(ParameterError, match=r"`out/b`: expected a float array, received dtype int64"):
        model.check_params({**params, "out/b": np.array([1, 2, 3])})
