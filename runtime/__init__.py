"""Running exported models: `Session` (onnxruntime) and `oracle` (the NumPy reference).

`rnngraph.runtime.session` needs only numpy and onnxruntime, so it deploys on an
edge box without the compiler; the oracle is imported only when asked for.
"""

from __future__ import annotations

from typing import Any

from rnngraph.runtime.session import Session
from rnngraph.runtime.step_decoder import DecoderStreams, StepDecoder
from rnngraph.runtime.streaming import StreamingSession, Streams

__all__ = ["DecoderStreams", "Session", "StepDecoder", "StreamingSession", "Streams", "oracle"]


def __getattr__(name: str) -> Any:
    if name == "oracle":
        import importlib

        return importlib.import_module("rnngraph.runtime.oracle")
    raise AttributeError(name)
