"""Ridge regression from streaming sums, for one ridge value or a whole path of them.

The readout of an Echo State Network solves

    W = Y Zᵀ (Z Zᵀ + β I)⁻¹                       Z (F, n): one column per kept step;  Y (L, n)

which needs only the sums Z Zᵀ (F, F), Y Zᵀ (L, F) (and Y Yᵀ (L, L) to score a readout on
held-out data). Sums add across sequences, chunks and machines (`RidgeAccumulator.merge`).

A path of ridge values costs one symmetric eigendecomposition Z Zᵀ = Q diag(λ) Qᵀ:

    W(β) = (Y Zᵀ Q) diag(1 / (λ + β)) Qᵀ

and the mean squared error of a readout W on validation sums (Zv Zvᵀ, Yv Zvᵀ, Yv Yvᵀ, n_v steps) is

    mse(W) = (tr(Yv Yvᵀ) − 2 Σ W ∘ (Yv Zvᵀ) + Σ (W Zv Zvᵀ) ∘ W) / (n_v L)

so choosing β on a validation split needs no second pass over its data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rnngraph.errors import InputError, ParameterError


def check_ridge(ridge: object) -> float:
    """`ridge` as a float >= 0, or an InputError naming it."""
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float, np.integer, np.floating)) or not ridge >= 0:
        raise InputError(f"invalid value for `ridge`: expected a number >= 0 (the β of Z Zᵀ + β I), "
                         f"received {ridge!r}.")
    return float(ridge)


def check_ridges(ridges: object) -> tuple[float, ...]:
    """A non-empty sequence of ridge values, each >= 0."""
    if isinstance(ridges, (str, bytes)) or not isinstance(ridges, (Sequence, np.ndarray)) or len(ridges) == 0:
        raise InputError(f"invalid value for `ridges`: expected a non-empty list of numbers >= 0, e.g. "
                         f"np.logspace(-10, 0, 20), received {ridges!r}.")
    return tuple(check_ridge(r) for r in ridges)


class RidgeAccumulator:
    """Streaming sums for ridge regression of `outputs` targets on `features` regressors.

    ``add(Z (n, F), Y (n, L))`` accumulates ``ZᵀZ``, ``YᵀZ`` and ``YᵀY`` in float64;
    ``solve(β)`` returns ``W (L, F)`` minimising ``Σ‖y − W z‖² + β‖W‖²``.

    Order-independent sums: the products of one sequence are added plainly (they come in the
    same order wherever that sequence is fed); `commit()` (called at the end of each sequence)
    adds them to the totals with an error-free transformation (TwoSum), keeping the rounding
    error in a second array. Totals are then exact to ~eps² and round to the same float64
    whatever order sequences, partitions and `merge` trees come in: a distributed fit gets the
    single-process sums bit for bit, and an ill-conditioned Z Zᵀ cannot amplify an ordering
    difference that is not there.
    """

    KEYS = ("zz", "yz", "yy")

    def __init__(self, features: int, outputs: int) -> None:
        shapes = {"zz": (features, features), "yz": (outputs, features), "yy": (outputs, outputs)}
        self._high = {k: np.zeros(shapes[k]) for k in self.KEYS}
        self._low = {k: np.zeros(shapes[k]) for k in self.KEYS}
        self._open: dict[str, np.ndarray] | None = None  # the current sequence's sums; None once committed
        self.count = 0

    @property
    def zz(self) -> np.ndarray:
        """Σ z zᵀ ``(F, F)`` over everything added."""
        return self._total("zz")

    @property
    def yz(self) -> np.ndarray:
        """Σ y zᵀ ``(L, F)``."""
        return self._total("yz")

    @property
    def yy(self) -> np.ndarray:
        """Σ y yᵀ ``(L, L)``."""
        return self._total("yy")

    def _total(self, key: str) -> np.ndarray:
        total = self._high[key] + self._low[key]
        return total if self._open is None else total + self._open[key]

    def add(self, Z: np.ndarray, Y: np.ndarray) -> None:
        Z = np.asarray(Z, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        products = {"zz": Z.T @ Z, "yz": Y.T @ Z, "yy": Y.T @ Y}  # numpy runs Aᵀ A as one BLAS syrk
        if self._open is None:
            self._open = products
        else:
            for key in self.KEYS:
                self._open[key] += products[key]
        self.count += Z.shape[0]

    def commit(self) -> None:
        """Add the current sequence's sums to the order-independent totals."""
        if self._open is None:
            return
        for key in self.KEYS:
            self._high[key], error = _two_sum(self._high[key], self._open[key])
            self._low[key] += error
        self._open = None  # committed sums travel as two arrays each, not three

    def merge(self, other: RidgeAccumulator) -> RidgeAccumulator:
        """A new accumulator holding the sums of both (sums over disjoint data add)."""
        if other._high["yz"].shape != self._high["yz"].shape:
            raise InputError(f"cannot merge ridge sums of shapes {self._high['yz'].shape} and "
                             f"{other._high['yz'].shape}: they come from different models.")
        self.commit()
        other.commit()
        merged = RidgeAccumulator(*reversed(self._high["yz"].shape))
        for key in self.KEYS:
            merged._high[key], error = _two_sum(self._high[key], other._high[key])
            merged._low[key] = (self._low[key] + other._low[key]) + error
        merged.count = self.count + other.count
        return merged

    def _check_count(self) -> None:
        if self.count == 0:
            raise InputError("no training steps were accumulated (all were discarded as washout, or nothing was "
                             "fed); feed longer sequences or lower `washout`.")

    def solve(self, ridge: float) -> np.ndarray:
        """``W (L, F)`` for one ridge value, by one linear solve."""
        beta = check_ridge(ridge)
        self._check_count()
        system = self.zz + beta * np.eye(self.zz.shape[0])
        try:
            solution = np.linalg.solve(system, self.yz.T).T
        except np.linalg.LinAlgError as exc:
            raise ParameterError(f"the ridge system is singular ({exc}); use `ridge` > 0, e.g. 1e-8.") from exc
        return _finite(solution)

    def solve_path(self, ridges: Sequence[float]) -> np.ndarray:
        """``W (R, L, F)``, one readout per ridge value, from one eigendecomposition of Z Zᵀ.

        A ridge value too small for the system (λ_min + β below machine precision times λ_max,
        where no solve means anything) gets a NaN readout; all of them: a ParameterError.
        """
        betas = np.asarray(check_ridges(ridges))
        self._check_count()
        eigenvalues, Q = np.linalg.eigh(self.zz)
        eigenvalues = np.maximum(eigenvalues, 0.0)  # Z Zᵀ is positive semi-definite; rounding can dip below 0
        shifted = eigenvalues[None, :] + betas[:, None]  # (R, F)
        singular = shifted.min(axis=1) <= np.finfo(np.float64).eps * max(float(eigenvalues.max()), 1.0)
        if singular.all():
            raise ParameterError(f"the ridge system is singular for every ridge value {betas.tolist()} (Z Zᵀ has "
                                 "eigenvalues near 0); use larger ridge values, e.g. 1e-8.")
        shifted[singular] = np.inf
        path = np.einsum("lf,rf,gf->rlg", self.yz @ Q, 1.0 / shifted, Q)
        _finite(path[~singular])
        path[singular] = np.nan
        return path

    def mse(self, W: np.ndarray) -> np.ndarray:
        """Mean squared error over the accumulated steps and outputs of readouts ``W (..., L, F)``."""
        self._check_count()
        fit = np.einsum("...lf,lf->...", W, self.yz)
        energy = np.einsum("...lf,fg,...lg->...", W, self.zz, W)
        total = np.trace(self.yy) - 2.0 * fit + energy
        return np.maximum(total, 0.0) / (self.count * self.yz.shape[0])


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = fl(a + b) and the exact rounding error e, a + b = s + e (Knuth's TwoSum, elementwise)."""
    total = a + b
    b_part = total - a
    return total, (a - (total - b_part)) + (b - b_part)


def _finite(solution: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(solution)):
        raise ParameterError("the ridge solution is not finite; use a larger `ridge`.")
    return solution


@dataclass(frozen=True)
class RidgeFit:
    """The outcome of a fit over one or several ridge values.

    `params`: the model's parameters with the readout of the chosen ridge (float32);
    `solution`: that readout ``[W_out b_out]`` ``(L, F + 1)`` in float64, before rounding;
    `ridge`: the chosen value; `ridges` and `validation_errors`: every value tried and its
    validation mean squared error (inf where the system is singular for it; None without a
    validation split, where one ridge is given);
    `train_steps`, `validation_steps`: the steps (rows × time, past the washout) in each sum.
    """

    params: Mapping[str, np.ndarray]
    solution: np.ndarray
    ridge: float
    ridges: tuple[float, ...]
    validation_errors: tuple[float, ...] | None
    train_steps: int
    validation_steps: int

    def table(self) -> str:
        """One line per ridge value: the value, its validation MSE, and a mark on the chosen one."""
        errors = self.validation_errors or (float("nan"),) * len(self.ridges)
        lines = ["ridge        validation MSE"]
        lines += [f"{r:<12.3g} {e:<14.6g}{'  <- chosen' if r == self.ridge else ''}"
                  for r, e in zip(self.ridges, errors, strict=True)]
        return "\n".join(lines)


def choose(train: RidgeAccumulator, validation: RidgeAccumulator | None,
           ridges: Sequence[float]) -> tuple[np.ndarray, float, tuple[float, ...] | None]:
    """The readout ``W (L, F)`` to keep, its ridge, and every ridge's validation MSE.

    One ridge value: one solve, no validation needed. Several: one eigendecomposition, and
    the value with the smallest validation error wins (the first of equals).
    """
    values = check_ridges(ridges)
    if len(values) == 1:
        W = train.solve(values[0])
        errors = (float(validation.mse(W)),) if validation is not None else None
        return W, values[0], errors
    if validation is None:
        raise InputError(f"{len(values)} ridge values were given but no `validation` split to choose among them; "
                         "pass validation=(inputs, targets), or a single `ridge`.")
    path = train.solve_path(values)
    mse = np.nan_to_num(validation.mse(path), nan=np.inf)  # a singular ridge value scores inf
    best = int(np.argmin(mse))
    return path[best], values[best], tuple(float(e) for e in mse)


__all__ = ["RidgeAccumulator", "RidgeFit", "check_ridge", "check_ridges", "choose"]
