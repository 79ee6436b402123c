"""docs/deep.md: a deep (stacked) RNN mixing cells, one layer bidirectional, with residual connections.

    h1 = GRU(x)                                   (batch, time, 32)
    h2 = [LSTM→(h1); LSTM←(h1)] + h1              (batch, time, 32)   bidirectional, residual
    h3 = RNN(h2) + h2                             (batch, time, 32)   residual
    y  = softmax(V h3 + c)                        (batch, time, 10)

    rnngraph verify samples/deep.py --time 200
"""

import rnngraph as rg

x = rg.Input("x", features=12)
h = rg.Stack(
    [rg.GRU(32, linear_before_reset=True), rg.Bidirectional(rg.LSTM(16)), rg.RNN(32)],
    residual=True,                       # every layer above the first adds its input (widths are all 32)
)(x)
y = rg.Dense(10, activation="softmax")(h)
model = rg.Model(inputs=x, outputs={"y": y}, name="deep_rnn")
