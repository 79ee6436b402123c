"""docs/gru.md: GRU — frame-level speech activity detection.

Acoustic frames ``(batch, time, 20)``; two stacked GRUs, one per reset placement,
to show that the option is explicit: ``linear_before_reset=True`` is the layout of
PyTorch, cuDNN and Keras ``reset_after=True`` (use it to import their weights,
see rnngraph.interop); ``False`` is ONNX's default and Cho et al.'s original.
Both lower to ONNX's native ``GRU`` op with the matching attribute.

    rnngraph verify samples/gru.py --time 300
"""

import rnngraph as rg

frames = rg.Input("frames", features=20)                                        # (batch, time, 20)
h1 = rg.Recurrent(rg.GRU(32, linear_before_reset=True))(frames)                 # (batch, time, 32)
h2 = rg.Recurrent(rg.GRU(16, linear_before_reset=False))(h1)                    # (batch, time, 16)
speech = rg.Dense(2, activation="softmax")(h2)                                  # (batch, time, 2): silence, speech
model = rg.Model(inputs=frames, outputs={"speech": speech}, name="gru_speech_activity")
