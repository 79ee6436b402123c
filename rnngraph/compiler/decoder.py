"""Lowerings of the decoders (docs/encoder-decoder.md, docs/attention.md): teacher-forced and greedy.

Everything that does not depend on the decoder step is computed once, before the loop:
the context c, the initial states, the attention keys and mask bias, the embedded
target sequence (teacher forcing). Then:

- teacher-forced, no attention: the decoder input ``[E[y]; c]`` is known for every step,
  so it is an ordinary recurrent layer (`run_cell`: Scan or the native op, with padding);
- teacher-forced, attention: a Scan over the embedded targets whose body attends with
  s_{i-1}, steps the cell (`step_once`) and blends padded rows; the readout runs after it;
- greedy: a Loop from BOS whose condition stops it once every row emitted EOS (or after
  `max_len` iterations); each iteration embeds the previous token, attends, steps, reads
  out and takes the ArgMax. Finished rows keep their state and emit `pad` with scores 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from rnngraph.compiler.attention import AttentionValues, attend, prepare_attention
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.layers import apply_mask, dense
from rnngraph.compiler.loop import UNKNOWN, LoopBody, sequence_clock
from rnngraph.compiler.over_time import last_valid, pool
from rnngraph.compiler.recurrent import KnownColumns, SequenceInput, run_cell, step_in, step_once
from rnngraph.dsl.decoder import Decoder, GreedyDecode, TeacherForced
from rnngraph.dsl.model import Source
from rnngraph.dsl.tensor import TensorSpec


def affine(g: GraphBuilder, x: str, W: np.ndarray, b: np.ndarray, activation: str, name: str) -> str:
    """`layers.dense` under its own name scope."""
    with g.scope(name):
        return dense(g, x, W, b, activation)


def context_value(ctx: LoweringContext, dec: Decoder, p: Mapping[str, np.ndarray], memory: str,
                  spec: TensorSpec) -> str | None:
    """The context c ``(batch, C)`` over each row's valid steps, or None."""
    if dec.context is None:
        return None
    g = ctx.g
    with g.scope("context"):
        pooled = last_valid(ctx, memory, spec) if dec.context in ("last", "last_dense") else pool(
            ctx, memory, spec, dec.pool)
        if dec.context == "last":
            return pooled
        return affine(g, pooled, p["context/W"], p["context/b"], dec.context_activation, "dense")


def initial_states(ctx: LoweringContext, dec: Decoder, p: Mapping[str, np.ndarray], c: str | None,
                   memory: str, memory_size: int) -> dict[str, str]:
    """Zero states, except the first one is c (projected when sizes differ) with use=init."""
    assert dec.cell is not None
    g = ctx.g
    with g.scope("initial"):
        states = {name: g.zeros_state(memory, size) for name, size in dec.cell.state_sizes().items()}
        if c is not None and dec.use == "init":
            first = next(iter(states))
            if dec.needs_init_projection(memory_size):
                states[first] = affine(g, c, p["init/W"], p["init/b"], "none", "project")
            else:
                states[first] = g.op("Identity", c, name=first)
    return states


def cell_params(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len("cell/"):]: v for k, v in p.items() if k.startswith("cell/")}


def decoder_input(g: GraphBuilder, dec: Decoder, emb: str, c: str | None, a: str | None) -> str:
    """``[E[y]; c (use=every); a (attention)]`` on the last axis."""
    parts = [emb] + ([c] if c is not None and dec.use == "every" else []) + ([a] if a is not None else [])
    return parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=-1, name="x")


@lowers(TeacherForced)
def lower_teacher_forced(ctx: LoweringContext, node: str, layer: TeacherForced,
                         sources: Mapping[str, Source]) -> tuple[str, ...]:
    dec = layer.dec
    assert dec.cell is not None and dec.readout is not None
    g, p = ctx.g, ctx.node_params(node)
    memory, mspec = ctx.value(sources["memory"]), sources["memory"].spec
    tgt_spec = sources["tgt"].spec
    c = context_value(ctx, dec, p, memory, mspec)
    initial = initial_states(ctx, dec, p, c, memory, mspec.features)
    emb = g.op("Gather", g.const("E", p["E"]), ctx.value(sources["tgt"]), axis=0, name="embed")
    if dec.attention is None:
        x = emb
        if c is not None and dec.use == "every":
            shape = g.op("Concat", g.dim(emb, 0), g.dim(emb, 1), g.const("c_size", [dec.context_size(mspec.features)],
                                                                          "int64"), axis=0)
            x = g.op("Concat", emb, g.op("Expand", g.unsqueeze(c, [1]), shape, name="c_every"), axis=2, name="x")
        spec = tgt_spec.with_features(dec.cell_input_size(mspec.features))
        seq = SequenceInput(x, spec, ctx.mask(tgt_spec, x), ctx.lengths_i32(tgt_spec))
        y, _ = run_cell(ctx, node, dec.cell, cell_params(p), seq, initial)
        scores = affine(g, y, p["readout/W"], p["readout/b"], dec.readout.activation, "readout")
        return (apply_mask(ctx, scores, tgt_spec, emb),)
    av = prepare_attention(ctx, dec.attention, p, memory, mspec)
    seq = SequenceInput(emb, tgt_spec.with_features(dec.embedding), ctx.mask(tgt_spec, emb), None)
    y, a, alpha = attention_scan(ctx, dec, p, av, c, initial, seq, mspec.features)
    ctx.paths[node] = "scan"
    readin = g.op("Concat", y, a, axis=2, name="readin")
    scores = affine(g, readin, p["readout/W"], p["readout/b"], dec.readout.activation, "readout")
    return apply_mask(ctx, scores, tgt_spec, emb), alpha


def attention_scan(ctx: LoweringContext, dec: Decoder, p: Mapping[str, np.ndarray], av: AttentionValues,
                   c: str | None, initial: dict[str, str], seq: SequenceInput,
                   memory_size: int) -> tuple[str, str, str]:
    """Scan over the embedded targets: returns y ``(batch, M, out)``, a ``(batch, M, H)``, α ``(batch, M, T)``.

    H = `memory_size`. The body multiplies only a by the cell's input weights; the embedded targets' (and
    a constant context's) share is one MatMul over all steps before the Scan (`recurrent.KnownColumns`).
    """
    assert dec.cell is not None and dec.attention is not None
    g = ctx.g
    loop = LoopBody(g, "scan", clock_steps=lambda: sequence_clock(g, seq.x, None, False))
    states = loop.carry_all(initial, dec.cell.state_sizes())
    mask_t = loop.scan(seq.mask, "mask_t", [None, 1]) if seq.mask is not None else None
    body = loop.b
    a, alpha = attend(body, dec.attention, p, av, states[next(iter(states))])
    # the cell reads [E[y]; c (use=every); a]: the first two are known for every step before the Scan
    every = c if c is not None and dec.use == "every" else None

    def project(W_k: np.ndarray, b: np.ndarray) -> str:
        """``E[y]·W_eᵀ (+ c·W_cᵀ) + b`` for all target steps at once, scanned in: ``(batch, ·)`` per step."""
        with g.scope("known"):
            # weights in their own row order, transposed in the graph (onnxruntime folds it once): the parameter
            # layout (`rnngraph.params`) then stays one run per block
            W_e = g.op("Transpose", g.const("W_e", np.ascontiguousarray(W_k[:, :dec.embedding])), perm=[1, 0])
            u = g.op("MatMul", seq.x, W_e)
            bias = g.const("bias", b)
            if every is not None:
                cw = g.op("Gemm", every, g.const("W_c", np.ascontiguousarray(W_k[:, dec.embedding:])), bias,
                          transB=1)
                bias = g.unsqueeze(cw, [1])
            return loop.scan(g.op("Add", u, bias, name="projected"), "known_t", [None, W_k.shape[0]])

    known = KnownColumns(dec.cell_input_size(memory_size) - memory_size, project)
    new_states, y = step_once(ctx, loop, dec.cell, cell_params(p), states, a, known)
    loop.update(new_states)
    if mask_t is not None:
        loop.blend(mask_t)
        y, a, alpha = (body.op("Mul", v, mask_t, name=f"{k}_masked") for k, v in (("y", y), ("a", a),
                                                                                   ("alpha", alpha)))
    loop.emit("y", y, dec.cell.output_size)
    loop.emit("a", a, UNKNOWN)
    loop.emit("alpha", alpha, UNKNOWN)
    out = loop.run_scan().stacked
    return out["y"], out["a"], out["alpha"]


@lowers(GreedyDecode)
def lower_greedy(ctx: LoweringContext, node: str, layer: GreedyDecode,
                 sources: Mapping[str, Source]) -> tuple[str, ...]:
    dec = layer.dec
    assert dec.cell is not None and dec.readout is not None
    g, p = ctx.g, ctx.node_params(node)
    memory, mspec = ctx.value(sources["memory"]), sources["memory"].spec
    c = context_value(ctx, dec, p, memory, mspec)
    initial = initial_states(ctx, dec, p, c, memory, mspec.features)
    av = prepare_attention(ctx, dec.attention, p, memory, mspec) if dec.attention is not None else None
    ctx.paths[node] = "loop"
    batch = g.dim(memory, 0)
    trips = ctx.value(sources["max_len"]) if "max_len" in sources else g.const("max_len", dec.max_len, "int64")

    loop = LoopBody(g, "loop", clock_start=lambda: g.zeros_state(memory, 1))  # the clock: the iteration number
    states = loop.carry_all(initial, dec.cell.state_sizes())
    token_prev = loop.carry("token", g.filled(batch, dec.bos, "int64", "bos"), [None], "int64")
    done_prev = loop.carry("done", g.filled(batch, False, "bool", "done0"), [None], "bool")
    body = loop.b
    new_states, scores, alpha = decoder_step(ctx, body, loop.clock, dec, p, av, c, states, token_prev)
    best = body.op("ArgMax", scores, axis=-1, keepdims=0, name="argmax")
    alive = body.unsqueeze(body.cast(body.op("Not", done_prev), "float", name="alive"), [1])
    token = body.op("Where", done_prev, body.const("pad", dec.pad, "int64"), best, name="token")
    done = body.op("Or", done_prev, body.op("Equal", best, body.const("eos", dec.eos, "int64")), name="done")
    left = body.op("ReduceSum", body.cast(body.op("Not", done), "float"), keepdims=0)
    loop.stop_unless(body.op("Greater", left, body.const("zero_f", 0.0), name="cond"))
    loop.update({**new_states, "token": token, "done": done})
    loop.blend(alive, new_states)  # finished rows keep their state
    loop.emit("tokens", token, None, "int64")
    loop.emit("scores", body.op("Mul", scores, alive, name="scores_out"), dec.vocab)
    if alpha is not None:
        loop.emit("weights", body.op("Mul", alpha, alive, name="alpha_out"), g.dim(memory, 1))
    return tuple(loop.run_loop(trips, batch).stacked.values())


def decoder_step(ctx: LoweringContext, b: GraphBuilder, clock: Callable[[], str], dec: Decoder,
                 p: Mapping[str, np.ndarray], av: AttentionValues | None, c: str | None, states: Mapping[str, str],
                 token: str) -> tuple[dict[str, str], str, str | None]:
    """One decoding step into `b` (a Loop body or a step model), from the previous token ``(batch,)`` int64.

    ``x = [E[token]; c (use=every); a (attention, query s_{i-1})]``, ``s_i = cell(s_{i-1}, x)``,
    ``scores = act(V [s_i; a] + b)``. Returns the new states, ``scores (batch, vocab)`` and
    ``α (batch, T)`` (None without attention).
    """
    assert dec.cell is not None and dec.readout is not None
    emb = b.op("Gather", b.const("E", p["E"]), token, axis=0, name="embed")
    a, alpha = (attend(b, dec.attention, p, av, states[next(iter(states))])
                if av is not None and dec.attention is not None else (None, None))
    new_states, y = step_in(ctx, b, clock, dec.cell, cell_params(p), states, decoder_input(b, dec, emb, c, a))
    readin = y if a is None else b.op("Concat", y, a, axis=-1, name="readin")
    scores = affine(b, readin, p["readout/W"], p["readout/b"], dec.readout.activation, "readout")
    return new_states, scores, alpha
