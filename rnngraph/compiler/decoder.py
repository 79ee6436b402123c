"""Lowerings of the decoders (SPEC §1.4, §1.6): teacher-forced and greedy.

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

from collections.abc import Mapping

import numpy as np
from onnx import TensorProto, helper

from rnngraph.compiler.attention import MASK_PENALTY, AttentionValues, attend, prepare_attention
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.layers import apply_mask, dense
from rnngraph.compiler.recurrent import (
    SequenceInput,
    cell_lowering,
    keep_where_masked,
    run_cell,
    step_index,
    step_once,
)
from rnngraph.dsl.decoder import Decoder, GreedyDecode, TeacherForced
from rnngraph.dsl.model import Source
from rnngraph.dsl.tensor import TensorSpec


def affine(g: GraphBuilder, x: str, W: np.ndarray, b: np.ndarray, activation: str, name: str) -> str:
    """`layers.dense` under its own name scope."""
    with g.scope(name):
        return dense(g, x, W, b, activation)


def reduce(g: GraphBuilder, op: str, x: str, axis: int, name: str) -> str:
    """`op` (ReduceMean, ReduceMax) over one axis, dropping it; axes moved from attribute to input in opset 18."""
    if g.opset >= 18:
        return g.op(op, x, g.const("axes", [axis], "int64"), keepdims=0, name=name)
    return g.op(op, x, axes=[axis], keepdims=0, name=name)


def context_value(ctx: LoweringContext, dec: Decoder, p: Mapping[str, np.ndarray], memory: str,
                  spec: TensorSpec) -> str | None:
    """The context c ``(batch, C)`` over each row's valid steps, or None."""
    if dec.context is None:
        return None
    g = ctx.g
    with g.scope("context"):
        if dec.context in ("last", "last_dense"):
            lengths = spec.lengths
            if lengths is None:
                pooled = g.op("Gather", memory, g.const("last", -1, "int64"), axis=1, name="last")
            else:
                index = g.unsqueeze(g.op("Sub", lengths, g.const("one", 1, "int64")), [1])  # (batch, 1)
                pooled = g.op("GatherND", memory, index, batch_dims=1, name="last")
        elif dec.pool == "mean":
            if spec.lengths is None:
                pooled = reduce(g, "ReduceMean", memory, 1, "mean")
            else:  # padded steps hold 0, so the sum over all steps is the sum over valid ones
                total = g.op("ReduceSum", memory, g.const("axes", [1], "int64"), keepdims=0)
                count = g.unsqueeze(g.op("Cast", spec.lengths, to=TensorProto.FLOAT), [1])
                pooled = g.op("Div", total, count, name="mean")
        else:
            mask = ctx.mask(spec, memory)
            if mask is not None:
                penalty = g.op("Mul", g.op("Sub", mask, g.const("one_f", 1.0)), g.const("penalty", MASK_PENALTY))
                memory = g.op("Add", memory, penalty, name="masked")
            pooled = reduce(g, "ReduceMax", memory, 1, "max")
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
    y, a, alpha = attention_scan(ctx, dec, p, av, c, initial, seq)
    ctx.paths[node] = "scan"
    readin = g.op("Concat", y, a, axis=2, name="readin")
    scores = affine(g, readin, p["readout/W"], p["readout/b"], dec.readout.activation, "readout")
    return apply_mask(ctx, scores, tgt_spec, emb), alpha


def attention_scan(ctx: LoweringContext, dec: Decoder, p: Mapping[str, np.ndarray], av: AttentionValues,
                   c: str | None, initial: dict[str, str], seq: SequenceInput) -> tuple[str, str, str]:
    """Scan over the embedded targets: returns y ``(batch, M, out)``, a ``(batch, M, H)``, α ``(batch, M, T)``."""
    assert dec.cell is not None and dec.attention is not None
    g = ctx.g
    sizes = dec.cell.state_sizes()
    scanned = [seq.x] + ([seq.mask] if seq.mask is not None else [])
    needs_index = cell_lowering(dec.cell).needs_step_index
    if needs_index:
        scanned.append(step_index(ctx, seq))
    body = g.body()
    with body.scope("body"):
        states = {n: body.add_input(body.fresh(f"{n}_prev"), "float32", [None, s]) for n, s in sizes.items()}
        emb_t = body.add_input(body.fresh("emb_t"), "float32", [None, dec.embedding])
        mask_t = body.add_input(body.fresh("mask_t"), "float32", [None, 1]) if seq.mask is not None else None
        index_t = body.add_input(body.fresh("step_t"), "float32", [None, 1]) if needs_index else None
        a, alpha = attend(body, dec.attention, p, av, states[next(iter(sizes))])
        x = decoder_input(body, dec, emb_t, c, a)
        new_states, y = step_once(body, dec.cell, cell_params(p), states, x, index_t)
        if mask_t is not None:
            new_states = keep_where_masked(body, states, new_states, mask_t)
            y, a, alpha = (body.op("Mul", v, mask_t, name=f"{k}_masked") for k, v in (("y", y), ("a", a),
                                                                                       ("alpha", alpha)))
        elif y in new_states.values():  # a value may not be listed twice among body outputs
            y = body.op("Identity", y, name="y_t")
        for n, s in sizes.items():
            body.add_output(new_states[n], "float32", [None, s])
        body.add_output(y, "float32", [None, dec.cell.output_size])
        body.add_output(a, "float32", [None, None])
        body.add_output(alpha, "float32", [None, None])
    outs = g.op("Scan", *initial.values(), *scanned, outputs=len(sizes) + 3, name="scan", body=body.graph("body"),
                num_scan_inputs=len(scanned), scan_input_axes=[1] * len(scanned), scan_output_axes=[1, 1, 1])
    return outs[-3], outs[-2], outs[-1]


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
    sizes = dec.cell.state_sizes()
    batch = g.dim(memory, 0)
    bos = g.op("ConstantOfShape", batch, value=helper.make_tensor("bos", TensorProto.INT64, [1], [dec.bos]), name="bos")
    done0 = g.op("ConstantOfShape", batch, value=helper.make_tensor("no", TensorProto.BOOL, [1], [False]), name="done0")
    trips = ctx.value(sources["max_len"]) if "max_len" in sources else g.const("max_len", dec.max_len, "int64")
    needs_index = cell_lowering(dec.cell).needs_step_index
    batch_zeros = g.zeros_state(memory, 1) if needs_index else None  # (batch, 1), built once outside the loop

    body = g.body()
    with body.scope("body"):
        iteration = body.add_input(body.fresh("iteration"), "int64", [])
        body.add_input(body.fresh("cond_in"), "bool", [])
        states = {n: body.add_input(body.fresh(f"{n}_prev"), "float32", [None, s]) for n, s in sizes.items()}
        token_prev = body.add_input(body.fresh("token_prev"), "int64", [None])
        done_prev = body.add_input(body.fresh("done_prev"), "bool", [None])
        emb = body.op("Gather", body.const("E", p["E"]), token_prev, axis=0, name="embed")
        a, alpha = (attend(body, dec.attention, p, av, states[next(iter(sizes))])
                    if av is not None and dec.attention is not None else (None, None))
        index_t = None
        if batch_zeros is not None:  # (batch, 1): the iteration number on every row
            index_t = body.op("Add", batch_zeros, body.op("Cast", iteration, to=TensorProto.FLOAT), name="step_t")
        new_states, y = step_once(body, dec.cell, cell_params(p), states, decoder_input(body, dec, emb, c, a), index_t)
        readin = y if a is None else body.op("Concat", y, a, axis=-1, name="readin")
        scores = affine(body, readin, p["readout/W"], p["readout/b"], dec.readout.activation, "readout")
        best = body.op("ArgMax", scores, axis=-1, keepdims=0, name="argmax")
        alive = body.unsqueeze(body.op("Cast", body.op("Not", done_prev), to=TensorProto.FLOAT, name="alive"), [1])
        token = body.op("Where", done_prev, body.const("pad", dec.pad, "int64"), best, name="token")
        done = body.op("Or", done_prev, body.op("Equal", best, body.const("eos", dec.eos, "int64")), name="done")
        left = body.op("ReduceSum", body.op("Cast", body.op("Not", done), to=TensorProto.FLOAT), keepdims=0)
        cond = body.op("Greater", left, body.const("zero_f", 0.0), name="cond")
        body.add_output(cond, "bool", [])
        kept = keep_where_masked(body, states, new_states, alive)  # finished rows keep their state
        for n, s in sizes.items():
            body.add_output(kept[n], "float32", [None, s])
        body.add_output(token, "int64", [None])
        body.add_output(done, "bool", [None])
        body.add_output(body.op("Identity", token, name="token_out"), "int64", [None])  # never list a value twice
        body.add_output(body.op("Mul", scores, alive, name="scores_out"), "float32", [None, dec.vocab])
        if alpha is not None:
            body.add_output(body.op("Mul", alpha, alive, name="alpha_out"), "float32", [None, None])
    n_scans = 3 if alpha is not None else 2
    outs = g.op("Loop", trips, g.const("go", True, "bool"), *initial.values(), bos, done0,
                outputs=len(sizes) + 2 + n_scans, name="loop", body=body.graph("body"))
    # a Loop that runs 0 times (max_len 0) returns scan outputs of unknown shape: restate (steps, batch, ·)
    scans = outs[len(sizes) + 2:]
    steps = g.dim(scans[0], 0)
    last_axes = [None, g.const("vocab", [dec.vocab], "int64"), g.dim(memory, 1)]
    result = []
    for name, value, last in zip(("tokens", "scores", "weights"), scans, last_axes, strict=False):
        shape = g.op("Concat", steps, batch, *([last] if last is not None else []), axis=0, name=f"{name}_shape")
        value = g.op("Reshape", value, shape, name=f"{name}_steps_major")
        result.append(g.op("Transpose", value, perm=[1, 0] if last is None else [1, 0, 2], name=name))
    return tuple(result)

