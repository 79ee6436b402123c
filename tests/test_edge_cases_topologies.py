"""Review of the topologies: sequences whose padded steps hold arbitrary values (raw inputs).

A model input's steps past a row's length are whatever the caller left there (padding
tokens' vectors, stale buffers). Every layer's output there is 0 (the conventions of docs/README.md), and
pooling reads valid steps only (docs/seq2vec.md, docs/encoder-decoder.md) — also where a layer reads such an input
directly: a residual connection around a stack's first layer, a decoder over raw features.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from tests.conftest import SHAPES, assert_close, assert_matches, run_both


def garbage_padding(feeds: dict[str, np.ndarray], name: str, lengths: str, seed: int,
                    non_finite: bool = False) -> dict[str, np.ndarray]:
    """`feeds` with large random values (and NaN, ±inf with `non_finite`) in `name`'s steps past each row's length."""
    out = dict(feeds)
    x = np.array(feeds[name])
    rng = np.random.default_rng(seed)
    for b, n in enumerate(feeds[lengths]):
        x[b, n:] = rng.uniform(-50.0, 50.0, x[b, n:].shape)
        if non_finite and n < x.shape[1]:
            x[b, n:, 0], x[b, -1, -1] = np.nan, np.inf if b % 2 else -np.inf
    out[name] = x
    return out


def residual_first_layer() -> rg.Model:
    x = rg.Input("x", features=4)
    outs = rg.Stack([rg.RNN(4), rg.GRU(4, linear_before_reset=False)], residual=(0, 1),
                    returns=("sequence", "mean", "max", "last"))(x)
    return rg.Model(x, dict(zip(("seq", "mean", "max", "last"), outs, strict=True)))


@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_residual_around_the_first_layer_matches_oracle(batch: int, time: int, lowering: str) -> None:
    model = residual_first_layer()
    feeds = garbage_padding(model.example_inputs(batch, time, seed=3), "x", "lengths", seed=4)
    assert_matches(model, model.init(5), feeds=feeds, lowering=lowering)


@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_residual_around_the_first_layer_is_zero_past_each_length(lowering: str) -> None:
    """The stack's sequence is 0 past L_b, and its mean is the mean of its valid steps (worked out here)."""
    model = residual_first_layer()
    params = model.init(5)
    feeds = model.example_inputs(4, 7, seed=1)
    feeds["lengths"] = np.array([7, 2, 5, 1])
    noisy = garbage_padding(feeds, "x", "lengths", seed=2, non_finite=True)
    got, ref = run_both(model, params, noisy, lowering)
    for b, n in enumerate(feeds["lengths"]):
        assert not got["seq"][b, n:].any(), f"row {b}: the residual sum is not 0 past its length {n}"
        assert not ref["seq"][b, n:].any(), f"oracle row {b}: the residual sum is not 0 past its length {n}"
        assert_close(got["mean"][b], got["seq"][b, :n].mean(axis=0), "float32", f"mean of row {b}")
        assert_close(got["max"][b], got["seq"][b, :n].max(axis=0), "float32", f"max of row {b}")
        assert_close(got["last"][b], got["seq"][b, n - 1], "float32", f"last of row {b}")
    clean, _ = run_both(model, params, feeds, lowering)  # what lies past the lengths never matters
    for name in model.outputs:
        assert_close(got[name], clean[name], "float32", f"{name} with other padding")


def raw_memory_decoder(pool: str) -> rg.Model:
    """A decoder reading the source features directly (no encoder): memory padded with anything."""
    src = rg.Input("src", features=5)
    dec = rg.Decoder(rg.GRU(6, linear_before_reset=True), context="all_dense", pool=pool, use="init",
                     readout=rg.Dense(9, "softmax"), embedding=4, max_len=5)
    tokens, scores = dec.greedy(src, name="decoder")
    return rg.Model(src, {"tokens": tokens, "scores": scores})


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_pooled_context_of_a_raw_memory_reads_valid_steps_only(pool: str, batch: int, time: int) -> None:
    model = raw_memory_decoder(pool)
    params = model.init(2)
    feeds = model.example_inputs(batch, time, seed=6)
    noisy = garbage_padding(feeds, "src", "lengths", seed=7)
    got = assert_matches(model, params, feeds=noisy)
    clean, _ = run_both(model, params, feeds)
    np.testing.assert_array_equal(got["tokens"], clean["tokens"])
    assert_close(got["scores"], clean["scores"], "float32", "scores with other padding")
