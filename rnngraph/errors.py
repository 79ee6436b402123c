"""One exception hierarchy for everything rnngraph refuses.

Every message says what is wrong, where (node and field), what was expected,
what was received, and, where it can, how to fix it.
"""

from __future__ import annotations


class RnnGraphError(Exception):
    """Root of every error rnngraph raises on purpose."""


class ModelError(RnnGraphError):
    """The model description is invalid (a layer, a connection, a hyperparameter)."""


class ParameterError(RnnGraphError):
    """Parameters are missing, extra, or have the wrong shape or dtype."""


class ExportError(RnnGraphError):
    """The model cannot be exported with the options given (opset, lowering, path)."""


class InputError(RnnGraphError):
    """Inputs given to a session or to the oracle do not match the model."""


def invalid(where: str, field: str, expected: str, received: object, fix: str = "") -> ModelError:
    """Build a ModelError in the house format.

    >>> str(invalid("rnn0", "hidden", "a positive integer", 0))
    "rnn0: invalid value for `hidden`: expected a positive integer, received 0."
    """
    message = f"{where}: invalid value for `{field}`: expected {expected}, received {received!r}."
    if fix:
        message += f" {fix}"
    return ModelError(message)
