"""docs/classic-rnn.md: classic RNN, N-to-N — a tagger with a softmax readout at every step.

    rnngraph verify samples/classic_rnn.py --time 500
"""

import rnngraph as rg

x = rg.Input("x", features=16)                         # (batch, time, 16)
h = rg.Recurrent(rg.RNN(32, activation="tanh"))(x)     # (batch, time, 32)
y = rg.Dense(10, activation="softmax")(h)              # (batch, time, 10): ŷ_t = softmax(V h_t + c)
model = rg.Model(inputs=x, outputs={"y": y}, name="classic_rnn")
