"""Lowers a validated model to an ONNX graph.

One linear function of named stages (`compile_model`): check the options and the
parameters, declare the graph inputs, guard them (`guards`: empty inputs, lengths, counts),
lower every node in dependency order, name the outputs (cut back to the real sizes), drop what no
output reads (`prune`). Each layer's
lowering is registered with `context.lowers`; each cell's is found through the cell
registry (`rnngraph.dsl.registry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from onnx import GraphProto

from rnngraph.compiler import decoder as _decoder  # noqa: F401 - Decoder (teacher-forced, greedy), attention
from rnngraph.compiler import embedding as _embedding  # noqa: F401 - Embedding
from rnngraph.compiler import esn_generate as _esn_generate  # noqa: F401 - Generative (ESN closed loop)
from rnngraph.compiler import generate as _generate  # noqa: F401 - Generate (1-to-N)
from rnngraph.compiler import layers as _layers  # noqa: F401 - registers the layer lowerings
from rnngraph.compiler import wrappers as _wrappers  # noqa: F401 - Recurrent, Bidirectional, Stack
from rnngraph.compiler.builder import GraphBuilder, compiler_dtype, fill_deferred
from rnngraph.compiler.context import LoweringContext, lowering_for
from rnngraph.compiler.guards import Guards, prelude
from rnngraph.compiler.options import ExportOptions, resolve
from rnngraph.compiler.prune import initializer_names, prune_graph
from rnngraph.compiler.shared_weights import share_identical
from rnngraph.compiler.streaming import compile_streaming
from rnngraph.dsl.model import Model
from rnngraph.dsl.params import effective
from rnngraph.dsl.tensor import SEQUENCE


@dataclass
class CompiledGraph:
    graph: GraphProto
    #: per recurrent node, the path taken: "scan", "native" or "loop"
    paths: dict[str, str]
    #: a streaming chunk model's state layout (`streaming.layout`); None for a whole-sequence model
    state: dict[str, object] | None = None
    #: the data of the large initializers, by name, not yet in `graph` (`builder.fill_deferred` puts it in)
    deferred: dict[str, np.ndarray] = field(default_factory=dict)
    #: the float type of every float input, output and weight (`ExportOptions.dtype`)
    dtype: str = "float32"

    def filled(self) -> GraphProto:
        """`graph` with every initializer's data in it (moved out of `deferred`)."""
        fill_deferred(self.graph, self.deferred)
        return self.graph


def declare(ctx: LoweringContext, model: Model, outputs: Iterable[str]) -> Guards:
    """The graph inputs (the model's, then its lengths), the `outputs` names claimed, and the guards' prelude:
    empty inputs padded, lengths defaults and clamps, count caps (compiler/guards.py)."""
    g = ctx.g
    for name, spec in model.inputs.items():
        g.add_input(g.claim(name), compiler_dtype(spec.dtype), spec.dims())
    for lengths in model.lengths:
        g.add_input(g.claim(lengths), "int64", ["batch"])
    for out_name in outputs:
        g.claim(out_name)
    guards = prelude(g, model, ctx.options.device)
    ctx.valid_lengths, ctx.pad_rows, ctx.cut_rows = guards.valid_lengths, guards.pad_rows, guards.cut_rows
    return guards


def compile_model(model: Model, params: Mapping[str, np.ndarray], opset: int = 17,
                  lowering: str = "auto", options: ExportOptions | None = None) -> CompiledGraph:
    """`options` (an `ExportOptions`) carries every export choice (the lowering, the float dtype, streaming);
    `lowering` alone is the short form."""
    options = resolve(lowering, options)
    model.check_params(params)
    g = GraphBuilder(opset, deferred={}, float_dtype=options.dtype)
    # the parameters in the export's float type, rounded once (a float64 export keeps float64 weights exactly)
    float_type: type[np.floating] = np.float64 if options.dtype == "float64" else np.float32
    ctx = LoweringContext(g, model, effective(model.param_specs(), params, float_type), options)

    guards = declare(ctx, model, model.outputs)

    stream = compile_streaming(ctx, model) if options.streaming else None
    if stream is None:
        for name, node in model.nodes():
            lower = lowering_for(node.layer)
            with g.scope(name):
                outs = lower(ctx, name, node.layer, model.sources(name))
            for index, value in enumerate(outs):
                ctx.values[(name, index)] = value
    guards.redirect()

    for out_name, source in model.outputs.items():
        # empty rows 0, real batch and time sizes; a chunk model's final states carry an empty row's state on
        keep_state = options.streaming and source.spec.kind != SEQUENCE
        value = guards.output(ctx.value(source), source.spec, zero_empty_rows=not keep_state)
        g.op("Identity", value, output=out_name, name=f"output/{out_name}")
        g.add_output(out_name, compiler_dtype(source.spec.dtype), source.spec.dims())
    state = stream.finish(model) if stream is not None else None
    assert g.deferred is not None
    graph = g.graph(model.name)
    share_identical(graph, g.deferred)  # a weight read in several loop bodies is stored once
    prune_graph(graph)  # what no output reads (a native op's unread final states, unused guard sizes) is not run
    kept = initializer_names(graph)
    deferred = {name: array for name, array in g.deferred.items() if name in kept}
    return CompiledGraph(graph, ctx.paths, state, deferred, options.dtype)
