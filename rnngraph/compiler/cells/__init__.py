"""Cell lowerings; importing this package registers every one of them."""

from rnngraph.compiler.cells import rnn  # noqa: F401
