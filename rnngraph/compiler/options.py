"""Export options: one frozen object that travels with the lowering (`LoweringContext.options`).

Nothing else steers a lowering: no module global, no context variable. A lowering
that has a choice reads it here, once per cell.

    ExportOptions(lowering="scan", clockwork_form="ladder")

- `lowering`: ``auto`` (per cell, the faster of ONNX's native op and a Scan, as
  measured), ``scan`` (a Scan everywhere), ``native`` (ONNX's native op wherever a
  cell maps onto it exactly, a Scan elsewhere).
- `clockwork_form`: the form of every Clockwork step, ``dense``, ``ladder`` or ``cycle``
  (`rnngraph.compiler.cells.clockwork`); None lets its cost model choose per cell.
- `batch`: the batch size the export will mostly run at, a hint for cost models that
  depend on it (Clockwork's choice of form); the exported graph still takes any batch
  size. None: batch 1, where a step's node overhead weighs most.

- `streaming`: export a causal model as a chunk model whose recurrent state is explicit
  graph inputs and outputs (`rnngraph.compiler.streaming`).

Options still to come (a dtype) are added here as fields with a default that keeps today's export.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnngraph.errors import ExportError

LOWERINGS = ("auto", "scan", "native")
CLOCKWORK_FORMS = ("dense", "ladder", "cycle")


@dataclass(frozen=True)
class ExportOptions:
    lowering: str = "auto"
    clockwork_form: str | None = None
    streaming: bool = False
    batch: int | None = None

    def __post_init__(self) -> None:
        if self.lowering not in LOWERINGS:
            raise ExportError(f"invalid value for `lowering`: expected one of {LOWERINGS}, "
                              f"received {self.lowering!r}.")
        if self.clockwork_form is not None and self.clockwork_form not in CLOCKWORK_FORMS:
            raise ExportError(f"invalid value for `clockwork_form`: expected one of {CLOCKWORK_FORMS} or None "
                              f"(the cost model chooses), received {self.clockwork_form!r}.")
        if self.batch is not None and (isinstance(self.batch, bool) or not isinstance(self.batch, int)
                                       or self.batch < 1):
            raise ExportError(f"invalid value for `batch`: expected a batch size of at least 1 (a hint for the "
                              f"cost models; the graph takes any batch) or None, received {self.batch!r}.")
        if not isinstance(self.streaming, bool):
            raise ExportError(f"invalid value for `streaming`: expected True or False, received {self.streaming!r}.")


def resolve(lowering: str = "auto", options: ExportOptions | None = None) -> ExportOptions:
    """The options of one export from the `lowering` keyword and/or an options object (not two lowerings)."""
    if options is None:
        return ExportOptions(lowering=lowering)
    if not isinstance(options, ExportOptions):
        raise ExportError(f"invalid value for `options`: expected an rnngraph ExportOptions, "
                          f"received {type(options).__name__}.")
    if lowering not in ("auto", options.lowering):
        raise ExportError(f"the lowering is given twice: `lowering={lowering!r}` and `options.lowering="
                          f"{options.lowering!r}`; give it in the options only.")
    return options
