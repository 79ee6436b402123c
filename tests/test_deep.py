"""Deep, stacked RNNs (docs/deep.md): any depth, any cells, bidirectional layers, residual connections."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import ModelError
from tests.conftest import SHAPES, assert_close, assert_matches, assert_size_independent_of_time, run_ort
from tests.test_seq2vec import ALL

STACKS = {
    "two_residual": lambda: rg.Stack([rg.RNN(6), rg.RNN(6)], residual=True, returns=ALL),
    "mixed": lambda: rg.Stack([rg.RNN(5), rg.Bidirectional(rg.SRN(3)), rg.Recurrent(rg.RNN(6), reverse=True)],
                              returns=ALL),
    "deep_partly_residual": lambda: rg.Stack(
        [rg.RNN(4), rg.Bidirectional(rg.RNN(2), merge="concat"), rg.Bidirectional(rg.RNN(4), merge="ave"),
         rg.Recurrent(rg.SRN(4), reverse=True), rg.RNN(7)],
        residual=(0, 1, 2, 3), returns=ALL),
    "one_layer": lambda: rg.Stack([rg.Bidirectional(rg.RNN(3), merge="mul")], returns=ALL),
}


def stacked(name: str, features: int = 4) -> rg.Model:
    x = rg.Input("x", features=features)
    outs = STACKS[name]()(x)
    return rg.Model(x, {f"o{i}": t for i, t in enumerate(outs)})


@pytest.mark.parametrize("name", STACKS)
@pytest.mark.parametrize("lowering", ["scan", "native"])
@pytest.mark.parametrize("batch,time", SHAPES)
def test_matches_oracle(batch, time, lowering, name):
    assert_matches(stacked(name), batch=batch, time=time, lowering=lowering)


def test_equals_the_same_layers_chained_by_hand():
    """Metamorphic: Stack == separate layer nodes with the same weights; residual = layer output + its input."""
    x = rg.Input("x", features=3)
    h1 = rg.Recurrent(rg.RNN(5), name="a")(x)
    h2 = rg.Bidirectional(rg.RNN(2), merge="concat", name="b")(h1)
    h3 = rg.Recurrent(rg.SRN(4), reverse=True, name="c")(h2)
    chain = rg.Model(x, {"h1": h1, "h2": h2, "h3": h3})
    plain = rg.Model(x, {"y": rg.Stack([rg.RNN(5), rg.Bidirectional(rg.RNN(2)),
                                        rg.Recurrent(rg.SRN(4), reverse=True)])(x)})
    params = plain.init(8)
    chain_params = {k.replace("stack0/l0", "a").replace("stack0/l1", "b").replace("stack0/l2", "c"): v
                    for k, v in params.items()}
    feeds = plain.example_inputs(batch=4, time=6, seed=8)
    got, ref = run_ort(plain, params, feeds), run_ort(chain, chain_params, feeds)
    assert_close(got["y"], ref["h3"], "reference", "stack vs chain")

    residual = rg.Model(x, {"y": rg.Stack([rg.RNN(5), rg.Recurrent(rg.RNN(5), name="b")], residual=True)(x)})
    x2 = rg.Input("x", features=3)
    g1 = rg.Recurrent(rg.RNN(5), name="a")(x2)
    chain2 = rg.Model(x2, {"h1": g1, "h2": rg.Recurrent(rg.RNN(5), name="b")(g1)})
    params = residual.init(9)
    chain_params = {k.replace("stack0/l0", "a").replace("stack0/b", "b"): v for k, v in params.items()}
    got, ref = run_ort(residual, params, feeds), run_ort(chain2, chain_params, feeds)
    assert_close(got["y"], ref["h2"] + ref["h1"], "reference", "residual = layer(h) + h")


def test_state_lists_every_layer_bottom_first():
    x = rg.Input("x", features=3)
    stack = rg.Stack([rg.RNN(2), rg.Bidirectional((rg.RNN(3), rg.SRN(4))), rg.RNN(5)], returns="state")
    assert stack.final_state_sizes() == {"l0/h": 2, "l1/fw/h": 3, "l1/bw/h": 4, "l2/h": 5}
    model = rg.Model(x, {f"s{i}": t for i, t in enumerate(stack(x))})
    got = assert_matches(model, batch=3, time=6)
    assert [got[f"s{i}"].shape[1] for i in range(4)] == [2, 3, 4, 5]


def test_last_of_a_residual_top_layer_reads_the_summed_sequence():
    for reverse in (False, True):
        x = rg.Input("x", features=4)
        seq, last = rg.Stack([rg.RNN(4), rg.Recurrent(rg.RNN(4), reverse=reverse)], residual=(0, 1),
                             returns=("sequence", "last"))(x)
        model = rg.Model(x, {"seq": seq, "last": last})
        params = model.init(3)
        feeds = model.example_inputs(batch=3, time=5, seed=3)
        feeds["lengths"] = np.array([5, 2, 4], dtype=np.int64)
        got = assert_matches(model, params, feeds=feeds)
        for b, n in enumerate(feeds["lengths"]):
            assert_close(got["last"][b], got["seq"][b, 0 if reverse else n - 1], "reference", f"row {b}")


def test_agrees_with_pytorch_two_bidirectional_layers():
    torch = pytest.importorskip("torch")
    rnn = torch.nn.RNN(4, 3, num_layers=2, batch_first=True, bidirectional=True)
    x = rg.Input("x", features=4)
    model = rg.Model(x, {"y": rg.Stack([rg.Bidirectional(rg.RNN(3)), rg.Bidirectional(rg.RNN(3))])(x)})
    sd = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    params = {}
    for layer in (0, 1):
        for d, suffix in (("fw", ""), ("bw", "_reverse")):
            key = f"l{layer}{suffix}"
            params[f"stack0/l{layer}/{d}/W"] = sd[f"weight_ih_{key}"]
            params[f"stack0/l{layer}/{d}/R"] = sd[f"weight_hh_{key}"]
            params[f"stack0/l{layer}/{d}/B"] = np.concatenate([sd[f"bias_ih_{key}"], sd[f"bias_hh_{key}"]])
    feeds = model.example_inputs(batch=3, time=6, seed=1)
    feeds["lengths"] = np.array([6, 2, 4], dtype=np.int64)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(feeds["x"]), torch.from_numpy(feeds["lengths"]),
                                                     batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=6)
    assert_close(run_ort(model, params, feeds)["y"], out.detach().numpy(), "float32", "stack vs torch")


def test_graph_size_does_not_depend_on_time():
    model = stacked("deep_partly_residual")
    assert_size_independent_of_time(model, model.init(0), nodes={"scan": 204, "native": 266})
    # native: each op sits in both branches of its NaN-rule If (rnngraph/compiler/nan_rule.py), 189 before


def test_parameters_are_named_per_layer():
    x = rg.Input("x", features=3)
    stack = rg.Stack([rg.RNN(2), rg.Bidirectional(rg.RNN(4)), rg.Recurrent(rg.RNN(5), name="top")])
    model = rg.Model(x, {"y": stack(x)})
    assert {k: v.shape for k, v in model.param_specs().items()} == {
        "stack0/l0/W": (2, 3), "stack0/l0/R": (2, 2), "stack0/l0/B": (4,),
        "stack0/l1/fw/W": (4, 2), "stack0/l1/fw/R": (4, 4), "stack0/l1/fw/B": (8,),
        "stack0/l1/bw/W": (4, 2), "stack0/l1/bw/R": (4, 4), "stack0/l1/bw/B": (8,),
        "stack0/top/W": (5, 8), "stack0/top/R": (5, 5), "stack0/top/B": (10,),
    }


def test_residual_between_different_widths_is_refused():
    with pytest.raises(ModelError, match=r"deep: the residual connection around layer 1 \(l1: "
                                         r"Recurrent\(RNN\(hidden=5\)\)\) needs equal input and output widths, "
                                         r"received input 4 and output 5. "
                                         r"Make the widths equal or leave that layer out of `residual`"):
        rg.Stack([rg.RNN(4), rg.RNN(5)], residual=True, name="deep")


def test_residual_around_the_first_layer_checks_the_input_width():
    x = rg.Input("x", features=3)
    with pytest.raises(ModelError, match=r"Stack: the residual connection around layer 0 \(l0: Recurrent\(RNN\("
                                         r"hidden=4\)\)\) needs equal input and output widths, received input 3 "
                                         r"and output 4"):
        rg.Stack([rg.RNN(4)], residual=(0,))(x)


@pytest.mark.parametrize("residual", ["yes", (3,), (-1,), (True,), 1])
def test_bad_residual_is_refused(residual):
    with pytest.raises(ModelError, match=r"Stack: invalid value for `residual`: expected True, False or a tuple of "
                                         r"layer indices in 0..1, received"):
        rg.Stack([rg.RNN(4), rg.RNN(4)], residual=residual)


@pytest.mark.parametrize("layers,match", [
    ([], r"invalid value for `layers`: expected a non-empty list of cells, Recurrent\(...\) or "
         r"Bidirectional\(...\), received \(\)"),
    (None, r"invalid value for `layers`: expected a non-empty list"),
    ([rg.RNN(3), rg.Dense(3)], r"invalid value for `layers\[1\]`: expected a cell, Recurrent\(...\) or "
                               r"Bidirectional\(...\), received Dense"),
    ([rg.Recurrent(rg.RNN(3), returns="last")], r"invalid value for `layers\[0\].returns`: expected 'sequence' "
                                                r"\(the layer above reads every step\), received 'last'. Give "
                                                r"`returns` to the Stack itself"),
    ([rg.Recurrent(rg.RNN(3), name="a"), rg.Recurrent(rg.RNN(3), name="a")],
     r"invalid value for `layers\[1\].name`: expected a name no other layer of the stack has, received 'a'"),
])
def test_bad_layers_are_refused(layers, match):
    with pytest.raises(ModelError, match=r"Stack: " + match):
        rg.Stack(layers)


def test_last_of_a_residual_bidirectional_top_is_refused():
    with pytest.raises(ModelError, match=r"Stack: returns='last' is undefined when the top layer \(l1\) is a "
                                         r"residual Bidirectional; .* or returns='mean' / 'max'"):
        rg.Stack([rg.RNN(4), rg.Bidirectional(rg.RNN(2))], residual=True, returns="last")


def test_stack_on_a_vector_is_refused():
    v = rg.Input("v", features=3, sequence=False)
    with pytest.raises(ModelError, match=r"Stack: input `x` must be a sequence of features, received vector"):
        rg.Stack([rg.RNN(3)])(v)


def test_readme_section_runs_and_verifies():
    import re

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "rg.Stack(" in b)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    outputs = {k: ns[k] for k in ("v", "h", "memory", "context", "deep", "dec")}
    model = rg.Model([ns["x"], ns["tgt"]], outputs)
    for lowering in ("scan", "native"):
        assert_matches(model, batch=3, time=6, lowering=lowering)
