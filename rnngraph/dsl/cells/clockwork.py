"""The Clockwork RNN cell (Koutník et al. 2014), docs/clockwork.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import one_of, positive_int
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.registry import register_cell
from rnngraph.errors import ModelError, invalid

CLOCKWORK_ACTIVATIONS = ("tanh", "relu", "sigmoid")


@dataclass(frozen=True)
class Clockwork(Cell):
    """Clockwork RNN: the hidden units in groups, each updated only on its own clock.

    Hidden size H is split into g groups (sizes k_1..k_g, by default H/g each) with
    periods T_1 < T_2 < … < T_g (default ``T_i = 2^(i-1)``). The step counter t
    counts from 0 at a sequence's first processed step (with ``reverse``, at the
    row's last valid step). At step t group i is active iff ``t mod T_i = 0``:

        active:    h_t^(i) = φ(W^(i) x_t + R^(i) h_{t-1} + Wb^(i) + Rb^(i))
        inactive:  h_t^(i) = h_{t-1}^(i)          (kept exactly)
        y_t = h_t                                  (all groups, every step)

    The readout y_t = f(W_O h_t + b_O) of the paper is a `Dense` after `Recurrent`.

    Recurrent connections run only from slower groups to faster ones (and within a
    group): R is block upper triangular, row block i has non-zero blocks only in the
    column blocks j with T_j ≥ T_i. With H = 256 and periods (1, 2, 4, 8) the period-1
    group reads all 256 units (a 64×256 block row), the period-8 group only itself.
    The mask is part of the model: R's entries outside it are zero in every export
    and in the oracle whatever the caller supplied (`ParamSpec.mask`).

    Group order: groups are kept sorted by period, fastest first, and the hidden
    units are laid out in that order (units ``0..k_1-1`` are the fastest group).
    Periods given in another order are sorted, together with their `group_sizes`.
    With periods that divide each other (1, 2, 4, …) the active groups at any step
    are then a prefix of the units, which the compiler exploits.

    Arguments (give `periods`, `groups` or `group_sizes`):
        periods      positive distinct integers, one per group; default (1, 2, 4, …, 2^(g-1))
        groups       number of groups g (must match `periods`/`group_sizes` when given too)
        group_sizes  units per group, summing to `hidden`; default H/g each (H must divide)
        activation   φ ∈ {tanh (default), relu, sigmoid}

    Parameters (ONNX ``RNN`` layout, as the classic RNN, so weights carry over):
        W  (H, input)   input weights W_I, every group reads the input
        R  (H, H)       recurrent weights W_H, block upper triangular (masked)
        B  (2H,)        [Wb; Rb]; only their sum matters
    """

    periods: tuple[int, ...] | None = None
    groups: int | None = None
    group_sizes: tuple[int, ...] | None = None
    activation: str = "tanh"
    prefix = "clockwork"

    def __post_init__(self) -> None:
        super().__post_init__()
        where = self.describe()
        one_of(where, "activation", self.activation, CLOCKWORK_ACTIVATIONS)
        periods = self._int_tuple(where, "periods", self.periods)
        sizes = self._int_tuple(where, "group_sizes", self.group_sizes)
        if self.groups is not None:
            positive_int(where, "groups", self.groups)
        counts = {name: n for name, n in (("periods", None if periods is None else len(periods)),
                                          ("groups", self.groups),
                                          ("group_sizes", None if sizes is None else len(sizes))) if n is not None}
        if not counts:
            raise invalid(where, "periods", "the group periods, e.g. periods=(1, 2, 4, 8), or a number of groups, "
                          "e.g. groups=4 for periods (1, 2, 4, 8)", None)
        if len(set(counts.values())) > 1:
            given = ", ".join(f"{k} gives {v}" for k, v in counts.items())
            raise ModelError(f"{where}: `periods`, `groups` and `group_sizes` disagree on the number of groups "
                             f"({given}); give them consistently, or give only one of them.")
        g = next(iter(counts.values()))
        if periods is None:
            periods = tuple(2 ** i for i in range(g))
        if len(set(periods)) != len(periods):
            raise invalid(where, "periods", "distinct periods (two groups with one period are one group)", periods)
        if sizes is None:
            if self.hidden % g:
                raise invalid(where, "hidden", f"a multiple of the number of groups ({g})", self.hidden,
                              f"Choose hidden={g * max(1, round(self.hidden / g))}, or give group_sizes "
                              f"summing to {self.hidden}.")
            sizes = (self.hidden // g,) * g
        elif sum(sizes) != self.hidden:
            raise invalid(where, "group_sizes", f"sizes summing to hidden={self.hidden}", sizes,
                          f"They sum to {sum(sizes)}.")
        order = sorted(range(g), key=lambda i: periods[i])
        object.__setattr__(self, "periods", tuple(periods[i] for i in order))
        object.__setattr__(self, "group_sizes", tuple(sizes[i] for i in order))
        object.__setattr__(self, "groups", g)

    @staticmethod
    def _int_tuple(where: str, field: str, value: object) -> tuple[int, ...] | None:
        """`value` (a sequence of positive integers, or None) as a tuple; raises ModelError otherwise."""
        if value is None:
            return None
        items = tuple(value) if isinstance(value, (tuple, list)) else None
        if not items or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in items):
            raise invalid(where, field, "a non-empty tuple of positive integers", value)
        return tuple(int(v) for v in items)

    def describe(self) -> str:
        given = [f"{k}={v!r}" for k, v in (("periods", self.periods), ("groups", self.groups),
                                            ("group_sizes", self.group_sizes)) if v is not None]
        # once validated, the periods say it all (groups and sizes are filled in then)
        return f"Clockwork(hidden={self.hidden!r}, {given[0] if given else 'periods=None'})"

    # -- structure ----------------------------------------------------------
    @property
    def bounds(self) -> list[tuple[int, int]]:
        """Unit range ``[start, stop)`` of each group, fastest first."""
        assert self.group_sizes is not None
        edges = np.cumsum((0, *self.group_sizes)).tolist()
        return list(zip(edges[:-1], edges[1:], strict=True))

    def unit_periods(self) -> np.ndarray:
        """``(H,)`` int64: the period of the group of each hidden unit."""
        assert self.periods is not None and self.group_sizes is not None
        return np.repeat(np.asarray(self.periods, dtype=np.int64), self.group_sizes)

    def recurrent_mask(self) -> np.ndarray:
        """``(H, H)`` 0/1: entry (r, c) may be non-zero iff the group of c is at least as slow as that of r."""
        periods = self.unit_periods()
        return (periods[None, :] >= periods[:, None]).astype(np.float64)

    def nested_periods(self) -> bool:
        """Whether each period divides the next, so that the active groups at every step are a prefix."""
        assert self.periods is not None
        return all(b % a == 0 for a, b in zip(self.periods, self.periods[1:], strict=False))

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        h = self.hidden
        init = uniform(1.0 / math.sqrt(h))
        return {
            "W": ParamSpec((h, input_size), init, "input weights W_I"),
            "R": ParamSpec((h, h), init, "recurrent weights W_H, block upper triangular (slow feeds fast)",
                           mask=self.recurrent_mask()),
            "B": ParamSpec((2 * h,), init, "input and recurrent biases [Wb; Rb]"),
        }


register_cell(Clockwork, examples=(Clockwork(6, periods=(1, 2, 4)), Clockwork(7, periods=(4, 1), group_sizes=(3, 4))),
              onnx="rnngraph.compiler.cells.clockwork:LOWERING", oracle="rnngraph.runtime.oracle.clockwork:STEP",
              torch="rnngraph.pytorch.cells.clockwork:TORCH_CELL")
