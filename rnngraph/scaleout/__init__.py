"""Scale-out on Dask (the ``dask`` extra: ``pip install rnngraph[dask]``).

- `fit_ridge` (`rnngraph.scaleout.training`): ESN readout training over a Dask bag, Dask arrays
  or delayed file loaders; partial sums on the workers, a tree reduction, one solve.
- `search` (`rnngraph.scaleout.tuning`): grid or random hyper-parameter search, one task per
  setting, each reservoir rebuilt from the seed on its worker.
- `predict` (`rnngraph.scaleout.inference`): an exported ``.onnx`` over a Dask array or bag of
  sequences, one onnxruntime session per worker.

This package imports the DSL, the training code and `rnngraph.runtime.session`; nothing
imports it back. Every entry point takes a `distributed.Client` (or uses the current one).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "fit_ridge": "rnngraph.scaleout.training",
    "search": "rnngraph.scaleout.tuning",
    "grid": "rnngraph.scaleout.tuning",
    "random_settings": "rnngraph.scaleout.tuning",
    "free_run_error": "rnngraph.scaleout.tuning",
    "predict": "rnngraph.scaleout.inference",
    "predict_arrays": "rnngraph.scaleout.inference",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnngraph.scaleout' has no attribute {name!r}")


__all__ = list(_LAZY)
