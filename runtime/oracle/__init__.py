"""The NumPy oracle: a plain interpreter of rnngraph models, written from the equations in docs/.

    outputs = oracle.run(model, params, x=batch, lengths=lens)

Float64 throughout, a Python loop over time, one row at a time over its own
valid steps. It imports `rnngraph.dsl` and numpy and nothing from the compiler
or the exporters (a test keeps it so): each cell's step is written here a second
time, independently of its lowering, so a wrong gate order cannot hide on both sides.
"""

from rnngraph.runtime.oracle import decoder as _decoder  # noqa: F401 - Decoder (teacher-forced, greedy)
from rnngraph.runtime.oracle import embedding as _embedding  # noqa: F401 - Embedding
from rnngraph.runtime.oracle import esn_generate as _esn_generate  # noqa: F401 - Generative
from rnngraph.runtime.oracle import generate as _generate  # noqa: F401 - Generate (1-to-N)
from rnngraph.runtime.oracle import layers as _layers  # noqa: F401 - registers the layer evaluators
from rnngraph.runtime.oracle import wrappers as _wrappers  # noqa: F401 - Recurrent, Bidirectional, Stack
from rnngraph.runtime.oracle.core import evaluates, run, run_forced, run_reporting, step_for

__all__ = ["evaluates", "run", "run_forced", "run_reporting", "step_for"]
