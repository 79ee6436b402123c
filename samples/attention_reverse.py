"""docs/attention.md, trained: an attention encoder-decoder that reverses a token sequence.

    python samples/train/attention_reverse.py        # trains it in PyTorch (about a minute), writes the .npz
    python samples/attention_reverse.py [out.png]    # held-out exact match via onnxruntime; the heatmap
    rnngraph verify samples/attention_reverse.py --time 8

Source: 3 to 8 symbols from a b c d e f g h; target: the same symbols in reverse order,
then EOS. The alignment is known — output step i reads source step L-1-i — so the
attention weights of a trained model should form the anti-diagonal. A bidirectional
GRU encoder, a GRU decoder with additive attention, s_0 from the encoder's last step;
greedy decoding inside the graph. The weights were trained through
`rnngraph.pytorch.TorchModel` (teacher-forced model `teacher_forced`, same node names)
by `samples/train/attention_reverse.py` and are saved next to this file.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

import rnngraph as rg

SYMBOLS = "abcdefgh"
WORDS = ["<pad>", "<bos>", "<eos>", *SYMBOLS]
PAD, BOS, EOS = 0, 1, 2
MIN_LEN, MAX_LEN = 3, 8
WEIGHTS = pathlib.Path(__file__).with_suffix(".npz")


def build(mode: str = "greedy") -> rg.Model:
    src = rg.Input("src", tokens=len(WORDS))
    memory = rg.Bidirectional(rg.GRU(32, linear_before_reset=True), name="encoder")(
        rg.Embedding(len(WORDS), 16, name="embed")(src))                          # (batch, time, 64)
    decoder = rg.Decoder(rg.GRU(64, linear_before_reset=True), attention=rg.Attention("additive", units=32),
                         context="last", use="init", readout=rg.Dense(len(WORDS)), embedding=16,
                         bos=BOS, eos=EOS, pad=PAD, max_len=MAX_LEN + 2)
    if mode == "greedy":
        tokens, scores, weights = decoder.greedy(memory, name="decoder")
        return rg.Model(src, {"tokens": tokens, "scores": scores, "weights": weights}, name="attention_reverse")
    tgt = rg.Input("tgt", tokens=len(WORDS), time="tgt_time", lengths="tgt_lengths")   # BOS y_1 … y_L
    scores, weights = decoder.teacher_forced(memory, tgt, name="decoder")
    return rg.Model([src, tgt], {"scores": scores, "weights": weights}, name="attention_reverse_teacher_forced")


model = build()
params = model.load_params(WEIGHTS) if WEIGHTS.exists() else model.init(seed=0)


def examples(n: int, seed: int) -> dict[str, np.ndarray]:
    """`n` random sources (ids, padded with PAD), their lengths, decoder inputs and targets (reversed + EOS)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, n)
    src = np.full((n, MAX_LEN), PAD, dtype=np.int64)
    tgt_in = np.full((n, MAX_LEN + 1), PAD, dtype=np.int64)
    tgt_out = np.full((n, MAX_LEN + 1), PAD, dtype=np.int64)
    for b, length in enumerate(lengths):
        seq = rng.integers(3, len(WORDS), length)
        src[b, :length] = seq
        tgt_out[b, : length + 1] = [*seq[::-1], EOS]
        tgt_in[b, : length + 1] = [BOS, *seq[::-1]]
    return {"src": src, "lengths": lengths, "tgt": tgt_in, "tgt_lengths": lengths + 1, "target": tgt_out}


def feeds(batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
    """Random sources of `time` steps at most (ragged), as `rnngraph verify` asks for."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, time + 1, batch)
    lengths[0] = time
    return {"src": rng.integers(3, len(WORDS), (batch, time)), "lengths": lengths}


def exact_match(tokens: np.ndarray, target: np.ndarray, lengths: np.ndarray) -> float:
    """The share of rows whose decoded tokens, up to and including EOS, are the target exactly."""
    hits = [tokens.shape[1] > n and np.array_equal(tokens[b, : n + 1], target[b, : n + 1])
            for b, n in enumerate(lengths)]
    return float(np.mean(hits))


def plot(path: str, p: dict[str, np.ndarray]) -> None:
    """Heatmap of the attention weights while reversing "a b c d e f g" to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src = np.array([[WORDS.index(c) for c in "abcdefg"]])
    out = rg.runtime.Session(rg.export(model, p)).run(src=src)
    steps = list(out["tokens"][0])
    fig, ax = plt.subplots(figsize=(3.6, 3.3))
    ax.imshow(out["weights"][0, : len(steps)], cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(7), list("abcdefg"))
    ax.set_yticks(range(len(steps)), [WORDS[t] for t in steps])
    ax.set_xlabel("source")
    ax.set_ylabel("decoded (greedy)")
    ax.set_title("attention α, trained to reverse", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


def main() -> None:
    held_out = examples(1000, seed=12345)     # the training script draws from other seeds
    out = rg.runtime.Session(rg.export(model, params)).run(src=held_out["src"], lengths=held_out["lengths"])
    score = exact_match(out["tokens"], held_out["target"], held_out["lengths"])
    print(f"held-out exact match (onnxruntime, greedy, 1000 sequences of {MIN_LEN}..{MAX_LEN}): {score:.1%}")
    if len(sys.argv) > 1:
        plot(sys.argv[1], params)


if __name__ == "__main__":
    main()
