"""Oracle of attention (docs/attention.md) over one source row ``h (L, H)`` of valid steps, in float64.

    e_j = vᵀ tanh(U h_j + W s)   additive      α = softmax(e)
        = sᵀ W h_j               general       a = Σ_j α_j h_j
        = sᵀ h_j                 dot
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.attention import Attention
from rnngraph.runtime.oracle.activations import softmax


def attention_keys(att: Attention, p: Mapping[str, np.ndarray], h: np.ndarray) -> np.ndarray | None:
    """What does not depend on the query, once per row (as the math allows): ``U h_j`` or ``W h_j``; None for dot."""
    if att.score == "additive":
        return h @ p["attention/U"].T
    if att.score == "general":
        return h @ p["attention/W"].T
    return None


def attend(att: Attention, p: Mapping[str, np.ndarray], h: np.ndarray, keys: np.ndarray | None,
           s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Attention of query ``s (S,)`` over ``h (L, H)``: the context ``a (H,)`` and the weights ``α (L,)``."""
    if att.score == "additive":
        assert keys is not None
        e = np.tanh(keys + p["attention/W"] @ s) @ p["attention/v"]
    elif att.score == "general":
        assert keys is not None
        e = keys @ s  # (W h_j)·s = sᵀ W h_j
    else:
        e = h @ s
    alpha = softmax(e)
    return alpha @ h, alpha
