"""PyTorch implementations of the cells, one module per cell, each found through the cell registry."""
