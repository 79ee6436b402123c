"""Model descriptions: every model to JSON and back, JSON/TOML files, the schema, errors with key path and line."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

import rnngraph as rg
from rnngraph.dsl import registry
from rnngraph.dsl.description import load_description, parse_json, schema_text, toml_line
from rnngraph.dsl.fields import DescriptionError
from rnngraph.errors import RnnGraphError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.verify import load_model_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples").glob("*.py"))


def topologies(cell: rg.Cell) -> dict[str, rg.Model]:
    """`cell` in every wrapper that takes a cell, with non-default options wherever there are some."""
    x = rg.Input("x", features=4, lengths="lens", time="steps")
    v = rg.Input("v", features=3, sequence=False)
    n = rg.Input("n", count=True)
    models = {
        "recurrent": rg.Model(x, rg.Recurrent(cell, reverse=True, returns=("sequence", "state"))(x)[0]),
        "bidirectional": rg.Model(x, rg.Bidirectional((cell, cell), merge="concat", returns="last")(x)),
        "stack": rg.Model(x, rg.Stack([cell, rg.Bidirectional(cell), rg.Recurrent(cell, reverse=True)])(x)),
        "generate": rg.Model([v, n], rg.Generate(cell, mode="every", readout=rg.Dense(5, "softmax"),
                                                  feedback="argmax", embedding=3, tokens=True)(v, n)[0]),
        "generative": rg.Model([x, n], rg.Generative(cell, feed_input=False, name="gen")(x, n)[0]),
    }
    src = rg.Input("src", tokens=9)
    memory = rg.Recurrent(rg.GRU(6, linear_before_reset=False))(rg.Embedding(9, 4)(src))
    decoder = rg.Decoder(cell, attention=rg.Attention("general"), context="all_dense", use="every", pool="max",
                         readout=rg.Dense(7, "softmax"), embedding=3, bos=1, eos=2, pad=0, max_len=5)
    models["decoder"] = rg.Model(src, dict(zip(("tokens", "scores", "weights"), decoder.greedy(memory),
                                               strict=True)))
    return models


CASES = [(f"{type(cell).__name__}{i}-{topology}", cell, topology)
         for i, cell in enumerate(registry.examples()) for topology in topologies(cell)]


def assert_same_model(a: rg.Model, b: rg.Model) -> None:
    """Same name, inputs, outputs, node names, layers (all fields but the name), wiring and parameter specs."""
    assert (a.name, a.inputs, a.outputs, a.lengths) == (b.name, b.inputs, b.outputs, b.lengths)
    assert [n for n, _ in a.nodes()] == [n for n, _ in b.nodes()]
    for (name, node_a), (_, node_b) in zip(a.nodes(), b.nodes(), strict=True):
        assert dataclasses.replace(node_a.layer, name=None) == dataclasses.replace(node_b.layer, name=None), name
        assert a.sources(name) == b.sources(name)
    assert {k: s.shape for k, s in a.param_specs().items()} == {k: s.shape for k, s in b.param_specs().items()}


@pytest.mark.parametrize("label,cell,topology", CASES, ids=[c[0] for c in CASES])
def test_every_cell_in_every_topology_round_trips(label, cell, topology):
    model = topologies(cell)[topology]
    text = model.to_json()
    again = rg.Model.from_json(text)
    assert_same_model(model, again)
    assert again.to_json() == text
    assert json.loads(text)["layers"][-1]["type"] != ""


def test_the_catalogue_covers_every_registered_cell():
    assert {type(c) for _, c, _ in CASES} == {e.cell_type for e in registry.entries()}
    assert len(CASES) == 6 * len(registry.examples())


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_round_trips_to_the_same_export(path):
    mf = load_model_file(path)
    again = rg.Model.from_json(mf.model.to_json())
    assert_same_model(mf.model, again)
    assert build_model_proto(again, mf.params).SerializeToString() == \
        build_model_proto(mf.model, mf.params).SerializeToString()


@pytest.mark.parametrize("description,python", [("classic_rnn.json", "classic_rnn.py"), ("lstm.toml", "lstm.py")])
def test_shipped_descriptions_export_the_bytes_of_their_python_twins(tmp_path, description, python):
    from rnngraph.cli import main

    for name in (description, python):
        assert main(["export", str(ROOT / "samples" / name), "-o", str(tmp_path / f"{name}.onnx")]) == 0
    assert (tmp_path / f"{description}.onnx").read_bytes() == (tmp_path / f"{python}.onnx").read_bytes()


def test_the_shipped_schema_is_the_generated_one():
    shipped = (ROOT / "rnngraph" / "dsl" / "model.schema.json").read_text()
    assert shipped == schema_text(), "regenerate: python -c 'from rnngraph.dsl.description import schema_text; " \
        "open(\"rnngraph/dsl/model.schema.json\", \"w\").write(schema_text())'"
    schema = json.loads(shipped)
    cells = {e.name for e in registry.entries()}
    assert cells <= set(schema["$defs"])
    assert schema["$defs"]["LSTM"]["properties"]["peephole"] == {"type": "boolean", "default": False}
    assert schema["$defs"]["GRU"]["required"] == ["type", "hidden", "linear_before_reset"]


def test_defaults_may_be_left_out_and_false_stands_for_null():
    doc = {"name": "m", "inputs": [{"name": "x", "features": 3, "lengths": False}],
           "layers": [{"name": "r", "type": "Recurrent", "inputs": {"x": "x"}, "cell": {"type": "LSTM", "hidden": 5}}],
           "outputs": {"y": "r"}}
    model = rg.Model.from_dict(doc)
    assert model.inputs["x"].lengths is None and not model.lengths
    layer = model.graph.nodes["r"]["node"].layer
    assert layer.cell == rg.LSTM(5) and layer.returns == "sequence"
    full = model.to_dict()
    assert full["inputs"][0] == {"name": "x", "features": 3, "lengths": None, "time": "time"}
    assert full["layers"][0]["cell"] == {"type": "LSTM", "hidden": 5, "peephole": False, "coupled": False}


# -- errors -------------------------------------------------------------------------------------------------------
JSON_DOC = """{
  "name": "m",
  "inputs": [{"name": "x", "features": 3}],
  "layers": [
    {"name": "r", "type": "Recurrent", "inputs": {"x": "x"},
     "cell": {"type": "LSTM", "hidden": 5}},
    {"name": "d", "type": "Dense", "inputs": {"x": "r"}, "units": 2}
  ],
  "outputs": {"y": "d"}
}
"""


@pytest.mark.parametrize("old,new,message", [
    ('"hidden": 5', '"hiden": 5', r"bad.json:6: layers\[0\].cell.hiden: unknown key for LSTM; did you mean 'hidden'\?"),
    ('"hidden": 5', '"hidden": "5"', r"bad.json:6: layers\[0\].cell.hidden: expected an integer, received '5'"),
    ('"hidden": 5', '"hidden": 0', r"bad.json:6: layers\[0\].cell: LSTM\(hidden=0\): invalid value for `hidden`: "
                                   r"expected a positive integer, received 0"),
    ('"type": "LSTM"', '"type": "LTSM"', r"bad.json:6: layers\[0\].cell.type: expected one of .* received 'LTSM'; "
                                         r"did you mean 'LSTM'\?"),
    ('{"x": "r"}', '{"x": "q"}', r"bad.json:7: layers\[1\].inputs.x: 'q' is not an input nor a layer listed before "
                                 r"this one \(known: x, r\)"),
    ('{"x": "r"}', '{"x": "r:1"}', r"bad.json:7: layers\[1\].inputs.x: 'r' has 1 output\(s\), so index 1"),
    ('"units": 2', '"units": 2, "activation": "softplus"',
     r"bad.json:7: layers\[1\]: d: invalid value for `activation`: expected one of"),
    ('"y": "d"', '"1y": "d"', r"bad.json:9: outputs: model 'm': output name '1y' must be a valid identifier"),
    ('"name": "m"', '"name": "m", "extra": 1', r"bad.json:2: extra: unknown key; a model description has"),
    ('"units": 2}', '"units": 2,}', r"bad.json:7:\d+: not valid JSON"),
])
def test_json_errors_name_the_key_path_and_line(tmp_path, old, new, message):
    path = tmp_path / "bad.json"
    assert old in JSON_DOC
    path.write_text(JSON_DOC.replace(old, new, 1))
    with pytest.raises(DescriptionError, match=message):
        load_description(path)


def test_json_line_map_follows_every_value():
    _, lines = parse_json(JSON_DOC)
    assert lines[("layers", 0, "cell", "hidden")] == 6
    assert lines[("layers", 1, "units")] == 7
    assert lines[("outputs", "y")] == 9


TOML_DOC = (ROOT / "samples" / "lstm.toml").read_text()


@pytest.mark.parametrize("old,new,key,message", [
    ('hidden = 32', 'hidden = -1', "hidden", r"lstm.toml:\d+: layers\[0\].cell: LSTM\(hidden=-1\)"),
    ('units = 12 ', 'unit = 12 ', "unit", r"lstm.toml:\d+: layers\[1\].unit: unknown key for Dense; did you mean"),
    ('features = 16', 'features = 16.5', "features", r"lstm.toml:\d+: inputs\[0\].features: expected an integer"),
])
def test_toml_errors_name_the_key_path_and_line(tmp_path, old, new, key, message):
    path = tmp_path / "lstm.toml"
    assert old in TOML_DOC
    text = TOML_DOC.replace(old, new, 1)
    path.write_text(text)
    with pytest.raises(DescriptionError, match=message) as info:
        load_description(path)
    line = int(str(info.value).split(":")[1])
    assert key in text.splitlines()[line - 1]


def test_toml_line_finds_the_nth_array_table():
    assert TOML_DOC.splitlines()[toml_line(TOML_DOC, ("layers", 1, "units")) - 1].startswith("units = 12")
    assert TOML_DOC.splitlines()[toml_line(TOML_DOC, ("outputs", "tags")) - 1] == 'tags = "dense0"'


def test_description_errors_are_rnngraph_errors_and_undescribable_layers_are_refused():
    assert issubclass(DescriptionError, RnnGraphError)

    @dataclasses.dataclass(frozen=True)
    class Mystery(rg.RNN):
        pass

    x = rg.Input("x", features=2)
    model = rg.Model(x, rg.Recurrent(Mystery(3))(x))
    with pytest.raises(DescriptionError, match="Mystery cannot be written to a model description.*register_cell"):
        model.to_json()
    with pytest.raises(DescriptionError, match=r"version: this rnngraph reads version 1, received 2"):
        rg.Model.from_dict({"version": 2, "inputs": [], "layers": [], "outputs": {}})


def test_from_json_takes_text_or_a_file(tmp_path):
    text = (ROOT / "samples" / "classic_rnn.json").read_text()
    from_text = rg.Model.from_json(text)
    from_file = rg.Model.from_json(ROOT / "samples" / "classic_rnn.json")
    from_toml = rg.Model.from_json(str(ROOT / "samples" / "lstm.toml"))
    assert from_text.to_json() == from_file.to_json() and from_toml.name == "lstm_tagger"
    with pytest.raises(DescriptionError, match=r"'m.yaml': a model description is a .json or .toml file"):
        rg.Model.from_json("m.yaml")
    with pytest.raises(DescriptionError, match=r"cannot read '.*none.json': No such file"):
        rg.Model.from_json(tmp_path / "none.json")
