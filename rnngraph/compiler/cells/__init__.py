"""Cell lowerings; importing this package registers every one of them."""

from rnngraph.compiler.cells import clockwork  # noqa: F401
from rnngraph.compiler.cells import esn  # noqa: F401
from rnngraph.compiler.cells import gru  # noqa: F401
from rnngraph.compiler.cells import lstm  # noqa: F401
from rnngraph.compiler.cells import rnn  # noqa: F401
