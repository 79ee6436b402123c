"""rnngraph: describe recurrent networks in Python, compile them to ONNX, run them anywhere.

    import rnngraph as rg
    x = rg.Input("x", features=16)
    y = rg.Dense(10, activation="softmax")(rg.Recurrent(rg.RNN(32))(x))
    model = rg.Model(inputs=x, outputs={"y": y})
    params = model.init(seed=0)
    rg.export(model, params, "tagger.onnx")
    out = rg.runtime.Session("tagger.onnx").run(x=batch, lengths=lens)

Names are loaded on first use, so that ``import rnngraph.runtime.session`` on an
edge box needs only numpy and onnxruntime (not onnx or networkx).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rnngraph.errors import ExportError, InputError, ModelError, ParameterError, RnnGraphError

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {
    **{name: "rnngraph.dsl" for name in (
        "Input", "Dense", "Recurrent", "Model", "Layer", "Cell", "RNN", "SRN", "Elman", "Tensor", "TensorSpec",
        "ParamSpec", "save_params", "load_params",
    )},
    "Bidirectional": "rnngraph.dsl.wrappers",
    "Stack": "rnngraph.dsl.wrappers",
    "Clockwork": "rnngraph.dsl.cells.clockwork",
    "LSTM": "rnngraph.dsl.cells.lstm",
    "GRU": "rnngraph.dsl.cells.gru",
    "Generate": "rnngraph.dsl.generate",
    "ESN": "rnngraph.dsl.cells.esn",
    "Generative": "rnngraph.dsl.esn_generate",
    "fit_ridge": "rnngraph.train",
    "fit_ridge_path": "rnngraph.train",
    "RidgeTrainer": "rnngraph.train",
    "Embedding": "rnngraph.dsl.embedding",
    "Attention": "rnngraph.dsl.attention",
    "Decoder": "rnngraph.dsl.decoder",
    "export": "rnngraph.exporters.onnx",
    "export_decoder_step": "rnngraph.exporters.onnx.decoder_step",
    "load": "rnngraph.loading",
    "draw_model": "rnngraph.draw",
    "draw_unrolled": "rnngraph.draw",
    "attention_heatmap": "rnngraph.draw",
    "ExportOptions": "rnngraph.compiler.options",
    "runtime": "rnngraph.runtime",
    "interop": "rnngraph.interop",
}
#: names in _LAZY that are modules themselves
_MODULES = ("runtime", "interop")

if TYPE_CHECKING:
    import rnngraph.interop as interop
    import rnngraph.runtime as runtime
    from rnngraph.compiler.options import ExportOptions
    from rnngraph.draw import attention_heatmap, draw_model, draw_unrolled
    from rnngraph.dsl import (
        RNN,
        SRN,
        Cell,
        Dense,
        Elman,
        Input,
        Layer,
        Model,
        ParamSpec,
        Recurrent,
        Tensor,
        TensorSpec,
        load_params,
        save_params,
    )
    from rnngraph.dsl.cells.clockwork import Clockwork
    from rnngraph.dsl.cells.esn import ESN
    from rnngraph.dsl.cells.gru import GRU
    from rnngraph.dsl.cells.lstm import LSTM
    from rnngraph.dsl.esn_generate import Generative
    from rnngraph.dsl.generate import Generate
    from rnngraph.dsl.wrappers import Bidirectional, Stack
    from rnngraph.exporters.onnx import export
    from rnngraph.exporters.onnx.decoder_step import export_decoder_step
    from rnngraph.loading import load
    from rnngraph.train import RidgeTrainer, fit_ridge, fit_ridge_path


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if name in _MODULES else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnngraph' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["ExportError", "InputError", "ModelError", "ParameterError", "RnnGraphError", *_LAZY]
