"""The runtime session checks inputs before onnxruntime sees them."""

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import InputError, RnnGraphError
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session


@pytest.fixture(scope="module")
def setup():
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Dense(3, activation="softmax")(rg.Recurrent(rg.RNN(7))(x))})
    params = model.init(0)
    return model, params, Session(rg.export(model, params))


def feeds(batch=3, time=5):
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((batch, time, 4)).astype(np.float32), "lengths": np.array([5, 2, 4])[:batch]}


def test_outputs_by_name_and_default_lengths(setup):
    model, params, session = setup
    f = feeds()
    assert session.provider == "CPUExecutionProvider"
    out = session.run(x=f["x"])
    full = oracle.run(model, params, x=f["x"], lengths=np.array([5, 5, 5]))["y"]
    np.testing.assert_allclose(out["y"], full, atol=1e-5)
    assert list(session.run(["y"], **f)) == ["y"]


def test_float64_and_lists_are_accepted(setup):
    _, _, session = setup
    f = feeds()
    a = session.run(**f)["y"]
    b = session.run(x=f["x"].astype(np.float64).tolist(), lengths=f["lengths"].tolist())["y"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"z": np.zeros(3)}, r"unknown inputs \['z'\]; this model takes \['lengths', 'x'\]"),
        ({"x": np.zeros((3, 5))}, r"input 'x': expected rank 3 \(batch, time, 4\), received shape \(3, 5\)"),
        ({"x": np.zeros((3, 5, 6))}, r"input 'x': axis 2 must be 4 \(batch, time, 4\), received shape \(3, 5, 6\)"),
        ({"x": np.array([["a"]])}, r"input 'x': expected numbers"),
        ({"lengths": np.array([5, 2])}, r"input 'lengths': expected int64 lengths of shape \(3,\)"),
        ({"lengths": np.array([5.0, 2, 1])},
         r"expected int64 lengths of shape \(3,\) \(one per row\), received dtype float64"),
        ({"lengths": np.array([6, 2, 1])}, r"each length must be in 0..5 \(the time axis of x\), received \[6, 2, 1\]"),
        ({"lengths": np.array([-1, 2, 1])}, r"each length must be in 0..5"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(setup, bad, match):
    _, _, session = setup
    with pytest.raises(InputError, match=match):
        session.run(**{**feeds(), **bad})


def test_missing_input(setup):
    _, _, session = setup
    with pytest.raises(InputError, match=r"missing inputs \['x'\]"):
        session.run(lengths=np.array([1]))


def test_unknown_output(setup):
    _, _, session = setup
    with pytest.raises(InputError, match=r"unknown outputs \['z'\]; this model has \['y'\]"):
        session.run(["z"], **feeds())


def test_batch_sizes_must_agree():
    a, b = rg.Input("a", features=2), rg.Input("b", features=2)
    model = rg.Model([a, b], {"ya": rg.Dense(2)(a), "yb": rg.Dense(2)(b)})
    session = Session(rg.export(model, model.init(0)))
    with pytest.raises(InputError, match=r"input 'b': axis 0 \(batch\) is 2, but another input has batch = 3"):
        session.run(a=np.zeros((3, 4, 2)), b=np.zeros((2, 4, 2)))


def test_token_ids_are_range_checked():
    t = rg.Input("t", tokens=10, sequence=False)
    model = rg.Model(t, {"t_out": t})
    session = Session(rg.export(model, {}))
    np.testing.assert_array_equal(session.run(t=np.array([1, 9]))["t_out"], [1, 9])
    with pytest.raises(InputError, match=r"input 't': token ids must be in \[0, 10\), received values from 1 to 10"):
        session.run(t=np.array([1, 10]))
    with pytest.raises(InputError, match=r"input 't': expected integers \(int64\), received dtype float64"):
        session.run(t=np.array([1.0, 2.0]))


def test_batch_zero_is_answered_by_the_graph(setup):
    _, _, session = setup
    out = session.run(x=np.zeros((0, 6, 4), np.float32), lengths=np.zeros(0, np.int64))
    assert out["y"].shape == (0, 6, 3) and out["y"].dtype == np.float32


def test_time_zero_and_rows_of_length_zero_give_zeros(setup):
    """The graph answers them (rnngraph/compiler/guards.py); the softmax readout of a row of length 0 is 0 too."""
    _, _, session = setup
    out = session.run(x=np.zeros((2, 0, 4), np.float32))
    assert out["y"].shape == (2, 0, 3)
    x = feeds()["x"]
    ragged = session.run(x=x, lengths=np.array([5, 0, 4], dtype=np.int32))["y"]
    assert not ragged[1].any() and np.allclose(ragged[0].sum(axis=-1), 1.0, atol=1e-5)


def test_a_foreign_model_is_guarded_by_its_own_signature():
    """A model without rnngraph's metadata: empty inputs refused, whatever its axes are called; others run."""
    from tests.test_error_catalogue import foreign_gru_session

    session = foreign_gru_session()
    assert not session.guarded and session.lengths == {}
    for shape in [(0, 2, 4), (3, 0, 4)]:
        with pytest.raises(InputError, match=r"has an empty axis .* onnxruntime's recurrent kernels abort"):
            session.run(x=np.zeros(shape, np.float32))
    assert session.run(x=np.ones((3, 2, 4), np.float32))["y"].shape == (3, 1, 2, 3)


def test_cuda_absent_is_a_clear_error(setup):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is present here")
    model, params, _ = setup
    with pytest.raises(RnnGraphError, match=r"device='cuda' was asked for, but this onnxruntime offers only"):
        Session(rg.export(model, params), device="cuda")
    assert Session(rg.export(model, params), device="auto").provider == "CPUExecutionProvider"


def test_bad_device_and_missing_file(tmp_path):
    with pytest.raises(RnnGraphError, match=r"`device`: expected one of \('cpu', 'cuda', 'auto'\), received 'tpu'"):
        Session(b"", device="tpu")
    with pytest.raises(RnnGraphError, match=r"no model file at .*missing.onnx"):
        Session(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(RnnGraphError, match=r"onnxruntime could not load the model"):
        Session(tmp_path / "junk.onnx")


def test_threads_option(setup):
    model, params, _ = setup
    session = Session(rg.export(model, params), threads=1)
    assert session.run(**feeds())["y"].shape == (3, 5, 3)


def test_cuda_provider_matches_cpu(setup):
    """Runs only where onnxruntime has CUDA (never in CI); the CPU result is the reference."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime here has no CUDA provider")
    model, params, cpu = setup
    gpu = Session(rg.export(model, params), device="cuda")
    assert gpu.provider == "CUDAExecutionProvider"
    np.testing.assert_allclose(gpu.run(**feeds())["y"], cpu.run(**feeds())["y"], atol=1e-5)
