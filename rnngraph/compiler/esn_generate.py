"""Lowering of `Generative` (the ESN's generative mode, SPEC §2.5): a Scan to prime, a Loop to generate.

    primed, finals = Scan(cell) over x                      (batch, time, L); state after each row's last step
    Loop steps times (trip count = the `steps` input):
        u_t     = y_prev (feed_input) or 0                  (batch, K)
        states, y_t = step_once(cell, states, u_t)         the cell's full step, hoisted part included
    generated = Transpose(scan output of the Loop)           (steps, batch, L) -> (batch, steps, L)

The Loop's size is independent of both the priming length and `steps`.
"""

from __future__ import annotations

from collections.abc import Mapping

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowers
from rnngraph.compiler.layers import sequence_input
from rnngraph.compiler.recurrent import SequenceInput, cell_lowering, run_cell, step_once
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.model import Source


def last_valid(g: GraphBuilder, seq: SequenceInput, y: str, size: int) -> str:
    """``y[b, lengths[b] - 1]`` for each row b: ``(batch, time, size) -> (batch, size)``."""
    with g.scope("last"):
        if seq.lengths_i32 is None:
            time = g.dim(y, 1)
            index = g.op("Sub", time, g.const("one", [1], "int64"))
            return g.squeeze(g.op("Gather", y, index, axis=1), [1])
        last = g.op("Sub", g.op("Cast", seq.lengths_i32, to=7), g.const("one", 1, "int64"))  # (batch,) int64
        shape = g.op("Concat", g.dim(y, 0), g.const("one_size", [1, size], "int64"), axis=0)
        index = g.op("Expand", g.unsqueeze(last, [1, 2]), shape)  # (batch, 1, size)
        return g.squeeze(g.op("GatherElements", y, index, axis=1), [1])


def first_step_index(g: GraphBuilder, seq: SequenceInput) -> str:
    """``(batch, 1)`` float: the step index of each row's first generated step (its length)."""
    if seq.lengths_i32 is not None:
        return g.unsqueeze(g.op("Cast", seq.lengths_i32, to=1, name="first_step"), [1])
    # the time, repeated for every row; from the shape alone (not 0·Σx, which overflows to NaN for large inputs)
    time = g.op("Cast", g.dim(seq.x, 1), to=1)
    return g.unsqueeze(g.op("Expand", time, g.dim(seq.x, 0), name="first_step"), [1])


@lowers(Generative)
def lower_generative(ctx: LoweringContext, node: str, layer: Generative,
                     sources: Mapping[str, Source]) -> tuple[str, ...]:
    cell = layer.cell
    assert cell is not None
    g = ctx.g
    p = ctx.node_params(node)
    seq = sequence_input(ctx, sources["x"])
    primed, finals = run_cell(ctx, node, cell, p, seq)
    ctx.paths[node] = f"{ctx.paths[node]}+loop"
    in_size = sources["x"].spec.features
    feed = layer.feeds_input(in_size)
    names = list(finals)
    carried = [finals[k] for k in names]
    with g.scope("generate"):
        if feed:
            carried.append(last_valid(g, seq, primed, cell.output_size))
            zero_input = None
        else:
            zero_input = g.zeros_state(seq.x, in_size)
        start = first_step_index(g, seq) if cell_lowering(cell).needs_step_index else None

        body = g.body()
        with body.scope("body"):
            i = body.add_input(body.fresh("i"), "int64", [])
            cond = body.add_input(body.fresh("cond_in"), "bool", [])
            sizes = cell.state_sizes()
            states = {k: body.add_input(body.fresh(f"{k}_prev"), "float32", [None, sizes[k]]) for k in names}
            u = body.add_input(body.fresh("u_t"), "float32", [None, in_size]) if feed else zero_input
            assert u is not None
            index_t = None
            if start is not None:
                index_t = body.op("Add", start, body.op("Cast", i, to=1, name="i_f"), name="step_index")
            new_states, y = step_once(body, cell, p, states, u, index_t)
            outputs = [body.op("Identity", cond, name="cond_out")]
            outputs += [new_states[k] for k in names] + ([y] if feed else []) + [y]
            listed: set[str] = set()
            for k, value in enumerate(outputs):
                # a value may not be listed twice among body outputs (onnxruntime stops feeding the state back)
                if value in listed or value in states.values() or value == u:
                    value = body.op("Identity", value, name="out")
                    outputs[k] = value
                listed.add(value)
            body.add_output(outputs[0], "bool", [])
            for k, name in enumerate(names):
                body.add_output(outputs[1 + k], "float32", [None, sizes[name]])
            if feed:
                body.add_output(outputs[1 + len(names)], "float32", [None, cell.output_size])
            body.add_output(outputs[-1], "float32", [None, cell.output_size])
        trip = sources["steps"]
        loop_outs = g.op("Loop", ctx.value(trip), g.const("true", True, "bool"), *carried,
                         outputs=len(carried) + 1, name="loop", body=body.graph("body"))
        generated = g.op("Transpose", loop_outs[-1], perm=[1, 0, 2], name="batch_major")
        # after zero iterations onnxruntime returns the stacked output with its unknown dims as 0,
        # (0, 0, L); the Reshape gives it its true shape (batch, 0, L) and is a no-op otherwise
        # (allowzero=0: a 0 in the target copies the input's axis, which is then also 0)
        shape = g.op("Concat", g.dim(seq.x, 0), g.unsqueeze(ctx.value(trip), [0]),
                     g.const("size", [cell.output_size], "int64"), axis=0)
        generated = g.op("Reshape", generated, shape, name="generated")
    return generated, primed
