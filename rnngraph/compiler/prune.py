"""Dead-node elimination: drop every node (and initializer) that no graph output depends on.

The lowerings emit what a layer could need (a native op's final states, the guards'
per-axis sizes and flags) without knowing which of it the model's outputs read.
onnxruntime runs every node of a graph, read or not (its optimizer keeps nodes whose
outputs go nowhere), and each costs a kernel launch per run (~2–5 µs each here, measured
with `rnngraph.bench.profile`), so the finished graph keeps only what reaches an output.

A node is live when one of its outputs is read by a live node, by a live node's
subgraph (a Scan/Loop/If body reads outer values by name), or is a graph output.
Inside a body or an If branch, its own outputs are what is live; an If output nothing reads is
dropped from the If and from both branches.
"""

from __future__ import annotations

from collections.abc import Iterable

from onnx import GraphProto, NodeProto


def _reads(node: NodeProto) -> Iterable[str]:
    """Every value name `node` reads, its subgraphs' outer reads included (over-approximated: all their inputs)."""
    yield from node.input
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in sub.node:
                yield from _reads(inner)


def prune(nodes: list[NodeProto], outputs: Iterable[str], keep: Iterable[str] = ()) -> list[NodeProto]:
    """The nodes of `nodes` (in order) that `outputs` depend on; `keep` names values that must stay computed."""
    live = set(outputs) | set(keep)
    kept: list[NodeProto] = []
    for node in reversed(nodes):
        if any(out in live for out in node.output):
            kept.append(node)
            live.update(name for name in _reads(node) if name)
    kept.reverse()
    return kept


def prune_graph(graph: GraphProto) -> None:
    """Drop, in place, the nodes of `graph` no output depends on and the initializers nothing reads, in it and
    in every subgraph (a body's or branch's own outputs are what it must compute).

    An initializer that is also a graph input (an optional input's default) stays.
    """
    outputs = [o.name for o in graph.output]
    _trim_ifs(prune(list(graph.node), outputs), outputs)
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                prune_graph(sub)
    kept = prune(list(graph.node), outputs)
    read = {name for node in kept for name in _reads(node)} | {i.name for i in graph.input}
    initializers = [t for t in graph.initializer if t.name in read]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def initializer_names(graph: GraphProto) -> set[str]:
    """The initializers of `graph` and of every Scan/Loop/If body in it, by name."""
    names = {t.name for t in graph.initializer}
    for node in graph.node:
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                names |= initializer_names(body)
    return names


def _trim_ifs(nodes: list[NodeProto], outputs: list[str]) -> None:
    """Drop the outputs of each If in `nodes` that nothing reads, from the If and from both its branches (an If
    output is its branches' output of the same position), so the branches stop computing them."""
    read = set(outputs) | {name for node in nodes for name in _reads(node)}
    for node in nodes:
        if node.op_type != "If":
            continue
        keep = [i for i, out in enumerate(node.output) if out in read]
        if len(keep) == len(node.output) or not keep:
            continue
        names = [node.output[i] for i in keep]
        del node.output[:]
        node.output.extend(names)
        for attr in node.attribute:
            branch_outputs = [attr.g.output[i] for i in keep]
            del attr.g.output[:]
            attr.g.output.extend(branch_outputs)
