"""docs/attention.md: a translation-style model, GRU encoder, LSTM decoder, additive attention, greedy decoding.

    rnngraph verify samples/attention.py --time 9
    rnngraph export samples/attention.py --streaming -o attention.onnx   # attention.encoder.onnx + attention.step.onnx:
                                                                         # one call per token (docs/deploy.md)
    python samples/attention.py attention.png      # also draws the attention weights of "我爱中国" → "I love China"

Every decoder step i attends over the encoder states h_1..h_T of its row (masked by the
source `lengths`): e_ij = vᵀ tanh(W s_{i-1} + U h_j), α_i = softmax(e_i), a_i = Σ_j α_ij h_j;
the LSTM reads [E[y_{i-1}]; a_i] and the readout softmax(V [s_i; a_i] + b). U h_j is
computed once, before the decoding Loop; the step is plain ONNX ops inside the Loop body.

Inputs: src (batch, time) token ids, lengths (batch,), max_len () int64 (a runtime count:
at most this many steps). Outputs: tokens (batch, steps) int64 — from BOS=1 until every row
emitted EOS=2, PAD=0 after a row's EOS —, scores (batch, steps, vocab), and the attention
weights (batch, steps, time) for plotting (0 past a row's source length and after its EOS).

The weights here are random (untrained): the sample shows the mechanics and the plot, not a
translation. Run as a script it writes a heatmap PNG; matplotlib usually lacks a CJK font,
and then the source axis is labelled in pinyin (wǒ ài zhōng guó) instead of the characters.
"""

from __future__ import annotations

import sys

import numpy as np

import rnngraph as rg

SRC_WORDS = ["<pad>", "<bos>", "<eos>", "我", "爱", "中", "国", "你", "他", "她", "们", "喜", "欢", "北", "京", "是"]
TGT_WORDS = ["<pad>", "<bos>", "<eos>", "I", "love", "China", "you", "he", "she", "we", "like", "Beijing", "is",
             "am", "the", "people"]
PINYIN = {"我": "wǒ", "爱": "ài", "中": "zhōng", "国": "guó", "你": "nǐ", "他": "tā", "她": "tā", "们": "men",
          "喜": "xǐ", "欢": "huan", "北": "běi", "京": "jīng", "是": "shì"}
BOS, EOS, PAD = 1, 2, 0


def build(mode: str = "greedy") -> rg.Model:
    src = rg.Input("src", tokens=len(SRC_WORDS))
    memory = rg.Recurrent(rg.GRU(32, linear_before_reset=True))(rg.Embedding(len(SRC_WORDS), 16)(src))
    decoder = rg.Decoder(rg.LSTM(32), attention=rg.Attention("additive", units=24), context="last", use="init",
                         readout=rg.Dense(len(TGT_WORDS), "softmax"), embedding=16, bos=BOS, eos=EOS, pad=PAD)
    if mode == "greedy":
        max_len = rg.Input("max_len", count=True)
        tokens, scores, weights = decoder.greedy(memory, max_len, name="decoder")
        return rg.Model([src, max_len], {"tokens": tokens, "scores": scores, "weights": weights}, name="attention")
    # the same decoder fed a given translation (same node name: the same parameters)
    tgt = rg.Input("tgt", tokens=len(TGT_WORDS), time="tgt_time", lengths="tgt_lengths")
    scores, weights = decoder.teacher_forced(memory, tgt, name="decoder")
    return rg.Model([src, tgt], {"scores": scores, "weights": weights}, name="attention_teacher_forced")


model = build()


def feeds(batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, time + 1, batch)
    lengths[0] = time
    return {"src": rng.integers(3, len(SRC_WORDS), (batch, time)), "lengths": lengths,
            "max_len": np.array(10, dtype=np.int64)}


def has_cjk_font() -> bool:
    """Whether matplotlib has a font with CJK glyphs (its "Last Resort" font maps every character to a box)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    for font in font_manager.fontManager.ttflist:
        if font.name.startswith("Last Resort"):
            continue
        try:
            if FT2Font(font.fname).get_char_index(ord("我")):
                return True
        except (OSError, RuntimeError):
            continue
    return False


def plot(path: str) -> None:
    """Heatmap of the attention weights of "我爱中国" → "I love China <eos>" (teacher-forced) to `path`."""
    params = model.init(seed=0)
    sentence, translation = ["我", "爱", "中", "国"], ["I", "love", "China", "<eos>"]
    src = np.array([[SRC_WORDS.index(w) for w in sentence]])
    tgt = np.array([[BOS] + [TGT_WORDS.index(w) for w in translation[:-1]]])
    teacher = build("teacher_forced")
    out = rg.runtime.Session(rg.export(teacher, params)).run(src=src, tgt=tgt)
    greedy = rg.runtime.Session(rg.export(model, params)).run(src=src, max_len=np.array(8))
    print("greedy decoding (untrained weights):", " ".join(TGT_WORDS[t] for t in greedy["tokens"][0]))

    cjk = has_cjk_font()
    labels = sentence if cjk else [f"{PINYIN[w]}" for w in sentence]
    if not cjk:
        print("no CJK font found by matplotlib: the source axis is labelled in pinyin (我爱中国 = wǒ ài zhōng guó)")
    rg.attention_heatmap(out["weights"][0], labels, translation, path, title="attention α (untrained weights)",
                         xlabel="source" if cjk else "source (in pinyin)")
    print(f"wrote {path}")


if __name__ == "__main__":
    plot(sys.argv[1] if len(sys.argv) > 1 else "attention.png")
