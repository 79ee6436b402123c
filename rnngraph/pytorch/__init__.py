"""Training through PyTorch: any rnngraph model as a `torch.nn.Module` (the ``torch`` extra).

    import rnngraph as rg
    from rnngraph.pytorch import TorchModel

    net = TorchModel(model, model.init(seed=0))        # parameters named after rnngraph's
    loss = criterion(net(x=x, lengths=lengths)["y"], target)
    ...                                                # any torch optimizer, any loop
    rg.export(model, net.rnngraph_params(), "model.onnx")

A third implementation of every cell and topology, beside the ONNX lowering and the
NumPy oracle, and held to the oracle in float64. It imports `rnngraph.dsl` and torch,
never the compiler, the exporters or the oracle. Cells are found through the cell
registry (backend ``torch``: ``rnngraph.pytorch.cells.<cell>:TORCH_CELL``), layers through
`rnngraph.pytorch.core.implements`.
"""

from rnngraph.pytorch.module import TorchModel, param_key, param_name

__all__ = ["TorchModel", "param_key", "param_name"]
