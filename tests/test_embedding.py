"""Embedding: differential tests (sequences, vectors, ragged) and every error path."""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import ModelError
from tests.conftest import SHAPES, assert_matches


@pytest.mark.parametrize("batch,time", SHAPES)
def test_embedding_sequence_matches_oracle(batch: int, time: int) -> None:
    ids = rg.Input("ids", tokens=11)
    y = rg.Embedding(13, 5)(ids)
    got = assert_matches(rg.Model(ids, {"y": y}), batch=batch, time=time)
    assert got["y"].shape == (batch, time, 5)


def test_embedding_rows_are_table_rows_and_padding_is_zero() -> None:
    ids = rg.Input("ids", tokens=7)
    model = rg.Model(ids, {"y": rg.Embedding(7, 3)(ids)})
    params = model.init(seed=4)
    feeds = {"ids": np.array([[1, 6, 0], [5, 5, 2]]), "lengths": np.array([3, 1])}
    got = assert_matches(model, params, feeds=feeds)
    table = params["embedding0/E"]
    np.testing.assert_array_equal(got["y"][0], table[[1, 6, 0]])
    np.testing.assert_array_equal(got["y"][1, 0], table[5])
    assert not got["y"][1, 1:].any()


@pytest.mark.parametrize("lowering", ["scan", "native"])
def test_embedding_feeds_a_recurrent_layer(lowering: str) -> None:
    ids = rg.Input("ids", tokens=9)
    h = rg.Recurrent(rg.RNN(6))(rg.Embedding(9, 4)(ids))
    assert_matches(rg.Model(ids, {"h": h}), batch=4, time=9, lowering=lowering)


def test_embedding_of_a_vector_of_ids() -> None:
    ids = rg.Input("ids", tokens=10, sequence=False)
    y = rg.Dense(3, "tanh")(rg.Embedding(10, 4)(ids))
    got = assert_matches(rg.Model(ids, {"y": y}), batch=5)
    assert got["y"].shape == (5, 3)


@pytest.mark.parametrize("kwargs,message", [
    ({"vocab": 0, "dim": 3}, r"Embedding: invalid value for `vocab`: expected a positive integer, received 0"),
    ({"vocab": 5, "dim": -1}, r"Embedding: invalid value for `dim`: expected a positive integer, received -1"),
    ({"vocab": 5, "dim": 2.5}, r"invalid value for `dim`: expected a positive integer, received 2.5"),
])
def test_embedding_bad_sizes(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        rg.Embedding(**kwargs)


def test_embedding_refuses_float_input() -> None:
    x = rg.Input("x", features=4)
    with pytest.raises(ModelError, match=r"Embedding: input `x` must be a sequence or vector of token ids, "
                                         r"received sequence \(batch, time, 4\) float32"):
        rg.Embedding(5, 3)(x)


def test_embedding_refuses_a_smaller_table_than_the_input_vocabulary() -> None:
    ids = rg.Input("ids", tokens=12)
    with pytest.raises(ModelError, match=r"emb: input `x` holds ids in \[0, 12\), but the table has only 10 rows; "
                                         r"use Embedding\(12, 3\)"):
        rg.Embedding(10, 3, name="emb")(ids)
