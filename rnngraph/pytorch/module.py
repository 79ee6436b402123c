"""`TorchModel`: an rnngraph model as a `torch.nn.Module`, its parameters under rnngraph's names.

    net = TorchModel(model, model.init(seed=0))            # float32; dtype=torch.float64 for checks
    out = net(x=x, lengths=lengths)                         # {output name: tensor}, as the model names them
    ...train with any torch optimizer...
    rg.export(model, net.rnngraph_params(), "model.onnx")  # float32, ONNX layout

Parameter names: rnngraph's ``"<node>/<param>"`` (e.g. ``"enc/l1/fw/W"``) with every ``/``
written ``:`` (`param_key`), since PyTorch forbids ``.`` in parameter names and node names are
identifiers, so ``:`` never occurs in them and the mapping is one-to-one. Trainable weights are
in ``net.weights`` (an ``nn.ParameterDict``: ``net.weights["enc:l1:fw:W"]``); weights declared
fixed (an ESN's reservoir ``W``, ``W_in``, ``W_back``) are buffers of ``net.fixed``, moved and
saved with the module but never handed to an optimizer.

Structural masks (the Clockwork block mask): each masked weight has its 0/1 mask as a
buffer of ``net.masks`` and the forward pass multiplies the weight by it, so the entries
outside the mask never act and get exactly zero gradient. They start at zero (the values
are stored masked), so any optimizer that leaves a zero-gradient zero alone (SGD, Adam,
AdamW and weight decay all do) keeps them zero; `rnngraph_params` masks them again anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from rnngraph.dsl.model import Model
from rnngraph.dsl.tensor import SCALAR, SEQUENCE
from rnngraph.errors import InputError
from rnngraph.pytorch import decoder as _decoder  # noqa: F401 - registers TeacherForced, GreedyDecode
from rnngraph.pytorch import generate as _generate  # noqa: F401 - registers Generate, Generative
from rnngraph.pytorch import layers as _layers  # noqa: F401 - registers the basic layers and topologies
from rnngraph.pytorch.core import Env, implementation_for

#: what replaces "/" of rnngraph's parameter names in PyTorch's
KEY_SEPARATOR = ":"


def param_key(name: str) -> str:
    """rnngraph's parameter name -> its key in `TorchModel` (``"enc/l1/W"`` -> ``"enc:l1:W"``)."""
    return name.replace("/", KEY_SEPARATOR)


def param_name(key: str) -> str:
    """The inverse of `param_key`."""
    return key.replace(KEY_SEPARATOR, "/")


class TorchModel(nn.Module):
    """`model` computed by PyTorch, starting from `params` (rnngraph's dict, e.g. ``model.init(seed)``).

    ``forward(**feeds)`` takes the model's inputs by name (tensors, arrays or, for counts, ints;
    a missing `lengths` input means full rows) and returns ``{output name: tensor}``: floats in
    the module's dtype, token ids int64. Every cell, option and topology of rnngraph computes
    the model's function exactly (checked against the NumPy oracle in float64).
    """

    def __init__(self, model: Model, params: Mapping[str, np.ndarray], *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        model.check_params(params)
        self.model = model
        self.dtype = dtype
        self.weights = nn.ParameterDict()
        self.fixed = nn.Module()
        self.masks = nn.Module()
        for name, spec in model.param_specs().items():
            value = torch.as_tensor(np.asarray(params[name], dtype=np.float64), dtype=dtype, device=device)
            key = param_key(name)
            if spec.mask is not None:
                mask = torch.as_tensor(spec.mask, dtype=dtype, device=device)
                self.masks.register_buffer(key, mask)
                value = value * mask
            if spec.trainable:
                self.weights[key] = nn.Parameter(value)
            else:
                self.fixed.register_buffer(key, value)

    # -- parameters -------------------------------------------------------------
    def effective(self) -> dict[str, torch.Tensor]:
        """Every parameter by rnngraph name as the model computes with it (masks applied)."""
        masks = dict(self.masks.named_buffers())
        out: dict[str, torch.Tensor] = {}
        for key, value in [*self.weights.items(), *self.fixed.named_buffers()]:
            out[param_name(key)] = value * masks[key] if key in masks else value
        return out

    def rnngraph_params(self) -> dict[str, np.ndarray]:
        """The current weights as rnngraph's params dict (float32, ONNX layout), ready for `rg.export`."""
        with torch.no_grad():
            params = {name: value.detach().cpu().numpy().astype(np.float32)
                      for name, value in self.effective().items()}
        self.model.check_params(params)
        return {name: params[name] for name in self.model.param_specs()}

    def load_rnngraph_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Copy an rnngraph params dict (same model) into this module's weights."""
        self.model.check_params(params)
        effective = dict(self.weights.items()) | dict(self.fixed.named_buffers())
        masks = dict(self.masks.named_buffers())
        with torch.no_grad():
            for name in self.model.param_specs():
                key = param_key(name)
                target = effective[key]
                value = torch.as_tensor(np.asarray(params[name], dtype=np.float64), dtype=self.dtype,
                                        device=target.device)
                target.copy_(value * masks[key] if key in masks else value)

    # -- computing ---------------------------------------------------------------
    def forward(self, **feeds: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        env = Env(self.model, self.effective(), self.prepare(feeds))
        for name, node in self.model.nodes():
            outs = implementation_for(node.layer)(env, name, node.layer, self.model.sources(name))
            for index, value in enumerate(outs):
                env.values[(name, index)] = value
        return {name: env.value(source) for name, source in self.model.outputs.items()}

    def prepare(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Check names and shapes; floats to the module's dtype, ids and lengths to int64, counts to ints."""
        model = self.model
        expected = set(model.inputs) | set(model.lengths)
        unknown, missing = sorted(set(feeds) - expected), sorted(set(model.inputs) - set(feeds))
        if unknown or missing:
            raise InputError(f"TorchModel: inputs do not match the model: unknown {unknown}, missing {missing}; "
                             f"the model takes {sorted(expected)}.")
        device = next(iter([*self.weights.values(), *self.fixed.buffers()]), torch.empty(0)).device
        out: dict[str, Any] = {}
        for name, spec in model.inputs.items():
            if spec.kind == SCALAR:
                out[name] = int(feeds[name])
                continue
            value = torch.as_tensor(feeds[name], device=device)
            dims = spec.dims()
            if value.dim() != len(dims) or any(isinstance(d, int) and value.shape[a] != d for a, d in enumerate(dims)):
                shape = "(" + ", ".join(str(d) for d in dims) + ")"
                raise InputError(f"TorchModel: input {name!r} must have shape {shape}, received {tuple(value.shape)}.")
            if spec.kind == SEQUENCE and value.shape[1] == 0:
                raise InputError(f"TorchModel: `{name}` has time 0; every sequence needs at least one step.")
            out[name] = value.to(torch.int64) if spec.dtype == "int64" else value.to(self.dtype)
        for lengths, owners in model.lengths.items():
            first = out[owners[0]]
            given = feeds.get(lengths)
            lens = (torch.full((first.shape[0],), first.shape[1], dtype=torch.int64, device=device) if given is None
                    else torch.as_tensor(given, device=device).to(torch.int64))
            if tuple(lens.shape) != (first.shape[0],) or (lens.numel() and (int(lens.min()) < 1
                                                                           or int(lens.max()) > first.shape[1])):
                raise InputError(f"TorchModel: `{lengths}` must hold one length in 1..{first.shape[1]} per row, "
                                 f"received {lens.tolist()}.")
            out[lengths] = lens
        return out

