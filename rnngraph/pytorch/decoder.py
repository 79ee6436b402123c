"""PyTorch implementations of the decoders (docs/encoder-decoder.md, docs/attention.md): teacher-forced (training) and
greedy (for evaluation), with every context, use and attention score, on a whole batch.

The math is that of `rnngraph.dsl.decoder`: per source row over its valid steps only
(masked attention softmax; context from step L_b - 1 or pooled over valid steps).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from rnngraph.dsl.decoder import Decoder, GreedyDecode, TeacherForced
from rnngraph.dsl.model import Source
from rnngraph.pytorch.cells.base import States, activation
from rnngraph.pytorch.core import Env, implements, step_once, sub_params, valid_steps, zero_states
from rnngraph.pytorch.generate import count


class BatchDecoder:
    """The decoder's math on ``memory (batch, T, H)`` with source lengths: context, initial states, steps."""

    def __init__(self, dec: Decoder, p: Mapping[str, torch.Tensor], memory: torch.Tensor,
                 lens: torch.Tensor) -> None:
        assert dec.cell is not None
        self.dec, self.p, self.memory = dec, p, memory
        self.cell_p = sub_params(p, "cell")
        self.valid = valid_steps(lens, memory.shape[1])
        last = memory[torch.arange(memory.shape[0], device=memory.device), lens - 1]
        self.c = self.context(last, lens)
        att = dec.attention
        if att is not None and att.score != "dot":
            # U h_j (additive) or W h_j (general) does not depend on the step: once per batch
            self.keys = memory @ (p["attention/U"] if att.score == "additive" else p["attention/W"]).T

    def context(self, last: torch.Tensor, lens: torch.Tensor) -> torch.Tensor | None:
        dec = self.dec
        if dec.context is None:
            return None
        if dec.context == "last":
            return last
        if dec.context == "last_dense":
            pooled = last
        elif dec.pool == "mean":
            pooled = self.memory.sum(dim=1) / lens[:, None].to(self.memory.dtype)
        else:
            pooled = self.memory.masked_fill(~self.valid[:, :, None], float("-inf")).amax(dim=1)
        return activation(dec.context_activation, pooled @ self.p["context/W"].T + self.p["context/b"])

    def initial_states(self) -> States:
        assert self.dec.cell is not None
        states = zero_states(self.dec.cell, self.memory.shape[0], self.memory)
        if self.c is not None and self.dec.use == "init":
            first = next(iter(states))
            proj = self.dec.needs_init_projection(self.memory.shape[2])
            states[first] = self.c @ self.p["init/W"].T + self.p["init/b"] if proj else self.c
        return states

    def attend(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``a (batch, H)`` and ``α (batch, T)`` (0 past each row's source length) for query ``s (batch, S)``."""
        att = self.dec.attention
        assert att is not None
        if att.score == "additive":
            e = torch.tanh(self.keys + (s @ self.p["attention/W"].T)[:, None, :]) @ self.p["attention/v"]
        elif att.score == "general":
            e = (self.keys @ s[:, :, None])[:, :, 0]
        else:
            e = (self.memory @ s[:, :, None])[:, :, 0]
        alpha = torch.softmax(e.masked_fill(~self.valid, float("-inf")), dim=-1)
        return (alpha[:, None, :] @ self.memory)[:, 0], alpha

    def step(self, states: States, tokens: torch.Tensor, t: int
             ) -> tuple[States, torch.Tensor, torch.Tensor | None]:
        """One step fed ``tokens (batch,)``: new states, readout ``(batch, vocab)``, α or None."""
        dec = self.dec
        assert dec.cell is not None and dec.readout is not None
        parts = [self.p["E"][tokens]]
        if self.c is not None and dec.use == "every":
            parts.append(self.c)
        alpha = None
        if dec.attention is not None:
            a, alpha = self.attend(states[next(iter(states))])
            parts.append(a)
        states, y = step_once(dec.cell, self.cell_p, torch.cat(parts, dim=-1), states, t)
        readin = torch.cat([y, a], dim=-1) if dec.attention is not None else y
        o = activation(dec.readout.activation, readin @ self.p["readout/W"].T + self.p["readout/b"])
        return states, o, alpha


@implements(TeacherForced)
def teacher_forced(env: Env, node: str, layer: TeacherForced,
                   sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """scores ``(batch, M, vocab)`` (0 past each row's target length) [, α ``(batch, M, T)``]."""
    memory, tgt = env.value(sources["memory"]), env.value(sources["tgt"])
    row = BatchDecoder(layer.dec, env.node_params(node), memory, env.lengths_of(sources["memory"]))
    steps = tgt.shape[1]
    tgt_valid = valid_steps(env.lengths(sources["tgt"].spec, steps, tgt.shape[0], tgt.device), steps)
    zero = torch.zeros((), dtype=memory.dtype, device=memory.device)
    states = row.initial_states()
    scores, weights = [], []
    for i in range(steps):
        states, o, alpha = row.step(states, tgt[:, i], i)
        m = tgt_valid[:, i, None]
        scores.append(torch.where(m, o, zero))
        if alpha is not None:
            weights.append(torch.where(m, alpha, zero))
    out = torch.stack(scores, dim=1)
    return (out,) if layer.dec.attention is None else (out, torch.stack(weights, dim=1))


@implements(GreedyDecode)
def greedy(env: Env, node: str, layer: GreedyDecode, sources: Mapping[str, Source]) -> tuple[torch.Tensor, ...]:
    """Decode from BOS until every row emitted EOS or `max_len` steps ran; after its EOS a row
    emits `pad`, scores 0 and weights 0. The steps axis is as long as the longest row."""
    dec = layer.dec
    memory = env.value(sources["memory"])
    row = BatchDecoder(dec, env.node_params(node), memory, env.lengths_of(sources["memory"]))
    max_len = count(env, sources["max_len"]) if "max_len" in sources else dec.max_len
    batch = memory.shape[0]
    token = torch.full((batch,), dec.bos, dtype=torch.int64, device=memory.device)
    done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
    zero = torch.zeros((), dtype=memory.dtype, device=memory.device)
    states = row.initial_states()
    tokens, scores, weights = [], [], []
    for i in range(max_len):
        if bool(done.all()):
            break
        states, o, alpha = row.step(states, token, i)
        token = torch.where(done, torch.full_like(token, dec.pad), o.argmax(dim=-1))
        tokens.append(token)
        scores.append(torch.where(done[:, None], zero, o))
        weights.append(memory.new_zeros((batch, memory.shape[1])) if alpha is None
                       else torch.where(done[:, None], zero, alpha))
        done = done | (token == dec.eos)
    if not tokens:
        empty = memory.new_zeros((batch, 0))
        out: tuple[torch.Tensor, ...] = (empty.to(torch.int64), memory.new_zeros((batch, 0, dec.vocab)),
                                         memory.new_zeros((batch, 0, memory.shape[1])))
    else:
        out = (torch.stack(tokens, dim=1), torch.stack(scores, dim=1), torch.stack(weights, dim=1))
    return out if dec.attention is not None else out[:2]
