"""PyTorch implementations of 1-to-N generation (`Generate`, docs/vec2seq.md) and closed-loop generation
after priming (`Generative`, docs/esn.md)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.generate import Generate
from rnngraph.dsl.model import Source
from rnngraph.errors import InputError
from rnngraph.pytorch.cells.base import activation
from rnngraph.pytorch.core import Env, implements, step_once, walk, zero_states


def count(env: Env, source: Source) -> int:
    """A runtime count input as a Python int (>= 0)."""
    n = int(env.value(source))
    if n < 0:
        raise InputError(f"`{source.node}` must be a count >= 0 of steps, received {n}.")
    return n


@implements(Generate)
def generate(env: Env, node: str, layer: Generate, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """``y (batch, N, out)`` (and the argmax ids ``(batch, N)`` with `tokens`) from ``v (batch, features)``.

        x_t = [a_t; f_t],  a_t = v (every) or v at t = 0 and 0 after (first),
        f_t = y_{t-1} (output) or E[argmax y_{t-1}] (argmax); f_0 = 0, or E[start]
    """
    cell = layer.cell
    assert cell is not None
    v = env.value(sources["v"])
    steps = count(env, sources["steps"])
    p = env.node_params(node)
    cell_p = {k: p[k] for k in cell.param_specs(layer.cell_input_size(v.shape[1]))}
    batch = v.shape[0]
    states = zero_states(cell, batch, v)
    f: torch.Tensor | None = None
    if layer.feedback != "none":
        f = v.new_zeros((batch, layer.feedback_size))
        if layer.feedback == "argmax" and layer.start is not None:
            f = p["embedding"][layer.start].expand(batch, -1)
    ys, ids = [], []
    for t in range(steps):
        a = v if layer.mode == "every" or t == 0 else torch.zeros_like(v)
        states, h = step_once(cell, cell_p, a if f is None else torch.cat([a, f], dim=-1), states, t)
        y = h if layer.readout is None else activation(layer.readout.activation,
                                                       h @ p["readout/W"].T + p["readout/b"])
        token = y.argmax(dim=-1)  # the first index of the largest value, as ONNX ArgMax and NumPy
        ys.append(y)
        ids.append(token)
        if layer.feedback == "output":
            f = y
        elif layer.feedback == "argmax":
            f = p["embedding"][token]
    y_all = torch.stack(ys, dim=1) if ys else v.new_zeros((batch, 0, layer.output_size))
    if not layer.tokens:
        return (y_all,)
    ids_all = torch.stack(ids, dim=1) if ids else torch.zeros((batch, 0), dtype=torch.int64, device=v.device)
    return y_all, ids_all


@implements(Generative)
def generative(env: Env, node: str, layer: Generative, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """Prime over each row's valid steps, then `steps` closed-loop steps from the row's final state.

    Each generated step reads the previous output (`feed_input`) or zeros; the step index
    continues from the row's own length (a per-row clock).
    """
    cell = layer.cell
    assert cell is not None
    p = env.node_params(node)
    x, lens = env.value(sources["x"]), env.lengths_of(sources["x"])
    primed = walk(cell, p, x, lens)
    steps = count(env, sources["steps"])
    feed = layer.feeds_input(x.shape[2])
    states = dict(zip(cell.state_sizes(), primed.finals, strict=True))
    y = primed.last
    generated = []
    for k in range(steps):
        u = y if feed else x.new_zeros((x.shape[0], x.shape[2]))
        states, y = step_once(cell, p, u, states, lens + k)
        generated.append(y)
    out = torch.stack(generated, dim=1) if generated else x.new_zeros((x.shape[0], 0, cell.output_size))
    return out, primed.y
