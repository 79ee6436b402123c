"""The converters route through the cell registry, and the silent mistakes of filling a model are errors.

No framework needed: weights are random arrays in the frameworks' layouts.
"""

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.dsl import registry
from rnngraph.errors import ParameterError
from rnngraph.interop import (
    LayerWeights,
    ParamsLoader,
    from_keras,
    from_pytorch,
    set_node_params,
    to_keras,
    to_pytorch,
)
from rnngraph.interop.layouts import FRAMEWORKS, CellLayout, layout

FEATURES, HIDDEN = 4, 5


def random_local(cell, seed=0, features=FEATURES):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s.shape).astype(np.float32) for k, s in cell.param_specs(features).items()}


def convertible(cell, framework):
    try:
        layout(cell, framework)
    except rg.ModelError:
        return False
    return True


# -- the registry catalogue -------------------------------------------------------
@pytest.mark.parametrize("entry", registry.entries(), ids=lambda e: e.name)
def test_every_cell_converts_through_its_registered_layout_or_is_refused(entry):
    for cell in entry.examples:
        if "interop" not in entry.implementations:
            for convert in (lambda c: from_pytorch(c, {}), lambda c: from_keras(c, []),
                            lambda c: to_pytorch(c, {}), lambda c: to_keras(c, {})):
                with pytest.raises(registry.UnsupportedCellError,
                                   match=rf"{entry.name}\(.*\) has no (PyTorch|Keras) counterpart .* has no "
                                         r"'interop' implementation"):
                    convert(cell)
            continue
        assert isinstance(registry.implementation(cell, "interop"), CellLayout)
        local = random_local(cell, seed=len(entry.examples))
        if convertible(cell, "pytorch"):
            back = from_pytorch(cell, to_pytorch(cell, local, layer=2, reverse=True), layer=2, reverse=True)
            assert all(np.array_equal(back[k], local[k]) for k in local), cell.describe()
        if convertible(cell, "keras"):
            back = from_keras(cell, to_keras(cell, local))
            two_biases = layout(cell, "keras").keras_two_biases(cell)
            # Keras keeps Wb + Rb where it has one bias: W and R exactly, the bias sum exactly
            assert np.array_equal(back["W"], local["W"]) and np.array_equal(back["R"], local["R"])
            wb, rb = np.split(back["B"], 2)
            want_wb, want_rb = np.split(local["B"], 2)
            if two_biases:
                assert np.array_equal(wb, want_wb) and np.array_equal(rb, want_rb)
            else:
                np.testing.assert_allclose(wb + rb, want_wb + want_rb, rtol=1e-6, atol=1e-6)


def test_options_a_framework_lacks_are_refused():
    with pytest.raises(rg.ModelError, match=r"RNN\(hidden=5\): torch.nn.RNN computes with nonlinearity 'tanh' or "
                                            r"'relu', not 'sigmoid'"):
        to_pytorch(rg.RNN(HIDDEN, activation="sigmoid"), random_local(rg.RNN(HIDDEN)))
    with pytest.raises(rg.ModelError, match=r"Keras has no LSTM with peepholes"):
        from_keras(rg.LSTM(HIDDEN, peephole=True), [])
    assert set(FRAMEWORKS) == {"pytorch", "keras"}


# -- what the converters accept ---------------------------------------------------
def test_from_pytorch_refuses_what_is_not_a_state_dict():
    state = to_pytorch(rg.LSTM(HIDDEN), random_local(rg.LSTM(HIDDEN)))
    with pytest.raises(ParameterError, match=r"from_pytorch: expected a state dict .* received generator; an iterator "
                                             r"such as module.named_parameters\(\) .* pass module.state_dict\(\)"):
        from_pytorch(rg.LSTM(HIDDEN), (item for item in state.items()))
    with pytest.raises(ParameterError, match=r"received list; an iterator"):
        from_pytorch(rg.LSTM(HIDDEN), list(state.items()))

    class Module:
        def state_dict(self):
            return state

    with pytest.raises(ParameterError, match=r"received Module; pass module.state_dict\(\), or import the whole "
                                             r"module with rnngraph.interop.import_pytorch\(module\)"):
        from_pytorch(rg.LSTM(HIDDEN), Module())
    with pytest.raises(ParameterError, match=r"weight_ih_l0: expected an array of numbers, received str"):
        from_pytorch(rg.LSTM(HIDDEN), {**state, "weight_ih_l0": "weights"})
    with pytest.raises(ParameterError, match=r"invalid value for `reverse`: expected True or False, received 1"):
        from_pytorch(rg.LSTM(HIDDEN), state, reverse=1)


def test_from_keras_refuses_a_bidirectionals_six_arrays():
    cell = rg.GRU(HIDDEN, linear_before_reset=True)
    one = to_keras(cell, random_local(cell))
    for weights in (one + one, one[:2] + one[:2]):  # with and without biases
        with pytest.raises(ParameterError, match=rf"received {len(weights)} arrays, but one layer has at most 3 .* "
                                                 r"from_keras\(cell, bidi.backward_layer.get_weights\(\), "
                                                 r"reverse=True\)"):
            from_keras(cell, weights)
    with pytest.raises(ParameterError, match=r"unknown names \['backward_kernel'\]"):
        from_keras(cell, {"kernel": one[0], "recurrent_kernel": one[1], "backward_kernel": one[0]})
    with pytest.raises(ParameterError, match=r"expected layer.get_weights\(\) .* received ndarray"):
        from_keras(cell, one[0])


# -- filling a model --------------------------------------------------------------
def bidirectional_stack_model():
    x = rg.Input("x", features=FEATURES)
    cell = rg.LSTM(HIDDEN)
    h = rg.Stack([cell, rg.Bidirectional(cell), rg.Recurrent(cell, reverse=True)], name="enc")(x)
    return rg.Model(x, {"y": rg.Dense(3, name="head")(h)})


def test_direction_of_the_weights_must_match_the_slot():
    model = bidirectional_stack_model()
    cell = rg.LSTM(HIDDEN)
    forward = (to_pytorch(cell, random_local(cell, 1, HIDDEN), layer=1)
               | to_pytorch(cell, random_local(cell, 2, HIDDEN), layer=1, reverse=True))
    loader = ParamsLoader(model)
    with pytest.raises(ParameterError, match=r"`enc/l1/bw` runs backward over time, but these are the forward "
                                             r"direction's weights \(PyTorch `weight_ih_l1`\); read them with "
                                             r"reverse=True"):
        loader.set("enc/l1/bw", from_pytorch(cell, forward, layer=1))
    with pytest.raises(ParameterError, match=r"`enc/l1/fw` runs forward over time, but these are the backward "
                                             r"direction's weights"):
        loader.set("enc/l1/fw", from_pytorch(cell, forward, layer=1, reverse=True))
    keras = to_keras(cell, random_local(cell, 3, 2 * HIDDEN))
    with pytest.raises(ParameterError, match=r"`enc/l2` runs backward over time, .* \(Keras weights "
                                             r"\(reverse=False\)\); read them with reverse=True"):
        loader.set("enc/l2", from_keras(cell, keras))
    loader.set("enc/l1/bw", from_pytorch(cell, forward, layer=1, reverse=True))
    loader.set("enc/l2", from_keras(cell, keras, reverse=True))
    assert np.array_equal(loader.values["enc/l1/bw/W"], from_pytorch(cell, forward, layer=1, reverse=True)["W"])
    # plain arrays carry no direction: the caller vouches for them
    loader.set("enc/l1/fw", dict(from_pytorch(cell, forward, layer=1, reverse=True)))


def test_weights_converted_for_another_cell_are_refused():
    x = rg.Input("x", features=FEATURES)
    model = rg.Model(x, {"y": rg.Recurrent(rg.GRU(HIDDEN, linear_before_reset=False), name="rec")(x)})
    other = rg.GRU(HIDDEN, linear_before_reset=True)
    local = from_keras(other, to_keras(other, random_local(other)))
    with pytest.raises(ParameterError, match=r"`rec` holds GRU\(hidden=5, linear_before_reset=False\), but these "
                                             r"weights were converted for GRU\(hidden=5, linear_before_reset=True\)"):
        set_node_params(model, model.init(0), "rec", local)
    dense = bidirectional_stack_model()
    with pytest.raises(ParameterError, match=r"`head` is not a recurrent layer, but these are weights of "
                                             r"LSTM\(hidden=5\)"):
        ParamsLoader(dense).set("head", from_pytorch(rg.LSTM(HIDDEN), to_pytorch(rg.LSTM(HIDDEN),
                                                                                  random_local(rg.LSTM(HIDDEN)))))


def test_loader_reports_the_nodes_never_set():
    model = bidirectional_stack_model()
    cell = rg.LSTM(HIDDEN)
    loader = ParamsLoader(model)
    assert loader.nodes() == ["enc/l0", "enc/l1/fw", "enc/l1/bw", "enc/l2", "head"]
    loader.set("enc/l0", random_local(cell, 4)).set("enc/l1/fw", random_local(cell, 5, HIDDEN))
    loader.set("head", {"W": np.ones((3, HIDDEN))})  # b left out
    assert loader.unset_nodes() == ["enc/l1/bw", "enc/l2", "head"]
    assert loader.unset() == ["enc/l1/bw/W", "enc/l1/bw/R", "enc/l1/bw/B", "enc/l2/W", "enc/l2/R", "enc/l2/B",
                              "head/b"]
    with pytest.raises(ParameterError, match=r"nodes \['enc/l1/bw', 'enc/l2', 'head'\] were never set .* "
                                             r"pass rest=model.init\(seed\)"):
        loader.params()
    rest = model.init(9)
    params = loader.params(rest=rest)
    assert list(params) == list(model.param_specs())
    assert np.array_equal(params["enc/l2/R"], rest["enc/l2/R"])
    assert np.array_equal(params["enc/l0/W"], random_local(cell, 4)["W"])
    assert params["head/W"].dtype == np.float32 and params["head/W"].sum() == 3 * HIDDEN
    with pytest.raises(ParameterError, match=r"model 'model' has no node `enc/l1` with parameters; its nodes with "
                                             r"parameters are \['enc/l0', 'enc/l1/fw', 'enc/l1/bw', 'enc/l2', "
                                             r"'head'\]"):
        loader.set("enc/l1", random_local(cell, 0, HIDDEN))
    with pytest.raises(ParameterError, match=r"no parameter `head/P`; node `head` holds \['W', 'b'\]"):
        loader.set("head", {"P": np.zeros(3)})
    with pytest.raises(ParameterError, match=r"parameter `head/b`: expected shape \(3,\), received \(4,\)"):
        loader.set("head", {"b": np.zeros(4)})


def test_layer_weights_remember_cell_and_direction():
    cell = rg.RNN(HIDDEN, activation="relu")
    local = from_pytorch(cell, to_pytorch(cell, random_local(cell)), reverse=False)
    assert isinstance(local, LayerWeights) and local.cell == cell and local.reverse is False
    assert sorted(local) == ["B", "R", "W"] and all(v.dtype == np.float32 for v in local.values())


def test_interop_imports_neither_framework():
    """The converters and importers read framework objects by duck typing: importing them loads neither."""
    import subprocess
    import sys

    code = ("import sys, rnngraph.interop; "
            "assert not {'torch', 'keras', 'tensorflow'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
