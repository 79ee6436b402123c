"""Every topology (N-to-1, bidirectional, deep) accepts every registered cell, on every lowering path.

The cells and their examples come from the one cell registry (`rnngraph.dsl.registry`),
so a new cell cannot silently skip the topologies.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.compiler.recurrent import cell_lowering
from rnngraph.dsl import registry
from tests.conftest import SHAPES, assert_close, assert_matches
from tests.test_seq2vec import ALL


def cases() -> list[object]:
    """Every example of every registered cell (`rnngraph.dsl.registry`): a new cell is picked up here."""
    return [pytest.param(lambda cell=cell: cell, id=f"{entry.name}{i}")
            for entry in registry.entries() for i, cell in enumerate(entry.examples)]


def lowerings(cell: rg.Cell) -> list[str]:
    """``scan``, plus ``native`` where the cell has an exact native op."""
    impl = cell_lowering(cell)
    return ["scan", "native"] if impl.native is not None and impl.native_exact(cell) else ["scan"]


def test_every_registered_cell_has_every_required_backend():
    names = {entry.name for entry in registry.entries()}
    assert {"RNN", "SRN", "LSTM", "GRU", "Clockwork", "ESN"} <= names
    for entry in registry.entries():
        for example in entry.examples:
            for backend in registry.REQUIRED_BACKENDS:
                assert registry.implementation(example, backend) is not None


@pytest.mark.parametrize("make", cases())
def test_recurrent_returns_with_initial_state(make):
    cell = make()
    x = rg.Input("x", features=4)
    h0 = rg.Input("h0", features=next(iter(cell.state_sizes().values())), sequence=False)
    fw = rg.Recurrent(cell, returns=ALL)(x, initial_state=h0)
    bw = rg.Recurrent(cell, reverse=True, returns=("last", "mean", "max", "state"))(x)
    outs = {f"fw{i}": t for i, t in enumerate(fw)} | {f"bw{i}": t for i, t in enumerate(bw)}
    model = rg.Model([x, h0], outs)
    for lowering in lowerings(cell):
        for batch, time in SHAPES:
            assert_matches(model, batch=batch, time=time, lowering=lowering)


@pytest.mark.parametrize("make", cases())
def test_bidirectional(make):
    cell = make()
    x = rg.Input("x", features=4)
    mixed = rg.Bidirectional((cell, rg.RNN(4)), returns=ALL)(x)          # any two cells, concat
    same = rg.Bidirectional(cell, merge="ave", returns=("sequence", "last"))(x)
    model = rg.Model(x, {f"m{i}": t for i, t in enumerate(mixed)} | {f"s{i}": t for i, t in enumerate(same)})
    for lowering in lowerings(cell):
        for batch, time in SHAPES:
            assert_matches(model, batch=batch, time=time, lowering=lowering)


@pytest.mark.parametrize("make", cases())
def test_stack_with_residual(make):
    cell = make()
    x = rg.Input("x", features=4)
    stack = rg.Stack([cell, rg.Bidirectional(cell, merge="sum"), rg.Recurrent(cell, reverse=True), rg.RNN(3)],
                     residual=(1, 2), returns=("sequence", "last", "max", "state"))
    model = rg.Model(x, {f"o{i}": t for i, t in enumerate(stack(x))})
    for lowering in lowerings(cell):
        for batch, time in SHAPES:
            got = assert_matches(model, batch=batch, time=time, lowering=lowering)
            assert np.isfinite(got["o0"]).all()


@pytest.mark.parametrize("make", cases())
def test_resuming_from_every_final_state_continues_the_run(make):
    """Running steps [0, k) then [k, T) from the first run's final states (all of them, concatenated
    through `initial_state`) gives the outputs of one run over [0, T): every state is carried."""
    cell = make()
    k = 4  # a multiple of every Clockwork period in EXAMPLES, so that a resumed clock keeps its phase
    sizes = cell.state_sizes()
    x = rg.Input("x", features=3, lengths=None)
    s0 = rg.Input("s0", features=sum(sizes.values()) if len(sizes) > 1 else next(iter(sizes.values())),
                  sequence=False)
    outs = rg.Recurrent(cell, returns=("sequence", "state"), name="rec")(x, initial_state=s0)
    model = rg.Model([x, s0], {"y": outs[0]} | {f"s_{n}": t for n, t in zip(sizes, outs[1:], strict=True)})
    params = model.init(4)
    xs = np.random.default_rng(4).standard_normal((2, 7, 3)).astype(np.float32)
    zero = np.zeros((2, s0.spec.features), np.float32)
    for lowering in lowerings(cell):
        whole = assert_matches(model, params, feeds={"x": xs, "s0": zero}, lowering=lowering)
        head = assert_matches(model, params, feeds={"x": xs[:, :k], "s0": zero}, lowering=lowering)
        carried = np.concatenate([head[f"s_{n}"] for n in sizes], axis=1)
        if len(sizes) == 1:
            carried = head[f"s_{next(iter(sizes))}"]
        tail = assert_matches(model, params, feeds={"x": xs[:, k:], "s0": carried}, lowering=lowering)
        assert_close(tail["y"], whole["y"][:, k:], "float32", f"resumed run ({lowering})")
