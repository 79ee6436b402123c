"""Streaming chunk models: a causal model run one chunk of a longer stream at a time.

    ExportOptions(streaming=True)        # rg.export(model, params, "kws.onnx", options=...)

A chunk model takes the model's own inputs for the next `time` steps of every stream
(row) and its whole recurrent state as explicit graph inputs, and gives the model's
outputs for those steps and the state after them. Running a sequence chunk by chunk,
feeding each chunk the state the previous one gave, equals running it whole.

The state layout (also written to the model's metadata, key ``rnngraph.state``):

    start               (batch, 1) int32   1: this row begins a new stream (its state is taken as 0)
    state_in/steps      (batch, 1) int64   steps each stream has processed so far (the clock phase)
    state_in/<L>/<s>    (batch, size) float (the export's dtype), for every recurrent layer L in model order
                        (a Stack's layers as <stack>/<layer>) and every state s of its cell
                        in `cell.state_sizes()` order (``h``; ``h, c``; an ESN's ``x, y``)
    state_out/...       the same names after the chunk: steps + the row's chunk length, the states

A new stream starts from zero state: feed zeros (or any values with ``start`` = 1).
With `lengths` (the model's lengths input), a chunk length may be 0..time: a row whose
stream ended, or has nothing yet, keeps its state and its steps frozen exactly.

Only causal models stream: every layer must compute step t from steps ≤ t. Refused,
naming the layer: `Bidirectional`, ``reverse=True``, readouts over the whole sequence
(``returns`` ``last``/``mean``/``max``), an `initial_state` input, and the layers that
are not a per-step map over one input sequence (Generate, Generative). A decoder streams one token
at a time through its own step export instead (`rnngraph.compiler.decoder_step`).
Each recurrent layer takes the path `ExportOptions.lowering` gives it (ONNX's native op or a
Scan). onnxruntime's native ops return zero states for a row of length 0 (a stream with no step
in this chunk, common here), so on that path such rows get their input state back with a `Where`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.compiler.builder import FLOAT
from rnngraph.compiler.context import LoweringContext, lowering_for
from rnngraph.compiler.guards import padding_zero
from rnngraph.compiler.idioms import reduce
from rnngraph.compiler.over_time import last_valid
from rnngraph.compiler.recurrent import SequenceInput, bind, choose_path, run_path, scan_cell
from rnngraph.compiler.wrappers import Ran, outputs_for
from rnngraph.dsl.decoder import DecoderLayer
from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.layers import Dense, InputLayer, Layer, Recurrent
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.errors import ExportError

START = "start"
STEPS = "steps"
STATE_IN = "state_in/"
STATE_OUT = "state_out/"
#: per-step readouts a chunk can compute; the others read the whole sequence
CAUSAL_RETURNS = ("sequence", "state")
DECODER_REFUSAL = ("decodes steps of its own after reading the whole source; it is not a chunk model but streams one "
                   "token at a time through its step export: rnngraph.export_decoder_step(model, params, "
                   "'x.encoder.onnx', 'x.step.onnx'), or `rnngraph export MODEL.py --streaming`, which writes both.")
#: layers that map each step of their input to the same step of their output
PER_STEP = (InputLayer, Dense, Embedding)


@dataclass(frozen=True)
class StateSlot:
    """One carried state of a chunk model: ``state_in/<name>`` → ``state_out/<name>``."""

    name: str
    size: int
    layer: str
    #: the export's float type (`ExportOptions.dtype`), as the metadata names it
    dtype: str = "float32"

    @property
    def input(self) -> str:
        return STATE_IN + self.name

    @property
    def output(self) -> str:
        return STATE_OUT + self.name

    def describe(self) -> dict[str, object]:
        return {"input": self.input, "output": self.output, "dtype": self.dtype, "dims": ["batch", self.size],
                "layer": self.layer, "initial": 0}


def streaming_refusal(model: Model) -> str | None:
    """Why `model` cannot be streamed (naming the layer and the fix), or None when it is causal."""
    for name, node in model.nodes():  # before the inputs: a decoder model's count input is no reason here
        if isinstance(node.layer, DecoderLayer):
            return f"layer {name!r} ({node.layer.title()}) {DECODER_REFUSAL}"
    for name, spec in model.inputs.items():
        if spec.kind != SEQUENCE:
            return (f"input {name!r} is a {spec.kind}, read once for the whole sequence; a chunk model takes "
                    "sequences only. Export without streaming.")
    taken = sorted({START} & (set(model.inputs) | set(model.outputs)))
    if taken:
        return (f"its input or output {taken[0]!r} has the name of the chunk model's reset input; "
                "rename it.")
    if len(model.lengths) > 1:
        return (f"it has {len(model.lengths)} lengths inputs ({sorted(model.lengths)}); a chunk model advances "
                "every stream by one chunk length. Give its sequence inputs one lengths input.")
    for name, node in model.nodes():
        layer = node.layer
        items = list(layer.items()) if isinstance(layer, Stack) else [(name, layer)]
        for local, item in items:
            where = f"layer {name!r} ({item.title()})" if local == name else f"layer {name!r}/{local} ({item.title()})"
            reason = _non_causal(item, model.sources(name))
            if reason is not None:
                return f"{where} {reason}"
        if isinstance(layer, Stack):
            reason = _returns_refusal(layer.returned)
            if reason is not None:
                return f"layer {name!r} ({layer.title()}) {reason}"
    return None


def _returns_refusal(returned: tuple[str, ...]) -> str | None:
    whole = [kind for kind in returned if kind not in CAUSAL_RETURNS]
    if whole:
        return (f"returns {whole[0]!r}, a readout over the whole sequence, which no chunk can compute; "
                "return 'sequence' and read it per step, or export without streaming.")
    return None


def _non_causal(layer: Layer, sources: Mapping[str, Source]) -> str | None:
    if isinstance(layer, PER_STEP):
        return None
    if isinstance(layer, Recurrent):
        if layer.reverse:
            return "runs in reverse (each step reads later steps); a chunk model needs forward layers only."
        if "initial_state" in sources:
            return ("takes an `initial_state` input; in a chunk model every state is an input of its own "
                    "(state_in/...).")
        return _returns_refusal(layer.returned)
    if isinstance(layer, Stack):  # its layers are checked one by one
        return None
    if isinstance(layer, Bidirectional):
        return "reads every sequence backward as well as forward; a chunk model needs forward layers only."
    return ("is not a per-step map of one sequence (it reads the whole sequence or produces steps of its own); "
            "export without streaming.")


class ChunkState:
    """The chunk-model parts shared by every recurrent layer: the reset, the clock, the state slots."""

    def __init__(self, ctx: LoweringContext) -> None:
        g = self.g = ctx.g
        self.ctx = ctx
        # the state inputs are padded to at least one row like the model's inputs (compiler/guards.py)
        start = ctx.pad_rows(g.add_input(g.claim(START), "int32", ["batch", 1]), 2)
        self.fresh = g.cast(start, "bool", name="start/bool")  # (batch, 1)
        steps_in = ctx.pad_rows(g.add_input(g.claim(STATE_IN + STEPS), "int64", ["batch", 1]), 2)
        self.steps = g.op("Where", self.fresh, g.const("zero_i64", 0, "int64"), steps_in, name="steps/reset")
        self._clock: str | None = None
        self.slots: list[StateSlot] = []
        #: the final value of each state slot, by slot name
        self.finals: dict[str, str] = {}

    def clock(self) -> str:
        """``(batch, 1)`` float, each row's steps so far: the clock start of every Clockwork in the chunk."""
        if self._clock is None:
            self._clock = self.g.cast(self.steps, "float", name="steps/float")
        return self._clock

    def state(self, name: str, size: int, layer: str) -> str:
        """A state input, reset to 0 on rows that start a stream."""
        g = self.g
        slot = StateSlot(name, size, layer, g.float_dtype)
        self.slots.append(slot)
        value = self.ctx.pad_rows(g.add_input(g.claim(slot.input), "float", ["batch", size]), 2)
        g.claim(slot.output)
        return g.op("Where", self.fresh, g.const("zero_f", 0.0), value, name=f"{name}/reset")

    def finish(self, model: Model) -> dict[str, object]:
        """The state outputs (after the model's): ``steps + chunk length`` and the states; returns the layout."""
        g = self.g
        lengths = next(iter(model.lengths), None)
        if lengths is not None:  # the clamped chunk lengths (0..time), not the guards' max(L, 1) the lowerings read
            advanced = g.unsqueeze(self.ctx.valid_lengths[lengths], [1])
        else:  # (1, 1): every row advances by the whole chunk
            advanced = g.unsqueeze(g.dim(next(iter(model.inputs)), 1), [0])
        cut = self.ctx.cut_rows  # back to the real batch size
        g.op("Identity", cut(g.op("Add", self.steps, advanced, name="steps/advanced")), output=STATE_OUT + STEPS,
             name=f"output/{STATE_OUT + STEPS}")
        g.add_output(STATE_OUT + STEPS, "int64", ["batch", 1])
        for slot in self.slots:
            g.op("Identity", cut(self.finals[slot.name]), output=slot.output, name=f"output/{slot.output}")
            g.add_output(slot.output, "float", ["batch", slot.size])
        return layout(self.slots)


def layout(slots: list[StateSlot]) -> dict[str, object]:
    """The state layout as written to the metadata (``rnngraph.state``)."""
    return {"streaming": True, "start": {"input": START, "dtype": "int32", "dims": ["batch", 1],
                                         "meaning": "1 where a row begins a new stream (its state is taken as 0)"},
            "steps": {"input": STATE_IN + STEPS, "output": STATE_OUT + STEPS, "dtype": "int64",
                      "dims": ["batch", 1], "initial": 0, "meaning": "steps processed so far (the clock phase)"},
            "states": [slot.describe() for slot in slots]}


def _recurrent(ctx: LoweringContext, stream: ChunkState, path: str, layer: Recurrent, p: Mapping[str, np.ndarray],
               x: str, spec: TensorSpec, finals: dict[str, str]) -> Ran:
    assert layer.cell is not None
    cell = layer.cell
    initial = {s: stream.state(f"{path}/{s}", size, path) for s, size in cell.state_sizes().items()}
    bound = bind(ctx, cell)
    clock = stream.clock() if bound.needs_step_index else None
    seq = SequenceInput(x, spec, ctx.mask(spec, x), ctx.lengths_i32(spec), False, clock_start=clock)
    ctx.paths[path] = choose_path(ctx.options.lowering, cell, ctx.options.device)
    if ctx.paths[path] == "native":  # under the NaN rule, as in a whole-sequence export (compiler/nan_rule.py)
        y, out = _nan_state_carried(ctx, spec, x, initial, *run_path(ctx, "native", cell, p, seq, initial))
    else:
        y, out = scan_cell(ctx, bound, p, seq, initial)
    out = _kept_where_empty(ctx, spec, initial, out)
    finals.update({f"{path}/{s}": value for s, value in out.items()})
    return Ran(y, lambda: last_valid(ctx, y, spec, False), list(out.values()))


def _nan_state_carried(ctx: LoweringContext, spec: TensorSpec, x: str, initial: Mapping[str, str], y: str,
                       out: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The NaN rule across chunks for a native op: a row whose incoming state holds a NaN (an earlier chunk
    had a NaN step) is NaN at every valid step of this chunk and in its final states.

    onnxruntime's ReLU `RNN` turns a NaN state back into numbers (its max drops the NaN), so the
    native op alone would let the stream recover; a Scan carries the NaN by itself. The flag is
    ``√−isnan(Σ state)`` per row ``(batch, 1)``: NaN or −0, added to ``y (batch, time, out)`` (padded
    steps cleared again) and to each final state.
    """
    g = ctx.g
    sums = [reduce(g, "ReduceSum", state, [1], keepdims=1, name="state_sum") for state in initial.values()]
    total = sums[0] if len(sums) == 1 else g.op("Sum", *sums, name="states_sum")
    flag = g.op("Sqrt", g.op("Neg", g.cast(g.op("IsNaN", total, name="nan_state"), FLOAT)), name="nan_carried")
    y = padding_zero(g, ctx.valid(spec, x), g.op("Add", y, g.unsqueeze(flag, [1]), name="y_nan_carried"))
    return y, {name: g.op("Add", value, flag, name=f"{name}_nan_carried") for name, value in out.items()}


def _kept_where_empty(ctx: LoweringContext, spec: TensorSpec, initial: Mapping[str, str],
                      out: Mapping[str, str]) -> dict[str, str]:
    """A row with 0 steps in this chunk keeps its states exactly. The lowerings run such a row for one
    step (the guards give every kernel at least one step, `compiler/guards.py`), and onnxruntime's
    native ops would zero it anyway; its input states are taken back here."""
    if spec.lengths is None:
        return dict(out)
    g = ctx.g
    lengths = ctx.valid_lengths[spec.lengths]
    empty = ctx.cached(("empty_rows", lengths), lambda: g.unsqueeze(
        g.op("Equal", lengths, g.const("zero_i64", 0, "int64"), name=f"{spec.lengths}/empty"), [1]))  # (batch, 1)
    return {name: g.op("Where", empty, initial[name], value, name=f"{name}_kept") for name, value in out.items()}


def compile_streaming(ctx: LoweringContext, model: Model) -> ChunkState:
    """Lower `model` as a chunk model into `ctx.g` (its inputs declared); call `finish` after its outputs."""
    reason = streaming_refusal(model)
    if reason is not None:
        raise ExportError(f"model {model.name!r} cannot be exported for streaming: {reason}")
    g = ctx.g
    stream = ChunkState(ctx)
    finals = stream.finals
    for name, node in model.nodes():
        layer, sources = node.layer, model.sources(name)
        with g.scope(name):
            if isinstance(layer, Recurrent):
                spec = sources["x"].spec
                ran = _recurrent(ctx, stream, name, layer, ctx.node_params(name), ctx.value(sources["x"]), spec,
                                 finals)
                outs = outputs_for(ctx, layer.returned, ran, spec)
            elif isinstance(layer, Stack):
                outs = _stack(ctx, stream, name, layer, sources, finals)
            else:
                outs = lowering_for(layer)(ctx, name, layer, sources)
        for index, value in enumerate(outs):
            ctx.values[(name, index)] = value
    return stream


def _stack(ctx: LoweringContext, stream: ChunkState, node: str, layer: Stack, sources: Mapping[str, Source],
           finals: dict[str, str]) -> tuple[str, ...]:
    """`Stack` as `wrappers.lower_stack` runs it, each layer's states explicit; residual layers add their input."""
    g = ctx.g
    p = ctx.node_params(node)
    spec, h = sources["x"].spec, ctx.value(sources["x"])
    residual = set(layer.residual_layers())
    states: list[str] = []
    ran: Ran | None = None
    for i, (local, item) in enumerate(layer.items()):
        assert isinstance(item, Recurrent)  # streaming_refusal let only forward Recurrent layers through
        params = {k[len(local) + 1:]: v for k, v in p.items() if k.startswith(local + "/")}
        with g.scope(local):
            ran = _recurrent(ctx, stream, f"{node}/{local}", item, params, h, spec, finals)
            if i in residual:
                y = g.op("Add", ran.y, h, name="residual")
                ran = Ran(y, ran.last, ran.finals)
        states += ran.finals
        h = ran.y
    assert ran is not None
    return outputs_for(ctx, layer.returned, Ran(ran.y, ran.last, states), spec)

