"""Weights and whole models from PyTorch and Keras.

One call imports a trained model (see `import_pytorch`, `import_keras`):

    model, params = import_pytorch(torch.nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True))
    model, params = import_keras(keras_model)

The per-layer converters read and write one layer's fused weights (numpy only; torch
tensors are read as arrays), and `set_node_params` / `ParamsLoader` put them into a model:

    local = from_pytorch(rg.LSTM(7), lstm.state_dict(), layer=1, reverse=True)  # {"W", "R", "B"}
    params = set_node_params(model, model.init(0), "enc/bw", local)

Which cell reads which weights (the option must match how they were trained):
- ``torch.nn.RNN(nonlinearity=...)`` -> ``RNN(H, activation=...)``;
  ``torch.nn.LSTM`` -> ``LSTM(H)``; ``torch.nn.GRU`` -> ``GRU(H, linear_before_reset=True)``.
- ``keras.layers.SimpleRNN`` -> ``RNN(H)``; ``keras.layers.LSTM`` (sigmoid recurrent
  activation, Keras 2+ default) -> ``LSTM(H)``; ``keras.layers.GRU(reset_after=True)``
  -> ``GRU(H, linear_before_reset=True)``, ``reset_after=False`` -> ``linear_before_reset=False``.
Each of those cells names its layout (gate orders, convertible options) in its
``register_cell(..., interop=...)`` call; other cells (peephole and coupled LSTMs,
Clockwork, ESN) have no PyTorch or Keras counterpart and are refused.
"""

from __future__ import annotations

from rnngraph.interop.imported import Imported, lengths_from_mask
from rnngraph.interop.keras import import_keras
from rnngraph.interop.params import ParamsLoader, set_node_params
from rnngraph.interop.pytorch import import_pytorch
from rnngraph.interop.weights import LayerWeights, from_keras, from_pytorch, pytorch_keys, to_keras, to_pytorch

__all__ = ["Imported", "LayerWeights", "ParamsLoader", "from_keras", "from_pytorch", "import_keras", "import_pytorch",
           "lengths_from_mask", "pytorch_keys", "set_node_params", "to_keras", "to_pytorch"]
