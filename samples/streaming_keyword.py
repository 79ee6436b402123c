"""Streaming keyword spotting: a small GRU over feature frames, run frame by frame as they arrive.

Log-mel frames ``(batch, time, 13)``; a GRU carries what it has heard, a softmax scores
each frame (filler, "yes", "no"). Exported with ``ExportOptions(streaming=True)``, the
GRU's state ``h`` is an input and an output of the model (``state_in/gru0/h`` →
``state_out/gru0/h``), so a device feeds one frame (or any chunk) at a time and keeps
the state between calls; `rnngraph.runtime.StreamingSession` does that for a batch of
independent streams. Frame by frame equals the whole-sequence run:

    python samples/streaming_keyword.py
    rnngraph verify samples/streaming_keyword.py --time 200
"""

import rnngraph as rg

frames = rg.Input("frames", features=13)                                         # (batch, time, 13)
heard = rg.Recurrent(rg.GRU(24, linear_before_reset=True))(frames)                # (batch, time, 24)
scores = rg.Dense(3, activation="softmax")(heard)                                 # (batch, time, 3)
model = rg.Model(inputs=frames, outputs={"scores": scores}, name="streaming_keyword")

if __name__ == "__main__":
    import numpy as np

    from rnngraph.exporters.onnx import build_model_proto
    from rnngraph.runtime import Session, StreamingSession

    params = model.init(seed=0)
    audio = np.random.default_rng(0).normal(size=(3, 50, 13)).astype(np.float32)  # 3 streams, 50 frames each
    whole = Session(build_model_proto(model, params)).run(frames=audio)["scores"]
    streams = StreamingSession(build_model_proto(model, params, options=rg.ExportOptions(streaming=True))).open(3)
    by_frame = np.concatenate([streams.feed(frames=audio[:, t:t + 1])["scores"] for t in range(audio.shape[1])],
                              axis=1)
    print(f"3 streams, 50 frames fed one at a time: max |frame by frame - whole| = "
          f"{np.max(np.abs(by_frame - whole)):.2e}")
