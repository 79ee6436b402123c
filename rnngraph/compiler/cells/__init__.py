"""Cell lowerings; importing this package registers every one of them."""

from rnngraph.compiler.cells import (
    clockwork,  # noqa: F401
    esn,  # noqa: F401
    gru,  # noqa: F401
    lstm,  # noqa: F401
    rnn,  # noqa: F401
)
