"""The PyTorch backend computes exactly what the NumPy oracle computes (float64, ≤ 1e-10).

For every sample under samples/ and for every example of every registered cell
(`rnngraph.dsl.registry`) in every topology: Recurrent (every `returns`, initial states,
reverse), Bidirectional (every merge), Stack with residual connections, Generate (both
modes, every feedback), Generative (fed its outputs or zeros), and the decoders
(teacher-forced and greedy, every context, use and attention score). Odd sizes, T=1,
B=1 and ragged lengths, random weights.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnngraph as rg  # noqa: E402
from rnngraph.dsl import registry  # noqa: E402
from rnngraph.dsl.decoder import TeacherForced  # noqa: E402
from rnngraph.pytorch import TorchModel  # noqa: E402
from rnngraph.runtime import oracle  # noqa: E402
from rnngraph.verify import load_model_file  # noqa: E402

#: the agreement every float64 comparison must reach
FLOAT64_ATOL = 1e-10
#: (batch, time): odd sizes, B=1, T=1, ragged (row 0 full, the others random)
SHAPES = [(3, 5), (1, 1), (1, 4), (4, 7)]
ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples").glob("*.py"))
ALL = ("sequence", "last", "mean", "max", "state")


def max_error(model: rg.Model, params: Mapping[str, np.ndarray], feeds: Mapping[str, np.ndarray]) -> float:
    """Run `model` in float64 through TorchModel and the oracle; assert shapes and token ids, return the
    largest absolute difference of the float outputs."""
    got = TorchModel(model, params, dtype=torch.float64)(**feeds)
    ref = oracle.run(model, params, **feeds)
    worst = 0.0
    for name, expected in ref.items():
        value = got[name].detach().numpy()
        assert value.shape == expected.shape, f"{name}: shape {value.shape} != oracle {expected.shape}"
        if np.issubdtype(expected.dtype, np.integer):
            np.testing.assert_array_equal(value, expected, err_msg=name)
        else:
            worst = max(worst, float(np.abs(value - expected).max(initial=0.0)))
    return worst


def assert_agrees(model: rg.Model, feeds_for=None, seed: int = 0) -> float:
    params = model.init(seed)
    worst = 0.0
    for batch, time in SHAPES:
        feeds = feeds_for(batch, time) if feeds_for else model.example_inputs(batch, time, seed=batch + time)
        worst = max(worst, max_error(model, params, feeds))
    assert worst <= FLOAT64_ATOL, f"max abs error {worst:.3e} > {FLOAT64_ATOL}"
    return worst


def examples() -> dict[str, rg.Cell]:
    """Every example of every registered cell: a new cell is picked up here."""
    return {f"{entry.name}{i}": cell for entry in registry.entries() for i, cell in enumerate(entry.examples)}


CELLS = examples()


def resized(cell: rg.Cell, h: int) -> rg.Cell:
    """`cell` with an output (first) state of `h` units (Clockwork: two groups, periods 1 and 3)."""
    if isinstance(cell, rg.ESN):
        return replace(cell, outputs=h)
    if isinstance(cell, rg.Clockwork):
        return rg.Clockwork(h, periods=(1, 3), group_sizes=(2, h - 2), activation=cell.activation)
    return replace(cell, hidden=h)


# -- models of the catalogue: one per cell and topology -------------------------------------------
def recurrent_model(cell: rg.Cell) -> rg.Model:
    x = rg.Input("x", features=4)
    sizes = cell.state_sizes()
    first = rg.Input("h0", features=next(iter(sizes.values())), sequence=False)
    every = rg.Input("s0", features=sum(sizes.values()), sequence=False)
    outs = {f"fw{i}": t for i, t in enumerate(rg.Recurrent(cell, returns=ALL)(x, initial_state=first))}
    outs |= {f"bw{i}": t for i, t in enumerate(rg.Recurrent(cell, reverse=True, returns=ALL)(x, initial_state=every))}
    return rg.Model([x, first, every], outs)


def bidirectional_model(cell: rg.Cell) -> rg.Model:
    x = rg.Input("x", features=4)
    outs = {f"m{i}": t for i, t in enumerate(rg.Bidirectional((cell, rg.RNN(4)), returns=ALL)(x))}
    for merge in ("sum", "mul", "ave"):
        outs |= {f"{merge}{i}": t for i, t in enumerate(rg.Bidirectional(cell, merge=merge,
                                                                         returns=("sequence", "last"))(x))}
    return rg.Model(x, outs)


def stack_model(cell: rg.Cell) -> rg.Model:
    x = rg.Input("x", features=4)
    stack = rg.Stack([cell, rg.Bidirectional(cell, merge="sum"), rg.Recurrent(cell, reverse=True), rg.RNN(3)],
                     residual=(1, 2), returns=("sequence", "last", "max", "state"))
    return rg.Model(x, {f"o{i}": t for i, t in enumerate(stack(x))})


#: Generate: (readout units or None, feedback, tokens output, extra arguments)
GENERATE_CONFIGS = [(None, "none", False, {}), (6, "none", True, {}), (None, "output", False, {}),
                    (6, "output", False, {}), (6, "argmax", True, {"embedding": 4}),
                    (6, "argmax", True, {"embedding": 4, "start": 2})]


def generate_model(cell: rg.Cell, turn: int = 0) -> rg.Model:
    """Every config once, half of them in mode "first" and half in "every" (which half: `turn`), so
    that over consecutive cells every mode meets every config while each model stays small."""
    v = rg.Input("v", features=5, sequence=False)
    n = rg.Input("n", count=True)
    outs = {}
    for k, (units, feedback, tokens, extra) in enumerate(GENERATE_CONFIGS):
        mode = ("first", "every")[(k + turn) % 2]
        readout = rg.Dense(units, activation="softmax") if units else None
        out = rg.Generate(cell, mode=mode, readout=readout, feedback=feedback, tokens=tokens, **extra)(v, n)
        outs |= {f"{mode}{k}_{i}": t for i, t in enumerate(out if isinstance(out, tuple) else (out,))}
    return rg.Model([v, n], outs)


def generative_model(cell: rg.Cell) -> rg.Model:
    fed = rg.Input("u", features=cell.output_size)
    driven = rg.Input("w", features=3, lengths="w_lengths", time="w_time")
    n = rg.Input("steps", count=True)
    g1, p1 = rg.Generative(cell)(fed, n)
    g2, p2 = rg.Generative(cell, feed_input=False)(driven, n)
    return rg.Model([fed, driven, n], {"g1": g1, "p1": p1, "g2": g2, "p2": p2})


SRC_VOCAB, TGT_VOCAB = 11, 13
#: (attention, context, use, pool): every score, every context and use
DECODERS = [(None, "last", "init", "mean"), (None, "all_dense", "every", "max"),
            (rg.Attention("additive", units=4), "last_dense", "init", "mean"),
            (rg.Attention("general"), "all_dense", "every", "mean"), (rg.Attention("dot"), None, "init", "mean"),
            (rg.Attention("dot"), "last", "every", "max")]


def decoder_model(cell: rg.Cell, turn: int = 0) -> rg.Model:
    """Token source → Embedding → GRU encoder (6 units) → two decoders with a 6-unit output state:
    entries `turn` and `turn + 3` of DECODERS, so that consecutive cells go through all of them."""
    src = rg.Input("src", tokens=SRC_VOCAB)
    tgt = rg.Input("tgt", tokens=TGT_VOCAB, time="tgt_time", lengths="tgt_lengths")
    n = rg.Input("max_len", count=True)
    memory = rg.Recurrent(rg.GRU(6, linear_before_reset=False))(rg.Embedding(SRC_VOCAB, 5)(src))
    outs = {}
    for k in (turn % len(DECODERS), (turn + 3) % len(DECODERS)):
        attention, context, use, pool = DECODERS[k]
        dec = rg.Decoder(resized(cell, 6), attention=attention, context=context, use=use, pool=pool,
                         context_units=5, readout=rg.Dense(TGT_VOCAB, "softmax"), embedding=4, max_len=6)
        tf = dec.teacher_forced(memory, tgt)
        outs |= {f"tf{k}_{i}": t for i, t in enumerate(tf if isinstance(tf, tuple) else (tf,))}
        outs |= {f"greedy{k}_{i}": t for i, t in enumerate(dec.greedy(memory, n))}
    return rg.Model([src, tgt, n], outs)


def decoder_feeds(batch: int, time: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch * 10 + time)
    m = time + 2
    lengths, tgt_lengths = rng.integers(1, time + 1, batch), rng.integers(1, m + 1, batch)
    lengths[0], tgt_lengths[-1] = time, m
    return {"src": rng.integers(0, SRC_VOCAB, (batch, time)), "lengths": lengths,
            "tgt": rng.integers(0, TGT_VOCAB, (batch, m)), "tgt_lengths": tgt_lengths,
            "max_len": np.array(5, dtype=np.int64)}


TOPOLOGIES = {"recurrent": recurrent_model, "bidirectional": bidirectional_model, "stack": stack_model,
              "generate": generate_model, "generative": generative_model, "decoder": decoder_model}
FEEDS = {"decoder": decoder_feeds}
#: topologies whose variants are spread over the cells (each cell gets some, every variant several cells)
ROTATING = ("generate", "decoder")


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_cell_in_every_topology_matches_the_oracle(cell: str, topology: str) -> None:
    assert_agrees(catalogue_model(cell, topology), FEEDS.get(topology))


def catalogue_model(cell: str, topology: str) -> rg.Model:
    if topology in ROTATING:
        return TOPOLOGIES[topology](CELLS[cell], sorted(CELLS).index(cell))  # type: ignore[call-arg]
    return TOPOLOGIES[topology](CELLS[cell])


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_matches_the_oracle(path: pathlib.Path) -> None:
    mf = load_model_file(path)
    worst = max(max_error(mf.model, mf.params, mf.example_inputs(batch, time, 0)) for batch, time in ((3, 7), (1, 1)))
    assert worst <= FLOAT64_ATOL, f"{path.name}: max abs error {worst:.3e}"


def test_rotating_topologies_cover_every_variant() -> None:
    """Over the cells, every decoder configuration and every (mode, config) pair of Generate occurs."""
    decoders, generators = set(), set()
    for cell in CELLS:
        for _, node in catalogue_model(cell, "decoder").nodes():
            if isinstance(node.layer, TeacherForced):
                dec = node.layer.dec
                decoders.add((dec.attention, dec.context, dec.use, dec.pool))
        for _, node in catalogue_model(cell, "generate").nodes():
            if isinstance(node.layer, rg.Generate):
                g = node.layer
                generators.add((g.mode, g.readout.units if g.readout else None, g.feedback, g.tokens, g.start))
    assert decoders == set(DECODERS)
    assert generators == {(mode, units, feedback, tokens, extra.get("start")) for mode in ("first", "every")
                          for units, feedback, tokens, extra in GENERATE_CONFIGS}


def test_the_catalogue_covers_every_registered_cell() -> None:
    assert {type(c) for c in CELLS.values()} == {entry.cell_type for entry in registry.entries()}
    assert {"RNN", "SRN", "LSTM", "GRU", "Clockwork", "ESN"} <= {entry.name for entry in registry.entries()}


def agreement_table() -> str:
    """Max abs error, TorchModel (float64) vs the oracle, per cell × topology and per sample (the report's table)."""
    lines = ["| cell | " + " | ".join(sorted(TOPOLOGIES)) + " |", "|---" * (len(TOPOLOGIES) + 1) + "|"]
    for cell in sorted(CELLS):
        row = [f"{assert_agrees(catalogue_model(cell, t), FEEDS.get(t)):.1e}" for t in sorted(TOPOLOGIES)]
        lines.append(f"| {cell} | " + " | ".join(row) + " |")
    lines += ["", "| sample | max abs error |", "|---|---:|"]
    for path in SAMPLES:
        mf = load_model_file(path)
        worst = max(max_error(mf.model, mf.params, mf.example_inputs(b, t, 0)) for b, t in ((3, 7), (1, 1)))
        lines.append(f"| {path.stem} | {worst:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.test_pytorch_oracle
    print(agreement_table())
