"""Target 6 (issue 10): greedy decoding inside the graph against a Python loop over the decoder's step export.

    .venv/bin/python benchmarks/decoding.py                # vocab 1000, hidden 128, 40 tokens; also run by the suite

The model: source tokens (20 steps, batch 1) → Embedding → GRU(H) encoder → Decoder(LSTM(H), additive attention
(units H), readout over `vocab` tokens, embedding 64), greedy. EOS's readout bias is set to −100 so that both
contenders decode exactly `tokens` tokens. Contenders, each with 1 intra-op and 1 inter-op thread:

    ingraph/session   the whole model through `rnngraph.runtime.Session` (the Loop decodes in the graph)
    stepped/python    `rnngraph.runtime.StepDecoder.greedy`: the encoder model once, then one step call per token
    ingraph/ort       the whole model in a bare onnxruntime session
    stepped/bare      the encoder and step models in bare sessions, a minimal Python loop (argmax fed back, no EOS
                      bookkeeping): the least a Python loop over the step export costs

Both pairs are timed in the same interleaved rounds; the ratios are medians of per-round ratios.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import rnngraph as rg
from rnngraph.bench.measure import Work, time_contenders
from rnngraph.bench.timing import Rounds, ort_feeds, ort_session
from rnngraph.runtime import Session, StepDecoder

EOS = 2


@dataclass(frozen=True)
class DecodeSize:
    vocab: int
    hidden: int
    tokens: int
    source: int = 20
    embedding: int = 64
    batch: int = 1


SIZES = {"full": DecodeSize(1000, 128, 40), "tiny": DecodeSize(50, 8, 5, source=6, embedding=4)}


def decoder_model(size: DecodeSize) -> rg.Model:
    src = rg.Input("src", tokens=size.vocab)
    memory = rg.Recurrent(rg.GRU(size.hidden, linear_before_reset=True))(rg.Embedding(size.vocab, size.embedding)(src))
    decoder = rg.Decoder(rg.LSTM(size.hidden), attention=rg.Attention("additive", units=size.hidden),
                         readout=rg.Dense(size.vocab), embedding=size.embedding, eos=EOS, max_len=size.tokens)
    tokens, scores, weights = decoder.greedy(memory, name="decoder")
    return rg.Model(src, {"tokens": tokens, "scores": scores, "weights": weights}, name="greedy_decoder")


def bare_loop(encoder: Any, step: Any, src: np.ndarray, tokens: int, layout: dict[str, Any]) -> Any:
    """The least a Python loop over the step export does: the encoder, then `tokens` step calls."""
    states = [s["input"] for s in layout["states"]]
    context = [c["name"] for c in layout["context"]]
    encoder_out = [s["output"] for s in layout["states"]] + context
    carried_in = [layout["steps"]["input"], *states]
    step_out = ["argmax", layout["steps"]["output"], *(s["output"] for s in layout["states"])]

    def run() -> np.ndarray:
        values = encoder.run(encoder_out, {"src": src})
        feeds = dict(zip(states + context, values, strict=True))
        feeds[layout["steps"]["input"]] = np.zeros((src.shape[0], 1), np.int64)
        token = np.full(src.shape[0], layout["bos"], np.int64)
        out = []
        for _ in range(tokens):
            feeds["token"] = token
            token, *carried = step.run(step_out, feeds)
            feeds.update(zip(carried_in, carried, strict=True))
            out.append(token)
        return np.stack(out, axis=1)

    return run


def measure_decoding(size: DecodeSize, rounds: Rounds, peak_gflops: float) -> dict[str, Any]:
    model = decoder_model(size)
    params = model.init(seed=0)
    params["decoder/readout/b"][EOS] = -100.0  # never chosen: both contenders decode exactly `tokens` tokens
    src = np.random.default_rng(0).integers(3, size.vocab, (size.batch, size.source))
    whole = rg.export(model, params).SerializeToString()
    files = rg.export_decoder_step(model, params)
    session = Session(whole, threads=1)
    stepper = StepDecoder(files.encoder, files.step, threads=1)
    bare_whole = ort_session(whole, 1)
    bare_feeds = ort_feeds(bare_whole, {"src": src})
    bare_encoder = ort_session(files.encoder.SerializeToString(), 1)
    bare_step = ort_session(files.step.SerializeToString(), 1)
    runs = {"ingraph/session": lambda: session.run(src=src),
            "stepped/python": lambda: stepper.greedy(size.tokens, src=src),
            "ingraph/ort": lambda: bare_whole.run(None, bare_feeds),  # type: ignore[attr-defined]
            "stepped/bare": bare_loop(bare_encoder, bare_step, src, size.tokens, stepper.layout)}
    inside, stepped = session.run(src=src), stepper.greedy(size.tokens, src=src)
    checks = {"tokens_equal": bool(np.array_equal(inside["tokens"], stepped["tokens"])
                                   and np.array_equal(inside["tokens"], runs["stepped/bare"]())),
              "tokens_decoded": int(inside["tokens"].shape[1]),
              "scores_max_abs": float(np.max(np.abs(inside["scores"] - stepped["scores"])))}
    work = Work(size.batch * size.tokens, {}, peak_gflops)
    timed = time_contenders(runs, rounds, work, [("stepped/python", "ingraph/session"),
                                                 ("stepped/bare", "ingraph/ort")])
    return {"size": asdict(size), "checks": checks, **timed}


def main() -> int:
    result = measure_decoding(SIZES["full"], Rounds(warmup=2, min_rounds=9, max_rounds=25, budget_s=3.0), 1.0)
    print(f"{result['size']}, 1 thread, {result['rounds']} interleaved rounds; checks {result['checks']}")
    for name, stats in result["contenders"].items():
        print(f"  {name:<16} {stats['median_ms']:8.3f} ms")
    for key, value in result["ratios"].items():
        print(f"  {key}: {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
