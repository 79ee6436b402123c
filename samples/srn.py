"""docs/classic-rnn.md: Simple Recurrent Network (Elman) — context units feed back h_{t-1}.

Lowers exactly like the classic RNN; here with a sigmoid readout (multi-label per step).
"""

import rnngraph as rg

x = rg.Input("x", features=8)
h = rg.Recurrent(rg.SRN(24))(x)
y = rg.Dense(5, activation="sigmoid")(h)
model = rg.Model(inputs=x, outputs={"y": y}, name="elman_srn")
