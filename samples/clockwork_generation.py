"""docs/clockwork.md: the sequence-generation task of Koutník et al. (2014) — Clockwork RNN vs SRN vs LSTM.

    python samples/train/clockwork_generation.py    # trains the three (about a minute), writes the .npz
    python samples/clockwork_generation.py          # the MSE table of the saved weights, via onnxruntime
    rnngraph verify samples/clockwork_generation.py --time 320

The networks get no information but a constant input (1 at every step) and must produce
a fixed waveform of 320 steps that mixes three rates (`target`). Three generators of about
500 trainable weights each (masked Clockwork weights not counted) read the same input and
each has a linear readout; they are one model with three outputs, so one ONNX file holds
all three and `rnngraph demo` verifies them against the oracle like every sample.
The weights were trained in PyTorch through `rnngraph.pytorch.TorchModel` by
`samples/train/clockwork_generation.py` and are saved next to this file.
"""

from __future__ import annotations

import pathlib

import numpy as np

import rnngraph as rg

STEPS = 320
#: ~500 trainable weights each (see `trainable`)
GENERATORS = {
    "clockwork": rg.Clockwork(28, periods=(1, 2, 4, 8, 16, 32, 64)),   # 7 groups of 4 units
    "srn": rg.SRN(21),
    "lstm": rg.LSTM(10),
}
WEIGHTS = pathlib.Path(__file__).with_suffix(".npz")


def target() -> np.ndarray:
    """The waveform to produce, ``(STEPS,)``: a slow, a middle and a fast component, in [-1, 1]."""
    t = np.arange(STEPS)
    y = 0.5 * np.sin(2 * np.pi * t / 160) + 0.3 * np.sin(2 * np.pi * t / 37 + 1.0) + 0.2 * np.sign(
        np.sin(2 * np.pi * t / 10))
    return y / np.abs(y).max()


x = rg.Input("x", features=1)                                   # the constant input, (batch, time, 1)
model = rg.Model(x, {name: rg.Dense(1, name=f"{name}_out")(rg.Recurrent(cell, name=name)(x))
                     for name, cell in GENERATORS.items()}, name="clockwork_generation")
params = model.load_params(WEIGHTS) if WEIGHTS.exists() else model.init(seed=0)


def trainable(name: str) -> int:
    """Trainable weights of generator `name` and its readout (entries outside the Clockwork mask excluded)."""
    total = 0
    for key, spec in model.param_specs().items():
        if key.split("/")[0] in (name, f"{name}_out"):
            total += int(spec.mask.sum()) if spec.mask is not None else int(np.prod(spec.shape))
    return total


def mse_table(p: dict[str, np.ndarray]) -> str:
    out = rg.runtime.Session(rg.export(model, p)).run(x=np.ones((1, STEPS, 1), dtype=np.float32))
    lines = ["| network | trainable weights | MSE over 320 steps |", "|---|---:|---:|"]
    for name in GENERATORS:
        mse = float(np.mean((out[name][0, :, 0] - target()) ** 2))
        lines.append(f"| {name} | {trainable(name)} | {mse:.2e} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(mse_table(params))
