"""The model description language: inputs, layers, cells, the model graph, parameters.

Imports numpy and networkx only.
"""

from rnngraph.dsl.cells import RNN, SRN, Cell, Elman
from rnngraph.dsl.layers import Dense, Input, InputLayer, Layer, Recurrent
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.params import ParamSpec, load_params, save_params
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, VECTOR, Node, Tensor, TensorSpec
from rnngraph.dsl.generate import Generate
from rnngraph.dsl.wrappers import MERGES, Bidirectional, Stack
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.cells.esn import ESN
from rnngraph.dsl.esn_generate import Generative

__all__ = [
    "RNN", "SCALAR", "SEQUENCE", "SRN", "VECTOR", "Cell", "Dense", "Elman", "Input", "InputLayer", "Layer",
    "Model", "Node", "ParamSpec", "Recurrent", "Source", "Tensor", "TensorSpec", "load_params", "save_params",
]
__all__ += ["MERGES", "Bidirectional", "Stack"]
__all__ += ["Clockwork"]
__all__ += ["Generate"]
__all__ += ["ESN", "Generative"]
