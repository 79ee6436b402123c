"""Forcing argmax loops onto given tokens (the near-tie comparison of `rnngraph.verify`).

Greedy decoding and argmax feedback pick a token per step. Where onnxruntime's
float32 argmax and the oracle's float64 argmax differ at a near-tie, verify reruns
the oracle inside `forcing(...)`, so that every argmax loop follows onnxruntime's
path and reports its scores for comparison.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

#: node name -> (batch, steps) int64 tokens that greedy decoding must emit instead of its own argmax,
#: and a dict in which each greedy node leaves its scores (batch, steps, vocab) for the caller
_FORCED: ContextVar[tuple[Mapping[str, np.ndarray], dict[str, np.ndarray]] | None] = ContextVar(
    "rnngraph_forced_tokens", default=None)


@contextmanager
def forcing(tokens: Mapping[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Within this block, greedy node `name` emits ``tokens[name][b, i]`` at step i of row b (where given).

    Yields a dict that receives, per greedy node evaluated inside the block, its
    scores ``(batch, steps, vocab)`` (whether or not they are a model output).
    """
    seen: dict[str, np.ndarray] = {}
    token = _FORCED.set((dict(tokens), seen))
    try:
        yield seen
    finally:
        _FORCED.reset(token)


def forced_tokens(node: str) -> np.ndarray | None:
    """The tokens node `node` must emit under `forcing` ``(batch, steps)``, or None (decode freely)."""
    now = _FORCED.get()
    return now[0].get(node) if now is not None else None


def report_scores(node: str, scores: np.ndarray) -> None:
    """Hand node `node`'s scores ``(batch, steps, vocab)`` to the enclosing `forcing` block, if any."""
    now = _FORCED.get()
    if now is not None:
        now[1][node] = scores
