"""docs/lstm.md, coupled gates (CIFG): a smaller LSTM scoring anomalies over a window of metrics.

The input gate is tied to the forget gate, i_t = 1 - f_t: what the cell forgets
is exactly what it makes room for. That drops a quarter of the gate weights
(W is (3H, I), gates o, f, c). Running in reverse, each step's score sees the
rest of the window; exported as ONNX's native ``LSTM`` with ``input_forget=1``.

    rnngraph verify samples/lstm_coupled.py --time 300
"""

import rnngraph as rg

metrics = rg.Input("metrics", features=8)                                   # (batch, time, 8)
h = rg.Recurrent(rg.LSTM(24, coupled=True, peephole=True), reverse=True)(metrics)   # (batch, time, 24)
score = rg.Dense(1, activation="sigmoid")(h)                                # (batch, time, 1): P(anomaly)
model = rg.Model(inputs=metrics, outputs={"score": score}, name="lstm_coupled_anomaly")
