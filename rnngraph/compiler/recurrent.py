"""Running a cell over time: the Scan driver, the native-op path, and the choice between them.

A cell lowering (a `CellLowering`, found through the cell registry `rnngraph.dsl.registry`) supplies:

- `choose_form(cell, options) -> form`: which variant of the step this export uses (Clockwork:
  ``dense``, ``ladder`` or ``cycle``; most cells have one, ``"step"``). Called once per cell and
  run (`bind`); `hoist` and `step` both receive the same form, so they agree by construction.
  `refine_form(cell, form, seq, options)` may then replace a form the sequence cannot take
  (Clockwork's ``cycle`` needs a forward run on one clock; `seq` is None for one step in a Loop).
- optionally `own_scan(ctx, bound, p, seq, initial) -> (y, finals)`: the cell's own Scan for
  forms that run several time steps per iteration (Clockwork's ``cycle``), or None to use
  the driver below.
- `hoist(g, cell, p, seq, form) -> [u_1, …]`: work that does not depend on the
  recurrent state, done once for all steps before the loop (the input
  projection ``X·Wᵀ + b`` as one MatMul). Each ``u_k`` is ``(batch, time, n_k)``
  and becomes one scan input. Hoist must work on the last axis only (MatMul,
  Add, …): inside a Loop body (greedy decoding, generation) the same function
  is applied to one step, ``seq.x`` of shape ``(batch, in)`` (see `step_once`).
  A cell that needs the time index sets `needs_step_index`; `seq.step_index`
  is then ``(batch, time, 1)`` float, the step number of each row (0 at the
  row's first processed step, also when running in reverse), or ``(batch, 1)``
  inside a Loop body (the loop's clock, `LoopBody.clock`).
- `step(body, cell, p, states, inputs, form) -> (new_states, y)`: the recurrent part
  of one step inside the loop body; `states` and `inputs` are ``(batch, ·)``.
- optionally `native(ctx, cell, p, x, seq, initial) -> (y, finals)`: ONNX's own
  LSTM/GRU/RNN op, for cells whose semantics it matches exactly.

The Scan driver (`scan_cell`, on the one loop abstraction `rnngraph.compiler.loop`) owns what
is the same for all cells: zero initial states, padding (a row's state is frozen past its
length with the blend ``s + m·(s_new − s)``; outputs there are 0; it relies on the padded steps
holding finite values, which `lower_input` guarantees by clearing them), direction (reverse
scans run from the last step back, and the blend keeps each padded row at its initial state
until its own last valid step), and final states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rnngraph.compiler.builder import FLOAT, GraphBuilder
from rnngraph.compiler.by_batch import by_batch
from rnngraph.compiler.context import LoweringContext
from rnngraph.compiler.guards import padding_zero
from rnngraph.compiler.loop import LoopBody, sequence_clock
from rnngraph.compiler.nan_rule import guarded_native
from rnngraph.compiler.options import ExportOptions
from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.registry import implementation
from rnngraph.dsl.tensor import SEQUENCE, TensorSpec


@dataclass(frozen=True)
class KnownColumns:
    """The first `width` columns of a step's input, whose projections are computed outside the loop.

    ``project(W_k, b)`` gives, for this step, ``x_k·W_kᵀ + b (batch, out)`` (`W_k` the weights' first
    `width` columns); the step's ``x`` then holds only the remaining columns. The attention decoder
    uses it for its embedded targets: their share of every input projection becomes one MatMul over
    all steps before the Scan. A hoist reads its input only through `input_projection`.
    """

    width: int
    project: Callable[[np.ndarray, np.ndarray], str]


@dataclass(frozen=True)
class SequenceInput:
    """A batch-first sequence value being run over: its spec, mask and direction."""

    x: str
    spec: TensorSpec
    mask: str | None  # (batch, time, 1) float, None when unpadded
    lengths_i32: str | None
    reverse: bool = False
    #: per-row step number, set by the driver for cells with `needs_step_index`
    step_index: str | None = None
    #: ``(batch, 1)`` float, where each row's clock stands at its first step (a streaming chunk); None: 0
    clock_start: str | None = None
    #: leading input columns projected outside the loop (`x` holds the others); None: `x` is the whole input
    known: KnownColumns | None = None


# the `cell` argument is the registered Cell subclass, hence Any; the last argument is the form
Hoist = Callable[[GraphBuilder, Any, Mapping[str, np.ndarray], SequenceInput, str], list[str]]
Step = Callable[[GraphBuilder, Any, Mapping[str, np.ndarray], dict[str, str], list[str], str],
                tuple[dict[str, str], str]]
Native = Callable[[LoweringContext, Any, Mapping[str, np.ndarray], SequenceInput, dict[str, str] | None],
                  tuple[str, dict[str, str]]]
OwnScan = Callable[[LoweringContext, "BoundCell", Mapping[str, np.ndarray], SequenceInput, dict[str, str] | None],
                   tuple[str, dict[str, str]] | None]


def one_form(cell: Any, options: ExportOptions) -> str:
    """The form of a cell lowering that has only one."""
    return "step"


def same_form(cell: Any, form: str, seq: SequenceInput | None, options: ExportOptions) -> str:
    """A form that every sequence takes."""
    return form


@dataclass(frozen=True)
class CellLowering:
    hoist: Hoist
    step: Step
    native: Native | None = None
    #: whether the native op computes exactly this cell (e.g. not for every option)
    native_exact: Callable[[Any], bool] = lambda cell: True
    #: what `auto` picks when both paths apply, from measurements (see benchmarks/)
    prefer_native: bool = False
    #: whether onnxruntime's CUDA provider runs this cell's native op (`rnngraph.compiler.cuda`); False: never asked
    native_on_cuda: Callable[[Any], bool] = lambda cell: False
    #: whether `hoist` reads `seq.step_index` (Clockwork's clock)
    needs_step_index: bool = False
    #: the variant of the step for this cell under these export options (called once per run, see `bind`)
    choose_form: Callable[[Any, ExportOptions], str] = one_form
    #: the form for this sequence (None: one step inside a Loop), from the chosen one
    refine_form: Callable[[Any, str, SequenceInput | None, ExportOptions], str] = same_form
    #: the cell's own Scan for some forms (None from it, or no function: the generic driver)
    own_scan: OwnScan | None = None
    #: `auto`, where the Scan is preferred: the largest batch at which the native op is faster, for this cell and
    #: whether the sequence is padded (0: never); the graph then picks by the batch it runs on (`by_batch`)
    native_batch_limit: Callable[[Any, bool], int] | None = None
    #: the native op emitted beside this cell's Scan in one graph (`by_batch`), sharing the Scan's weights
    native_beside_scan: Native | None = None


@dataclass(frozen=True)
class BoundCell:
    """A cell with its lowering and its form, chosen once: `hoist` and `step` get the same form."""

    cell: Any
    impl: CellLowering
    form: str

    @property
    def needs_step_index(self) -> bool:
        return self.impl.needs_step_index

    def hoist(self, g: GraphBuilder, p: Mapping[str, np.ndarray], seq: SequenceInput) -> list[str]:
        return self.impl.hoist(g, self.cell, p, seq, self.form)

    def step(self, body: GraphBuilder, p: Mapping[str, np.ndarray], states: Mapping[str, str],
             inputs: list[str]) -> tuple[dict[str, str], str]:
        return self.impl.step(body, self.cell, p, dict(states), inputs, self.form)


def cell_lowering(cell: Cell) -> CellLowering:
    """The ONNX lowering of `cell`, from the cell registry (`rnngraph.dsl.registry`, backend ``onnx``)."""
    lowering: CellLowering = implementation(cell, "onnx")
    return lowering


def bind(ctx: LoweringContext, cell: Cell, seq: SequenceInput | None = None) -> BoundCell:
    """`cell`'s lowering with its form for this export (`ctx.options`) and for `seq` (None: one step in a
    Loop, or a run whose sequence the form may not rely on), chosen here and only here."""
    impl = cell_lowering(cell)
    return BoundCell(cell, impl, impl.refine_form(cell, impl.choose_form(cell, ctx.options), seq, ctx.options))


def choose_path(lowering: str, cell: Cell, device: str = "cpu", reverse: bool = False) -> str:
    """``native`` where the cell maps exactly onto ONNX's op and it is asked for (or faster), else ``scan``.

    For ``device="cuda"`` the native op only where the CUDA provider runs it exactly (forward
    runs, `rnngraph.compiler.cuda.CUDA_REVERSE_WITH_LENGTHS`), and then also for `auto`: cuDNN
    runs the whole sequence in one call, a Scan launches its body at every step.
    """
    impl = cell_lowering(cell)
    native_ok = impl.native is not None and impl.native_exact(cell)
    if device == "cuda":
        native_ok = native_ok and impl.native_on_cuda(cell) and not reverse
    if lowering == "native" and native_ok:
        return "native"
    if lowering == "auto" and native_ok and (impl.prefer_native or device == "cuda"):
        return "native"
    return "scan"


def run_cell(
    ctx: LoweringContext,
    node: str,
    cell: Cell,
    p: Mapping[str, np.ndarray],
    seq: SequenceInput,
    initial: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Lower `cell` over `seq`; returns ``y (batch, time, out)`` and the final states by name."""
    path = choose_path(ctx.options.lowering, cell, ctx.options.device, seq.reverse)
    impl = cell_lowering(cell)
    limit = 0
    if path == "scan" and ctx.options.lowering == "auto" and ctx.options.device == "cpu" \
            and impl.native_batch_limit is not None and impl.native_exact(cell):
        limit = impl.native_batch_limit(cell, seq.mask is not None)
    if limit > 0:  # the faster path depends on the batch, known only when the graph runs
        ctx.paths[node] = f"native if batch <= {limit}, else scan"
        return by_batch(ctx, cell, p, seq, initial, limit, run_path)
    ctx.paths[node] = path
    return run_path(ctx, path, cell, p, seq, initial)


def run_path(ctx: LoweringContext, path: str, cell: Cell, p: Mapping[str, np.ndarray], seq: SequenceInput,
             initial: dict[str, str] | None, native: Native | None = None, nan_free: bool = False
             ) -> tuple[str, dict[str, str]]:
    """`cell` over `seq` on one path (``scan`` or ``native``; `native`: that native lowering instead of the cell's;
    `nan_free`: the caller runs this path only when ``seq.x`` holds no NaN, so the native op needs no NaN rule)."""
    g = ctx.g
    if path == "scan":
        y, finals = scan_cell(ctx, bind(ctx, cell, seq), p, seq, initial)
        # padded outputs 0 (a NaN state carries itself on, the NaN rule needs nothing more)
        y_tm = ctx.time_major.get(y)
        if y_tm is None:
            return padding_zero(g, ctx.valid(seq.spec, seq.x), y), finals
        x_tm = ctx.time_major[seq.x]
        return batch_first(ctx, padding_zero(g, ctx.valid(seq.spec, x_tm, time_axis=0), y_tm)), finals
    emit = native or cell_lowering(cell).native
    assert emit is not None
    if nan_free:
        return emit(ctx, cell, p, seq, initial)
    # the op under the NaN rule (rnngraph/compiler/nan_rule.py), over the time-major input both its branches read
    y, finals = guarded_native(ctx, lambda sub: emit(sub, cell, p, seq, initial), time_major(ctx, seq.x),
                               seq.spec, seq.reverse)
    return from_native_outputs(ctx, y, finals)


def scan_cell(
    ctx: LoweringContext,
    bound: BoundCell,
    p: Mapping[str, np.ndarray],
    seq: SequenceInput,
    initial: dict[str, str] | None,
) -> tuple[str, dict[str, str]]:
    if bound.impl.own_scan is not None:
        own = bound.impl.own_scan(ctx, bound, p, seq, initial)
        if own is not None:
            return own
    g = ctx.g
    cell = bound.cell
    sizes = cell.state_sizes()
    if bound.needs_step_index:  # the clock is hoisted with the rest: the cell reads it outside the loop
        seq = replace(seq, step_index=sequence_clock(g, seq.x, seq.lengths_i32, seq.reverse, seq.clock_start))
    # after a native layer the sequence is at hand time-major: the hoist (last axis only) reads it so, and the
    # Scan scans it on axis 0, with no Transpose back (a cell reading the batch-first clock keeps batch-first)
    x_tm = None if bound.needs_step_index else ctx.time_major.get(seq.x)
    hoisted = bound.hoist(g, p, seq if x_tm is None else replace(seq, x=x_tm))
    if initial is None:
        batch = g.dim(seq.x, 0) if x_tm is None else g.dim(x_tm, 1)
        initial = {name: g.filled(g.op("Concat", batch, g.const("size", [size], "int64"), axis=0), 0.0, FLOAT,
                                  "zero") for name, size in sizes.items()}

    loop = LoopBody(g, "scan")
    states = loop.carry_all(initial, sizes)
    inputs = [loop.scan(u, f"u{k}_t", time_major=x_tm is not None) for k, u in enumerate(hoisted)]
    mask_t = loop.scan(seq.mask, "mask_t", [None, 1]) if seq.mask is not None else None
    new_states, y = bound.step(loop.b, p, states, inputs)
    loop.update(new_states)
    if mask_t is not None:
        # where y is a state (h), read it back from the blended state: s + 1·(new − s) can differ from
        # new by an ulp, and the output must be the state carried on, bit for bit (Clockwork's kept groups)
        y_state = next((name for name in sizes if new_states[name] == y), None)
        loop.blend(mask_t)
        y = loop.b.op("Mul", loop.value(y_state) if y_state else y, mask_t, name="y_masked")
    loop.emit("y", y, cell.output_size)
    out = loop.run_scan(reverse=seq.reverse, time_major=x_tm is not None)
    if x_tm is not None:  # the time-major flow goes on (a next native layer or Scan reads it)
        return batch_first(ctx, out.stacked["y"]), out.finals
    return out.stacked["y"], out.finals


def step_once(
    ctx: LoweringContext,
    loop: LoopBody,
    cell: Cell,
    p: Mapping[str, np.ndarray],
    states: Mapping[str, str],
    x_t: str,
    known: KnownColumns | None = None,
) -> tuple[dict[str, str], str]:
    """One full step inside a loop body, where nothing can be hoisted: ``x_t (batch, in)``.

    A cell that needs the step number reads the loop's clock. Returns the new
    states and ``y_t (batch, out)``; no padding is applied. With `known`, ``x_t`` holds
    the input's columns after the known ones.
    """
    return step_in(ctx, loop.b, loop.clock, cell, p, states, x_t, known)


def step_in(
    ctx: LoweringContext,
    b: GraphBuilder,
    clock: Callable[[], str],
    cell: Cell,
    p: Mapping[str, np.ndarray],
    states: Mapping[str, str],
    x_t: str,
    known: KnownColumns | None = None,
) -> tuple[dict[str, str], str]:
    """`step_once` into any graph `b` (a loop body, or a decoder step model): ``clock()`` gives
    ``(batch, 1)`` float step numbers, asked for only by a cell that needs them."""
    bound = bind(ctx, cell)
    seq = SequenceInput(x_t, TensorSpec("vector", 0), None, None, False,
                        clock() if bound.needs_step_index else None, known=known)
    return bound.step(b, p, states, bound.hoist(b, p, seq))


@dataclass(frozen=True)
class FoldedBias:
    """``Wb + Rb``, kept as its two halves: both stored as they are (so the file holds each parameter once and
    `rnngraph.load` finds it) and added in the graph, which onnxruntime folds into one constant when it loads
    the file."""

    wb: np.ndarray
    rb: np.ndarray

    def value(self, g: GraphBuilder, name: str = "bias") -> str:
        return g.op("Add", g.const("Wb", self.wb), g.const("Rb", self.rb), name=name)


def input_projection(g: GraphBuilder, seq: SequenceInput, W: np.ndarray, b: np.ndarray | FoldedBias,
                     name: str = "x_proj") -> str:
    """``X·Wᵀ + b`` for all steps at once: ``(batch, time, in) -> (batch, time, out)`` (or one step).

    One ``Gemm`` on the steps as rows, ``(batch·time, in)``: its bias is added as the product is
    written, where a 3-D MatMul and an Add would pass over the whole ``(batch, time, out)`` twice.
    With `seq.known`, the known columns' share (and b) comes from outside the loop and only the
    remaining columns, `seq.x`, are multiplied here.
    """
    if seq.known is not None:  # one step, x (batch, rest): a Gemm, which onnxruntime does not make of MatMul + Add
        k = seq.known.width  # W's columns kept in W's own row order (transB): the parameter layout stays compact
        rest = g.const("W_rest", np.ascontiguousarray(W[:, k:]))
        summed = b.wb + b.rb if isinstance(b, FoldedBias) else b
        return g.op("Gemm", seq.x, rest, seq.known.project(W[:, :k], summed), transB=1, name=name)
    W_T = g.const("W_T", np.ascontiguousarray(W.T))
    bias = b.value(g) if isinstance(b, FoldedBias) else g.const("bias", b)
    if seq.spec.kind != SEQUENCE:  # one step (batch, in), inside a Loop body
        return g.op("Gemm", seq.x, W_T, bias, name=name)
    rows = g.op("Reshape", seq.x, g.const("rows", [-1, W.shape[1]], "int64"), name=f"{name}/rows")
    shape = g.op("Concat", g.op("Shape", seq.x, start=0, end=2, name=f"{name}/steps") if g.opset >= 15 else
                 g.op("Slice", g.op("Shape", seq.x), g.const("zero_i", [0], "int64"), g.const("two", [2], "int64")),
                 g.const("size", [W.shape[0]], "int64"), axis=0, name=f"{name}/shape")
    return g.op("Reshape", g.op("Gemm", rows, W_T, bias, name=f"{name}/Gemm"), shape, name=name)


def time_major(ctx: LoweringContext, x: str) -> str:
    """``(time, batch, ·)`` of the batch-first sequence `x`: the value that holds it already, else one Transpose."""
    if x not in ctx.time_major:
        ctx.time_major[x] = ctx.g.op("Transpose", x, perm=[1, 0, 2], name="time_major")
    return ctx.time_major[x]


def batch_first(ctx: LoweringContext, x_tm: str) -> str:
    """The batch-first twin of a time-major sequence, remembered as such; dropped from the graph when nothing
    reads it (`rnngraph.compiler.prune`): consecutive native layers read `x_tm` itself."""
    x = ctx.g.op("Transpose", x_tm, perm=[1, 0, 2], name="batch_major")
    ctx.time_major[x] = x_tm
    return x


def pointwise(ctx: LoweringContext, build: Callable[..., str], *values: str) -> str:
    """``build(*values)`` for batch-first sequences; on their time-major twins when all have one (a merge or a
    residual Add between native layers keeps the time-major flow), the batch-first result then its twin."""
    twins = [ctx.time_major.get(v) for v in values]
    if all(t is not None for t in twins):
        return batch_first(ctx, build(*twins))
    return build(*values)


def from_native_outputs(ctx: LoweringContext, y: str, finals: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """ONNX layout-0 outputs ``Y (time, 1, batch, h)``, ``Y_h (1, batch, h)`` → batch-first (with its
    time-major twin ``(time, batch, h)`` remembered, see `batch_first`)."""
    g = ctx.g
    return batch_first(ctx, g.squeeze(y, [1])), {name: g.squeeze(v, [0]) for name, v in finals.items()}
