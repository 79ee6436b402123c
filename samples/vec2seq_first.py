"""docs/vec2seq.md: vector-to-sequence (1-to-N), mode "first" — a caption-like token sequence from image features.

The feature vector is the input at step 0 only; every later step reads a zero input
plus the embedding of the token it emitted the step before (greedy generation, step 0
reads the embedding of a start token). The number of steps is an input of the model:

    rnngraph verify samples/vec2seq_first.py --time 200        # generates 200 tokens per row
"""

import rnngraph as rg

START = 1  # the <bos> token id whose embedding step 0 reads

v = rg.Input("image", features=64, sequence=False)    # (batch, 64): e.g. pooled CNN features
n = rg.Input("steps", count=True)                     # int64 scalar N >= 0
probs, tokens = rg.Generate(
    rg.GRU(48, linear_before_reset=True),
    mode="first",                                      # a_0 = v, a_t = 0 for t >= 1
    readout=rg.Dense(30, activation="softmax"),        # y_t = softmax(V h_t + c) over 30 tokens
    feedback="argmax", embedding=16, start=START,      # x_t = [a_t; E[argmax y_{t-1}]], x_0 = [v; E[START]]
    tokens=True,                                       # also the ids argmax y_t, (batch, steps) int64
)(v, n)
model = rg.Model(inputs=[v, n], outputs={"probs": probs, "tokens": tokens}, name="vec2seq_first")
