"""PyTorch implementations of the basic layers and topologies: Input, Dense, Embedding, Recurrent,
Bidirectional, Stack (docs/classic-rnn.md, docs/seq2vec.md, docs/bidirectional.md, docs/deep.md)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.layers import Dense, InputLayer, Recurrent
from rnngraph.dsl.model import Source
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.pytorch.cells.base import activation
from rnngraph.pytorch.core import Env, Walked, implements, sub_params, valid_steps, walk, zero_padding


def padding_lengths(env: Env, source: Source) -> torch.Tensor | None:
    """The lengths of a padded sequence source, None when it has none."""
    if source.spec.lengths is None:
        return None
    lens: torch.Tensor = env.feeds[source.spec.lengths]
    return lens


@implements(InputLayer)
def input_layer(env: Env, node: str, layer: InputLayer, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """The feed; a padded float sequence is 0 past each row's length, whatever the caller put there."""
    x = env.feeds[node]
    spec = layer.spec
    if spec.is_tokens or spec.lengths is None:
        return (x,)
    return (zero_padding(spec, x, env.feeds[spec.lengths]),)


@implements(Dense)
def dense(env: Env, node: str, layer: Dense, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """y = act(x Wᵀ + b), 0 past each row's length on a padded sequence."""
    p = env.node_params(node)
    y = activation(layer.activation, env.value(sources["x"]) @ p["W"].T + p["b"])
    return (zero_padding(sources["x"].spec, y, padding_lengths(env, sources["x"])),)


@implements(Embedding)
def embedding(env: Env, node: str, layer: Embedding, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """y = E[ids], 0 past each row's length on a padded sequence."""
    y = env.node_params(node)["E"][env.value(sources["x"])]
    return (zero_padding(sources["x"].spec, y, padding_lengths(env, sources["x"])),)


def combine(how: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if how == "concat":
        return torch.cat([a, b], dim=-1)
    if how == "sum":
        return a + b
    if how == "mul":
        return a * b
    if how == "ave":
        return (a + b) / 2.0
    raise ValueError(f"unknown merge {how!r}")


def answer(returned: tuple[str, ...], walked: Walked, lens: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The outputs `returns` names: sequence, last, mean / max over valid steps, final states."""
    out: list[torch.Tensor] = []
    valid = valid_steps(lens, walked.y.shape[1])[:, :, None]
    for kind in returned:
        if kind == "sequence":
            out.append(walked.y)
        elif kind == "last":
            out.append(walked.last)
        elif kind == "mean":
            out.append(walked.y.sum(dim=1) / lens[:, None].to(walked.y.dtype))
        elif kind == "max":
            out.append(walked.y.masked_fill(~valid, float("-inf")).amax(dim=1))
        else:
            out.extend(walked.finals)
    return tuple(out)


def split_initial(layer: Recurrent, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """The `initial_state` vector ``(batch, width)`` cut into the states it sets (h only, or all)."""
    given = layer.initial_states(value.shape[1])
    return dict(zip(given, value.split(list(given.values()), dim=1), strict=True))


def walk_bidirectional(layer: Bidirectional, p: Mapping[str, torch.Tensor], x: torch.Tensor,
                       lens: torch.Tensor) -> Walked:
    """y_t = merge(h→_t, h←_t); last = merge(h→ at step L-1, h← at step 0); finals forward then backward."""
    fw = walk(layer.forward, sub_params(p, "fw"), x, lens)
    bw = walk(layer.backward, sub_params(p, "bw"), x, lens, reverse=True)
    return Walked(combine(layer.merge, fw.y, bw.y), combine(layer.merge, fw.last, bw.last), fw.finals + bw.finals)


@implements(Recurrent)
def recurrent(env: Env, node: str, layer: Recurrent, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    assert layer.cell is not None
    x, lens = env.value(sources["x"]), env.lengths_of(sources["x"])
    initial = split_initial(layer, env.value(sources["initial_state"])) if "initial_state" in sources else None
    walked = walk(layer.cell, env.node_params(node), x, lens, layer.reverse, initial)
    return answer(layer.returned, walked, lens)


@implements(Bidirectional)
def bidirectional(env: Env, node: str, layer: Bidirectional,
                  sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    x, lens = env.value(sources["x"]), env.lengths_of(sources["x"])
    return answer(layer.returned, walk_bidirectional(layer, env.node_params(node), x, lens), lens)


@implements(Stack)
def stack(env: Env, node: str, layer: Stack, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """h^(l) = layer_l(h^(l-1)) [+ h^(l-1)]; the top layer's outputs, every layer's final states."""
    h, lens = env.value(sources["x"]), env.lengths_of(sources["x"])
    p = env.node_params(node)
    residual = set(layer.residual_layers())
    rows = torch.arange(h.shape[0], device=h.device)
    finals: list[torch.Tensor] = []
    for i, (local, item) in enumerate(layer.items()):
        if isinstance(item, Bidirectional):
            walked = walk_bidirectional(item, sub_params(p, local), h, lens)
        else:
            assert item.cell is not None
            walked = walk(item.cell, sub_params(p, local), h, lens, item.reverse)
        if i in residual:
            y = walked.y + h
            # the last step processed: L-1 forward, 0 backward
            reverse = isinstance(item, Recurrent) and item.reverse
            walked = Walked(y, y[rows, 0 if reverse else lens - 1], walked.finals)
        finals += walked.finals
        h = walked.y
    return answer(layer.returned, Walked(h, walked.last, finals), lens)
