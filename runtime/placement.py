"""Which execution provider onnxruntime gave each node of a loaded model, as it reports it.

    placement = measure(model_bytes_or_path, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    placement.counts           # {"CUDAExecutionProvider": 60, "CPUExecutionProvider": 8}
    placement.cpu_nodes        # (Node("Shape", "guard/dim"), ...): what the CUDA provider left to the CPU

onnxruntime says where each node went when a session starts with verbose logging: its
``VerifyEachNodeIsAssignedToAnEp`` (onnxruntime/core/framework/session_state.cc) walks the
main graph and every Scan/Loop/If body and logs, per provider, the count and, when more
than one provider holds nodes, ``OpType (node name)`` for each. That log goes to the
process's standard error, so `measure` starts a second session with verbose logging while
standard error points at a temporary file, and reads the lines back (`parse`). Profiling
is no substitute: its events name only the nodes of the main graph that ran, never the
nodes inside a Scan body. The counts are of the graph after onnxruntime's own rewrites
(fused nodes, folded constants), so names may differ from the file's.

Imports onnxruntime and the standard library only (and rnngraph's error classes), as the session does.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import onnxruntime as ort

from rnngraph.errors import RnnGraphError

CPU = "CPUExecutionProvider"
_MARK = "VerifyEachNodeIsAssignedToAnEp]"
_GROUP = re.compile(r"^ (All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)$")
_NODE = re.compile(r"^  (\S+) \((.*)\)$")


class Node(NamedTuple):
    op_type: str
    name: str


@dataclass(frozen=True)
class Placement:
    """Nodes per execution provider, as onnxruntime assigned them (main graph and every body).

    `nodes` lists each provider's nodes where onnxruntime names them, which it does when
    more than one provider holds nodes; where one provider holds them all, `all_on` names
    it and only `counts` is known.
    """

    counts: Mapping[str, int]
    nodes: Mapping[str, tuple[Node, ...]] = field(default_factory=dict)

    @property
    def all_on(self) -> str | None:
        """The provider that holds every node, or None where they are shared."""
        return next(iter(self.counts)) if len(self.counts) == 1 else None

    @property
    def cpu_nodes(self) -> tuple[Node, ...]:
        """The nodes left to the CPU provider while another provider holds the rest (empty: none, or see `all_on`)."""
        return tuple(self.nodes.get(CPU, ())) if self.all_on is None else ()

    def lines(self) -> list[str]:
        """The placement in words, one line per provider and one per node named."""
        out = []
        for provider, count in self.counts.items():
            out.append(f"{provider}: {count} nodes" + (" (all)" if self.all_on else ""))
            out += [f"  {n.op_type} {n.name!r}" for n in self.nodes.get(provider, ())]
        return out


def parse(log: Iterable[str]) -> Placement:
    """The placement in onnxruntime's verbose session log (its lines, in any surrounding text)."""
    counts: dict[str, int] = {}
    nodes: dict[str, list[Node]] = {}
    provider = None
    for line in log:
        if _MARK not in line:
            continue
        text = line.split(_MARK, 1)[1].rstrip("\r\n")
        text = text[1:] if text.startswith(" ") else text  # the space after the log line's source location
        group = _GROUP.match(text)
        if group:
            provider = group.group(2)
            counts[provider] = int(group.group(3))
            nodes.setdefault(provider, [])
            continue
        node = _NODE.match(text)
        if node and provider is not None:
            nodes[provider].append(Node(node.group(1), node.group(2)))
    if not counts:
        raise RnnGraphError(
            "onnxruntime reported no node placements in its verbose session log (its log format may have "
            f"changed in onnxruntime {ort.__version__}); rnngraph reads the lines of "
            "VerifyEachNodeIsAssignedToAnEp. Predict the placement from the file instead: "
            "rnngraph.exporters.onnx.placement.predict_cuda.")
    return Placement(counts, {p: tuple(n) for p, n in nodes.items()})


def measure(model: str | os.PathLike[str] | bytes, providers: Sequence[str | tuple[str, dict[str, Any]]],
            optimize: bool = True) -> Placement:
    """Start a session on `model` with `providers` and read where onnxruntime placed each node.

    `optimize`: onnxruntime's graph rewrites on (as a normal session has them) or off (the
    counts are then those of the file itself).
    """
    options = ort.SessionOptions()
    options.log_severity_level = 0  # verbose: the placement is logged at that level only
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model if isinstance(model, bytes) else os.fspath(model)
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            ort.InferenceSession(source, options, providers=list(providers))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
            raise RnnGraphError(f"onnxruntime could not load the model to report its placement: {exc}") from exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    return parse(text.splitlines())
