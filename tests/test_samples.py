"""Every sample under samples/ verifies against the oracle (what `rnngraph demo` shows).

One place for the "Done means" of the issues: each sample at the sequence lengths
its issue names, with ragged lengths, on every lowering path (auto, scan, native).
Sample-specific behaviour is tested beside its structure (tests/test_<structure>.py).
"""

import pathlib

import pytest

from rnngraph.verify import load_model_file, nan_feeds, verify

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))

#: the lengths each issue's "Done means" names: foundation, cells, topologies
TIMES = {
    "classic_rnn": (1, 5, 500), "srn": (1, 5, 500),
    **{name: (1, 7, 300) for name in ("lstm", "lstm_peephole", "lstm_coupled", "gru", "esn_mackey_glass",
                                       "clockwork")},
}
TOPOLOGY_TIMES = (1, 9, 200)

CASES = [(path, time) for path in SAMPLES for time in TIMES.get(path.stem, TOPOLOGY_TIMES)]


def test_every_structure_has_a_sample():
    expected = {"classic_rnn", "srn", "lstm", "lstm_peephole", "lstm_coupled", "gru", "esn_mackey_glass", "clockwork",
                "seq2vec", "vec2seq_first", "vec2seq_every", "encoder_decoder", "attention", "bidirectional", "deep"}
    assert expected <= {p.stem for p in SAMPLES}


@pytest.mark.parametrize("path,time", CASES, ids=[f"{p.stem}-T{t}" for p, t in CASES])
def test_sample_verifies(path, time):
    mf = load_model_file(path)
    feeds = mf.example_inputs(3, time, 0)
    for lowering in ("auto", "scan", "native"):
        report = verify(mf.model, mf.params, feeds=feeds, tolerance=mf.tolerance, lowering=lowering)
        assert report.ok, f"{path.name} at time {time}, lowering {lowering}\n{report.table()}"
        # every output, and again with a NaN in a valid step where the NaN rule applies (rnngraph.verify.nan_feeds)
        nan_rows = {f"{name}, NaN step" for name in mf.model.outputs} if nan_feeds(mf.model, feeds) else set()
        assert {r.output for r in report.rows} == set(mf.model.outputs) | nan_rows
