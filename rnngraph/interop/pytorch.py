"""A trained ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (and an optional ``Linear`` head) in one call.

    lstm = torch.nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
    model, params = import_pytorch(lstm)                       # outputs: output, h_l0, c_l0, h_l0_reverse, …
    model, params = import_pytorch(lstm, head=torch.nn.Linear(64, 5), head_on="h_n")

The module becomes one rnngraph layer named after its kind (``lstm``, ``gru``, ``rnn``):

    num_layers = 1, one direction   Recurrent(cell)                         params lstm/W, lstm/R, lstm/B
    num_layers = 1, bidirectional   Bidirectional(cell, merge="concat")     lstm/fw/…, lstm/bw/…
    num_layers = L > 1              Stack([cell or Bidirectional] * L)      lstm/l0/…, lstm/l1/fw/…

with cell ``RNN(H, activation=nonlinearity)``, ``LSTM(H)`` or ``GRU(H, linear_before_reset=True)``
(read through each cell's registered layout). What the model computes, with ``x (batch, time, input)``
(rnngraph is always batch-major: transpose the input of a ``batch_first=False`` module) and
optional ``lengths (batch,)`` standing for ``pack_padded_sequence(x, lengths)``:

- ``output (batch, time, directions*H)``: torch's ``output`` (after ``pad_packed_sequence``:
  zero past each row's length);
- ``h_l{k}``, ``h_l{k}_reverse`` (and ``c_…`` for an LSTM), each ``(batch, H)``: the final states,
  in the order of torch's ``h_n``/``c_n`` rows; `Imported.final_states` stacks them back into
  ``(num_layers*directions, batch, H)``;
- ``y`` with a `head`: ``head(output)`` at every step (``head_on="output"``) or ``head(h_n of the
  top layer)`` (``head_on="h_n"``: ``h_n[-1]``, or ``cat(h_n[-2], h_n[-1])`` when bidirectional).
  Past a row's length a per-step head gives 0, like every rnngraph sequence, where torch gives
  ``head(0)`` (its bias) on the padded output; the valid steps agree.

`head` is a ``torch.nn.Linear`` or a ``torch.nn.Sequential(Linear[, Softmax(dim=-1) | Sigmoid |
Tanh | ReLU])``. ``bias=False`` gives zero biases. Refused: ``proj_size`` (no rnngraph cell
projects h). ``dropout`` acts between layers only while training: the import is the module in
``eval()`` mode, where dropout is the identity.
"""

from __future__ import annotations

from typing import Any

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.layers import Dense, Input, Recurrent
from rnngraph.dsl.model import Model
from rnngraph.dsl.tensor import Tensor
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.errors import ModelError
from rnngraph.interop.imported import Imported
from rnngraph.interop.layouts import layout_for_layer
from rnngraph.interop.params import ParamsLoader
from rnngraph.interop.weights import as_array, from_pytorch

#: torch activation modules a head may end with -> Dense activation
HEAD_ACTIVATIONS = {"Softmax": "softmax", "Sigmoid": "sigmoid", "Tanh": "tanh", "ReLU": "relu", "Identity": "none"}
HEAD_ON = ("output", "h_n")


def _recurrent_cell(module: object) -> Cell:
    found = layout_for_layer(module, "pytorch")
    if found is None:
        raise ModelError(f"import_pytorch: expected a torch.nn.RNN, LSTM or GRU module, received "
                         f"{type(module).__name__}. Import a custom module's recurrent part and build the rest "
                         "in rnngraph.")
    return found.cell_from_pytorch(module)


def _head(head: Any, width: int, head_on: str) -> tuple[Any, str]:
    """The Linear of `head` and the Dense activation after it."""
    parts = list(head) if type(head).__name__ == "Sequential" else [head]
    linear, rest = parts[0], parts[1:]
    names = [type(p).__name__ for p in parts]
    if type(linear).__name__ != "Linear" or len(rest) > 1 or (rest and names[1] not in HEAD_ACTIVATIONS):
        raise ModelError(f"import_pytorch: `head` must be a torch.nn.Linear, or a Sequential of a Linear and one of "
                         f"{sorted(HEAD_ACTIVATIONS)}; received {' -> '.join(names)}.")
    if linear.in_features != width:
        raise ModelError(f"import_pytorch: the head's Linear reads {linear.in_features} features, but the recurrent "
                         f"module gives {width} per step (directions × hidden_size). Use Linear({width}, …).")
    activation = HEAD_ACTIVATIONS[names[1]] if rest else "none"
    if activation == "softmax" and rest[0].dim not in (-1, 2 if head_on == "output" else 1):
        raise ModelError(f"import_pytorch: the head's Softmax(dim={rest[0].dim}) is not over the features; rnngraph's "
                         "softmax is over the last axis (Softmax(dim=-1)).")
    return linear, activation


def import_pytorch(module: Any, head: Any = None, *, head_on: str = "output", name: str | None = None,
                   input_name: str = "x") -> Imported:
    """`module` (``torch.nn.RNN/LSTM/GRU``) and an optional `head` as an rnngraph model and params.

    See the module docstring for the outputs; ``model, params = import_pytorch(module)``.
    """
    cell = _recurrent_cell(module)
    if head_on not in HEAD_ON:
        raise ModelError(f"import_pytorch: invalid value for `head_on`: expected one of {HEAD_ON}, "
                         f"received {head_on!r}.")
    layers, bidirectional = int(module.num_layers), bool(module.bidirectional)
    node = cell.prefix
    directions = (False, True) if bidirectional else (False,)
    width = len(directions) * cell.hidden
    returns = ("sequence", "last", "state") if head is not None and head_on == "h_n" else ("sequence", "state")

    x = Input(input_name, features=int(module.input_size))
    one: Recurrent | Bidirectional = Bidirectional(cell, merge="concat") if bidirectional else Recurrent(cell)
    layer = (Stack((one,) * layers, returns=returns, name=node) if layers > 1
             else Bidirectional(cell, merge="concat", returns=returns, name=node) if bidirectional
             else Recurrent(cell, returns=returns, name=node))
    produced = layer(x)
    assert isinstance(produced, tuple)
    outputs: dict[str, Tensor] = {"output": produced[0]}
    states = list(produced[len(returns) - 1:])
    stacks: dict[str, list[str]] = {state: [] for state in cell.state_sizes()}
    for k in range(layers):
        for reverse in directions:
            for state in cell.state_sizes():
                out_name = f"{state}_l{k}" + ("_reverse" if reverse else "")
                outputs[out_name] = states.pop(0)
                stacks[state].append(out_name)
    linear = None
    if head is not None:
        linear, activation = _head(head, width, head_on)
        y = Dense(int(linear.out_features), activation, name="head")(produced[1] if head_on == "h_n" else produced[0])
        assert isinstance(y, Tensor)
        outputs["y"] = y
    model = Model(x, outputs, name=name or f"torch_{node}")

    loader = ParamsLoader(model)
    state_dict = module.state_dict()
    for k in range(layers):
        for reverse in directions:
            path = node + (f"/l{k}" if layers > 1 else "") + (("/bw" if reverse else "/fw") if bidirectional else "")
            loader.set(path, from_pytorch(cell, state_dict, layer=k, reverse=reverse))
    if linear is not None:
        bias = linear.bias if linear.bias is not None else [0.0] * int(linear.out_features)
        loader.set("head", {"W": as_array(linear.weight, "head weight"), "b": as_array(bias, "head bias")})
    notes = ["inputs are batch-major (batch, time, features); lengths stand for pack_padded_sequence"]
    if linear is not None and head_on == "output":
        notes.append("y past a row's length is 0 here; torch's head maps the padded output to its bias there")
    if float(getattr(module, "dropout", 0.0)) and layers > 1:
        notes.append(f"dropout={module.dropout} acts between layers only in training; imported as in eval() mode, "
                     "where it is the identity")
    return Imported(model, loader.params(), tuple(notes),
                    state_stacks={f"{state}_n": tuple(parts) for state, parts in stacks.items()})


__all__ = ["HEAD_ACTIVATIONS", "import_pytorch"]
