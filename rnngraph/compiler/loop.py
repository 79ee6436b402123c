"""The compiler's one loop-body abstraction: every `Scan` and every `Loop` node is built here.

A lowering that runs something over time says only what it carries and what it emits:

    loop = LoopBody(g, "scan")                      # or "loop" (a trip count, an optional stop condition)
    h = loop.carry("h", h0, [None, H])              # a carried state: its value at the start of the step
    x_t = loop.scan(x, "x_t")                       # Scan only: step t of a batch-first sequence (batch, ·)
    ... emit the step into loop.b ...               # loop.b is the body's GraphBuilder
    loop.update({"h": h_new})                       # its value at the end of the step
    loop.blend(mask_t)                              # padding: states kept exactly where the mask is 0
    loop.emit("y", y_t, H)                          # a per-step output, stacked over the steps
    out = loop.run_scan(reverse=False)              # or loop.run_loop(count, batch)
    out.finals["h"], out.stacked["y"]               # (batch, H), (batch, steps, H)

What it owns, so that no lowering repeats it:

- the order of the body's inputs and outputs that ONNX prescribes (Scan: states, then scanned
  inputs; Loop: iteration, condition, then carried values; the condition first among outputs);
- the clock, `clock()`: every row's step number at this step, ``(batch, 1)`` float. In a Loop it
  is ``start + iteration`` (`clock_start`, ``(batch, 1)``: 0, or where a row's clock stands when
  the loop begins — the priming length for `Generative`; streaming feeds the carried phase here);
  in a Scan it is one step of the per-row numbers of `sequence_clock`, scanned in. Built only
  when a cell asks for it (Clockwork), its outer part lazily (`clock_start`/`clock_steps` are
  callables);
- the padding blend ``s + m·(s_new − s)`` of the carried states (`blend`);
- body outputs distinct by construction: onnxruntime silently stops feeding a carried value
  back when one value is listed twice among a body's outputs (onnx's checker accepts it), and
  a body output must be computed in the body, so `_outputs` copies any value listed twice, any
  body input and any outer value or initializer through an `Identity`;
- the zero-trip shape fix: after a Loop that ran no iteration onnxruntime returns each stacked
  output with its unknown axes as 0 (``(0, 0, size)``, the batch lost), so `run_loop` restates
  ``(steps, batch, ·)`` with a Reshape (a no-op otherwise) before the batch-first Transpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from onnx import GraphProto, ValueInfoProto

from rnngraph.compiler.builder import FLOAT, Dim, GraphBuilder
from rnngraph.compiler.idioms import blend
from rnngraph.errors import ExportError

#: the trailing axis of a per-step output: a size; a dynamic size as an outer 1-element int64 value
#: (a Loop restates the axis with it); `UNKNOWN` (a Scan only: nothing is restated); None: no trailing axis
Width = int | str | None
UNKNOWN = ""
#: a body output: value, dtype, dims (None: unknown rank)
_Output = tuple[str, str, list[Dim] | None]


@dataclass
class _Carried:
    prev: str  # the body input: the value at the start of the step
    initial: str  # the outer value it starts from
    dtype: str
    dims: list[Dim] | None
    new: str | None = None  # the value at the end of the step (None: unchanged)


@dataclass(frozen=True)
class LoopOutputs:
    """What a loop node gives: the final carried values and the stacked per-step outputs, batch-first."""

    finals: dict[str, str]
    stacked: dict[str, str]


class LoopBody:
    """One Scan or Loop body under construction (see the module docstring)."""

    def __init__(self, g: GraphBuilder, kind: Literal["scan", "loop"], scope: str = "body", *,
                 clock_start: Callable[[], str] | None = None, clock_steps: Callable[[], str] | None = None) -> None:
        if kind not in ("scan", "loop"):
            raise ValueError(f"a loop body is a 'scan' or a 'loop', not {kind!r}")
        self.g, self.kind, self.scope = g, kind, scope
        self.b = g.body(scope)
        self._carried: dict[str, _Carried] = {}
        self._scanned: list[tuple[str, ValueInfoProto]] = []
        self._scan_axes: list[int] = []
        self._emitted: dict[str, tuple[str, str, Width]] = {}
        self._iteration: str | None = None
        self._condition_in: str | None = None
        self._condition: str | None = None
        self._clock: str | None = None
        self._clock_start, self._clock_steps = clock_start, clock_steps

    # -- what the body reads ----------------------------------------------------------------
    def carry(self, name: str, initial: str, dims: list[Dim] | None, dtype: str = FLOAT) -> str:
        """A value carried from step to step, starting at the outer value `initial`; returns its step-start value."""
        prev = self.b.fresh(f"{name}_prev")
        self._carried[name] = _Carried(prev, initial, dtype, dims)
        return prev

    def carry_all(self, initial: Mapping[str, str], sizes: Mapping[str, int]) -> dict[str, str]:
        """`carry` for float states ``(batch, size)`` by name (a cell's states)."""
        return {name: self.carry(name, initial[name], [None, size]) for name, size in sizes.items()}

    def scan(self, outer: str, name: str, dims: list[Dim] | None = None, dtype: str = FLOAT,
             time_major: bool = False) -> str:
        """Scan only: step t of the batch-first sequence `outer` ``(batch, time, ·)`` (with `time_major`:
        ``(time, batch, ·)``, scanned on axis 0), as ``(batch, ·)``."""
        if self.kind != "scan":
            raise ExportError("only a Scan body reads scanned inputs; a Loop computes its inputs from what it carries")
        inner = self.b.fresh(name)
        self._scanned.append((outer, self.b.value_info(inner, dtype, dims)))
        self._scan_axes.append(0 if time_major else 1)
        return inner

    def iteration(self) -> str:
        """Loop only: the iteration number, an int64 scalar counting from 0."""
        if self.kind != "loop":
            raise ExportError("a Scan body has no iteration number; scan the clock in (`clock`)")
        if self._iteration is None:
            self._iteration = self.b.fresh("iteration")
            self._condition_in = self.b.fresh("cond_in")
        return self._iteration

    def clock(self) -> str:
        """``(batch, 1)`` float: each row's step number at this step (see the module docstring)."""
        if self._clock is None:
            if self.kind == "scan" and self._clock_steps is not None:
                self._clock = self.scan(self._clock_steps(), "step_t", [None, 1])
            elif self.kind == "loop" and self._clock_start is not None:
                start, iteration = self._clock_start(), self.iteration()
                self._clock = self.b.op("Add", start, self.b.cast(iteration, FLOAT), name="step_t")
            else:
                raise ExportError(f"a cell in this {self.kind} needs the step number, and the loop was built "
                                  "without a clock (a bug in rnngraph).")
        return self._clock

    # -- what the body gives ----------------------------------------------------------------
    def update(self, new: Mapping[str, str]) -> None:
        """The values carried on to the next step, by name (names not given are carried unchanged)."""
        for name, value in new.items():
            self._carried[name].new = value

    def value(self, name: str) -> str:
        """The step-end value of carried `name` (its step-start value while not updated)."""
        carried = self._carried[name]
        return carried.new if carried.new is not None else carried.prev

    def blend(self, mask_t: str, names: Iterable[str] | None = None) -> None:
        """Padding: each state ``s + m·(s_new − s)``, kept exactly where ``mask_t (batch, 1)`` is 0."""
        for name in self._carried if names is None else names:
            carried = self._carried[name]
            if carried.new is not None:
                carried.new = blend(self.b, carried.prev, carried.new, mask_t, f"{name}_kept")

    def emit(self, name: str, value: str, width: Width, dtype: str = FLOAT) -> None:
        """A per-step output ``(batch, width)`` (``(batch,)`` for width None), stacked over the steps."""
        self._emitted[name] = (value, dtype, width)

    def stop_unless(self, keep_going: str) -> None:
        """Loop only: run the next iteration only if the bool scalar `keep_going` is true."""
        self.iteration()
        self._condition = keep_going

    # -- the node ----------------------------------------------------------------------------
    def run_scan(self, reverse: bool = False, time_major: bool = False) -> LoopOutputs:
        """The Scan node over the scanned inputs (axis 1, batch-first, or 0 for time-major ones), backward with
        `reverse`; its stacked outputs are batch-first (with `time_major`: ``(time, batch, ·)``)."""
        if self.kind != "scan":
            raise ExportError("run_scan on a Loop body (a bug in rnngraph)")
        outer_in = [c.initial for c in self._carried.values()] + [outer for outer, _ in self._scanned]
        direction = 1 if reverse else 0
        n_scan, n_out = len(self._scanned), len(self._emitted)
        outs = self.g.op_n(
            "Scan", *outer_in, outputs=len(self._carried) + n_out, name="scan", body=self._graph([], []),
            num_scan_inputs=n_scan, scan_input_axes=self._scan_axes, scan_input_directions=[direction] * n_scan,
            scan_output_axes=[0 if time_major else 1] * n_out, scan_output_directions=[direction] * n_out,
        )
        return self._split(outs)

    def run_loop(self, count: str, batch: str) -> LoopOutputs:
        """The Loop node: at most `count` iterations (an int64 scalar); `batch` is the batch size ``(1,)`` int64."""
        if self.kind != "loop":
            raise ExportError("run_loop on a Scan body (a bug in rnngraph)")
        g = self.g
        iteration = self.iteration()
        assert self._condition_in is not None
        heads = [self.b.value_info(iteration, "int64", []), self.b.value_info(self._condition_in, "bool", [])]
        condition = self._condition if self._condition is not None else self._condition_in
        keep_going = g.const("go", True, "bool") if self._condition is not None else ""
        outs = g.op_n("Loop", count, keep_going, *[c.initial for c in self._carried.values()],
                      outputs=len(self._carried) + len(self._emitted), name="loop",
                      body=self._graph(heads, [(condition, "bool", [])]))
        result = self._split(outs)
        stacked: dict[str, str] = {}
        steps = None
        for name, value in result.stacked.items():
            _, _, width = self._emitted[name]
            if width == UNKNOWN:
                raise ExportError(f"a Loop restates its stacked outputs: give the size of {name!r} (a bug in rnngraph)")
            steps = steps or g.dim(value, 0)
            trailing = [] if width is None else [width if isinstance(width, str) else g.const("size", [width], "int64")]
            shape = g.op("Concat", steps, batch, *trailing, axis=0, name=f"{name}_shape")
            restated = g.op("Reshape", value, shape, name=f"{name}_steps_major")  # (steps, batch, ·) even after 0 trips
            stacked[name] = g.op("Transpose", restated, perm=[1, 0] if width is None else [1, 0, 2], name=name)
        return LoopOutputs(result.finals, stacked)

    # -- internals ---------------------------------------------------------------------------
    def _split(self, outs: tuple[str, ...]) -> LoopOutputs:
        n = len(self._carried)
        return LoopOutputs(dict(zip(self._carried, outs[:n], strict=True)),
                           dict(zip(self._emitted, outs[n:], strict=True)))

    def _graph(self, heads: list[ValueInfoProto], first_outputs: list[_Output]) -> GraphProto:
        b = self.b
        b.inputs = heads + [b.value_info(c.prev, c.dtype, c.dims) for c in self._carried.values()] \
            + [info for _, info in self._scanned]
        outputs: list[_Output] = first_outputs + [(self.value(name), c.dtype, c.dims)
                                                  for name, c in self._carried.items()]
        outputs += [(value, dtype, [None] if width is None else [None, width if isinstance(width, int) else None])
                    for value, dtype, width in self._emitted.values()]
        for value, dtype, dims in self._distinct(outputs):
            b.add_output(value, dtype, dims)
        return b.graph(self.scope)

    def _distinct(self, outputs: list[_Output]) -> list[_Output]:
        """Body outputs with each value listed once and computed in the body (Identity copies otherwise)."""
        produced = {o for node in self.b.nodes for o in node.output}
        seen: set[str] = set()
        out = []
        for value, dtype, dims in outputs:
            if value in seen or value not in produced:
                value = self.b.op("Identity", value, name="out")
            seen.add(value)
            out.append((value, dtype, dims))
        return out


def sequence_clock(g: GraphBuilder, x: str, lengths_i32: str | None, reverse: bool, start: str | None = None) -> str:
    """``(batch, time, 1)`` float, the step number of each row at each step of a Scan over ``x``.

    Forward: step t. Reverse: ``lengths[b] - 1 - t``, so each row counts from 0 at its
    own first processed step; the padded steps a reverse Scan meets before a row's last
    valid step get negative numbers, which the padding blend makes irrelevant.
    `start` ``(batch, 1)`` float is added when given: where each row's clock stands
    at its first step (a chunk of a longer stream).
    """
    with g.scope("step_index"):
        time = g.dim(x, 1)
        steps = g.cast(g.op("Range", g.const("zero", 0, "int64"), g.squeeze(time, [0]), g.const("one", 1, "int64")),
                       FLOAT)
        steps = g.unsqueeze(steps, [0, 2])  # (1, time, 1)
        if reverse:
            # the last step of each row ((batch, 1, 1) with lengths, else one (1,) for all rows)
            last_steps = g.unsqueeze(lengths_i32, [1, 2]) if lengths_i32 is not None else time
            last = g.op("Sub", g.cast(last_steps, FLOAT), g.const("one_f", 1.0))
            steps = g.op("Sub", last, steps)
        shape = g.op("Concat", g.dim(x, 0), time, g.const("one_i", [1], "int64"), axis=0)
        steps = g.op("Expand", steps, shape, name="steps")  # (batch, time, 1)
        if start is not None:
            steps = g.op("Add", steps, g.unsqueeze(start, [2]), name="steps_from_start")
        return steps
