"""Step export of a decoder: the encoder run once, then one call of a step model per token.

    rg.export_decoder_step(model, params, "mt.encoder.onnx", "mt.step.onnx")

`model` holds one decoder node (`Decoder.greedy` or `Decoder.teacher_forced`, docs/encoder-decoder.md).
Everything before the decoder, and what the decoder computes once per source, is the
**encoder** graph; one decoding step is the **step** graph (the body of the greedy Loop,
with its carried values as explicit inputs and outputs). With H the memory's features,
S_k the sizes of the cell's states, K the attention keys' size, C the context's size:

encoder  in   the model inputs the decoder's memory reads (e.g. ``src (batch, time)``, ``lengths (batch,)``)
         out  ``context/memory (batch, time, H)``   attention only: the encoder's output sequence
              ``context/keys (batch, time, K)``     additive (U·h_j) and general (W·h_j) attention
              ``context/bias (batch, time)``        attention over a padded memory: 0 on valid steps, −1e9 past them
              ``context/c (batch, C)``              use="every": the context read at every step
              ``state_out/<decoder>/<s> (batch, S_k)``  the decoder's initial state s_0
step     in   ``token (batch,)`` int64              the previous token: BOS at the first step
              ``state_in/steps (batch, 1)`` int64   steps decoded so far (a Clockwork cell's clock)
              ``state_in/<decoder>/<s> (batch, S_k)``  the state after the previous step
              ``context/*``                         as the encoder gave them, unchanged at every step
         out  ``scores (batch, vocab)``             the readout's output (softmax or logits, as declared)
              ``argmax (batch,)`` int64             the greedy token
              ``weights (batch, time)``             attention only: α of this step
              ``state_out/steps``, ``state_out/<decoder>/<s>``  feed back as ``state_in/...``

Greedy decoding from Python (`rnngraph.runtime.step_decoder`) feeds BOS, then each step's
``argmax``; a row that emitted EOS is fed ``pad``, its outputs are 0 and its state is kept, as the
in-graph Loop does. A row of the source with length 0 is not defined here (the whole model gives
zeros for it): give every row at least one step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.compiler import CompiledGraph, declare
from rnngraph.compiler.attention import AttentionValues, prepare_attention
from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext, lowering_for
from rnngraph.compiler.decoder import context_value, decoder_step, initial_states
from rnngraph.compiler.options import ExportOptions
from rnngraph.compiler.streaming import STATE_IN, STATE_OUT, STEPS, StateSlot
from rnngraph.dsl.decoder import Decoder, DecoderLayer
from rnngraph.dsl.model import Model
from rnngraph.dsl.params import effective
from rnngraph.dsl.tensor import Node, Tensor, TensorSpec
from rnngraph.errors import ExportError

TOKEN = "token"
ARGMAX = "argmax"
SCORES = "scores"
WEIGHTS = "weights"
CONTEXT = "context/"


@dataclass
class StepGraphs:
    """The two compiled graphs and the layout both files carry as ``rnngraph.state``."""

    encoder: CompiledGraph
    step: CompiledGraph
    layout: dict[str, object]


@dataclass(frozen=True)
class ContextSlot:
    """One value the encoder gives and every step reads unchanged."""

    name: str
    dims: list[str | int]
    meaning: str

    def describe(self) -> dict[str, object]:
        return {"name": CONTEXT + self.name, "dtype": "float32", "dims": self.dims, "meaning": self.meaning}


def decoder_node(model: Model) -> tuple[str, Decoder]:
    """The one decoder node of `model`; refused, saying why, when there is none or more than one."""
    found = [(name, node.layer) for name, node in model.nodes() if isinstance(node.layer, DecoderLayer)]
    if len(found) != 1:
        what = "no decoder" if not found else f"{len(found)} decoder nodes ({', '.join(n for n, _ in found)})"
        raise ExportError(f"model {model.name!r} has {what}; a decoder step export needs exactly one "
                          "Decoder node (greedy or teacher-forced). Export a causal model with "
                          "ExportOptions(streaming=True) instead, or build a model with one decoder.")
    name, layer = found[0]
    return name, layer.dec


def encoder_model(model: Model, decoder: str, params: Mapping[str, np.ndarray]) -> tuple[Model, dict[str, np.ndarray]]:
    """The sub-model from the inputs to the decoder's memory (output ``memory``), with its parameters.

    The sub-model names its nodes by its own walk; parameters are carried over node by node.
    """
    memory: Tensor = model.graph.nodes[decoder]["node"].inputs["memory"]
    reached: set[int] = set()

    def visit(node: Node) -> None:
        if id(node) not in reached:
            reached.add(id(node))
            for t in node.inputs.values():
                visit(t.node)

    visit(memory.node)
    inputs = [model.graph.nodes[n]["node"].outputs[0] for n in model.inputs
              if id(model.graph.nodes[n]["node"]) in reached]
    sub = Model(inputs, {"memory": memory}, name=f"{model.name}_encoder")
    full_names = {id(node): name for name, node in model.nodes()}
    sub_params: dict[str, np.ndarray] = {}
    for name, node in sub.nodes():
        for local, value in model.node_params(full_names[id(node)], params).items():
            sub_params[f"{name}/{local}"] = value
    return sub, sub_params


def compile_decoder_step(model: Model, params: Mapping[str, np.ndarray], opset: int = 17,
                         options: ExportOptions | None = None) -> StepGraphs:
    """Compile `model`'s encoder part and its decoder's step (see the module docstring)."""
    options = options or ExportOptions()
    model.check_params(params)
    name, dec = decoder_node(model)
    sub, sub_params = encoder_model(model, name, params)
    p = model.node_params(name, effective(model.param_specs(), params, np.float32))
    mspec = sub.outputs["memory"].spec
    assert dec.cell is not None
    slots = [StateSlot(f"{name}/{s}", size, name) for s, size in dec.cell.state_sizes().items()]
    contexts = context_slots(dec, mspec)
    encoder = _compile_encoder(sub, sub_params, dec, name, p, slots, contexts, opset, options)
    step = _compile_step(model, dec, name, p, mspec, slots, contexts, opset, options)
    return StepGraphs(encoder, step, step_layout(model, name, dec, slots, contexts))


def context_slots(dec: Decoder, mspec: TensorSpec) -> list[ContextSlot]:
    """What the step reads from the encoder, in input order."""
    H, time = mspec.features, mspec.time
    out = []
    if dec.attention is not None:
        out.append(ContextSlot("memory", ["batch", time, H], "the encoder's output sequence, attended over"))
        if dec.attention.score in ("additive", "general"):
            units = dec.attention.units if dec.attention.score == "additive" else dec.state_size
            out.append(ContextSlot("keys", ["batch", time, units or dec.state_size],
                                   "the attention keys of every memory step, computed once"))
        if mspec.lengths is not None:
            out.append(ContextSlot("bias", ["batch", time], "added to the attention scores: 0 on each row's valid "
                                   "steps, -1e9 past its length"))
    if dec.context is not None and dec.use == "every":
        out.append(ContextSlot("c", ["batch", dec.context_size(H)], "the context, part of every step's input"))
    return out


def _compile_encoder(sub: Model, sub_params: Mapping[str, np.ndarray], dec: Decoder, name: str,
                     p: Mapping[str, np.ndarray], slots: list[StateSlot], contexts: list[ContextSlot], opset: int,
                     options: ExportOptions) -> CompiledGraph:
    """The encoder graph: the sub-model's stages as `compile_model` runs them, then the decoder's once-per-source
    values (context, initial states, attention keys and mask bias) as outputs."""
    g = GraphBuilder(opset, deferred={})
    ctx = LoweringContext(g, sub, effective(sub.param_specs(), sub_params, np.float32), options)
    guards = declare(ctx, sub, [slot.output for slot in slots] + [CONTEXT + c.name for c in contexts])
    for node_name, node in sub.nodes():
        with g.scope(node_name):
            outs = lowering_for(node.layer)(ctx, node_name, node.layer, sub.sources(node_name))
        for index, value in enumerate(outs):
            ctx.values[(node_name, index)] = value
    source = sub.outputs["memory"]
    memory, mspec = ctx.value(source), source.spec
    with g.scope(name):
        c = context_value(ctx, dec, p, memory, mspec)
        initial = initial_states(ctx, dec, p, c, memory, mspec.features)
        av = prepare_attention(ctx, dec.attention, p, memory, mspec) if dec.attention is not None else None
    guards.redirect()
    values: dict[str, str | None] = {"memory": memory, "c": c}
    if av is not None:
        values.update(keys=av.keys, bias=av.bias)
    for context in contexts:
        found = values[context.name]
        assert found is not None
        # only the batch and time axes are cut back to the real sizes (bias has no feature axis)
        spec = TensorSpec("vector", int(context.dims[-1])) if context.name == "c" else mspec
        _output(g, guards.output(found, spec, zero_empty_rows=False), CONTEXT + context.name, context.dims)
    for slot, state in zip(slots, initial, strict=True):
        value = guards.output(initial[state], TensorSpec("vector", slot.size), zero_empty_rows=False)
        _output(g, value, slot.output, ["batch", slot.size])
    assert g.deferred is not None
    return CompiledGraph(g.graph(sub.name), ctx.paths, None, g.deferred)


def _output(g: GraphBuilder, value: str, name: str, dims: list[str | int], dtype: str = "float32") -> None:
    g.op("Identity", value, output=name, name=f"output/{name}")
    g.add_output(name, dtype, dims)


def _compile_step(model: Model, dec: Decoder, name: str, p: Mapping[str, np.ndarray], mspec: TensorSpec,
                  slots: list[StateSlot], contexts: list[ContextSlot], opset: int,
                  options: ExportOptions) -> CompiledGraph:
    """The step graph: `decoder.decoder_step` between explicit inputs and outputs."""
    g = GraphBuilder(opset, deferred={})
    ctx = LoweringContext(g, model, {}, options)
    token = g.add_input(g.claim(TOKEN), "int64", ["batch"])
    steps = g.add_input(g.claim(STATE_IN + STEPS), "int64", ["batch", 1])
    states = {slot.name.rsplit("/", 1)[1]: g.add_input(g.claim(slot.input), "float32", ["batch", slot.size])
              for slot in slots}
    context = {slot.name: g.add_input(g.claim(CONTEXT + slot.name), "float32", slot.dims) for slot in contexts}
    for out in (SCORES, ARGMAX, WEIGHTS, STATE_OUT + STEPS, *(slot.output for slot in slots)):
        g.claim(out)
    av = AttentionValues(context["memory"], context.get("keys"), context.get("bias")) \
        if dec.attention is not None else None
    with g.scope(name):
        new_states, scores, alpha = decoder_step(ctx, g, lambda: g.cast(steps, "float32", name="clock"), dec, p,
                                                 av, context.get("c"), states, token)
        best = g.op("ArgMax", scores, axis=-1, keepdims=0, name="argmax")
        advanced = g.op("Add", steps, g.const("one", 1, "int64"), name="steps")
    _output(g, scores, SCORES, ["batch", dec.vocab])
    _output(g, best, ARGMAX, ["batch"], "int64")
    if alpha is not None:
        _output(g, alpha, WEIGHTS, ["batch", mspec.time])
    _output(g, advanced, STATE_OUT + STEPS, ["batch", 1], "int64")
    for slot, state in zip(slots, new_states, strict=True):
        _output(g, new_states[state], slot.output, ["batch", slot.size])
    assert g.deferred is not None
    return CompiledGraph(g.graph(f"{model.name}_step"), {name: "step"}, None, g.deferred)


def step_layout(model: Model, name: str, dec: Decoder, slots: list[StateSlot],
                contexts: list[ContextSlot]) -> dict[str, object]:
    """The layout written to both files' metadata (``rnngraph.state``, docs/deploy.md)."""
    count = next((s.count_max for s in model.inputs.values() if s.count_max is not None), None)
    return {
        "streaming": True, "kind": "decoder_step", "decoder": name,
        "token": {"input": TOKEN, "dtype": "int64", "dims": ["batch"],
                  "meaning": f"the previous token: bos={dec.bos} at the first step, then the token chosen"},
        "steps": {"input": STATE_IN + STEPS, "output": STATE_OUT + STEPS, "dtype": "int64", "dims": ["batch", 1],
                  "initial": 0, "meaning": "steps decoded so far (the clock phase)"},
        "states": [{**slot.describe(), "initial": "the encoder's output of the same name"} for slot in slots],
        "context": [slot.describe() for slot in contexts],
        "outputs": {"scores": SCORES, "argmax": ARGMAX, **({"weights": WEIGHTS} if dec.attention else {})},
        "bos": dec.bos, "eos": dec.eos, "pad": dec.pad, "vocab": dec.vocab, "max_len": dec.max_len,
        "max_len_cap": count,
    }
