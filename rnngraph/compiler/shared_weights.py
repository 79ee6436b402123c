"""One copy of each weight: identical large initializers of an export are stored once.

A parameter can reach several loop bodies: an ESN's reservoir W runs in the warm-up Scan
and again in the generation Loop; a 1-to-N generator projects its vector input in two
hoists. Each body's builder stores the array it was given, so the file would hold those
weights two or three times (file size is the weights' bytes plus a fixed overhead only
when each weight is stored once, benchmarks/targets.py, target 8).

`share_identical` runs once on the finished graph, over the large initializers whose data
still waits in `deferred` (`GraphBuilder.const`, above `DEFER_BYTES`): arrays with the same
dtype, shape and bytes become one initializer of the top-level graph, which every body reads
as an outer-scope value (ONNX lets a subgraph read any value of its enclosing graphs), and
every node that read a copy reads it. Names are unique across the whole model (one name
registry), so renaming a reference cannot capture another value.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from onnx import GraphProto, TensorProto


def _graphs(graph: GraphProto) -> Iterator[GraphProto]:
    """`graph` and every body in it, outermost first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graphs(body)


def share_identical(graph: GraphProto, deferred: dict[str, np.ndarray]) -> dict[str, str]:
    """Store each distinct deferred array once, in `graph`'s own initializers; returns copy -> kept name."""
    first: dict[tuple[str, tuple[int, ...], bytes], str] = {}
    rename: dict[str, str] = {}
    for name, array in deferred.items():
        key = (array.dtype.str, array.shape, array.tobytes())
        if key in first:
            rename[name] = first[key]
        else:
            first[key] = name
    if not rename:
        return rename
    kept = set(rename.values())
    moved: list[TensorProto] = []
    for sub in _graphs(graph):
        keep: list[TensorProto] = []
        for tensor in sub.initializer:
            if tensor.name in rename:
                continue  # a copy: dropped
            (moved if tensor.name in kept and sub is not graph else keep).append(tensor)
        if len(keep) != len(sub.initializer):
            del sub.initializer[:]
            sub.initializer.extend(keep)
        for node in sub.node:
            for i, value in enumerate(node.input):
                if value in rename:
                    node.input[i] = rename[value]
    graph.initializer.extend(moved)
    for name in rename:
        del deferred[name]
    return rename
