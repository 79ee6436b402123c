"""docs/bidirectional.md: bidirectional RNN — a part-of-speech-style tagger.

Each step's tag reads both sides of the sentence: a forward run over x_1..x_T and a
backward run over x_T..x_1 (with `lengths`, each row's backward run starts at its
own last valid word), concatenated per step, then a softmax over 12 tags.

    rnngraph verify samples/bidirectional.py --time 200
"""

import rnngraph as rg

x = rg.Input("x", features=16)                                      # (batch, time, 16) word features
h = rg.Bidirectional(rg.RNN(24), merge="concat")(x)                 # (batch, time, 48) = [h→_t; h←_t]
tags = rg.Dense(12, activation="softmax")(h)                        # (batch, time, 12)
model = rg.Model(inputs=x, outputs={"tags": tags}, name="bidirectional_tagger")
