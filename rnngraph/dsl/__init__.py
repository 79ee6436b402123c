"""The model description language: inputs, layers, cells, the model graph, parameters.

Imports numpy and networkx only.
"""

from rnngraph.dsl.attention import Attention
from rnngraph.dsl.cells import RNN, SRN, Cell, Elman
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.cells.esn import ESN
from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.decoder import Decoder
from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.generate import Generate
from rnngraph.dsl.layers import Dense, Input, InputLayer, Layer, Recurrent
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.params import ParamSpec, load_params, save_params
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, VECTOR, Node, Tensor, TensorSpec
from rnngraph.dsl.wrappers import MERGES, Bidirectional, Stack

__all__ = [
    "RNN", "SCALAR", "SEQUENCE", "SRN", "VECTOR", "Cell", "Dense", "Elman", "Input", "InputLayer", "Layer",
    "Model", "Node", "ParamSpec", "Recurrent", "Source", "Tensor", "TensorSpec", "load_params", "save_params",
]
__all__ += ["MERGES", "Bidirectional", "Stack"]
__all__ += ["Clockwork"]
__all__ += ["Generate"]
__all__ += ["ESN", "Generative"]
__all__ += ["GRU", "LSTM"]
__all__ += ["Attention", "Decoder", "Embedding"]
