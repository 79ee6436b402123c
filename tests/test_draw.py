"""Pictures: the layer graph, one layer unrolled, the attention heatmap (SVG text parsed, PNG header and size read)."""

from __future__ import annotations

import pathlib
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import rnngraph as rg
from rnngraph.cli import main
from rnngraph.verify import load_model_file

ROOT = pathlib.Path(__file__).resolve().parents[1]


def svg_text(path: pathlib.Path) -> list[str]:
    """Every text element of an SVG file, in document order."""
    tree = ET.parse(path)
    return ["".join(node.itertext()) for node in tree.iter("{http://www.w3.org/2000/svg}text")]


def png_size(path: pathlib.Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_layer_graph_shows_inputs_cells_wrappers_outputs_and_shapes(tmp_path):
    model = load_model_file(ROOT / "samples" / "deep.py").model
    texts = svg_text(pathlib.Path(rg.draw_model(model, tmp_path / "deep.svg")))
    assert "model 'deep_rnn'" in texts
    assert "input x" in texts and "(batch, time, 12)" in texts
    assert "stack0: Stack (residual=True)" in texts
    assert "l0: → GRU(hidden=32, linear_before_reset=True)" in texts
    assert "l1 (+ residual): → LSTM(hidden=16)" in texts and "l1 (+ residual): ← LSTM(hidden=16)" in texts
    assert "l2 (+ residual): → RNN(hidden=32)" in texts
    assert "dense0: Dense(units=10, activation='softmax')" in texts
    assert "(batch, time, 32)" in texts  # the edge stack0 -> dense0
    assert "output y" in texts and "(batch, time, 10)" in texts


def test_layer_graph_of_an_encoder_decoder_names_slots_and_output_indices(tmp_path):
    model = load_model_file(ROOT / "samples" / "attention.py").model
    texts = svg_text(pathlib.Path(rg.draw_model(model, tmp_path / "a.svg")))
    assert "decoder: GreedyDecode" in texts
    assert "Attention(units=24)" in texts and "readout: Dense(units=16, activation='softmax')" in texts
    assert "(batch, time, 32) → memory" in texts and "() int64 → max_len" in texts
    assert "[1]" in texts and "[2]" in texts  # scores and weights are outputs 1 and 2 of the decoder node
    assert "(batch, steps, time)" in texts


def test_png_is_written_with_a_size_that_grows_with_the_model(tmp_path):
    small = load_model_file(ROOT / "samples" / "classic_rnn.py").model
    large = load_model_file(ROOT / "samples" / "attention.py").model
    w1, h1 = png_size(pathlib.Path(rg.draw_model(small, tmp_path / "s.png")))
    w2, h2 = png_size(pathlib.Path(rg.draw_model(large, tmp_path / "l.png")))
    assert 200 < w1 < 2000 and 200 < h1 < 2000
    assert h2 > h1 and w2 > w1


def test_unrolled_layer_draws_every_step_and_the_carried_states(tmp_path):
    x = rg.Input("x", features=3)
    model = rg.Model(x, rg.Dense(2)(rg.Bidirectional(rg.LSTM(5, peephole=True))(x)))
    texts = svg_text(pathlib.Path(rg.draw_unrolled(model, tmp_path / "u.svg", steps=3)))
    assert "bilstm0: Bidirectional unrolled over 3 steps" in texts
    assert [t for t in texts if t.startswith("x_")] == ["x_1", "x_2", "x_3"]
    assert [t for t in texts if t.startswith("y_")] == ["y_1", "y_2", "y_3"]
    assert texts.count("LSTM t=3") == 2 and texts.count("hidden=5") == 6
    assert texts.count("h, c") == 4  # 2 rows × 2 gaps between 3 steps
    assert "fw" in texts and "bw" in texts


def test_unroll_errors_are_clear(tmp_path):
    x = rg.Input("x", features=3)
    dense_only = rg.Model(x, rg.Dense(2)(x))
    with pytest.raises(rg.ModelError, match="has no recurrent layer to unroll"):
        rg.draw_unrolled(dense_only, tmp_path / "u.png", steps=3)
    rnn = rg.Model(x, rg.Recurrent(rg.RNN(4))(x))
    with pytest.raises(rg.ModelError, match=r"cannot unroll 'dense0': the recurrent layers of model 'model' are rnn0"):
        rg.draw_unrolled(rnn, tmp_path / "u.png", steps=3, layer="dense0")
    with pytest.raises(rg.ModelError, match="`steps`: expected an integer from 1 to 32, received 0"):
        rg.draw_unrolled(rnn, tmp_path / "u.png", steps=0)
    with pytest.raises(rg.ModelError, match=r"cannot draw to .*u.pdf.*: give a file name ending in .png or .svg"):
        rg.draw_model(rnn, tmp_path / "u.pdf")


def test_attention_heatmap_labels_both_axes(tmp_path):
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=3)
    path = rg.attention_heatmap(weights, ["wǒ", "ài", "zhōng", "guó"], ["I", "love", "China"], tmp_path / "h.svg",
                                title="α")
    texts = svg_text(pathlib.Path(path))
    assert {"wǒ", "ài", "zhōng", "guó", "I", "love", "China", "α", "source", "target"} <= set(texts)
    with pytest.raises(rg.ModelError, match=r"`weights` must be \(len\(target\), len\(source\)\) = \(3, 2\)"):
        rg.attention_heatmap(weights, ["a", "b"], ["I", "love", "China"], tmp_path / "h.png")


def test_cli_show_draws_png_svg_and_unrolled(tmp_path, capsys):
    attention = str(ROOT / "samples" / "attention.py")
    png, svg = tmp_path / "out.png", tmp_path / "out.svg"
    assert main(["show", attention, "--png", str(png), "--svg", str(svg)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {png}" in out and f"wrote {svg}" in out and "model 'attention'" in out
    assert png_size(png)[0] > 300 and "decoder: GreedyDecode" in svg_text(svg)
    unrolled = tmp_path / "u.svg"
    assert main(["show", str(ROOT / "samples" / "lstm.toml"), "--svg", str(unrolled), "--unroll", "4"]) == 0
    assert "lstm0: Recurrent unrolled over 4 steps" in svg_text(unrolled)
    assert main(["show", attention, "--png", str(tmp_path / "x.gif")]) == 2
    assert "give a file name ending in .png or .svg" in capsys.readouterr().err


def test_cli_unroll_needs_a_picture_file(capsys):
    assert main(["show", str(ROOT / "samples" / "lstm.py"), "--unroll", "3"]) == 2
    assert "--unroll N draws a picture: give it a file with --png FILE.png or --svg FILE.svg" in capsys.readouterr().err
