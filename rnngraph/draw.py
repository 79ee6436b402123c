"""Pictures of models, drawn with matplotlib (PNG or SVG by the file's extension; no system binary needed).

    draw_model(model, "model.png")                 # the layer graph: inputs, layers with their cells, outputs
    draw_unrolled(model, "rnn.svg", steps=4)       # one recurrent layer unrolled over 4 steps
    attention_heatmap(weights, src_words, tgt_words, "attention.png")

The layer graph is drawn from the model's networkx graph (`Model.graph`): one row per
topological generation, inputs at the top, outputs at the bottom; each layer is a box
titled by its node name and type, holding one inner box per cell (a topology wrapper
such as `Bidirectional` or `Stack` holds several) with its size and every option that
differs from the default; each edge is labelled with the shape of the tensor it carries.
SVG text stays text (``svg.fonttype: none``), so labels can be searched and tested.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.decoder import DecoderLayer
from rnngraph.dsl.fields import init_fields
from rnngraph.dsl.layers import InputLayer, Layer, Recurrent
from rnngraph.dsl.model import Model
from rnngraph.dsl.tensor import TensorSpec
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.errors import ModelError

FORMATS = (".png", ".svg")
CHAR = 0.075     # inches per character at FONT points
FONT = 8.5
LINE = 0.24      # inches per text line
COLORS = {"input": "#dbeafe", "output": "#dcfce7", "layer": "#f8fafc", "cell": "#fef3c7", "wrapper": "#ede9fe"}


def check_path(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not path.lower().endswith(FORMATS):
        raise ModelError(f"cannot draw to {path!r}: give a file name ending in .png or .svg.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ModelError(f"cannot draw to {path!r}: directory {directory!r} does not exist.")
    return path


# -- labels ----------------------------------------------------------------------------
def options(obj: Any, always: Sequence[str] = ("hidden",)) -> str:
    """``LSTM(hidden=32, peephole=True)``: the type, its `always` fields and each field that is not its default."""
    parts = []
    for name, _, default in init_fields(type(obj)):
        value = getattr(obj, name)
        nested = value if isinstance(value, tuple) else (value,)
        if name == "name" or any(dataclasses.is_dataclass(v) for v in nested):  # drawn as boxes of their own
            continue
        if name in always or default is dataclasses.MISSING or value != default:
            parts.append(f"{name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def shape(spec: TensorSpec) -> str:
    return "(" + ", ".join(str(d) for d in spec.dims()) + ")" + (" int64" if spec.dtype == "int64" else "")


def cells_of(layer: Layer) -> list[tuple[str, Any]]:
    """The inner boxes of a layer: ``(role, cell or configuration)``, bottom first for a Stack."""
    if isinstance(layer, Recurrent):
        return [("← " if layer.reverse else "→ ", layer.cell)]
    if isinstance(layer, Bidirectional):
        return [("→ ", layer.forward), ("← ", layer.backward)]
    if isinstance(layer, Stack):
        out: list[tuple[str, Any]] = []
        residual = layer.residual_layers()
        for i, (local, item) in enumerate(layer.items()):
            plus = " (+ residual)" if i in residual else ""
            out += [(f"{local}{plus}: {role}", cell) for role, cell in cells_of(item)]
        return out
    if isinstance(layer, DecoderLayer):
        dec = layer.dec
        inner = [("→ ", dec.cell)] + ([("", dec.attention)] if dec.attention is not None else [])
        return inner + [("readout: ", dec.readout)]
    cell = getattr(layer, "cell", None)
    if isinstance(cell, Cell):
        inner = [("→ ", cell)]
        readout = getattr(layer, "readout", None)
        return inner + ([("readout: ", readout)] if readout is not None else [])
    return []


def layer_title(name: str, layer: Layer) -> str:
    if isinstance(layer, (Recurrent, Bidirectional, Stack)) or cells_of(layer):
        extra = options(layer, always=())
        inner = extra[extra.index("(") + 1:-1]
        return f"{name}: {type(layer).__name__}" + (f" ({inner})" if inner else "")
    return f"{name}: {options(layer, always=())}"


# -- layout ------------------------------------------------------------------------------
@dataclass
class Box:
    title: str
    kind: str
    inner: list[str] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0  # top edge

    @property
    def width(self) -> float:
        return CHAR * max(len(t) for t in [self.title, *self.inner]) + 0.5

    @property
    def height(self) -> float:
        return LINE * 1.6 + len(self.inner) * LINE * 1.35


def layer_boxes(model: Model) -> tuple[dict[str, Box], list[tuple[str, str, str]]]:
    """Boxes by node (outputs as ``output:<name>``) and edges ``(src, dst, label)``."""
    boxes: dict[str, Box] = {}
    for name, node in model.nodes():
        layer = node.layer
        if isinstance(layer, InputLayer):
            boxes[name] = Box(f"input {name}", "input", [shape(layer.spec)])
        else:
            inner = [role + options(cell) for role, cell in cells_of(layer)]
            boxes[name] = Box(layer_title(name, layer), "wrapper" if len(inner) > 1 else "layer", inner)
    edges = []
    for src, dst, data in model.graph.edges(data=True):
        slots = model.graph.nodes[dst]["node"].layer.slots
        label = shape(data["spec"]) + (f" → {data['slot']}" if len(slots) > 1 else "")
        edges.append((src, dst, label))
    for out, source in model.outputs.items():
        boxes[f"output:{out}"] = Box(f"output {out}", "output", [shape(source.spec)])
        edges.append((source.node, f"output:{out}", f"[{source.index}]" if source.index else ""))
    return boxes, edges


def place(boxes: dict[str, Box], edges: list[tuple[str, str, str]]) -> tuple[float, float]:
    """Rows by topological generation (outputs last); returns the figure's width and height in inches."""
    graph = nx.DiGraph()
    graph.add_nodes_from(boxes)
    graph.add_edges_from((s, d) for s, d, _ in edges)
    rows = [[n for n in gen if not n.startswith("output:")] for gen in nx.topological_generations(graph)]
    rows = [sorted(r, key=list(boxes).index) for r in rows if r]
    rows.append([n for n in boxes if n.startswith("output:")])
    width = max(sum(boxes[n].width for n in row) + 0.6 * (len(row) - 1) for row in rows) + 1.0
    y = 0.5
    for row in rows:
        total = sum(boxes[n].width for n in row) + 0.6 * (len(row) - 1)
        x = (width - total) / 2
        for n in row:
            boxes[n].x, boxes[n].y = x, y
            x += boxes[n].width + 0.6
        y += max(boxes[n].height for n in row) + 0.9
    return width, y - 0.4


# -- drawing ----------------------------------------------------------------------------
def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    return fig, ax


def _save(fig: Any, path: str) -> str:
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rnngraph"}):
        fig.savefig(path, dpi=110, metadata={"Date": None} if path.lower().endswith(".svg") else None)
    plt.close(fig)
    return path


def _rect(ax: Any, x: float, y: float, w: float, h: float, color: str, dashed: bool = False) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08", facecolor=color,
                                edgecolor="#334155", linewidth=1.0, linestyle="--" if dashed else "-"))


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], label: str = "") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#475569", "lw": 1.0,
                                                      "shrinkA": 0, "shrinkB": 0})
    if label:
        ax.text((start[0] + end[0]) / 2 + 0.05, (start[1] + end[1]) / 2, label, fontsize=FONT - 1.5,
                color="#1e3a8a", ha="left", va="center")


def draw_model(model: Model, path: str | os.PathLike[str], title: str | None = None) -> str:
    """Draw the layer graph of `model` to `path` (``.png`` or ``.svg``); returns the path."""
    path = check_path(path)
    boxes, edges = layer_boxes(model)
    width, height = place(boxes, edges)
    height += 0.5
    fig, ax = _figure(width, height)
    ax.text(width / 2, 0.25, title or f"model {model.name!r}", ha="center", va="center", fontsize=FONT + 2,
            weight="bold")
    for box in boxes.values():
        box.y += 0.3
        _rect(ax, box.x, box.y, box.width, box.height, COLORS[box.kind], dashed=box.kind == "wrapper")
        ax.text(box.x + box.width / 2, box.y + LINE * 0.8, box.title, ha="center", va="center", fontsize=FONT,
                weight="bold" if box.kind != "input" else "normal")
        for i, text in enumerate(box.inner):
            top = box.y + LINE * 1.45 + i * LINE * 1.35
            if box.kind in ("layer", "wrapper"):
                _rect(ax, box.x + 0.12, top, box.width - 0.24, LINE * 1.15, COLORS["cell"])
            ax.text(box.x + box.width / 2, top + LINE * 0.58, text, ha="center", va="center", fontsize=FONT - 0.5)
    for src, dst, label in edges:
        a, b = boxes[src], boxes[dst]
        _arrow(ax, (a.x + a.width / 2, a.y + a.height), (b.x + b.width / 2, b.y), label)
    return _save(fig, path)


# -- unrolled ----------------------------------------------------------------------------
Row = tuple[str, Cell, bool]


def recurrent_groups(layer: Layer) -> list[list[Row]]:
    """Rows of an unrolled picture in groups, bottom first: each row ``(label, cell, runs backwards)``.

    The rows of a group read the same input, the outputs of every row of the group below
    (a Bidirectional is one group of two rows; each layer of a Stack is a group).
    """
    if isinstance(layer, Recurrent):
        assert layer.cell is not None
        return [[("", layer.cell, layer.reverse)]]
    if isinstance(layer, Bidirectional):
        return [[("fw", layer.forward, False), ("bw", layer.backward, True)]]
    if isinstance(layer, Stack):
        return [[(f"{local}{'/' + sub if sub else ''}", cell, back) for sub, cell, back in group]
                for local, item in layer.items() for group in recurrent_groups(item)]
    if isinstance(layer, DecoderLayer):
        assert layer.dec.cell is not None
        return [[("decoder", layer.dec.cell, False)]]
    cell = getattr(layer, "cell", None)
    return [[("", cell, False)]] if isinstance(cell, Cell) else []


def draw_unrolled(model: Model, path: str | os.PathLike[str], steps: int, layer: str | None = None) -> str:
    """Draw one recurrent layer of `model` (`layer`, by node name; default the first) unrolled over `steps` steps.

    Inputs x_t at the bottom, one row of cell boxes per recurrent run (two for a
    Bidirectional, one per layer of a Stack), the carried states on the arrows between
    steps (pointing back in time for a reversed run), outputs y_t at the top.
    """
    path = check_path(path)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 32:
        raise ModelError(f"invalid value for `steps`: expected an integer from 1 to 32, received {steps!r}.")
    recurrent = {name: groups for name, node in model.nodes() if (groups := recurrent_groups(node.layer))}
    if not recurrent:
        raise ModelError(f"model {model.name!r} has no recurrent layer to unroll.")
    if layer is None:
        layer = next(iter(recurrent))
    if layer not in recurrent:
        raise ModelError(f"cannot unroll {layer!r}: the recurrent layers of model {model.name!r} are "
                         f"{', '.join(recurrent)}.")
    groups = recurrent[layer]
    rows = [row for group in groups for row in group]
    node = model.graph.nodes[layer]["node"]
    cell_w, gap, pitch = 1.5, 0.9, 1.15
    width = 1.6 + steps * (cell_w + gap)
    height = 2.1 + (len(rows) + 1) * pitch
    fig, ax = _figure(width, height)
    ax.text(width / 2, 0.22, f"{layer}: {type(node.layer).__name__} unrolled over {steps} steps", ha="center",
            fontsize=FONT + 1, weight="bold")
    detail = textwrap.fill(node.layer.title(), width=int(width / (CHAR * 0.9)))
    ax.text(width / 2, 0.42, detail, ha="center", va="top", fontsize=FONT - 1.5)

    def column(t: int) -> float:
        return 1.3 + t * (cell_w + gap)

    bottom = height - 0.7
    for t in range(steps):
        _rect(ax, column(t), bottom, cell_w, 0.45, COLORS["input"])
        ax.text(column(t) + cell_w / 2, bottom + 0.22, f"x_{t + 1}", ha="center", va="center", fontsize=FONT)
        _rect(ax, column(t), 0.9, cell_w, 0.45, COLORS["output"])
        ax.text(column(t) + cell_w / 2, 1.12, f"y_{t + 1}", ha="center", va="center", fontsize=FONT)
    tops = [bottom]      # where the arrows into the current group start (tops of the rows below)
    r = 0
    for group in groups:
        ys = []
        for label, cell, backwards in group:
            y = bottom - (r + 1) * pitch
            ys.append(y)
            r += 1
            ax.text(0.1, y + 0.3, label or "cell", fontsize=FONT - 0.5, va="center")
            for t in range(steps):
                _rect(ax, column(t), y, cell_w, 0.6, COLORS["cell"])
                ax.text(column(t) + cell_w / 2, y + 0.18, f"{type(cell).__name__} t={t + 1}", ha="center",
                        va="center", fontsize=FONT - 0.5)
                ax.text(column(t) + cell_w / 2, y + 0.42, f"hidden={cell.hidden}", ha="center", va="center",
                        fontsize=FONT - 1.5)
                for k, below in enumerate(tops):
                    if below > y + 0.6:
                        dx = 0.25 * (k - (len(tops) - 1) / 2) + 0.3 * (len(ys) - 1)
                        _arrow(ax, (column(t) + cell_w / 2 + dx, below), (column(t) + cell_w / 2 + dx, y + 0.6))
            states = ", ".join(cell.state_sizes())
            for t in range(steps - 1):
                a, b = (column(t) + cell_w, y + 0.3), (column(t + 1), y + 0.3)
                _arrow(ax, b if backwards else a, a if backwards else b)
                ax.text((a[0] + b[0]) / 2, y + 0.2, states, ha="center", fontsize=FONT - 1.5, color="#1e3a8a")
        tops = ys
    for t in range(steps):
        for k, y in enumerate(tops):
            dx = 0.25 * (k - (len(tops) - 1) / 2)
            _arrow(ax, (column(t) + cell_w / 2 + dx, y), (column(t) + cell_w / 2 + dx, 1.35))
    return _save(fig, path)


# -- attention ----------------------------------------------------------------------------
def attention_heatmap(weights: np.ndarray, source: Sequence[str], target: Sequence[str],
                      path: str | os.PathLike[str], title: str = "attention α", xlabel: str = "source",
                      ylabel: str = "target") -> str:
    """Heatmap of attention weights ``(target steps, source steps)`` (one row of a decoder's weights output)."""
    path = check_path(path)
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape != (len(target), len(source)):
        raise ModelError(f"attention_heatmap: `weights` must be (len(target), len(source)) = "
                         f"({len(target)}, {len(source)}), received shape {weights.shape}.")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(source), 1.2 + 0.7 * len(target)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0)
    ax.set_xticks(range(len(source)), list(source))
    ax.set_yticks(range(len(target)), list(target))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["attention_heatmap", "draw_model", "draw_unrolled"]
