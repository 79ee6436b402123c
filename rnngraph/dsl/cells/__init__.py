"""Cells: one recurrent step each, described as data (see `base.Cell`)."""

from rnngraph.dsl.cells.base import Cell
from rnngraph.dsl.cells.rnn import RNN, SRN, Elman

__all__ = ["RNN", "SRN", "Cell", "Elman"]
