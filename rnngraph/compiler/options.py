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

- `device`: the onnxruntime provider the export is lowered for. ``cpu`` (the default):
  `auto` picks by speed measured on the CPU. ``cuda``: every node runs on onnxruntime's
  CUDA provider (`rnngraph.compiler.cuda`): ONNX's native LSTM/GRU/RNN only where cuDNN
  runs it (no peepholes, no coupled gates, GRU with ``linear_before_reset``, RNN with
  tanh; forward runs only), where `auto` and `native` then take it; a Scan elsewhere.

- `streaming`: export a causal model as a chunk model whose recurrent state is explicit
  graph inputs and outputs (`rnngraph.compiler.streaming`).

- `dtype`: the float type of every float input, output, weight and computation, ``float32``
  (the default) or ``float64``. Parameters go into a float64 export without passing through
  float32. onnxruntime's CPU provider has no float64 kernel for ONNX's native LSTM, GRU and
  RNN (measured with onnxruntime 1.32: LSTM and GRU fail when run, "operator does not support
  double yet"; RNN has no kernel at all), so float64 takes the Scan lowering everywhere:
  ``lowering="auto"`` becomes ``"scan"`` and ``lowering="native"`` is refused. (float16 is
  not a compiler dtype: it is a post-processing of the float32 export,
  `rnngraph.exporters.onnx.precision.to_float16`.)
"""

from __future__ import annotations

from dataclasses import dataclass

from rnngraph.errors import ExportError

LOWERINGS = ("auto", "scan", "native")
CLOCKWORK_FORMS = ("dense", "ladder", "cycle")
DTYPES = ("float32", "float64")
#: the native recurrent ops onnxruntime's CPU provider runs in float32 only
FLOAT32_ONLY_OPS = ("LSTM", "GRU", "RNN")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ExportOptions:
    lowering: str = "auto"
    clockwork_form: str | None = None
    streaming: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    batch: int | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            hint = (" float16 is written from the float32 export: rnngraph export --dtype float16, or "
                    "rnngraph.exporters.onnx.precision.to_float16." if self.dtype == "float16" else "")
            raise ExportError(f"invalid value for `dtype`: expected one of {DTYPES}, received {self.dtype!r}.{hint}")
        if self.dtype == "float64" and self.lowering == "native":
            raise ExportError(f"lowering='native' cannot export in float64: onnxruntime has no float64 kernel for "
                              f"ONNX's {'/'.join(FLOAT32_ONLY_OPS)} ops; use lowering='scan' (or 'auto', which "
                              "takes the Scan lowering in float64), or dtype='float32'.")
        if self.dtype == "float64" and self.lowering == "auto":
            object.__setattr__(self, "lowering", "scan")  # the only path with float64 kernels (module docstring)
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
        if self.device not in DEVICES:
            raise ExportError(f"invalid value for `device`: expected one of {DEVICES} (the onnxruntime provider "
                              f"the export is lowered for), received {self.device!r}.")
        if not isinstance(self.streaming, bool):
            raise ExportError(f"invalid value for `streaming`: expected True or False, received {self.streaming!r}.")


def resolve(lowering: str = "auto", options: ExportOptions | None = None, dtype: str | None = None) -> ExportOptions:
    """The options of one export from the `lowering` and `dtype` keywords and/or an options object (each
    given once)."""
    if options is None:
        return ExportOptions(lowering=lowering, dtype=dtype or "float32")
    if not isinstance(options, ExportOptions):
        raise ExportError(f"invalid value for `options`: expected an rnngraph ExportOptions, "
                          f"received {type(options).__name__}.")
    if lowering not in ("auto", options.lowering):
        raise ExportError(f"the lowering is given twice: `lowering={lowering!r}` and `options.lowering="
                          f"{options.lowering!r}`; give it in the options only.")
    if dtype is not None and dtype != options.dtype:
        raise ExportError(f"the dtype is given twice: `dtype={dtype!r}` and `options.dtype={options.dtype!r}`; "
                          "give it in the options only.")
    return options
