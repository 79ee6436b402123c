"""docs/encoder-decoder.md: encoder-decoder (N-to-M) — a GRU encoder, an LSTM decoder, greedy decoding in the graph.

    rnngraph verify samples/encoder_decoder.py --time 9

Pick the structure with the constants below (the tests cover all six context × use):
- CONTEXT: "last" (c = h_T), "last_dense" (c = tanh(W h_T + b)), "all_dense" (c = tanh(W mean_t h_t + b));
- USE: "init" (the decoder starts from s_0 = c, projected to its size; its cell state from 0)
  or "every" (c is concatenated to the decoder input at every step);
- MODE: "greedy" (the model decodes: from BOS, each step's argmax token is embedded and fed to
  the next step until every row emitted EOS or MAX_LEN steps ran; finished rows emit PAD = 0
  with scores 0) or "teacher_forced" (the model reads the decoder inputs `tgt`, BOS y_1 … y_{M-1},
  and returns the scores of every step: what training uses).

Both modes name the decoder node "decoder", so one parameter set serves both models:
train teacher-forced, then export the greedy model with the same parameters.

Inputs: src (batch, time) token ids with `lengths`; teacher-forced also tgt (batch, tgt_time)
with `tgt_lengths`. Outputs (greedy): tokens (batch, steps) int64, scores (batch, steps, vocab).
"""

from __future__ import annotations

import numpy as np

import rnngraph as rg

CONTEXT = "last"
USE = "init"
MODE = "greedy"

SRC_VOCAB, TGT_VOCAB = 40, 30
BOS, EOS, PAD = 1, 2, 0
MAX_LEN = 12


def build(context: str = CONTEXT, use: str = USE, mode: str = MODE) -> rg.Model:
    """The sample's model for one context, use and mode."""
    src = rg.Input("src", tokens=SRC_VOCAB)                                  # (batch, time)
    memory = rg.Recurrent(rg.GRU(24, linear_before_reset=True))(rg.Embedding(SRC_VOCAB, 16)(src))
    decoder = rg.Decoder(rg.LSTM(32), context=context, use=use, readout=rg.Dense(TGT_VOCAB, "softmax"),
                         embedding=16, bos=BOS, eos=EOS, pad=PAD, max_len=MAX_LEN)
    if mode == "greedy":
        tokens, scores = decoder.greedy(memory, name="decoder")
        return rg.Model(src, {"tokens": tokens, "scores": scores}, name=f"seq2seq_{context}_{use}")
    tgt = rg.Input("tgt", tokens=TGT_VOCAB, time="tgt_time", lengths="tgt_lengths")
    scores = decoder.teacher_forced(memory, tgt, name="decoder")
    return rg.Model([src, tgt], {"scores": scores}, name=f"seq2seq_{context}_{use}_teacher_forced")


def make_feeds(model: rg.Model, batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
    """Ragged source sentences of up to `time` tokens; targets (teacher forcing) of up to MAX_LEN tokens."""
    rng = np.random.default_rng(seed)
    feeds = {"src": rng.integers(3, SRC_VOCAB, (batch, time)), "lengths": rng.integers(1, time + 1, batch)}
    feeds["lengths"][0] = time
    if "tgt" in model.inputs:
        tgt = rng.integers(3, TGT_VOCAB, (batch, MAX_LEN))
        tgt[:, 0] = BOS
        feeds["tgt"] = tgt
        feeds["tgt_lengths"] = rng.integers(1, MAX_LEN + 1, batch)
    return feeds


model = build()


def feeds(batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
    return make_feeds(model, batch, time, seed)


if __name__ == "__main__":
    params = model.init(seed=0)
    rg.export(model, params, "encoder_decoder.onnx")
    out = rg.runtime.Session("encoder_decoder.onnx").run(**feeds(2, 6, 0))
    print("wrote encoder_decoder.onnx; decoded tokens (untrained weights):\n", out["tokens"])
