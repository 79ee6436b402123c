"""The oracle's forced tokens are an explicit argument (`oracle.run_forced`), never ambient state."""

from __future__ import annotations

import numpy as np

import rnngraph as rg
from rnngraph.runtime import oracle
from tests.test_decoder import feeds_for, seq2seq
from tests.test_generate import generator


def test_greedy_emits_the_forced_tokens_and_reports_its_scores() -> None:
    model = seq2seq(teacher=False)
    params = model.init(seed=3)
    feeds = feeds_for(model, 3, 5)
    free = oracle.run(model, params, **feeds)
    dec = dict(model.nodes())["decoder0"].layer.dec
    first = (free["tokens"][:, :1] + 1) % dec.vocab  # another first token on every row, never EOS
    first[first == dec.eos] = (dec.eos + 1) % dec.vocab
    forced, scores = oracle.run_forced(model, params, {"decoder0": first}, **feeds)
    np.testing.assert_array_equal(forced["tokens"][:, :1], first)
    np.testing.assert_array_equal(scores["decoder0"], forced["greedy_scores"])
    assert not np.array_equal(forced["greedy_scores"][:, 1:2], free["greedy_scores"][:, 1:2])  # the path changed
    again = oracle.run(model, params, **feeds)  # nothing stays forced after the call
    np.testing.assert_array_equal(again["tokens"], free["tokens"])


def test_generation_with_argmax_feedback_follows_the_forced_tokens() -> None:
    model = generator(rg.RNN(5), "every", "argmax-feedback")
    params = model.init(0)
    feeds = model.example_inputs(2, 4, 0)
    free = oracle.run(model, params, **feeds)
    tokens = (free["ids"] + 1) % 6
    forced, scores = oracle.run_forced(model, params, {"generate0": tokens}, **feeds)
    np.testing.assert_array_equal(forced["ids"], tokens)
    np.testing.assert_array_equal(scores["generate0"], forced["y"])
    assert not np.allclose(forced["y"][:, 1:], free["y"][:, 1:])  # the fed-back embedding changed
