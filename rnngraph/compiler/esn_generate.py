"""Lowering of `Generative` (the ESN's generative mode, docs/esn.md): a Scan to prime, a Loop to generate.

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
from rnngraph.compiler.loop import LoopBody
from rnngraph.compiler.over_time import last_valid
from rnngraph.compiler.recurrent import SequenceInput, run_cell, step_once
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.model import Source


def first_step_index(g: GraphBuilder, seq: SequenceInput) -> str:
    """``(batch, 1)`` float: the step index of each row's first generated step (its length)."""
    if seq.lengths_i32 is not None:
        return g.unsqueeze(g.cast(seq.lengths_i32, "float", name="first_step"), [1])
    # the time, repeated for every row; from the shape alone (not 0·Σx, which overflows to NaN for large inputs)
    time = g.cast(g.dim(seq.x, 1), "float")
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
    with g.scope("generate"):
        # the clock goes on from each row's length: the generated steps continue the primed ones
        loop = LoopBody(g, "loop", clock_start=lambda: first_step_index(g, seq))
        states = loop.carry_all(finals, cell.state_sizes())
        if feed:  # the previous output is the next input
            u = loop.carry("u", last_valid(ctx, primed, seq.spec), [None, cell.output_size])
        else:
            u = g.zeros_state(seq.x, in_size)
        new_states, y = step_once(ctx, loop, cell, p, states, u)
        loop.update(new_states)
        if feed:
            loop.update({"u": y})
        loop.emit("generated", y, cell.output_size)
        generated = loop.run_loop(ctx.value(sources["steps"]), g.dim(seq.x, 0)).stacked["generated"]
    return generated, primed
