"""Helpful errors for wrong constructor arguments of cells, layers and configurations.

The DSL's classes are dataclasses, whose generated ``__init__`` answers a wrong
keyword with a bare ``TypeError: __init__() got an unexpected keyword argument``.
Users arriving from Keras or PyTorch write their spellings (``return_sequences=``,
``num_layers=``, ``units=``); `Checked`, the metaclass of the DSL's base classes,
answers those with the rnngraph spelling, and any other wrong call with the
class's own signature and the nearest valid name.

The error is a `SignatureError`: a ModelError (rnngraph's hierarchy) that is also
a TypeError (what Python raises for a wrong call), so either ``except`` catches it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any

from rnngraph.errors import ModelError

#: foreign spelling -> how rnngraph says it
SPELLINGS: dict[str, str] = {
    "return_sequences": 'rnngraph spells it `returns=`: Recurrent(cell, returns="sequence") gives every step '
                        '(return_sequences=True), returns="last" only the last valid step (return_sequences=False).',
    "return_state": 'rnngraph spells it `returns=`: returns=("sequence", "state") or ("last", "state") adds the '
                    "final states as outputs, in cell.state_sizes() order.",
    "go_backwards": "rnngraph spells it `reverse=True` on the wrapper: Recurrent(cell, reverse=True).",
    "num_layers": "rnngraph stacks layers with Stack: Stack([cell, cell, ...]) (bottom first), e.g. "
                  "Stack([LSTM(32), LSTM(32)]).",
    "bidirectional": 'rnngraph wraps the cell instead: Bidirectional(cell, merge="concat").',
    "merge_mode": 'rnngraph spells it `merge=`: Bidirectional(cell, merge="concat"|"sum"|"mul"|"ave").',
    "batch_first": "rnngraph is always batch-first: sequences are (batch, time, features). Leave it out.",
    "time_major": "rnngraph is always batch-first: sequences are (batch, time, features). Leave it out.",
    "units": "a cell's size is `hidden`, its first argument: e.g. LSTM(32).",
    "hidden_size": "a cell's size is `hidden`, its first argument: e.g. LSTM(32).",
    "num_units": "a cell's size is `hidden`, its first argument: e.g. LSTM(32).",
    "input_size": "leave it out: the input size is read from the tensor the layer is called on.",
    "input_dim": "leave it out: the input size is read from the tensor the layer is called on.",
    "input_shape": 'leave it out: declare the model input with Input("x", features=16) instead.',
    "nonlinearity": 'rnngraph spells it `activation=`, e.g. RNN(32, activation="relu").',
    "reset_after": "rnngraph spells it `linear_before_reset=` (reset_after=True is linear_before_reset=True).",
    "use_peepholes": "rnngraph spells it `peephole=True`: LSTM(32, peephole=True).",
    "stateful": 'carry the state yourself: returns=("sequence", "state") gives the final states, and '
                "Recurrent(...)(x, initial_state=s) starts from them.",
    "dropout": "rnngraph describes inference graphs and has no dropout; train elsewhere (e.g. PyTorch) and load "
               "the parameters (rnngraph.interop).",
    "recurrent_dropout": "rnngraph describes inference graphs and has no dropout; train elsewhere (e.g. PyTorch) "
                         "and load the parameters (rnngraph.interop).",
    "bias": "every cell has biases (its `B` parameter); set them to zero in params to do without.",
    "use_bias": "every cell has biases (its `B` parameter); set them to zero in params to do without.",
    "kernel_initializer": "parameters are not drawn by the layer: use model.init(seed) or give your own dict.",
    "recurrent_initializer": "parameters are not drawn by the layer: use model.init(seed) or give your own dict.",
}


class SignatureError(ModelError, TypeError):
    """A cell, layer or configuration was called with arguments it does not take."""


class Checked(type):
    """Metaclass of the DSL's base classes: turns a wrong constructor call into a `SignatureError`."""

    @property
    def __signature__(cls) -> inspect.Signature:
        """What `inspect.signature` and editors show: the dataclass's own parameters, not ``(*args, **kwargs)``."""
        return _signature(cls)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        signature = _signature(cls)
        try:
            signature.bind(*args, **kwargs)  # what the dataclass __init__ would refuse, refused first
        except TypeError as exc:
            raise SignatureError(explain(cls, signature, kwargs, exc)) from None
        return super().__call__(*args, **kwargs)


def explain(cls: type, signature: inspect.Signature, kwargs: dict[str, Any], exc: TypeError) -> str:
    """The message for a call of `cls` that does not bind to its `signature`."""
    name = cls.__name__
    accepted = [p for p in signature.parameters if not p.startswith("_")]
    takes = f"{name} takes: {', '.join(accepted)}."
    for key in kwargs:
        if key in signature.parameters:
            continue
        if key in SPELLINGS:
            return f"{name}: unknown option `{key}`: {SPELLINGS[key]} ({takes})"
        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        return f"{name}: unknown option `{key}`.{hint} ({takes})"
    # not a keyword's spelling: too many positional arguments, a missing one, or one given twice
    detail = str(exc).replace("'", "`")
    return f"{name}: {detail}. ({takes})"


@functools.cache
def _signature(cls: type) -> inspect.Signature:
    """The parameters of the class's ``__init__`` without ``self`` (the metaclass hides them from inspect)."""
    init = inspect.signature(cls.__init__)  # type: ignore[misc]
    return init.replace(parameters=list(init.parameters.values())[1:])
