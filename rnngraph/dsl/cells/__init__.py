"""Cells: one recurrent step each, described as data (see `base.Cell`)."""

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.cells.clockwork import Clockwork
from rnngraph.dsl.cells.esn import ESN
from rnngraph.dsl.cells.gru import GRU
from rnngraph.dsl.cells.lstm import LSTM
from rnngraph.dsl.cells.rnn import RNN, SRN, Elman

__all__ = ["RNN", "SRN", "Cell", "Clockwork", "Elman"]
__all__ += ["ESN"]
__all__ += ["GRU", "LSTM"]
