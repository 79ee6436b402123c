"""`Attention`: how a decoder step looks at the encoder states (docs/attention.md).

For decoder step i, with encoder states h_1..h_T (the memory) and the decoder's
previous output state s = s_{i-1}:

    e_ij = score(s, h_j)
    α_ij = softmax_j(e_ij)      over j < length of the source row only; α_ij = 0 past it
    c_i  = Σ_j α_ij h_j

Scores:
    additive (Bahdanau)   e_ij = vᵀ tanh(W s + U h_j)     W (units, S), U (units, H), v (units,)
    dot (Luong)           e_ij = sᵀ h_j                    needs S == H; no parameters
    general (Luong)       e_ij = sᵀ W h_j                  W (S, H)

S is the size of the decoder's output state, H the memory's feature size. The
keys U h_j (additive) and W h_j (general) do not depend on i: the compiler
computes them once, before the decoding loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnngraph.dsl.checks import one_of, positive_int
from rnngraph.dsl.params import ParamSpec, uniform
from rnngraph.dsl.signature import Checked
from rnngraph.errors import ModelError, invalid

SCORES = ("additive", "dot", "general")


@dataclass(frozen=True)
class Attention(metaclass=Checked):
    """Attention configuration of a `Decoder`: `score` and, for ``additive``, its hidden `units`."""

    score: str = "additive"
    units: int | None = None

    def __post_init__(self) -> None:
        one_of("Attention", "score", self.score, SCORES)
        if self.score == "additive":
            if self.units is None:
                raise invalid("Attention", "units", "a positive integer for the additive score "
                              "(the size of tanh(W s + U h))", None, "For example Attention('additive', units=32).")
            positive_int("Attention", "units", self.units)
        elif self.units is not None:
            raise invalid("Attention", "units", f"None: the {self.score!r} score has no hidden units", self.units,
                          "Leave `units` out, or use score='additive'.")

    def describe(self) -> str:
        return f"Attention({self.score!r}" + (f", units={self.units})" if self.units else ")")

    def check(self, where: str, query: int, key: int) -> None:
        """Raise ModelError unless a decoder state of size `query` can attend over memory of size `key`."""
        if self.score == "dot" and query != key:
            raise ModelError(
                f"{where}: the 'dot' attention score sᵀh needs the decoder state ({query}) and the memory "
                f"features ({key}) to have the same size; use score='general' or 'additive', "
                f"or a decoder cell with hidden={key}."
            )

    def param_specs(self, query: int, key: int) -> dict[str, ParamSpec]:
        """Parameters by local name for decoder state size `query` and memory size `key`."""
        if self.score == "additive":
            assert self.units is not None
            init = uniform(1.0 / math.sqrt(self.units))
            return {
                "W": ParamSpec((self.units, query), init, "query weights W (applied to s_{i-1})"),
                "U": ParamSpec((self.units, key), init, "key weights U (applied to h_j, once)"),
                "v": ParamSpec((self.units,), init, "score vector v"),
            }
        if self.score == "general":
            return {"W": ParamSpec((query, key), uniform(1.0 / math.sqrt(key)), "bilinear score weights")}
        return {}


__all__ = ["SCORES", "Attention"]
