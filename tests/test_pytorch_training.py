"""Training through the PyTorch backend: gradients, masks, the round trip to ONNX, clear errors, its registry.

- `torch.autograd.gradcheck` (float64, tiny sizes) for every registered cell, on the fused
  kernels and the plain time loop, forward and backward runs, ragged rows;
- a few optimizer steps, then the exported model in onnxruntime equals the module (1e-5);
- Clockwork weights outside the block mask stay exactly zero; ESN reservoirs stay fixed;
- every registered cell has a PyTorch implementation, and a cell without one is refused by name.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnngraph as rg  # noqa: E402
from rnngraph.dsl import registry  # noqa: E402
from rnngraph.dsl.cells.base import Cell  # noqa: E402
from rnngraph.dsl.registry import UnsupportedCellError  # noqa: E402
from rnngraph.errors import InputError  # noqa: E402
from rnngraph.exporters.onnx import build_model_proto  # noqa: E402
from rnngraph.pytorch import TorchModel, param_key, param_name  # noqa: E402
from rnngraph.runtime.session import Session  # noqa: E402
from tests.test_pytorch_oracle import CELLS  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: float32 module vs float32 onnxruntime after training
EXPORT_ATOL = 1e-5


def tiny_model(cell: Cell) -> rg.Model:
    """A forward run (sequence, states) and a backward run (last) over ragged rows, a Dense on top."""
    x = rg.Input("x", features=2)
    fw = rg.Recurrent(cell, returns=("sequence", "state"))(x)
    bw = rg.Recurrent(cell, reverse=True, returns="last")(x)
    return rg.Model(x, {"y": rg.Dense(2)(fw[0]), "bw": bw} | {f"s{i}": s for i, s in enumerate(fw[1:])})


def gradcheck_model(model: rg.Model, feeds: dict[str, np.ndarray], float_input: str | None) -> None:
    """gradcheck of the sum of every float output (weighted at random) w.r.t. every weight and the input."""
    net = TorchModel(model, model.init(seed=3), dtype=torch.float64)
    names = list(net.weights.keys())
    inputs = [net.weights[k].detach().clone().requires_grad_(True) for k in names]
    x = torch.tensor(feeds[float_input], dtype=torch.float64, requires_grad=True) if float_input else None
    rng = np.random.default_rng(0)
    with torch.no_grad():
        mix = {k: torch.as_tensor(rng.standard_normal(v.shape)) for k, v in net(**feeds).items()
               if v.is_floating_point()}

    def f(*args: torch.Tensor) -> torch.Tensor:
        weights = {f"weights.{k}": value for k, value in zip(names, args[: len(names)], strict=True)}
        out = torch.func.functional_call(net, weights, (), feeds | ({float_input: args[-1]} if float_input else {}))
        return sum(((out[k] * w).sum() for k, w in mix.items()), torch.zeros((), dtype=torch.float64))

    assert torch.autograd.gradcheck(f, (*inputs, *([x] if x is not None else [])), eps=1e-6, atol=1e-6,
                                     fast_mode=True)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradients_of_every_cell(cell: str) -> None:
    model = tiny_model(CELLS[cell])
    feeds = {"x": np.random.default_rng(1).standard_normal((3, 4, 2)), "lengths": np.array([4, 2, 1])}
    gradcheck_model(model, feeds, "x")


def attention_model() -> tuple[rg.Model, dict[str, np.ndarray]]:
    """A GRU encoder, an attention decoder with a peephole LSTM, teacher-forced; ragged source and target."""
    src = rg.Input("src", tokens=5)
    tgt = rg.Input("tgt", tokens=4, time="tgt_time", lengths="tgt_lengths")
    memory = rg.Recurrent(rg.GRU(3, linear_before_reset=True))(rg.Embedding(5, 2)(src))
    dec = rg.Decoder(rg.LSTM(3, peephole=True), attention=rg.Attention("additive", units=2), context="all_dense",
                     use="every", context_units=2, readout=rg.Dense(4, "softmax"), embedding=2)
    scores, weights = dec.teacher_forced(memory, tgt)
    feeds = {"src": np.array([[1, 4, 2], [3, 0, 0]]), "lengths": np.array([3, 1]),
             "tgt": np.array([[1, 3, 2], [1, 2, 0]]), "tgt_lengths": np.array([2, 3])}
    return rg.Model([src, tgt], {"scores": scores, "weights": weights}), feeds


def test_gradients_through_attention_decoding() -> None:
    gradcheck_model(*attention_model(), None)


@dataclass
class Task:
    model: rg.Model
    feeds: dict[str, np.ndarray]
    target: str


def tasks() -> dict[str, Task]:
    rng = np.random.default_rng(0)
    x = rg.Input("x", features=3)
    seq = {"x": rng.standard_normal((4, 6, 3)).astype(np.float32), "lengths": np.array([6, 3, 1, 5])}
    clockwork = rg.Model(x, {"y": rg.Dense(2)(rg.Recurrent(rg.Clockwork(6, periods=(1, 2, 4)))(x))})
    deep = rg.Model(x, {"y": rg.Dense(2)(rg.Stack([rg.Bidirectional(rg.LSTM(4, peephole=True), merge="sum"),
                                                   rg.GRU(4, linear_before_reset=False), rg.LSTM(4)],
                                                  residual=(2,), returns="mean")(x))})
    esn = rg.Model(x, {"y": rg.Recurrent(rg.ESN(8, outputs=2, density=0.5, feedback=True))(x)})
    return {"clockwork": Task(clockwork, seq, "y"), "deep": Task(deep, seq, "y"), "esn": Task(esn, seq, "y"),
            "attention": Task(*attention_model(), "scores")}


@pytest.mark.parametrize("name", sorted(tasks()))
def test_after_training_the_export_computes_what_the_module_computes(name: str) -> None:
    task = tasks()[name]
    params = task.model.init(seed=0)
    net = TorchModel(task.model, params)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(5):
        out = net(**task.feeds)[task.target]
        loss = (out - 0.3).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained = net.rnngraph_params()
    assert set(trained) == set(params) and all(v.dtype == np.float32 for v in trained.values())
    changed = [k for k, spec in task.model.param_specs().items() if spec.trainable
               and not np.array_equal(trained[k], params[k])]
    assert changed, "training changed no weight"
    got = Session(build_model_proto(task.model, trained)).run(**task.feeds)
    with torch.no_grad():
        mine = net(**task.feeds)
    for key, value in got.items():
        np.testing.assert_allclose(value, mine[key].numpy(), atol=EXPORT_ATOL, rtol=0, err_msg=key)
    for k, spec in task.model.param_specs().items():
        if not spec.trainable:  # the ESN reservoir
            np.testing.assert_array_equal(trained[k], params[k], err_msg=k)


def test_clockwork_weights_outside_the_mask_stay_zero_through_training() -> None:
    task = tasks()["clockwork"]
    net = TorchModel(task.model, task.model.init(seed=0))
    mask = torch.as_tensor(task.model.param_specs()["clockwork0/R"].mask, dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        loss = net(**task.feeds)["y"].pow(2).mean()
        opt.zero_grad()
        loss.backward()
        assert torch.equal(net.weights["clockwork0:R"].grad * (1 - mask), torch.zeros_like(mask))
        opt.step()
    R = net.weights["clockwork0:R"].detach()
    assert torch.equal(R * (1 - mask), torch.zeros_like(mask)) and bool((R * mask != 0).any())
    assert not np.array_equal(net.rnngraph_params()["clockwork0/R"], task.model.init(seed=0)["clockwork0/R"])


def test_parameters_carry_rnngraph_names_and_fixed_weights_are_buffers() -> None:
    model = tasks()["esn"].model
    net = TorchModel(model, model.init(seed=0))
    assert sorted(param_name(k) for k in net.weights) == ["esn0/W_out", "esn0/b_out"]
    assert sorted(param_name(k) for k, _ in net.fixed.named_buffers()) == ["esn0/W", "esn0/W_back", "esn0/W_in"]
    assert param_key("enc/l1/fw/W") == "enc:l1:fw:W" and param_name("enc:l1:fw:W") == "enc/l1/fw/W"


def test_loading_params_back_into_the_module() -> None:
    model = tasks()["deep"].model
    net = TorchModel(model, model.init(seed=0))
    other = model.init(seed=5)
    net.load_rnngraph_params(other)
    for k, v in net.rnngraph_params().items():
        np.testing.assert_array_equal(v, other[k], err_msg=k)


def test_bad_inputs_get_rnngraph_errors() -> None:
    task = tasks()["deep"]
    net = TorchModel(task.model, task.model.init(seed=0))
    with pytest.raises(InputError, match=r"missing \['x'\]"):
        net(lengths=task.feeds["lengths"])
    with pytest.raises(InputError, match=r"input 'x' must have shape \(batch, time, 3\), received \(4, 6, 2\)"):
        net(x=task.feeds["x"][:, :, :2])
    with pytest.raises(InputError, match=r"`lengths` must hold one length in 1\.\.6 per row, received \[7, 3, 1, 5\]"):
        net(x=task.feeds["x"], lengths=np.array([7, 3, 1, 5]))


def test_every_registered_cell_has_a_pytorch_implementation() -> None:
    for entry in registry.entries():
        for example in entry.examples:
            assert registry.implementation(example, "torch") is not None, entry.name


def test_a_cell_without_a_pytorch_implementation_is_refused_by_name() -> None:
    @dataclass(frozen=True)
    class Mystery(rg.RNN):
        prefix = "mystery"

    with registry.registered(Mystery, examples=(Mystery(3),), onnx="rnngraph.compiler.cells.rnn:LOWERING",
                             oracle="rnngraph.runtime.oracle.rnn:STEP"):
        x = rg.Input("x", features=2)
        model = rg.Model(x, rg.Recurrent(Mystery(3))(x))
        net = TorchModel(model, model.init(seed=0))
        with pytest.raises(UnsupportedCellError, match=r"cell Mystery has no 'torch' implementation.*add torch="):
            net(x=np.zeros((1, 2, 2), dtype=np.float32))


def test_the_backend_imports_only_the_dsl_and_torch() -> None:
    for path in (ROOT / "rnngraph" / "pytorch").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                assert name.startswith(("rnngraph.dsl", "rnngraph.errors", "rnngraph.pytorch", "torch", "numpy",
                                        "__future__", "collections", "dataclasses", "typing")), f"{path}: {name}"
    code = ("import sys, numpy as np, rnngraph as rg; from rnngraph.pytorch import TorchModel; "
            "x = rg.Input('x', features=2); m = rg.Model(x, rg.Recurrent(rg.LSTM(3))(x)); "
            "TorchModel(m, m.init(0))(x=np.zeros((1, 2, 2))); "
            "bad = [k for k in sys.modules if k.startswith(('rnngraph.compiler', 'rnngraph.exporters', "
            "'rnngraph.runtime')) or k.split('.')[0] == 'onnx']; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_section_is_short_and_runs_where_torch_is_installed() -> None:
    """tests/test_readme.py runs every block; this one must stay under 25 lines and say it needs torch."""
    from tests.docblocks import blocks

    text = (ROOT / "README.md").read_text()
    start = text.count("\n", 0, text.index("## Train in PyTorch, deploy with rnngraph")) + 1
    block = next(b for b in blocks(ROOT / "README.md") if b.line > start)
    assert block.language == "python" and block.requires == ["torch"] and block.runs
    assert "TorchModel" in block.code and "rnngraph_params()" in block.code
    assert len([line for line in block.code.splitlines() if line.strip()]) < 25
