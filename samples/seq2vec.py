"""docs/seq2vec.md: sequence-to-vector (N-to-1) — a sentiment-style classifier.

Each sentence arrives as a padded batch of word vectors ``(batch, time, 16)`` with
its `lengths`; the readout is applied once per sentence, to the output of its own
last valid word (``returns="last"``), and a second head reads the max-pooled states
over the valid words (``returns="max"``, padding never counts).

    rnngraph verify samples/seq2vec.py --time 200
"""

import rnngraph as rg

words = rg.Input("words", features=16)                                       # (batch, time, 16) word vectors
last, pooled = rg.Recurrent(rg.RNN(32), returns=("last", "max"))(words)      # (batch, 32) each
sentiment = rg.Dense(2, activation="softmax")(last)                          # (batch, 2): P(negative), P(positive)
topics = rg.Dense(5, activation="sigmoid")(pooled)                           # (batch, 5): multi-label tags
model = rg.Model(inputs=words, outputs={"sentiment": sentiment, "topics": topics}, name="seq2vec")
