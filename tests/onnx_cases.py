"""ONNX's own backend test cases for the recurrent ops, unpacked for the oracle.

Each case is one ONNX node (RNN, LSTM or GRU) with inputs and the expected
outputs that ONNX's reference implementation computed. Nobody here wrote them,
so they check the oracle from outside.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from dataclasses import dataclass

import numpy as np
from onnx import helper


@dataclass
class Case:
    name: str
    attrs: dict[str, object]
    inputs: dict[str, np.ndarray]   # by the node's input *role*: X, W, R, B, sequence_lens, initial_h, ...
    outputs: dict[str, np.ndarray]  # by role: Y, Y_h, Y_c

    @property
    def layout(self) -> int:
        return int(self.attrs.get("layout", 0))  # type: ignore[arg-type]

    @property
    def direction(self) -> str:
        value = self.attrs.get("direction", b"forward")
        return value.decode() if isinstance(value, bytes) else str(value)

    def x_batch_first(self) -> np.ndarray:
        x = self.inputs["X"]
        return x if self.layout == 1 else x.transpose(1, 0, 2)

    def y_batch_first(self, direction: int) -> np.ndarray | None:
        """Expected Y of one direction as (batch, time, hidden)."""
        if "Y" not in self.outputs:
            return None
        y = self.outputs["Y"]
        return y[:, :, direction] if self.layout == 1 else y[:, direction].transpose(1, 0, 2)

    def state(self, role: str, direction: int) -> np.ndarray | None:
        if role not in self.outputs:
            return None
        s = self.outputs[role]
        return s[:, direction] if self.layout == 1 else s[direction]


ROLES = {
    "RNN": (["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"]),
    "GRU": (["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"]),
    "LSTM": (["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"], ["Y", "Y_h", "Y_c"]),
}


@functools.cache
def _recurrent_testcases() -> tuple[object, ...]:
    """ONNX's registered node test cases of RNN, LSTM and GRU (plus any registered before).

    `collect_testcases(op_type)` would import every op's case module (~10 s) and
    keep its op filter for the whole process: a later call for another op type
    would find nothing. Importing the three case modules runs their export
    functions, which register their cases in the same list, in ~0.5 s.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node

        for module in ("rnn", "lstm", "gru"):
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
        registered = getattr(node, "_NodeTestCases", None)
        return tuple(registered if registered is not None else node.collect_testcases())


@functools.cache
def cases(op_type: str) -> tuple[Case, ...]:
    collected = _recurrent_testcases()
    out = []
    for case in collected:
        node = case.model.graph.node[0]
        if node.op_type != op_type:
            continue
        in_roles, out_roles = ROLES[op_type]
        for inputs, outputs in case.data_sets:
            ins = {role: value for role, name, value in zip(in_roles, node.input, inputs, strict=False) if name}
            present = [role for role, name in zip(out_roles, node.output, strict=False) if name]
            outs = dict(zip(present, outputs, strict=True))
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            out.append(Case(case.name, attrs, ins, outs))
    return tuple(out)
