"""A trained Keras model of recurrent layers in one call.

    model, params = import_keras(keras_model)
    imported = import_keras(keras_model); feeds = imported.feeds(ids=ids)   # lengths from the mask

Reads a Keras 3 model (functional or Sequential, built from ``keras.Input``) whose layers are
``Embedding``, ``Masking``, ``SimpleRNN``/``LSTM``/``GRU``, ``Bidirectional`` and ``Dense`` (and
``Dropout``-like layers, the identity at inference),
each recurrent layer mapped through its cell's registered layout:

    SimpleRNN(activation)                     Recurrent(RNN(H, activation))
    LSTM (tanh / sigmoid)                     Recurrent(LSTM(H))
    GRU(reset_after=r)                        Recurrent(GRU(H, linear_before_reset=r))
    go_backwards=True                         Recurrent(..., reverse=True)
    return_sequences / return_state           returns = "sequence" or "last", plus "state"
    Bidirectional(merge_mode=m)               Bidirectional((fw, bw), merge=m); m=None: two Recurrent layers
    Embedding(mask_zero) / Masking(v)         a `lengths` input, computed by `Imported.feeds`

Outputs are named ``y`` (one output) or ``y0, y1, …`` in the order of ``keras_model.outputs``;
nodes and parameters carry the Keras layer names (``lstm/W``, ``bidirectional/bw/R``).

Masks, precisely. Keras skips a masked step: the states are carried over unchanged, and a
standalone RNN layer emits its previous output there (``zero_output_for_mask=False``, the
default) or zeros (``True``; Bidirectional forces ``True`` whenever it returns sequences).
rnngraph's padding is `lengths`: the first ``lengths[b]`` steps of row b are valid, the state
is frozen after them and every sequence output is 0 past them. So:

- final states, ``return_sequences=False`` outputs and every valid step agree exactly;
- at padded steps rnngraph emits 0: the same as a Bidirectional's or a
  ``zero_output_for_mask=True`` layer's sequence, while a default standalone layer repeats its
  last valid output there (and a Dense after it maps that repeat). `Imported.notes` says which
  outputs this concerns; compare them on valid steps;
- a mask must be "valid steps, then padding" (``pad_sequences(..., padding="post")``): a gap or
  leading padding, which Keras would skip, is refused by `Imported.feeds` (`lengths_from_mask`);
- refused: ``go_backwards=True`` with ``return_sequences=True`` outside a Bidirectional (Keras
  emits that sequence in reversed time order), ``zero_output_for_mask=True`` with
  ``return_sequences=False`` on a masked input (Keras then zeroes the last output of every
  padded row), ``stateful=True``, initial states passed in a call, and a ``Masking`` that does not
  read a model input. ``dropout``/``recurrent_dropout`` act only in training (identity here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.layers import Dense, Input, Recurrent
from rnngraph.dsl.model import Model
from rnngraph.dsl.tensor import SEQUENCE, Tensor
from rnngraph.dsl.wrappers import Bidirectional
from rnngraph.errors import ModelError
from rnngraph.interop.imported import Imported, MaskRule
from rnngraph.interop.layouts import layout_for_layer
from rnngraph.interop.params import ParamsLoader
from rnngraph.interop.weights import as_array, from_keras

DENSE_ACTIVATIONS = {"linear": "none", "softmax": "softmax", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}
LAYERS = "InputLayer, Embedding, Masking, SimpleRNN, LSTM, GRU, Bidirectional, Dense and Dropout"
#: layers that are the identity at inference
INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise")


@dataclass(frozen=True)
class Value:
    """A converted Keras tensor: the rnngraph tensor, and whether Keras carries a mask with it."""

    tensor: Tensor
    masked: bool


def _identifier(name: str) -> str:
    clean = re.sub(r"\W", "_", name)
    return clean if clean.isidentifier() else f"k_{clean}"


@dataclass
class _Walk:
    """One import: converted tensors by Keras node, parameters to set, what was reconciled."""

    weights: list[tuple[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    masks: list[MaskRule] = field(default_factory=list)
    inputs: dict[int, Tensor] = field(default_factory=dict)
    done: dict[tuple[int, int], list[Value]] = field(default_factory=dict)

    # -- the graph ----------------------------------------------------------------
    def value(self, keras_tensor: Any, tokens: int | None = None) -> Value:
        history = getattr(keras_tensor, "_keras_history", None)
        if history is None:
            raise ModelError(f"import_keras: {keras_tensor!r} is not a symbolic Keras tensor; build the model from "
                             "keras.Input(...).")
        layer, node_index, tensor_index = history
        kind = type(layer).__name__
        if kind == "InputLayer":
            return Value(self.input(layer, keras_tensor, tokens), False)
        key = (id(layer), node_index)
        if key not in self.done:
            node = layer._inbound_nodes[node_index]
            # Keras passes the mask it propagates as a `mask` argument; this walk follows masks itself
            extra = sorted(k for k, v in node.arguments.kwargs.items() if v is not None
                           and k not in ("training", "mask"))
            if extra or len(node.arguments.args) != 1:
                raise ModelError(f"import_keras: layer {layer.name!r} ({kind}) is called with "
                                 f"{len(node.arguments.args)} tensors{' and ' + ', '.join(extra) if extra else ''}; "
                                 "rnngraph imports layers called on one tensor (no initial_state).")
            source = node.arguments.args[0]
            if (node.arguments.kwargs.get("mask") is not None and kind not in ("Embedding", "Masking")
                    and not self.value(source).masked):
                raise ModelError(f"import_keras: layer {layer.name!r} ({kind}) is called with a mask of its own; "
                                 "rnngraph follows only the masks of Embedding(mask_zero=True) and Masking.")
            self.done[key] = self.layer(layer, kind, source)
        return self.done[key][tensor_index]

    def input(self, layer: Any, keras_tensor: Any, tokens: int | None) -> Tensor:
        if id(layer) in self.inputs:
            return self.inputs[id(layer)]
        name = _identifier(layer.name)
        shape = tuple(keras_tensor.shape)
        first = not self.inputs
        lengths, time = ("lengths", "time") if first else (f"{name}_lengths", f"{name}_time")
        if tokens is not None:
            if len(shape) != 2:
                raise ModelError(f"import_keras: input {layer.name!r} feeds an Embedding, so it must hold token ids "
                                 f"(batch, time); received shape {shape}.")
            tensor = Input(name, tokens=tokens, lengths=lengths, time=time)
        else:
            if len(shape) != 3 or shape[-1] is None or "int" in str(keras_tensor.dtype):
                raise ModelError(f"import_keras: input {layer.name!r} must be a float sequence (batch, time, features) "
                                 f"with known features, or token ids read by an Embedding; received shape {shape}.")
            tensor = Input(name, features=int(shape[-1]), lengths=lengths, time=time)
        self.inputs[id(layer)] = tensor
        return tensor

    def layer(self, layer: Any, kind: str, source: Any) -> list[Value]:
        if kind == "Embedding":
            return [self.embedding(layer, source)]
        if kind == "Masking":
            return [self.masking(layer, source)]
        if kind == "Dense":
            return [self.dense(layer, self.value(source))]
        if kind == "Bidirectional":
            return self.bidirectional(layer, self.value(source))
        if kind in INFERENCE_IDENTITY:
            self.notes.append(f"{layer.name}: {kind} acts only in training; imported as at inference (identity)")
            return [self.value(source)]
        if layout_for_layer(layer, "keras") is not None:
            return self.recurrent(layer, self.value(source))
        raise ModelError(f"import_keras: layer {layer.name!r} is a {kind}; rnngraph imports models built from "
                         f"{LAYERS}.")

    # -- layers ---------------------------------------------------------------------
    def embedding(self, layer: Any, source: Any) -> Value:
        if getattr(source, "_keras_history", (None,))[0].__class__.__name__ != "InputLayer":
            raise ModelError(f"import_keras: Embedding {layer.name!r} must read a model input of token ids.")
        config = layer.get_config()
        ids = self.value(source, tokens=int(config["input_dim"])).tensor
        name = _identifier(layer.name)
        out = Embedding(int(config["input_dim"]), int(config["output_dim"]), name=name)(ids)
        assert isinstance(out, Tensor)
        self.weights.append((name, {"E": as_array(layer.embeddings, f"{layer.name} embeddings", 2)}))
        if config.get("mask_zero"):
            self.masks.append(MaskRule(ids.node.layer.name or "", ids.spec.lengths or ""))
        return Value(out, bool(config.get("mask_zero")))

    def masking(self, layer: Any, source: Any) -> Value:
        if getattr(source, "_keras_history", (None,))[0].__class__.__name__ != "InputLayer":
            raise ModelError(f"import_keras: Masking {layer.name!r} must read a model input: rnngraph computes the "
                             "lengths from the values fed to the model.")
        x = self.value(source).tensor
        self.masks.append(MaskRule(x.node.layer.name or "", x.spec.lengths or "", float(layer.mask_value)))
        return Value(x, True)

    def dense(self, layer: Any, x: Value) -> Value:
        config = layer.get_config()
        activation = config.get("activation")
        if activation not in DENSE_ACTIVATIONS:
            raise ModelError(f"import_keras: Dense {layer.name!r} has activation={activation!r}; rnngraph's Dense "
                             f"takes one of {sorted(DENSE_ACTIVATIONS)}.")
        name = _identifier(layer.name)
        out = Dense(int(config["units"]), DENSE_ACTIVATIONS[activation], name=name)(x.tensor)
        assert isinstance(out, Tensor)
        kernel = as_array(layer.kernel, f"{layer.name} kernel", 2)
        bias = as_array(layer.bias, f"{layer.name} bias", 1) if config.get("use_bias", True) else np.zeros(
            kernel.shape[1])
        self.weights.append((name, {"W": kernel.T, "b": bias}))
        if x.masked and x.tensor.spec.kind == SEQUENCE:
            self.notes.append(f"{layer.name}: at padded steps rnngraph emits 0; Keras applies the Dense to what the "
                              "layer below emitted there")
        return Value(out, x.masked)

    def options(self, layer: Any, masked: bool, inside: str = "") -> tuple[Cell, dict[str, Any]]:
        """The cell of a Keras recurrent layer, after refusing what rnngraph does not compute."""
        found = layout_for_layer(layer, "keras")
        if found is None:
            raise ModelError(f"import_keras: layer {layer.name!r} ({type(layer).__name__}) is not a SimpleRNN, LSTM "
                             "or GRU.")
        config = layer.get_config()
        where = f"import_keras: layer {layer.name!r}{inside}"
        if config.get("stateful"):
            raise ModelError(f"{where}: stateful=True carries states across calls; export the model without it and "
                             "stream with rnngraph's chunk models instead.")
        if not inside and config.get("go_backwards") and config.get("return_sequences"):
            raise ModelError(f"{where}: go_backwards=True with return_sequences=True emits the sequence in reversed "
                             "time order, which rnngraph's layers never do (their outputs stay aligned with the "
                             "input steps). Wrap the layer in Bidirectional, or return only the last output.")
        if masked and config.get("zero_output_for_mask") and not config.get("return_sequences"):
            raise ModelError(f"{where}: zero_output_for_mask=True with return_sequences=False makes Keras return 0 "
                             "as the last output of every padded row; rnngraph returns the output at the row's last "
                             "valid step. Set zero_output_for_mask=False.")
        if config.get("dropout") or config.get("recurrent_dropout"):
            self.notes.append(f"{layer.name}: dropout acts only in training; imported as at inference (identity)")
        return found.cell_from_keras(layer), config

    def recurrent(self, layer: Any, x: Value) -> list[Value]:
        cell, config = self.options(layer, x.masked)
        name = _identifier(layer.name)
        returns = ("sequence" if config.get("return_sequences") else "last",) + (
            ("state",) if config.get("return_state") else ())
        reverse = bool(config.get("go_backwards"))
        outs = Recurrent(cell, reverse=reverse, returns=returns, name=name)(x.tensor)
        outs = outs if isinstance(outs, tuple) else (outs,)
        self.weights.append((name, from_keras(cell, layer.get_weights(), reverse=reverse)))
        if x.masked and config.get("return_sequences") and not config.get("zero_output_for_mask"):
            self.notes.append(f"{layer.name}: at padded steps rnngraph emits 0; this Keras layer repeats its last "
                              "valid output there (zero_output_for_mask=False); valid steps agree")
        sequence_masked = x.masked and bool(config.get("return_sequences"))
        return [Value(t, sequence_masked and i == 0) for i, t in enumerate(outs)]

    def bidirectional(self, layer: Any, x: Value) -> list[Value]:
        fw_layer, bw_layer = layer.forward_layer, layer.backward_layer
        fw, fw_config = self.options(fw_layer, x.masked, f" (forward of {layer.name!r})")
        bw, bw_config = self.options(bw_layer, x.masked, f" (backward of {layer.name!r})")
        if fw_config.get("go_backwards") or not bw_config.get("go_backwards"):
            raise ModelError(f"import_keras: Bidirectional {layer.name!r}: expected a forward_layer that runs forward "
                             "and a backward_layer with go_backwards=True.")
        sequences, states = bool(layer.return_sequences), bool(layer.return_state)
        returns = ("sequence" if sequences else "last",) + (("state",) if states else ())
        name = _identifier(layer.name)
        fw_weights = from_keras(fw, fw_layer.get_weights())
        bw_weights = from_keras(bw, bw_layer.get_weights(), reverse=True)
        if layer.merge_mode is None:  # two outputs, [y, y_rev] + forward states + backward states
            fw_outs = Recurrent(fw, returns=returns, name=f"{name}_fw")(x.tensor)
            bw_outs = Recurrent(bw, reverse=True, returns=returns, name=f"{name}_bw")(x.tensor)
            fw_outs = fw_outs if isinstance(fw_outs, tuple) else (fw_outs,)
            bw_outs = bw_outs if isinstance(bw_outs, tuple) else (bw_outs,)
            outs = (fw_outs[0], bw_outs[0], *fw_outs[1:], *bw_outs[1:])
            self.weights += [(f"{name}_fw", fw_weights), (f"{name}_bw", bw_weights)]
            heads = 2
        else:
            merged = Bidirectional(fw if fw == bw else (fw, bw), merge=layer.merge_mode, returns=returns,
                                   name=name)(x.tensor)
            outs = merged if isinstance(merged, tuple) else (merged,)
            self.weights += [(f"{name}/fw", fw_weights), (f"{name}/bw", bw_weights)]
            heads = 1
        return [Value(t, x.masked and sequences and i < heads) for i, t in enumerate(outs)]


def import_keras(keras_model: Any, *, name: str | None = None) -> Imported:
    """`keras_model` as an rnngraph model and params (see the module docstring for what maps to what)."""
    outputs = getattr(keras_model, "outputs", None)
    if not outputs:
        raise ModelError(f"import_keras: {type(keras_model).__name__} has no symbolic outputs; build it from "
                         "keras.Input(...) (a Sequential needs an Input as its first layer).")
    walk = _Walk()
    values = [walk.value(t) for t in outputs]
    names = ["y"] if len(values) == 1 else [f"y{i}" for i in range(len(values))]
    model = Model(list(walk.inputs.values()), {n: v.tensor for n, v in zip(names, values, strict=True)},
                  name=name or _identifier(getattr(keras_model, "name", "keras_model")))
    loader = ParamsLoader(model)
    for path, local in walk.weights:
        loader.set(path, local)
    return Imported(model, loader.params(), tuple(dict.fromkeys(walk.notes)), tuple(walk.masks))


__all__ = ["import_keras"]
