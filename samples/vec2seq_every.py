"""docs/vec2seq.md: vector-to-sequence (1-to-N), mode "every" — the feature vector conditions every step.

x_t = [v; E[argmax y_{t-1}]]: the image features are the input at every step, next to the
embedding of the previous step's token (step 0: a zero vector, no start token). The
features' projection v·W_v does not depend on the step and is computed once, outside
the generation loop; the loop projects only the 16-wide token embedding.

    rnngraph verify samples/vec2seq_every.py --time 200
"""

import rnngraph as rg

v = rg.Input("image", features=64, sequence=False)    # (batch, 64)
n = rg.Input("steps", count=True)                     # int64 scalar N >= 0
probs, tokens = rg.Generate(
    rg.LSTM(40),
    mode="every",                                      # a_t = v at every step
    readout=rg.Dense(30, activation="softmax"),
    feedback="argmax", embedding=16,                   # step 0 reads a zero embedding
    tokens=True,
)(v, n)
model = rg.Model(inputs=[v, n], outputs={"probs": probs, "tokens": tokens}, name="vec2seq_every")
