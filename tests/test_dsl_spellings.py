"""Keras and PyTorch spellings, and any other wrong constructor call, get the rnngraph spelling in a ModelError."""

from __future__ import annotations

import re

import pytest

import rnngraph as rg
from rnngraph.dsl import registry
from rnngraph.dsl.signature import SPELLINGS, SignatureError


@pytest.mark.parametrize("build,message", [
    (lambda: rg.Recurrent(rg.LSTM(8), return_sequences=True),
     'Recurrent: unknown option `return_sequences`: rnngraph spells it `returns=`: '
     'Recurrent(cell, returns="sequence")'),
    (lambda: rg.Bidirectional(rg.GRU(8, linear_before_reset=True), return_state=True),
     'Bidirectional: unknown option `return_state`: rnngraph spells it `returns=`: returns=("sequence", "state")'),
    (lambda: rg.Recurrent(rg.RNN(8), go_backwards=True),
     "Recurrent: unknown option `go_backwards`: rnngraph spells it `reverse=True` on the wrapper"),
    (lambda: rg.LSTM(8, num_layers=2), "LSTM: unknown option `num_layers`: rnngraph stacks layers with Stack"),
    (lambda: rg.GRU(8, linear_before_reset=True, bidirectional=True),
     'GRU: unknown option `bidirectional`: rnngraph wraps the cell instead: Bidirectional(cell, merge="concat")'),
    (lambda: rg.LSTM(8, batch_first=True), "LSTM: unknown option `batch_first`: rnngraph is always batch-first"),
    (lambda: rg.LSTM(units=8), "LSTM: unknown option `units`: a cell's size is `hidden`, its first argument"),
    (lambda: rg.RNN(hidden_size=8), "RNN: unknown option `hidden_size`: a cell's size is `hidden`"),
    (lambda: rg.RNN(8, nonlinearity="relu"), "RNN: unknown option `nonlinearity`: rnngraph spells it `activation=`"),
    (lambda: rg.GRU(8, reset_after=True), "GRU: unknown option `reset_after`: rnngraph spells it "
                                           "`linear_before_reset="),
    (lambda: rg.Bidirectional(rg.RNN(8), merge_mode="sum"), "Bidirectional: unknown option `merge_mode`: rnngraph "
                                                            "spells it `merge=`"),
    (lambda: rg.Stack([rg.RNN(8)], return_sequences=False), "Stack: unknown option `return_sequences`"),
    (lambda: rg.Dense(4, use_bias=False), "Dense: unknown option `use_bias`: every cell has biases"),
    (lambda: rg.Dense(4, activaton="tanh"), "Dense: unknown option `activaton`. Did you mean `activation`? "
                                            "(Dense takes: units, activation, name.)"),
    (lambda: rg.Attention("dot", unit=4), "Attention: unknown option `unit`. Did you mean `units`?"),
    (lambda: rg.Decoder(rg.LSTM(8), dropout=0.1), "Decoder: unknown option `dropout`: rnngraph describes inference"),
    (lambda: rg.ESN(50, input_dim=3), "ESN: unknown option `input_dim`: leave it out: the input size is read"),
    (lambda: rg.GRU(8), "GRU: missing a required argument: `linear_before_reset`. (GRU takes: hidden, "
                        "linear_before_reset.)"),
    (lambda: rg.LSTM(8, True, False, 3), "LSTM: too many positional arguments. (LSTM takes: hidden, peephole, "
                                         "coupled.)"),
])
def test_wrong_arguments_get_the_rnngraph_spelling(build, message):
    with pytest.raises(rg.ModelError, match=re.escape(message)) as info:
        build()
    assert isinstance(info.value, SignatureError) and isinstance(info.value, TypeError)


def test_every_foreign_spelling_has_an_answer_on_every_cell():
    """No cell takes a foreign spelling by accident, and each one is answered (not a bare TypeError)."""
    for cell in registry.examples():
        for key in SPELLINGS:
            with pytest.raises(SignatureError, match=re.escape(f"unknown option `{key}`: {SPELLINGS[key]}")):
                type(cell)(cell.hidden, **{key: 1})


def test_valid_calls_copies_and_pickles_still_work():
    import copy
    import dataclasses
    import pickle

    cell = rg.LSTM(8, peephole=True)
    assert copy.deepcopy(cell) == cell == pickle.loads(pickle.dumps(cell))
    assert dataclasses.replace(cell, hidden=9).hidden == 9
    assert rg.Recurrent(cell, returns="last", name="enc").name == "enc"
