"""docs/lstm.md with peepholes (Gers & Schmidhuber): an event-timing detector.

Peepholes let the gates read the cell state itself (p ⊙ c_{t-1} for the input and
forget gates, p ⊙ c_t for the output gate), which is what makes an LSTM good at
counting and timing: here, the probability per step that a periodic event fires
in a 3-channel sensor stream. Exports to ONNX's native ``LSTM`` with its P input.

    rnngraph verify samples/lstm_peephole.py --time 300
"""

import rnngraph as rg

signal = rg.Input("signal", features=3)                          # (batch, time, 3)
h = rg.Recurrent(rg.LSTM(16, peephole=True))(signal)             # (batch, time, 16)
fires = rg.Dense(1, activation="sigmoid")(h)                     # (batch, time, 1): P(event at t)
model = rg.Model(inputs=signal, outputs={"fires": fires}, name="lstm_peephole_timer")
