"""Small graph idioms that every lowering shares, each written once.

- `blend`: ``s + w·(new − s)``: the padding blend of loop bodies (w the 0/1 mask of the
  step: the state is kept exactly where w = 0), Clockwork's clock gate, the ESN's leak,
  GRU's ``n + z·(h − n)``, the coupled LSTM's ``g + f·(c − g)``. Arithmetic, not `Where`:
  onnxruntime runs it 3–4× cheaper inside loop bodies.
- `activate`: the activation functions by the names the DSL uses.
- `reduce`: a Reduce op over some axes; ReduceMean/ReduceMax/… take the axes as an input
  only from opset 18 on (ReduceSum from 13), as an attribute before.
"""

from __future__ import annotations

from collections.abc import Sequence

from rnngraph.compiler.builder import GraphBuilder

#: DSL activation name -> ONNX op
ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}


def activate(g: GraphBuilder, x: str, activation: str, name: str | None = None) -> str:
    """``φ(x)`` for a DSL activation name; ``softmax`` over the last axis; ``none`` is the identity."""
    if activation == "none":
        return x
    if activation == "softmax":
        return g.op("Softmax", x, axis=-1, name=name or "softmax")
    return g.op(ACTIVATIONS[activation], x, name=name or activation)


def blend(g: GraphBuilder, old: str, new: str, weight: str, name: str) -> str:
    """``old + weight·(new − old)``: `new` where the weight is 1, `old` exactly where it is 0."""
    delta = g.op("Sub", new, old, name=f"{name}_delta")
    return g.op("Add", old, g.op("Mul", weight, delta, name=f"{name}_gate"), name=name)


def reduce(g: GraphBuilder, op: str, x: str, axes: Sequence[int], keepdims: int = 0, name: str | None = None) -> str:
    """`op` (ReduceSum, ReduceMean, ReduceMax, …) over `axes` of `x`, in the form the opset takes."""
    if op == "ReduceSum" or g.opset >= 18:
        return g.op(op, x, g.const("axes", list(axes), "int64"), keepdims=keepdims, name=name)
    return g.op(op, x, axes=list(axes), keepdims=keepdims, name=name)
