"""PyTorch baselines: the same cell as ``torch.nn.LSTM/GRU/RNN``, run eagerly and exported by ``torch.onnx.export``.

The PyTorch module gets rnngraph's weights through `rnngraph.interop.to_pytorch`, so
its outputs can be checked equal to the rnngraph export's before anything is timed.
Only cells PyTorch has are covered: a plain ``LSTM``, ``GRU(linear_before_reset=True)``
(what ``torch.nn.GRU`` computes) and a tanh ``RNN``; `torch_kind` says which.

torch is imported inside the functions: this module loads (and `torch_available`
answers) without it.

``torch.onnx.export`` is called with ``dynamo=False``, the TorchScript exporter, which
maps ``nn.LSTM/GRU/RNN`` onto ONNX's native ``LSTM/GRU/RNN`` ops (with the Transposes
and Squeezes it puts around them): the model a PyTorch user deploys to onnxruntime.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnngraph.dsl.cells.base import Cell

#: the opset of the torch.onnx.export models (rnngraph's default too)
TORCH_OPSET = 17


@functools.lru_cache(maxsize=1)
def torch_available() -> bool:
    """Whether torch imports (installed is not enough: a broken install counts as absent)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torch_kind(cell: Cell) -> str | None:
    """``"LSTM"``, ``"GRU"`` or ``"RNN"`` where ``torch.nn`` has exactly this cell, else None."""
    from rnngraph.dsl.cells.gru import GRU
    from rnngraph.dsl.cells.lstm import LSTM
    from rnngraph.dsl.cells.rnn import RNN

    if type(cell) is LSTM and not (cell.peephole or cell.coupled):
        return "LSTM"
    if type(cell) is GRU and cell.linear_before_reset:
        return "GRU"
    if type(cell) is RNN and cell.activation == "tanh":
        return "RNN"
    return None


def torch_state(cell: Cell, local: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ``torch.nn`` state dict (float32 arrays) of one layer from rnngraph's parameters of `cell`."""
    from rnngraph.interop import to_pytorch

    return to_pytorch(cell, local)


def torch_module(kind: str, input_size: int, hidden: int, state: Mapping[str, np.ndarray]) -> Any:
    """``torch.nn.<kind>(input_size, hidden, batch_first=True)`` with `state` loaded, returning only y."""
    import torch

    class OutputsOnly(torch.nn.Module):  # type: ignore[misc]
        """y ``(batch, time, hidden)`` alone, as the rnngraph model returns it."""

        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(input_size, hidden, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    module = OutputsOnly()
    module.rnn.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return module.eval()


def eager_runner(module: Any, x: np.ndarray, threads: int) -> Any:
    """A no-argument callable running `module` on `x` eagerly (inference mode, `threads` intra-op threads)."""
    import torch

    torch.set_num_threads(threads)
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def run() -> Any:
        with torch.inference_mode():
            return module(tensor)

    return run


def eager_output(module: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def onnx_export(module: Any, x: np.ndarray) -> bytes:
    """``torch.onnx.export`` of `module` (input ``x``, output ``y``, batch and time dynamic) as bytes."""
    import torch

    buffer = io.BytesIO()
    axes = {0: "batch", 1: "time"}
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice and its LSTM batch-size advice
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),), buffer,  # type: ignore[arg-type]
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": axes, "y": axes},
                          opset_version=TORCH_OPSET, dynamo=False)
    return buffer.getvalue()


def torch_version() -> str | None:
    if not torch_available():
        return None
    import torch

    return str(torch.__version__)
