"""Triton model repositories: the config parses into Triton's own ModelConfig message (from the tritonclient
package) and describes the exported graph; the model in the repository answers batched requests as Triton's
dynamic batcher would send them (rows of several requests concatenated, then split) exactly as one at a time."""

from __future__ import annotations

import pathlib
from types import ModuleType

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.errors import ExportError
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.exporters.triton import triton_config, write_triton_repository
from rnngraph.runtime import oracle
from rnngraph.runtime.session import Session
from rnngraph.verify import compare, load_model_file

SAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "samples").glob("*.py"))


def parse(text: str, model_config_pb2: ModuleType) -> object:
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_config_parses_and_matches_the_graph(path, tmp_path, model_config_pb2):
    mf = load_model_file(path)
    proto = build_model_proto(mf.model, mf.params)
    folder = write_triton_repository(proto, tmp_path, path.stem, max_batch_size=16)
    config = parse((folder / "config.pbtxt").read_text(), model_config_pb2)
    assert config.name == path.stem and config.backend == "onnxruntime"
    counts = [n for n, s in mf.model.inputs.items() if s.kind == "scalar"]
    assert config.max_batch_size == (0 if counts else 16)
    assert config.HasField("dynamic_batching") == (not counts)
    graph_inputs = {i.name: i for i in proto.graph.input}
    assert [i.name for i in config.input] == list(graph_inputs)
    for entry in config.input:
        rank = len(graph_inputs[entry.name].type.tensor_type.shape.dim)
        if rank == 0 or (rank == 1 and not counts):  # a count, or (batch,) one value per row
            assert list(entry.dims) == [1] and list(entry.reshape.shape) == []
        else:
            assert len(entry.dims) == (rank if counts else rank - 1)
    assert [o.name for o in config.output] == [o.name for o in proto.graph.output]
    # the repository's model is the export
    assert (folder / "1" / "model.onnx").read_bytes() == proto.SerializeToString()


def test_dims_and_types_of_a_tagger(model_config_pb2):
    x = rg.Input("x", features=6)
    model = rg.Model(x, {"y": rg.Dense(4, "softmax")(rg.Recurrent(rg.GRU(5, linear_before_reset=True))(x))})
    config = parse(triton_config(build_model_proto(model, model.init(0)), "tagger", 8), model_config_pb2)
    got = {e.name: (model_config_pb2.DataType.Name(e.data_type), list(e.dims)) for e in [*config.input, *config.output]}
    assert got == {"x": ("TYPE_FP32", [-1, 6]), "lengths": ("TYPE_INT64", [1]), "y": ("TYPE_FP32", [-1, 4])}


def test_dynamic_batching_as_triton_does_it(tmp_path):
    """Rows of three requests of equal shape, concatenated along the batch axis, give each request's own answer."""
    tokens = rg.Input("src", tokens=9)
    memory = rg.Recurrent(rg.LSTM(7))(rg.Embedding(9, 5)(tokens))
    model = rg.Model(tokens, {"v": rg.Recurrent(rg.RNN(3), returns="last")(memory)})
    params = model.init(3)
    folder = write_triton_repository(build_model_proto(model, params), tmp_path, "enc")
    session = Session(folder / "1" / "model.onnx")
    requests = [model.example_inputs(batch, 6, seed) for batch, seed in ((1, 0), (2, 1), (3, 2))]
    batched = session.run(**{k: np.concatenate([r[k] for r in requests]) for k in requests[0]})["v"]
    start = 0
    for request in requests:
        rows = len(request["src"])
        alone = session.run(**request)["v"]
        np.testing.assert_array_equal(batched[start:start + rows], alone)
        assert compare("v", alone, oracle.run(model, params, **request)["v"]).ok
        start += rows


def test_gpu_instances(model_config_pb2):
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Recurrent(rg.LSTM(3))(x)})
    config = parse(triton_config(build_model_proto(model, model.init(0)), "m", device="gpu"), model_config_pb2)
    assert [model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group] == ["KIND_GPU"]


def test_a_count_input_turns_batching_off(model_config_pb2):
    v = rg.Input("v", features=3, sequence=False)
    n = rg.Input("n", count=True)
    model = rg.Model([v, n], {"y": rg.Generate(rg.RNN(4))(v, n)})
    config = parse(triton_config(build_model_proto(model, model.init(0)), "gen"), model_config_pb2)
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert {e.name: list(e.dims) for e in config.input} == {"v": [-1, 3], "n": [1]}
    assert list(config.input[1].reshape.shape) == []
    assert {e.name: list(e.dims) for e in config.output} == {"y": [-1, -1, 4]}


def test_bad_names_and_sizes_are_refused(tmp_path):
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Recurrent(rg.RNN(2))(x)})
    proto = build_model_proto(model, model.init(0))
    with pytest.raises(ExportError, match=r"invalid Triton model name '../up'"):
        write_triton_repository(proto, tmp_path, "../up")
    with pytest.raises(ExportError, match=r"`max_batch_size`: expected a positive integer, received 0"):
        write_triton_repository(proto, tmp_path, "m", max_batch_size=0)
    with pytest.raises(ExportError, match=r"`device`: expected one of \['cpu', 'gpu'\], received 'tpu'"):
        write_triton_repository(proto, tmp_path, "m", device="tpu")
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match=r"it is a file"):
        write_triton_repository(proto, tmp_path / "file", "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
