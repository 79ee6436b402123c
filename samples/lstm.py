"""docs/lstm.md: LSTM — a tagger that labels every step of a padded sequence.

Word vectors ``(batch, time, 16)`` with their `lengths`; an LSTM carries both a
hidden state h and a cell state c; a softmax picks one of 12 tags per word.
`auto` lowers the LSTM to ONNX's native ``LSTM`` op (weights in its i, o, f, c order).

    rnngraph verify samples/lstm.py --time 300
"""

import rnngraph as rg

words = rg.Input("words", features=16)                  # (batch, time, 16)
h = rg.Recurrent(rg.LSTM(32))(words)                    # (batch, time, 32)
tags = rg.Dense(12, activation="softmax")(h)            # (batch, time, 12)
model = rg.Model(inputs=words, outputs={"tags": tags}, name="lstm_tagger")
