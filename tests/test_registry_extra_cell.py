"""Adding a cell is one registry entry: a cell defined only in this test works in every topology.

The cell, an IndRNN (each unit recurs on itself only),

    h_t = φ(W x_t + u ⊙ h_{t-1} + b)        W (hidden, input), u (hidden,), b (hidden,)

is registered with `rnngraph.dsl.registry.registered` for the test's duration, with an ONNX
lowering and an oracle step written here, and nothing else: no import line in the compiler or
the oracle. It must then match the oracle as a Recurrent layer (every return), in a
Bidirectional layer, in a Stack with residual layers, under Generate and Generative, and as a
decoder (teacher-forced and greedy); unregistered, it is refused by name.
"""

from __future__ import annotations

import math
import pathlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.idioms import activate
from rnngraph.compiler.recurrent import CellLowering, SequenceInput, input_projection
from rnngraph.dsl import registry
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle
from rnngraph.runtime.oracle.activations import activation as oracle_activation
from tests.conftest import SHAPES, assert_matches
from tests.test_decoder import feeds_for, seq2seq
from tests.test_generate import CONFIGS, generator
from tests.test_seq2vec import ALL


@dataclass(frozen=True)
class IndRNN(rg.Cell):
    """h_t = φ(W x_t + u ⊙ h_{t-1} + b)."""

    activation: str = "tanh"
    prefix = "indrnn"

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        h = self.hidden
        init = uniform(1.0 / math.sqrt(h))
        return {"W": ParamSpec((h, input_size), init, "input weights"),
                "u": ParamSpec((h,), init, "recurrent weight of each unit on itself"),
                "b": ParamSpec((h,), init, "bias")}


def indrnn_hoist(g: GraphBuilder, cell: IndRNN, p: Mapping[str, np.ndarray], seq: SequenceInput,
                 form: str) -> list[str]:
    return [input_projection(g, seq, p["W"], p["b"])]


def indrnn_step(body: GraphBuilder, cell: IndRNN, p: Mapping[str, np.ndarray], states: dict[str, str],
                inputs: list[str], form: str) -> tuple[dict[str, str], str]:
    recurrent = body.op("Mul", states["h"], body.const("u", p["u"]), name="self_loop")
    h = activate(body, body.op("Add", inputs[0], recurrent, name="pre"), cell.activation, name="h")
    return {"h": h}, h


def indrnn_oracle_step(cell: IndRNN, p: Mapping[str, np.ndarray], x: np.ndarray, states: dict[str, np.ndarray],
                       t: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    h = oracle_activation(cell.activation, p["W"] @ x + p["u"] * states["h"] + p["b"])
    return {"h": h}, h


EXAMPLES = (IndRNN(5), IndRNN(6, activation="relu"))


@pytest.fixture
def indrnn() -> Iterator[None]:
    with registry.registered(IndRNN, examples=EXAMPLES,
                             onnx=CellLowering(hoist=indrnn_hoist, step=indrnn_step),
                             oracle=indrnn_oracle_step):
        yield


@pytest.mark.parametrize("cell", EXAMPLES, ids=str)
def test_recurrent_every_return_both_directions(indrnn: None, cell: IndRNN) -> None:
    x = rg.Input("x", features=4)
    h0 = rg.Input("h0", features=cell.hidden, sequence=False)
    fw = rg.Recurrent(cell, returns=ALL)(x, initial_state=h0)
    bw = rg.Recurrent(cell, reverse=True, returns=("last", "mean", "max", "state"))(x)
    model = rg.Model([x, h0], {f"fw{i}": t for i, t in enumerate(fw)} | {f"bw{i}": t for i, t in enumerate(bw)})
    for lowering in ("auto", "scan", "native"):  # no native op: every lowering takes the Scan
        for batch, time in SHAPES:
            got = assert_matches(model, batch=batch, time=time, lowering=lowering)
            assert np.abs(got["fw0"]).max() > 1e-3  # values, not zeros


def test_bidirectional_and_stack_with_residual(indrnn: None) -> None:
    cell = EXAMPLES[0]
    x = rg.Input("x", features=4)
    bi = rg.Bidirectional((cell, rg.RNN(3)), returns=ALL)(x)
    stack = rg.Stack([cell, rg.Bidirectional(cell, merge="sum"), rg.Recurrent(cell, reverse=True)],
                     residual=(1, 2), returns=("sequence", "last", "max", "state"))(x)
    model = rg.Model(x, {f"bi{i}": t for i, t in enumerate(bi)} | {f"st{i}": t for i, t in enumerate(stack)})
    for batch, time in SHAPES:
        assert_matches(model, batch=batch, time=time)


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["first", "every"])
def test_generate(indrnn: None, mode: str, config: str) -> None:
    model = generator(EXAMPLES[1], mode, config)
    for batch, time in [(3, 9), (1, 1)]:
        assert_matches(model, batch=batch, time=time, seed=batch)


@pytest.mark.parametrize("feed_input", [True, False])
def test_generative(indrnn: None, feed_input: bool) -> None:
    u, n = rg.Input("u", features=5), rg.Input("steps", count=True)
    generated, primed = rg.Generative(EXAMPLES[0], feed_input=feed_input)(u, n)
    model = rg.Model([u, n], {"generated": generated, "primed": primed})
    for batch, time in [(3, 7), (1, 1)]:
        got = assert_matches(model, batch=batch, time=time)
        assert got["generated"].shape == (batch, time, 5)


@pytest.mark.parametrize("attention", [None, rg.Attention("additive", units=4)], ids=["plain", "attention"])
def test_decoder_teacher_forced_and_greedy(indrnn: None, attention: rg.Attention | None) -> None:
    model = seq2seq(IndRNN(8), attention=attention, context="all_dense", use="init")
    for batch, time in [(3, 5), (1, 1)]:
        got = assert_matches(model, model.init(seed=time), feeds=feeds_for(model, batch, time))
        assert got["tokens"].shape[0] == batch


def test_an_unregistered_cell_is_refused_by_name() -> None:
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Recurrent(IndRNN(5))(x)})
    params = model.init(0)
    with pytest.raises(registry.UnsupportedCellError, match=r"IndRNN is not a registered cell; register it"):
        build_model_proto(model, params)
    with pytest.raises(registry.UnsupportedCellError, match=r"IndRNN is not a registered cell"):
        oracle.run(model, params, **model.example_inputs(2, 3, 0))


def test_the_readme_recipe_for_a_new_cell_runs_as_written(tmp_path: object) -> None:
    """The README's "Adding a cell" block (its only code block) registers, exports and verifies a cell."""
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("### Adding a cell"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md (Adding a cell)", "exec"), namespace)
    assert namespace["report"].ok  # type: ignore[attr-defined]
    with pytest.raises(registry.UnsupportedCellError):  # registered only inside the block
        registry.entry_for(namespace["IndRNN"])
