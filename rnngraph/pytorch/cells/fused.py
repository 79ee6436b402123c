"""PyTorch's fused recurrent kernels (``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` / ``torch.rnn_relu``,
what ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` call), on rnngraph's weights.

Rows of different lengths go through ``pack_padded_sequence``, so each row runs over its
own valid steps only: its outputs past its length are 0 and its final state is the one
after its last valid step, exactly rnngraph's padding rule. A batch without padding
skips the packing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnngraph.dsl.gates import GateOrder

#: the ATen ops behind nn.LSTM / nn.GRU / nn.RNN, by cell kind
KERNELS: dict[str, Callable[..., Any]] = {
    "lstm": torch.lstm, "gru": torch.gru, "tanh": torch.rnn_tanh, "relu": torch.rnn_relu,
}


def kernel_weights(p: Mapping[str, torch.Tensor], order: GateOrder, kernel_order: GateOrder) -> list[torch.Tensor]:
    """``[w_ih, w_hh, b_ih, b_hh]`` for a kernel from rnngraph's ``W``, ``R``, ``B = [Wb; Rb]``, the gate
    blocks re-stacked by name from `order` (rnngraph's, ONNX's) to `kernel_order` (PyTorch's)."""
    wb, rb = p["B"].chunk(2)
    out = []
    for array in (p["W"], p["R"], wb, rb):
        blocks = dict(zip(order, array.chunk(len(order), dim=0), strict=True))
        out.append(torch.cat([blocks[g] for g in kernel_order]))
    return out


def run_kernel(kind: str, weights: list[torch.Tensor], x: torch.Tensor, lens: torch.Tensor,
               hx: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One layer, one direction, batch first.

    `weights`: ``[w_ih (G·H, I), w_hh (G·H, H), b_ih (G·H,), b_hh (G·H,)]`` in PyTorch's gate order;
    `hx`: the initial states ``(batch, H)`` (``[h]``, or ``[h, c]`` for the LSTM).
    Returns ``y (batch, time, H)`` and the final states ``(batch, H)``.
    """
    kernel = KERNELS[kind]
    time = x.shape[1]
    h0 = [h.unsqueeze(0).contiguous() for h in hx]
    state: torch.Tensor | list[torch.Tensor] = h0 if kind == "lstm" else h0[0]
    if bool((lens == time).all()):
        y, *finals = kernel(x.contiguous(), state, weights, True, 1, 0.0, False, False, True)
        return y, [f.squeeze(0) for f in finals]
    packed: PackedSequence = pack_padded_sequence(x, lens.cpu(), batch_first=True, enforce_sorted=False)
    assert packed.sorted_indices is not None and packed.unsorted_indices is not None
    order, back = packed.sorted_indices, packed.unsorted_indices
    state = [h.index_select(1, order) for h in h0] if kind == "lstm" else h0[0].index_select(1, order)
    data, *finals = kernel(packed.data, packed.batch_sizes, state, weights, True, 1, 0.0, False, False)
    out = PackedSequence(data, packed.batch_sizes, order, back)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=time)
    return y, [f.index_select(1, back).squeeze(0) for f in finals]
