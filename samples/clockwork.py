"""docs/clockwork.md: Clockwork RNN — the survey's example, H = 256 in four groups with periods 1, 2, 4, 8.

The period-1 group updates at every step and reads all 256 units; the period-8
group updates at steps 0, 8, 16, … only and reads itself (slow feeds fast). The
readout y_t = W_O h_t + b_O reads all groups at every step (a regression, as in
the paper's sequence-generation task).

    rnngraph verify samples/clockwork.py --time 300
"""

import rnngraph as rg

x = rg.Input("x", features=8)                                        # (batch, time, 8)
h = rg.Recurrent(rg.Clockwork(256, periods=(1, 2, 4, 8)))(x)        # (batch, time, 256), 4 groups of 64
y = rg.Dense(1)(h)                                                   # (batch, time, 1): y_t = W_O h_t + b_O
model = rg.Model(inputs=x, outputs={"y": y}, name="clockwork")
