"""Oracle evaluators of the decoders (docs/encoder-decoder.md, docs/attention.md), one row at a time in float64.

Written from the equations in docs/ and `rnngraph.dsl.decoder`, not from the lowering.
Greedy decoding runs each row on its own until it emits EOS or `max_len` steps ran;
the batch then has as many steps as its longest row (what a loop that stops when
every row has finished produces) and shorter rows are padded.

Under `core.run_forced` (the near-tie comparison in `rnngraph.verify`) greedy nodes
emit given tokens instead of their own argmax, to follow another decoder's path.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.decoder import Decoder, GreedyDecode, TeacherForced
from rnngraph.dsl.model import Source
from rnngraph.runtime.oracle.activations import dense_activation
from rnngraph.runtime.oracle.attention import attend, attention_keys
from rnngraph.runtime.oracle.core import Env, evaluates, step_for


class RowDecoder:
    """The decoder's math on one source row ``h (L, H)``: context, initial state, attention, one step."""

    def __init__(self, dec: Decoder, p: Mapping[str, np.ndarray], h: np.ndarray) -> None:
        assert dec.cell is not None and dec.readout is not None
        self.dec, self.p, self.h = dec, p, h
        self.cell_p = {k[len("cell/"):]: v for k, v in p.items() if k.startswith("cell/")}
        self.step_fn = step_for(dec.cell)
        self.c = self.context()
        self.keys = attention_keys(dec.attention, p, h) if dec.attention is not None else None

    def context(self) -> np.ndarray | None:
        dec, h = self.dec, self.h
        if dec.context is None:
            return None
        if dec.context == "last":
            return h[-1]
        if dec.context == "last_dense":
            pooled = h[-1]
        else:
            pooled = h.mean(axis=0) if dec.pool == "mean" else h.max(axis=0)
        return dense_activation(dec.context_activation, self.p["context/W"] @ pooled + self.p["context/b"])

    def initial_states(self) -> dict[str, np.ndarray]:
        assert self.dec.cell is not None
        states = {k: np.zeros(n) for k, n in self.dec.cell.state_sizes().items()}
        if self.c is not None and self.dec.use == "init":
            first = next(iter(states))
            proj = self.dec.needs_init_projection(self.h.shape[1])
            states[first] = self.p["init/W"] @ self.c + self.p["init/b"] if proj else self.c.copy()
        return states

    def step(self, states: dict[str, np.ndarray], token: int, t: int
             ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        """One decoder step fed `token`: (new states, readout output (vocab,), α or None)."""
        dec = self.dec
        assert dec.cell is not None and dec.readout is not None
        parts = [self.p["E"][token]]
        if self.c is not None and dec.use == "every":
            parts.append(self.c)
        alpha = None
        if dec.attention is not None:
            a, alpha = attend(dec.attention, self.p, self.h, self.keys, states[next(iter(states))])
            parts.append(a)
        new_states, y = self.step_fn(dec.cell, self.cell_p, np.concatenate(parts), states, t)
        readin = np.concatenate([y, a]) if dec.attention is not None else y
        o = dense_activation(dec.readout.activation, self.p["readout/W"] @ readin + self.p["readout/b"])
        return new_states, o, alpha


def _rows(env: Env, source: Source) -> list[np.ndarray]:
    memory = env.value(source)
    lens = env.lengths(source.spec, memory.shape[1], memory.shape[0])
    return [memory[b, : lens[b]] for b in range(memory.shape[0])]


@evaluates(TeacherForced)
def eval_teacher_forced(env: Env, node: str, layer: TeacherForced,
                        sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    dec = layer.dec
    p = env.node_params(node)
    memory = env.value(sources["memory"])
    tgt = env.value(sources["tgt"])
    batch, m = tgt.shape
    tgt_lens = env.lengths(sources["tgt"].spec, m, batch)
    scores = np.zeros((batch, m, dec.vocab))
    weights = np.zeros((batch, m, memory.shape[1]))
    for b, h in enumerate(_rows(env, sources["memory"])):
        row = RowDecoder(dec, p, h)
        states = row.initial_states()
        for i in range(tgt_lens[b]):
            states, scores[b, i], alpha = row.step(states, int(tgt[b, i]), i)
            if alpha is not None:
                weights[b, i, : len(alpha)] = alpha
    return (scores,) if dec.attention is None else (scores, weights)


@evaluates(GreedyDecode)
def eval_greedy(env: Env, node: str, layer: GreedyDecode, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    dec = layer.dec
    p = env.node_params(node)
    max_len = int(env.value(sources["max_len"])) if "max_len" in sources else dec.max_len
    rows = _rows(env, sources["memory"])
    time = env.value(sources["memory"]).shape[1]
    decoded: list[tuple[list[int], list[np.ndarray], list[np.ndarray]]] = []
    for b, h in enumerate(rows):
        row = RowDecoder(dec, p, h)
        states, token = row.initial_states(), dec.bos
        tokens: list[int] = []
        scores: list[np.ndarray] = []
        alphas: list[np.ndarray] = []
        for i in range(max_len):
            states, o, alpha = row.step(states, token, i)
            token = env.token(node, b, i, o)
            tokens.append(token)
            scores.append(o)
            alphas.append(np.zeros(time) if alpha is None else np.pad(alpha, (0, time - len(alpha))))
            if token == dec.eos:
                break
        decoded.append((tokens, scores, alphas))
    steps = max((len(t) for t, _, _ in decoded), default=0)
    out_tokens = np.full((len(rows), steps), dec.pad, dtype=np.int64)
    out_scores = np.zeros((len(rows), steps, dec.vocab))
    out_weights = np.zeros((len(rows), steps, time))
    for b, (tokens, scores, alphas) in enumerate(decoded):
        n = len(tokens)
        out_tokens[b, :n] = tokens
        if n:
            out_scores[b, :n] = scores
            out_weights[b, :n] = alphas
    env.scores[node] = out_scores
    if dec.attention is None:
        return out_tokens, out_scores
    return out_tokens, out_scores, out_weights


__all__ = ["RowDecoder", "eval_greedy", "eval_teacher_forced"]
