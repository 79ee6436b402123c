"""The compiler's one loop body (`rnngraph.compiler.loop`), checked on small hand-built graphs in onnxruntime.

What every loop in an export relies on: the clock (with a start offset, forward and in
reverse over ragged rows), body outputs that stay distinct when one value is carried and
emitted (onnxruntime otherwise stops feeding the state back, silently), the restated shape
of a Loop that runs zero times, and the padding blend that keeps a state exactly.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.loop import LoopBody, sequence_clock
from rnngraph.errors import ExportError


def run(g: GraphBuilder, outputs: dict[str, str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name `outputs` as graph outputs (unknown shapes), build the model at opset 17 and run it."""
    names = [g.claim(f"graph_output_{name}") for name in outputs]
    for name, (key, value) in zip(names, outputs.items(), strict=True):
        g.op("Identity", value, output=name)
        g.add_output(name, "int64" if key.startswith("i_") else "float32", None)
    model = helper.make_model(g.graph("test"), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(outputs, session.run(names, feeds), strict=True))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_sequence_clock_counts_each_rows_steps_from_its_start(reverse: bool) -> None:
    g = GraphBuilder(17)
    x = g.add_input("x", "float32", [None, None, 2])
    lengths = g.add_input("lengths", "int32", [None])
    start = g.add_input("start", "float32", [None, 1])
    got = run(g, {"clock": sequence_clock(g, x, lengths, reverse, start)},
              {"x": np.zeros((3, 5, 2), np.float32), "lengths": np.array([5, 2, 4], np.int32),
               "start": np.array([[0.0], [7.0], [100.0]], np.float32)})["clock"]
    t = np.arange(5, dtype=np.float32)
    expected = np.stack([
        (np.array([4, 1, 3])[b] - t if reverse else t) + np.array([0.0, 7.0, 100.0])[b] for b in range(3)])
    np.testing.assert_array_equal(got[..., 0], expected)


def test_a_value_carried_and_emitted_stays_fed_back() -> None:
    """s_t = s_{t-1} + x_t, carried, and also emitted, and a second state that never changes:
    three listings of two values. Without the Identity copies onnxruntime stops feeding s back."""
    g = GraphBuilder(17)
    x = g.add_input("x", "float32", [None, None, 1])
    loop = LoopBody(g, "scan")
    s = loop.carry("s", g.zeros_state(x, 1), [None, 1])
    loop.carry("k", g.op("Add", g.zeros_state(x, 1), g.const("seven", np.float32(7.0))), [None, 1])
    x_t = loop.scan(x, "x_t", [None, 1])
    s_new = loop.b.op("Add", s, x_t)
    loop.update({"s": s_new})
    loop.emit("y", s_new, 1)
    out = loop.run_scan()
    xs = np.arange(1, 7, dtype=np.float32).reshape(2, 3, 1)
    got = run(g, {"y": out.stacked["y"], "s": out.finals["s"], "k": out.finals["k"]}, {"x": xs})
    np.testing.assert_array_equal(got["y"], np.cumsum(xs, axis=1))
    np.testing.assert_array_equal(got["s"], xs.sum(axis=1))
    np.testing.assert_array_equal(got["k"], np.full((2, 1), 7.0, np.float32))
    body = next(a.g for n in g.nodes if n.op_type == "Scan" for a in n.attribute if a.name == "body")
    listed = [o.name for o in body.output]
    assert len(listed) == len(set(listed)) == 3


@pytest.mark.parametrize("count", [0, 1, 4])
def test_a_loop_restates_its_stacked_outputs_after_any_number_of_steps(count: int) -> None:
    """acc_t = acc_{t-1} + clock_t (width 2, the clock starting at 10) and the clock as int64 ``(batch,)``
    (no trailing axis), both stacked batch-first, also after zero steps."""
    g = GraphBuilder(17)
    v = g.add_input("v", "float32", [None, 2])
    n = g.add_input("n", "int64", [])
    loop = LoopBody(g, "loop", clock_start=lambda: g.op("Add", g.zeros_state(v, 1), g.const("ten", np.float32(10))))
    acc = loop.carry("acc", v, [None, 2])
    loop.update({"acc": loop.b.op("Add", acc, loop.clock())})
    loop.emit("y", loop.value("acc"), 2)
    loop.emit("i_t", loop.b.cast(loop.b.squeeze(loop.clock(), [1]), "int64"), None, "int64")
    out = loop.run_loop(n, g.dim(v, 0))
    vs = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    got = run(g, {"y": out.stacked["y"], "i_steps": out.stacked["i_t"]}, {"v": vs, "n": np.array(count)})
    clock = 10.0 + np.arange(count, dtype=np.float32)
    assert got["y"].shape == (3, count, 2)
    np.testing.assert_array_equal(got["i_steps"], np.tile(clock.astype(np.int64), (3, 1)))
    np.testing.assert_array_equal(got["y"], vs[:, None, :] + np.cumsum(clock)[None, :, None])


def test_a_loop_without_a_clock_refuses_a_cell_that_needs_one() -> None:
    g = GraphBuilder(17)
    loop = LoopBody(g, "loop")
    with pytest.raises(ExportError, match=r"needs the step number, and the loop was built without a clock"):
        loop.clock()
    with pytest.raises(ExportError, match=r"only a Scan body reads scanned inputs"):
        loop.scan("x", "x_t")


def test_the_padding_blend_keeps_a_state_exactly_where_the_mask_is_zero() -> None:
    g = GraphBuilder(17)
    x = g.add_input("x", "float32", [None, None, 3])
    mask = g.add_input("mask", "float32", [None, None, 1])
    loop = LoopBody(g, "scan")
    h = loop.carry("h", g.zeros_state(x, 3), [None, 3])
    x_t, m_t = loop.scan(x, "x_t", [None, 3]), loop.scan(mask, "m_t", [None, 1])
    loop.update({"h": loop.b.op("Tanh", loop.b.op("Add", h, x_t))})
    loop.blend(m_t)
    loop.emit("h_t", loop.value("h"), 3)
    out = loop.run_scan()
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 4, 3)).astype(np.float32)
    masks = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], np.float32)[..., None]
    got = run(g, {"h_t": out.stacked["h_t"]}, {"x": xs, "mask": masks})["h_t"]
    np.testing.assert_array_equal(got[0, 2], got[0, 1])  # frozen, bit for bit
    np.testing.assert_array_equal(got[0, 3], got[0, 1])
    assert not np.array_equal(got[1, 2], got[1, 1])
