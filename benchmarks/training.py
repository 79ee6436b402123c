"""Training-step time of rnngraph's PyTorch backend against the same model written with nn.LSTM / nn.GRU.

    .venv/bin/python benchmarks/training.py                   # batch 32, T 100, hidden 128, 1 thread
    .venv/bin/python benchmarks/training.py --threads 2 --reps 15

A training step is forward + backward (+ zero_grad) of a mean-squared loss on the
per-step outputs of a recurrent layer and a Dense(1) readout, over random input
(64 features). `rnngraph` is `TorchModel` of ``Recurrent(cell) -> Dense(1)``; `torch.nn`
is ``nn.LSTM`` / ``nn.GRU`` (batch_first) and ``nn.Linear(128, 1)`` with the same weights.
Rows ``full`` have every row T steps long; rows ``ragged`` have lengths drawn from
T/2..T (rnngraph packs them; the nn reference is given the same PackedSequence).

Medians over `--reps` steps after `--warmup` steps (excluded); the two sides run
interleaved, alternating which goes first, so that load from other processes on a
shared machine falls on both alike; the ratio is the median of the per-round ratios.
Cells no framework has (Clockwork, peephole LSTM) and an attention decoder are timed
alone (per step, same batch and sizes; the decoder: a GRU encoder over T source tokens,
an additive-attention LSTM decoder teacher-forced over T/4 target tokens, vocabulary 32).
The loss printed is the first measured step's (the weights do not change: no optimizer step).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnngraph as rg
from rnngraph.dsl.gates import ONNX_GRU, ONNX_LSTM, PYTORCH_GRU, PYTORCH_LSTM, reorder, reorder_bias
from rnngraph.pytorch import TorchModel

FEATURES, VOCAB = 64, 32


def timed(step: Callable[[], torch.Tensor]) -> tuple[float, float]:
    start = time.perf_counter()
    loss = step()
    return time.perf_counter() - start, float(loss)


def rnngraph_step(model: rg.Model, params: dict[str, np.ndarray], feeds: dict[str, np.ndarray],
                  target: torch.Tensor) -> Callable[[], torch.Tensor]:
    net = TorchModel(model, params)
    feeds_t = {k: torch.as_tensor(v) for k, v in feeds.items()}

    def step() -> torch.Tensor:
        net.zero_grad()
        out = next(iter(net(**feeds_t).values()))
        loss = ((out - target[..., : out.shape[-1]]) ** 2).mean()
        loss.backward()
        return loss.detach()

    return step


def reference_step(kind: str, params: dict[str, np.ndarray], hidden: int, x: np.ndarray, lengths: np.ndarray | None,
                   target: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The same model written directly with nn.LSTM / nn.GRU and nn.Linear, rnngraph's weights converted."""
    rnn: nn.Module = (nn.LSTM if kind == "lstm" else nn.GRU)(FEATURES, hidden, batch_first=True)
    src, dst = (ONNX_LSTM, PYTORCH_LSTM) if kind == "lstm" else (ONNX_GRU, PYTORCH_GRU)
    name = f"{kind}0"
    bias = reorder_bias(params[f"{name}/B"], src, dst)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.as_tensor(reorder(params[f"{name}/W"], src, dst)))
        rnn.weight_hh_l0.copy_(torch.as_tensor(reorder(params[f"{name}/R"], src, dst)))
        rnn.bias_ih_l0.copy_(torch.as_tensor(bias[: len(bias) // 2]))
        rnn.bias_hh_l0.copy_(torch.as_tensor(bias[len(bias) // 2:]))
    head = nn.Linear(hidden, 1)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(params["dense0/W"]))
        head.bias.copy_(torch.as_tensor(params["dense0/b"]))
    xt = torch.as_tensor(x)

    def step() -> torch.Tensor:
        rnn.zero_grad()
        head.zero_grad()
        if lengths is None:
            h, _ = rnn(xt)
        else:
            packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=xt.shape[1])
        out = head(h)
        if lengths is not None:  # rnngraph's Dense is 0 past each row's length
            out = out * (torch.arange(xt.shape[1])[None, :, None] < torch.as_tensor(lengths)[:, None, None])
        loss = ((out - target) ** 2).mean()
        loss.backward()
        return loss.detach()

    return step


def tagger(cell: rg.Cell) -> rg.Model:
    x = rg.Input("x", features=FEATURES)
    return rg.Model(x, {"y": rg.Dense(1)(rg.Recurrent(cell)(x))})


def attention_model(hidden: int) -> rg.Model:
    src = rg.Input("src", tokens=VOCAB)
    tgt = rg.Input("tgt", tokens=VOCAB, time="tgt_time", lengths="tgt_lengths")
    memory = rg.Recurrent(rg.GRU(hidden, linear_before_reset=True))(rg.Embedding(VOCAB, FEATURES)(src))
    dec = rg.Decoder(rg.LSTM(hidden), attention=rg.Attention("additive", units=hidden // 2),
                     readout=rg.Dense(VOCAB), embedding=FEATURES)
    scores, _ = dec.teacher_forced(memory, tgt)
    return rg.Model([src, tgt], {"scores": scores})


def compare(label: str, ours: Callable[[], torch.Tensor], theirs: Callable[[], torch.Tensor], warmup: int,
            reps: int) -> None:
    for _ in range(warmup):
        ours(), theirs()
    a, b, ratios, losses = [], [], [], []
    for r in range(reps):
        pair = [ours, theirs] if r % 2 == 0 else [theirs, ours]
        times = {}
        for fn in pair:
            times[fn], loss = timed(fn)
            losses.append(loss)
        a.append(times[ours])
        b.append(times[theirs])
        ratios.append(times[ours] / times[theirs])
    print(f"{label:<22} {1e3 * statistics.median(a):>10.1f} {1e3 * statistics.median(b):>10.1f} "
          f"{statistics.median(ratios):>7.2f}  loss {losses[0]:.4f} / {losses[1]:.4f}")


def alone(label: str, step: Callable[[], torch.Tensor], warmup: int, reps: int) -> None:
    for _ in range(warmup):
        step()
    runs = [timed(step) for _ in range(reps)]
    print(f"{label:<22} {1e3 * statistics.median(t for t, _ in runs):>10.1f} {'':>10} {'':>7}  "
          f"loss {runs[0][1]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    b, t, h = args.batch, args.time, args.hidden
    x = rng.standard_normal((b, t, FEATURES)).astype(np.float32)
    ragged = rng.integers(t // 2, t + 1, size=b)
    ragged[0] = t
    target = torch.as_tensor(rng.standard_normal((b, t, 1)).astype(np.float32))
    print(f"training step (forward + backward), batch {b}, time {t}, hidden {h}, input {FEATURES}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{platform.processor() or platform.machine()}; medians of {args.reps} after {args.warmup} warm-up\n")
    print(f"{'model':<22} {'rnngraph ms':>10} {'torch.nn ms':>10} {'ratio':>7}")
    for kind, cell in (("lstm", rg.LSTM(h)), ("gru", rg.GRU(h, linear_before_reset=True))):
        model = tagger(cell)
        params = model.init(seed=0)
        for label, lengths in (("full", None), ("ragged", ragged)):
            feeds = {"x": x} | ({"lengths": lengths} if lengths is not None else {})
            compare(f"{kind.upper()} {label}", rnngraph_step(model, params, feeds, target),
                    reference_step(kind, params, h, x, lengths, target), args.warmup, args.reps)
    for label, cell in (("Clockwork (1,2,4,8)", rg.Clockwork(h, periods=(1, 2, 4, 8))),
                        ("LSTM peephole", rg.LSTM(h, peephole=True))):
        model = tagger(cell)
        alone(label, rnngraph_step(model, model.init(seed=0), {"x": x}, target), args.warmup, args.reps)
    model = attention_model(h)
    m = max(1, t // 4)
    feeds = {"src": rng.integers(0, VOCAB, (b, t)), "tgt": rng.integers(0, VOCAB, (b, m)), "lengths": ragged}
    alone(f"attention decoder {m}", rnngraph_step(model, model.init(seed=0), feeds,
                                                   torch.zeros((b, m, VOCAB))), args.warmup, args.reps)


if __name__ == "__main__":
    main()
