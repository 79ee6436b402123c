"""Oracle of `Embedding`: a table lookup by token id, 0 past each row's length."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.model import Source
from rnngraph.runtime.oracle.core import Env, evaluates
from rnngraph.runtime.oracle.layers import zero_padding


@evaluates(Embedding)
def eval_embedding(env: Env, node: str, layer: Embedding, sources: Mapping[str, Source]) -> tuple[np.ndarray, ...]:
    """``E[ids]``: ``(batch, time) -> (batch, time, dim)`` or ``(batch,) -> (batch, dim)``."""
    ids = env.value(sources["x"])
    y = env.node_params(node)["E"][ids]
    return (zero_padding(env, sources["x"], y),)
