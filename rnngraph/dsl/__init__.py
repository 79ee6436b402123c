"""The model description language: inputs, layers, cells, the model graph, parameters.

Imports numpy and networkx only.
"""

from rnngraph.dsl.cells import RNN, SRN, Cell, Elman
from rnngraph.dsl.layers import Dense, Input, InputLayer, Layer, Recurrent
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.params import ParamSpec, load_params, save_params
from rnngraph.dsl.tensor import SCALAR, SEQUENCE, VECTOR, Node, Tensor, TensorSpec

__all__ = [
    "RNN", "SCALAR", "SEQUENCE", "SRN", "VECTOR", "Cell", "Dense", "Elman", "Input", "InputLayer", "Layer",
    "Model", "Node", "ParamSpec", "Recurrent", "Source", "Tensor", "TensorSpec", "load_params", "save_params",
]
