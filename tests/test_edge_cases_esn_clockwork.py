"""Review of the ESN and Clockwork areas: defects found and the cases the first tests left out."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.compiler.options import ExportOptions
from rnngraph.exporters.onnx import MIN_OPSET, build_model_proto, max_opset
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare
from tests.conftest import assert_close, assert_matches


# -- ridge training: which nodes it can train ----------------------------------------------------------------
def test_training_refuses_an_esn_inside_another_layer_by_name():
    """Bidirectional/Generate run the ESN differently from the forward harvest: refused, not a KeyError."""
    x = rg.Input("x", features=2)
    bi = rg.Model(x, {"y": rg.Bidirectional(rg.ESN(5, outputs=1), name="bi")(x)})
    u, d = np.random.default_rng(0).standard_normal((2, 10, 2)), np.random.default_rng(1).standard_normal((10, 1))
    with pytest.raises(rg.ModelError, match=r"node 'bi' runs its ESN inside Bidirectional; ridge training trains "
                                            r"a Recurrent\(ESN\(...\)\) or Generative\(ESN\(...\)\) node"):
        rg.fit_ridge(bi, bi.init(0), u[0], d)
    v, n = rg.Input("v", features=2, sequence=False), rg.Input("n", count=True)
    gen = rg.Model([v, n], {"y": rg.Generate(rg.ESN(5, outputs=2), mode="every", name="gen")(v, n)})
    with pytest.raises(rg.ModelError, match=r"node 'gen' runs its ESN inside Generate"):
        rg.fit_ridge(gen, gen.init(0), u[0], u[1])
    with pytest.raises(rg.ModelError, match=r"node 'gen' runs its ESN inside Generate"):
        rg.fit_ridge(gen, gen.init(0), u[0], u[1], node="gen")


def test_training_picks_the_one_trainable_esn_beside_others():
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"a": rg.Recurrent(rg.ESN(6, outputs=1, density=0.5), name="esn")(x),
                         "b": rg.Bidirectional(rg.ESN(4, outputs=1), name="bi")(x)})
    params = model.init(0)
    u = np.random.default_rng(2).standard_normal((30, 2))
    d = np.random.default_rng(3).standard_normal((30, 1))
    fitted = rg.fit_ridge(model, params, u, d, ridge=1e-3)
    assert not np.array_equal(fitted["esn/W_out"], params["esn/W_out"])
    assert all(np.array_equal(fitted[k], params[k]) for k in params if k.startswith("bi/"))


def test_training_takes_numpy_scalars():
    """`washout` and `ridge` as NumPy scalars (e.g. read from a config array) mean what their values say."""
    x = rg.Input("x", features=1)
    model = rg.Model(x, {"y": rg.Recurrent(rg.ESN(8, outputs=1, density=0.5, leak=0.5))(x)})
    params = model.init(0)
    u = np.random.default_rng(4).standard_normal((40, 1))
    d = np.random.default_rng(5).standard_normal((40, 1))
    plain = rg.fit_ridge(model, params, u, d, washout=5, ridge=1e-3)
    numpy_scalars = rg.fit_ridge(model, params, u, d, washout=np.int64(5), ridge=np.float32(1e-3))
    for k in plain:  # β = float32(1e-3) differs from 1e-3 in the 11th digit
        assert_close(numpy_scalars[k], plain[k], "reference", what=k)


# -- generative mode ------------------------------------------------------------------------------------------
def unpadded_generative(cell: rg.ESN | rg.Clockwork, features: int, **kwargs: object) -> rg.Model:
    u = rg.Input("u", features=features, lengths=None)
    n = rg.Input("steps", count=True)
    generated, primed = rg.Generative(cell, **kwargs)(u, n)
    return rg.Model([u, n], {"generated": generated, "primed": primed})


def test_oracle_refuses_a_priming_without_steps():
    """time 0 (rows present) has no last primed step to continue from: an InputError, not an IndexError."""
    model = unpadded_generative(rg.ESN(6, outputs=2, density=0.5), 2)
    with pytest.raises(rg.InputError, match=r"oracle: `u` has time 0; .*needs at least one step"):
        oracle.run(model, model.init(0), u=np.zeros((2, 0, 2), np.float32), steps=np.array(3))


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
def test_generation_clock_survives_large_priming_values(form):
    """Without lengths the clock of the generated steps starts at the priming's time; it used to be computed as
    0·Σx + time, which is NaN once Σx overflows float32 (finite inputs), freezing every group."""
    model = unpadded_generative(rg.Clockwork(4, periods=(1, 2)), 1, feed_input=False)
    feeds = model.example_inputs(2, 5, 0)
    feeds["u"][:, 1] = 3e38
    feeds["u"][:, 3] = 3e38
    feeds["steps"] = np.array(4)
    got = assert_matches(model, feeds=feeds, clockwork_form=form)
    assert np.isfinite(got["generated"]).all()
    assert not np.array_equal(got["generated"][:, 0], got["generated"][:, 1])  # the clock runs on


# -- Clockwork: cases the first tests left out ------------------------------------------------------------------
def test_survey_example_ladder_stores_the_block_rows_of_the_mask():
    """H = 256, periods (1, 2, 4, 8): the export stores the block rows 64×256, 64×192, 64×128, 64×64."""
    from tests.test_clockwork_lowering import all_initializers

    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.Clockwork(256, periods=(1, 2, 4, 8)), name="cw")(x)})
    proto = build_model_proto(model, model.init(0), options=ExportOptions(clockwork_form="ladder"))
    shapes = sorted((v.shape for k, v in all_initializers(proto.graph) if "/R_block" in k), key=lambda s: -s[1])
    assert shapes == [(64, 256), (64, 192), (64, 128), (64, 64)]


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
@pytest.mark.parametrize("opset", sorted({MIN_OPSET, max_opset()}))
def test_longest_row_anywhere_reverse_and_generative(form, opset):
    """example_inputs always makes row 0 the longest; here it is the shortest, in reverse and when generating."""
    x = rg.Input("x", features=3)
    rev = rg.Model(x, {"y": rg.Recurrent(rg.Clockwork(7, periods=(1, 3), group_sizes=(3, 4)), reverse=True)(x)})
    u, n = rg.Input("u", features=6), rg.Input("steps", count=True)
    generated, primed = rg.Generative(rg.Clockwork(6, periods=(2, 4)))(u, n)
    gen = rg.Model([u, n], {"generated": generated, "primed": primed})
    esn_u = rg.Input("u", features=2)
    esn_gen, esn_primed = rg.Generative(rg.ESN(8, outputs=2, density=0.4, leak=0.5, feedback=True,
                                                reads=("state", "output")))(esn_u, n)
    esn = rg.Model([esn_u, n], {"generated": esn_gen, "primed": esn_primed})
    for model in (rev, gen, esn):
        params = model.init(1)
        feeds = model.example_inputs(4, 9, 3)
        feeds["lengths"] = np.array([1, 9, 3, 6])
        session = Session(build_model_proto(model, params, opset, options=ExportOptions(clockwork_form=form)))
        got, ref = session.run(**feeds), oracle.run(model, params, **feeds)
        for name in model.outputs:
            row = compare(name, got[name], ref[name])
            assert row.ok, f"{model.name} {name}: max abs err {row.max_abs:.3e}"


@pytest.mark.parametrize("form", ["dense", "ladder", "cycle"])
@pytest.mark.parametrize("batch,time", [(3, 10), (1, 1), (1, 9)])
def test_reverse_without_lengths(form, batch, time):
    x = rg.Input("x", features=3, lengths=None)
    model = rg.Model(x, {"y": rg.Recurrent(rg.Clockwork(8, periods=(1, 2, 4, 8)), reverse=True)(x)})
    assert_matches(model, batch=batch, time=time, clockwork_form=form)


def test_esn_resumes_from_its_full_state():
    """`initial_state` of width L + N sets y(0) and x(0) ([y; x]), e.g. to continue a run chunk by chunk."""
    cell = rg.ESN(6, outputs=2, density=0.5, leak=0.5, feedback=True)
    x = rg.Input("x", features=3, lengths=None)
    s0 = rg.Input("s0", features=8, sequence=False)
    seq, y_last, x_last = rg.Recurrent(cell, returns=("sequence", "state"))(x, s0)
    model = rg.Model([x, s0], {"y": seq, "y_last": y_last, "x_last": x_last})
    params = model.init(0)
    feeds = model.example_inputs(2, 10, 1)
    whole = Session(build_model_proto(model, params))
    start = {"x": feeds["x"], "s0": np.zeros((2, 8), np.float32)}
    full = whole.run(**start)
    first = whole.run(x=feeds["x"][:, :4], s0=start["s0"])
    resumed = whole.run(x=feeds["x"][:, 4:], s0=np.concatenate([first["y_last"], first["x_last"]], axis=1))
    row = compare("y", resumed["y"], full["y"][:, 4:])
    assert row.ok, row.max_abs
    assert_matches(model, feeds=feeds)


# -- the ESN description ----------------------------------------------------------------------------------------
def test_reads_are_stored_in_the_column_order_of_w_out():
    """W_out's blocks are always [u; x; y(n-1)]: `reads` in another order says so; equal cells compare equal."""
    cell = rg.ESN(5, outputs=2, reads=("output", "state"))
    assert cell.reads == ("state", "output")
    assert cell == rg.ESN(5, outputs=2, reads=("state", "output"))
    assert list(cell.read_sizes(3)) == list(cell.reads)


def test_spectral_radius_checks_its_method_and_handles_tiny_matrices():
    from rnngraph.dsl.cells.esn import spectral_radius

    W = np.array([[0.0, 2.0], [-0.5, 0.3]])
    exact = float(np.abs(np.linalg.eigvals(W)).max())
    assert spectral_radius(W, "sparse") == exact  # below N = 3 ARPACK cannot run: the dense method, exactly
    assert spectral_radius(np.array([[-0.7]]), "sparse") == 0.7
    with pytest.raises(rg.ModelError, match=r"spectral_radius: invalid value for `method`: expected one of 'auto', "
                                            r"'dense', 'sparse', received 'Dense'"):
        spectral_radius(W, "Dense")


def test_training_lengths_must_be_integers():
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Recurrent(rg.ESN(5, outputs=2))(x)})
    u, d = np.zeros((2, 10, 3)), np.zeros((2, 10, 2))
    with pytest.raises(rg.InputError, match=r"`lengths` must hold one integer length in 1..10 per row, "
                                            r"received \[10.0, 4.0\]"):
        rg.fit_ridge(model, model.init(0), u, d, lengths=np.array([10.0, 4.0]))
    with pytest.raises(rg.InputError, match=r"`lengths` must hold one integer length in 1..10 per row"):
        rg.fit_ridge(model, model.init(0), u[:0], d[:0], lengths=np.zeros(0, np.int64))
