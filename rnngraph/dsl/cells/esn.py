"""The Echo State Network cell, docs/esn.md: a fixed random reservoir and a trained linear readout.

The reservoir (W, W_in, W_back) is drawn once, reproducibly from the model seed
(``model.init(seed)``: each parameter has its own generator, see
`rnngraph.dsl.params.generator`), and is never trained; only the readout
(W_out, b_out) is, by ridge regression (`rnngraph.train`).

The spectral radius of a sparse reservoir is computed with ARPACK
(``scipy.sparse.linalg.eigs``) when scipy is installed (the ``extras`` extra), so
that N = 2000 at density 0.01 takes a fraction of a second; small reservoirs, and
every reservoir when scipy is missing, use a dense eigendecomposition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.checks import boolean, in_range, positive_int
from rnngraph.dsl.params import Initializer, ParamSpec, uniform
from rnngraph.dsl.registry import register_cell
from rnngraph.errors import ModelError, invalid

#: what the readout may read, in the order its columns take in W_out
READS = ("input", "state", "output")
#: reservoirs up to this size get a dense eigendecomposition (exact, and fast enough)
DENSE_RADIUS_MAX = 200
#: ARPACK: how many of the largest-modulus eigenvalues to converge. The spectrum of a random
#: matrix fills a disk, so the outermost eigenvalues are nearly tied; asking for one alone lets
#: ARPACK settle on a neighbour of the largest (measured: 2.606 instead of 2.627 at N = 2000).
ARPACK_K = 10
ARPACK_NCV = 60
RADIUS_METHODS = ("auto", "dense", "sparse")


def spectral_radius(W: np.ndarray, method: str = "auto") -> float:
    """max |λ| over the eigenvalues of the square matrix `W`.

    `method`: ``dense`` (``numpy.linalg.eigvals``), ``sparse`` (ARPACK on the
    nonzero entries, needs scipy; dense below N = 3, where ARPACK cannot run),
    ``auto`` (dense up to N = 200 or without scipy).
    """
    if method not in RADIUS_METHODS:
        raise invalid("spectral_radius", "method", f"one of {', '.join(map(repr, RADIUS_METHODS))}", method)
    n = W.shape[0]
    if method == "auto":
        method = "dense" if n <= DENSE_RADIUS_MAX or not _has_scipy() else "sparse"
    if method == "dense" or n < 3:  # ARPACK needs k < n - 1 with k >= 1
        return float(np.abs(np.linalg.eigvals(W)).max()) if n else 0.0
    import scipy.sparse
    import scipy.sparse.linalg

    k = min(ARPACK_K, n - 2)
    try:
        values = scipy.sparse.linalg.eigs(
            scipy.sparse.csr_matrix(W), k=k, which="LM", return_eigenvectors=False,
            v0=np.ones(n), tol=1e-10, ncv=min(n, max(ARPACK_NCV, 2 * k + 1)), maxiter=50 * n,
        )
    except scipy.sparse.linalg.ArpackNoConvergence:  # pragma: no cover - rare; exact but slow is better
        return spectral_radius(W, "dense")
    return float(np.abs(values).max())


def _has_scipy() -> bool:
    try:
        import scipy.sparse.linalg  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is in the extras
        return False
    return True


def reservoir(density: float, radius: float, where: str = "ESN") -> Initializer:
    """Sparse random N×N reservoir: round(d·N²) entries (at least 1) at distinct random positions,
    values U(-1, 1), then rescaled so that its spectral radius is `radius`.

    A draw whose radius is 0 (a nilpotent pattern, possible for tiny N·d) is redrawn
    from the same generator, so the result stays reproducible.
    """

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        n = shape[0]
        nnz = max(1, round(density * n * n))
        for _ in range(100):
            W = np.zeros((n, n))
            positions = rng.choice(n * n, size=nnz, replace=False)
            W.flat[positions] = rng.uniform(-1.0, 1.0, size=nnz)
            current = spectral_radius(W)
            if current > 1e-12:
                return W * (radius / current)
        raise ModelError(f"{where}: every reservoir drawn at density {density} with {n} units has spectral radius 0 "
                         "(too few connections to form a cycle); raise `density` or `hidden`.")

    return draw


def scaled_columns(first: float, rest: float) -> Initializer:
    """U(-1, 1) with column 0 scaled by `first` (the bias column) and the others by `rest`."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        W = rng.uniform(-1.0, 1.0, size=shape)
        W[:, 0] *= first
        W[:, 1:] *= rest
        return W

    return draw


@dataclass(frozen=True)
class ESN(Cell):
    """Echo State Network cell (Jaeger 2001; leaky-integrator form), docs/esn.md.

        x̃(n) = tanh(W_in [1; u(n)] + W x(n-1) + W_back y(n-1))       (W_back only with `feedback`)
        x(n)  = (1 - a) x(n-1) + a x̃(n)                               a = `leak` ∈ (0, 1]
        y(n)  = W_out [u(n); x(n); y(n-1)] + b_out                     (the parts named in `reads`)

    `hidden` is the reservoir size N; the step output is y(n), of size `outputs` (L).
    States: ``y`` (L, the previous output; the output state, listed first) and ``x`` (N).
    Both start at 0 unless an initial state is given.

    Parameters (K = input features, F = columns read by the readout):
        W_in   (N, 1 + K)   column 0 is the bias; U(-1, 1) × `bias_scaling` / `input_scaling`; fixed
        W      (N, N)       sparse (density d), rescaled to spectral radius ρ; fixed
        W_back (N, L)       only with `feedback`; U(-1, 1) × `feedback_scaling`; fixed
        W_out  (L, F)       columns [u (K); x (N); y(n-1) (L)], only the parts in `reads`, always in this
                            order (`reads` is stored in it, whatever order it was given in)
        b_out  (L,)

    W_out and b_out are drawn at random (so that an untrained model computes something
    non-trivial to test against) and set by `rnngraph.train.fit_ridge`. A model trained to
    predict its next input should not read ``output``: under teacher forcing y(n-1) = u(n),
    the same column twice, and ridge may split a large weight between the two.
    """

    outputs: int = 1
    density: float = 0.05
    spectral_radius: float = 0.9
    leak: float = 1.0
    input_scaling: float = 1.0
    bias_scaling: float | None = None
    feedback: bool = False
    feedback_scaling: float = 1.0
    reads: tuple[str, ...] = READS
    prefix = "esn"

    def __post_init__(self) -> None:
        super().__post_init__()
        where = self.describe()
        positive_int(where, "outputs", self.outputs)
        in_range(where, "density", self.density, 0.0, 1.0, low_open=True, high_open=False)
        in_range(where, "spectral_radius", self.spectral_radius, 0.0, math.inf, low_open=True, high_open=True)
        in_range(where, "leak", self.leak, 0.0, 1.0, low_open=True, high_open=False)
        in_range(where, "input_scaling", self.input_scaling, 0.0, math.inf, low_open=False, high_open=True)
        if self.bias_scaling is not None:
            in_range(where, "bias_scaling", self.bias_scaling, 0.0, math.inf, low_open=False, high_open=True)
        boolean(where, "feedback", self.feedback)
        in_range(where, "feedback_scaling", self.feedback_scaling, 0.0, math.inf, low_open=False, high_open=True)
        reads = self.reads
        if (not isinstance(reads, tuple) or not reads or any(r not in READS for r in reads)
                or len(set(reads)) != len(reads)):
            raise invalid(where, "reads", f"a non-empty tuple of distinct names from {READS}", reads,
                          "e.g. reads=('input', 'state').")
        # W_out's column blocks always come in the order of READS; `reads` says so, whatever order was given
        object.__setattr__(self, "reads", tuple(r for r in READS if r in reads))

    @property
    def units(self) -> int:
        """The reservoir size N (the same as `hidden`)."""
        return self.hidden

    @property
    def output_size(self) -> int:
        return self.outputs

    def state_sizes(self) -> dict[str, int]:
        return {"y": self.outputs, "x": self.hidden}

    def read_sizes(self, input_size: int) -> dict[str, int]:
        """The blocks of W_out's columns, in column order: ``{"input": K, "state": N, "output": L}``."""
        sizes = {"input": input_size, "state": self.hidden, "output": self.outputs}
        return {r: sizes[r] for r in READS if r in self.reads}

    def param_specs(self, input_size: int) -> dict[str, ParamSpec]:
        n, out = self.hidden, self.outputs
        where = self.describe()
        bias = self.input_scaling if self.bias_scaling is None else self.bias_scaling
        specs = {
            "W_in": ParamSpec((n, 1 + input_size), scaled_columns(bias, self.input_scaling),
                              "input weights [bias | inputs], fixed", trainable=False),
            "W": ParamSpec((n, n), reservoir(self.density, self.spectral_radius, where),
                           f"reservoir, density {self.density}, spectral radius {self.spectral_radius}, fixed",
                           trainable=False),
        }
        if self.feedback:
            specs["W_back"] = ParamSpec((n, out), scaled_columns(self.feedback_scaling, self.feedback_scaling),
                                        "output feedback weights, fixed", trainable=False)
        width = sum(self.read_sizes(input_size).values())
        init = uniform(1.0 / math.sqrt(width))
        specs["W_out"] = ParamSpec((out, width), init, "readout weights over " + "; ".join(self.read_sizes(input_size)))
        specs["b_out"] = ParamSpec((out,), init, "readout bias")
        return specs

    def describe(self) -> str:
        return f"ESN(hidden={self.hidden!r}, outputs={self.outputs!r})"


register_cell(ESN, examples=(ESN(7, outputs=3, density=0.5, leak=0.8),
                             ESN(6, outputs=2, density=0.5, feedback=True, reads=("input", "state", "output"))),
              onnx="rnngraph.compiler.cells.esn:LOWERING", oracle="rnngraph.runtime.oracle.esn:STEP",
              torch="rnngraph.pytorch.cells.esn:TORCH_CELL")
