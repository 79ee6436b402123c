"""int8 quantization of native LSTMs that sit in ``If`` branches, their weights still stored once.

An export keeps each weight once, as an initializer of the main graph, and the native LSTM in
both branches of its NaN-rule ``If`` (rnngraph/compiler/nan_rule.py) reads it from there by name.
onnxruntime 1.32's quantizer finds such an outer weight valid to quantize, then looks for it
in the branch alone and fails (``'NoneType' object has no attribute 'dims'``, its
quantization/operators/lstm.py). So `quantize_int8` brackets ``quantize_dynamic`` with:

- `localize_lstm_weights`: each branch LSTM gets its own copy of its ``W`` and ``R``, which the
  quantizer then finds and turns into int8 in that branch;
- `share_branch_weights`: the large initializers of ``If`` branches (the two branches' int8
  copies, their scales) are moved back to the main graph, one copy each, and the float weights
  nothing reads any more are dropped; the file holds every weight once again.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx

from rnngraph.compiler.guards import rename

#: initializers up to this many elements stay in the body that holds them (scalars, shapes)
SMALL = 16


def _bodies(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """Every body graph under `graph` (If branches, Scan and Loop bodies), depth first."""
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else []) + list(attr.graphs):
                yield sub
                yield from _bodies(sub)


def _branches(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """Every ``If`` branch under `graph`, through branches only (a Scan body keeps its own weights: an outer
    value it reads is one more implicit input on every iteration)."""
    for node in graph.node:
        if node.op_type == "If":
            for attr in node.attribute:
                yield attr.g
                yield from _branches(attr.g)


def localize_lstm_weights(model: onnx.ModelProto) -> int:
    """Give each LSTM in a body a copy of the main-graph ``W``/``R`` it reads; returns the number copied."""
    main = {t.name: t for t in model.graph.initializer}
    copied = 0
    for body in _bodies(model.graph):
        for node in body.node:
            if node.op_type != "LSTM":
                continue
            for slot in (1, 2):
                if slot < len(node.input) and node.input[slot] in main:
                    copy = onnx.TensorProto()
                    copy.CopyFrom(main[node.input[slot]])
                    copy.name = f"{node.input[slot]}/{node.name}/local"
                    body.initializer.append(copy)
                    node.input[slot] = copy.name
                    copied += 1
    return copied


def share_branch_weights(model: onnx.ModelProto) -> None:
    """Move the large initializers of ``If`` branches to the main graph, one copy of each content; drop the
    main graph's initializers nothing reads any more."""
    taken = {t.name for t in model.graph.initializer}
    first: dict[bytes, str] = {}
    for body in _branches(model.graph):
        moved: dict[str, str] = {}
        for tensor in [t for t in body.initializer if _size(t) > SMALL]:
            key = _content(tensor)
            if key not in first:
                name = tensor.name if tensor.name not in taken else f"{tensor.name}/{len(taken)}"
                taken.add(name)
                hoisted = onnx.TensorProto()
                hoisted.CopyFrom(tensor)
                hoisted.name = name
                model.graph.initializer.append(hoisted)
                first[key] = name
            moved[tensor.name] = first[key]
            body.initializer.remove(tensor)
        rename(body.node, moved)
        for out in body.output:  # a body output that is one of its initializers
            out.name = moved.get(out.name, out.name)
    read = {name for graph in (model.graph, *_bodies(model.graph)) for node in graph.node for name in node.input}
    read |= {o.name for o in model.graph.output} | {i.name for i in model.graph.input}
    for tensor in [t for t in model.graph.initializer if t.name not in read]:
        model.graph.initializer.remove(tensor)


def _size(tensor: onnx.TensorProto) -> int:
    size = 1
    for d in tensor.dims:
        size *= d
    return size


def _content(tensor: onnx.TensorProto) -> bytes:
    """The tensor's type, shape and values, without its name."""
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    copy.name = ""
    return copy.SerializeToString(deterministic=True)
