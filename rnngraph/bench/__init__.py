"""Speed measurements of rnngraph exports: interleaved timing, memory, graph cost, model files.

    python -m rnngraph.bench MODEL.py            # or `rnngraph bench MODEL.py`
    from rnngraph.bench import bench_model_file

The project's suite (canonical cells at fixed shapes, every sample, PyTorch and
``torch.onnx.export`` baselines, the targets of the speed work) is
``benchmarks/suite.py`` (``make bench``); it is built from the pieces here.
Nothing here imports torch unless a PyTorch baseline is asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bench_model_file", "main"]


def __getattr__(name: str) -> Any:
    # loaded on first use: `python -m rnngraph.bench.memory` (a fresh process measuring its own
    # memory) imports this package and should not load onnx and the compiler with it
    if name in __all__:
        from rnngraph.bench import model_file

        return getattr(model_file, name)
    raise AttributeError(name)
