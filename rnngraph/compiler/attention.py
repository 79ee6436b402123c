"""Lowering of attention (docs/attention.md) from primitive ONNX ops, split into the part before the loop and the step.

Before the decoding loop (`prepare_attention`, once per model):
    keys  = memory·Uᵀ          (batch, T, units)   additive
          = memory·Wᵀ          (batch, T, S)       general  (sᵀ W h_j = (W h_j)·s)
    bias  = (mask − 1)·1e9     (batch, T)          0 on valid steps, −1e9 past each row's length

Inside the loop body (`attend`, per step, query s = s_{i-1} (batch, S)):
    e  = Tanh(keys + s·Wᵀ)·v   | keys·s   | memory·s        (batch, T)
    α  = Softmax(e + bias)                                   exp(−1e9) is exactly 0 in float32 and float64
    a  = α·memory                                            (batch, H)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.context import LoweringContext
from rnngraph.dsl.attention import Attention
from rnngraph.dsl.tensor import TensorSpec

#: added to the scores of padded source steps; large enough that softmax gives them exactly 0
MASK_PENALTY = 1e9


@dataclass(frozen=True)
class AttentionValues:
    """Values computed once, before the loop, and read by every step (outer-scope values in the body)."""

    memory: str  # (batch, T, H)
    keys: str | None  # (batch, T, units | S); None for dot
    bias: str | None  # (batch, T); None when the memory is unpadded


def prepare_attention(ctx: LoweringContext, att: Attention, p: Mapping[str, np.ndarray], memory: str,
                      spec: TensorSpec) -> AttentionValues:
    g = ctx.g
    with g.scope("attention"):
        keys = None
        if att.score == "additive":
            keys = g.op("MatMul", memory, g.const("U_T", np.ascontiguousarray(p["attention/U"].T)), name="keys")
        elif att.score == "general":
            keys = g.op("MatMul", memory, g.const("W_T", np.ascontiguousarray(p["attention/W"].T)), name="keys")
        bias = None
        mask = ctx.mask(spec, memory)
        if mask is not None:
            shifted = g.op("Sub", g.squeeze(mask, [2]), g.const("one", 1.0))
            bias = g.op("Mul", shifted, g.const("penalty", MASK_PENALTY), name="bias")
    return AttentionValues(memory, keys, bias)


def attend(body: GraphBuilder, att: Attention, p: Mapping[str, np.ndarray], av: AttentionValues,
           s: str) -> tuple[str, str]:
    """One step of attention with query `s` ``(batch, S)``: returns ``a (batch, H)`` and ``α (batch, T)``."""
    with body.scope("attention"):
        if att.score == "additive":
            assert av.keys is not None
            query = body.op("MatMul", s, body.const("W_T", np.ascontiguousarray(p["attention/W"].T)), name="query")
            hidden = body.op("Tanh", body.op("Add", av.keys, body.unsqueeze(query, [1])), name="tanh")
            # v as a column (units, 1), and a Squeeze after: a 1-D v would drop the Squeeze, but onnxruntime 1.32's
            # MatMul with a 1-D second operand made the whole decoder 4.6x slower (benchmarks/attention_body.py)
            v = body.const("v", p["attention/v"][:, None])
            e = body.squeeze(body.op("MatMul", hidden, v, name="scores"), [2])
        else:
            keys = av.keys if av.keys is not None else av.memory
            e = body.squeeze(body.op("MatMul", keys, body.unsqueeze(s, [2]), name="scores"), [2])
        if av.bias is not None:
            e = body.op("Add", e, av.bias, name="masked")
        alpha = body.op("Softmax", e, axis=-1, name="alpha")
        a = body.squeeze(body.op("MatMul", body.unsqueeze(alpha, [1]), av.memory, name="context"), [1])
    return a, alpha
