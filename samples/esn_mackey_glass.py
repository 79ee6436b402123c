"""docs/esn.md: Echo State Network on the Mackey–Glass series (τ = 17) — one-step prediction and free run.

    python samples/esn_mackey_glass.py                     # trains, prints the test NRMSEs
    rnngraph verify samples/esn_mackey_glass.py --time 300

The series is integrated here (no download). A 400-unit leaky ESN (leak 0.8, spectral radius
0.9, density 5%) reads u(n) and is trained by ridge regression (washout 300, β = 1e-6) on
2000 steps to predict u(n+1). `model` (what `rnngraph verify` checks) has two outputs:
- ``y``: driven mode, the one-step predictions over the input sequence ``(batch, time, 1)``;
- ``generated``: generative mode, after the input sequence (the priming) the model runs
  closed-loop, its prediction fed back as its next input, for ``steps`` steps
  (an int64 scalar input) ``(batch, steps, 1)``: the series from u(T+2) on (y(T) is u(T+1)).
`driven` is the driven mode alone (``Recurrent``), with the same parameters.

NRMSE = sqrt(mean((prediction - truth)²) / var(truth)): the RMSE divided by the standard
deviation of the true series over the test part.
"""

from __future__ import annotations

import numpy as np

import rnngraph as rg

TAU, BETA, GAMMA, POWER = 17.0, 0.2, 0.1, 10
DT, SUBSAMPLE = 0.1, 10             # RK4 step 0.1; one sample per time unit
TRANSIENT, TRAIN, TEST = 500, 2000, 2000
WASHOUT, RIDGE = 300, 1e-6
HORIZON = 84                        # the free-run length of the classic benchmark (Jaeger & Haas 2004)


def mackey_glass(n: int, x0: float = 1.2) -> np.ndarray:
    """n samples, one per time unit, of dx/dt = β x(t-τ) / (1 + x(t-τ)^10) - γ x(t), x = x0 for t <= 0.

    Classic RK4 with step 0.1 (τ is 170 steps); the delayed term at half steps is the
    mean of its two neighbours. Fully deterministic.
    """
    lag = round(TAU / DT)
    steps = n * SUBSAMPLE
    x = np.empty(steps + lag + 1)
    x[: lag + 1] = x0

    def f(now: float, delayed: float) -> float:
        return BETA * delayed / (1.0 + delayed**POWER) - GAMMA * now

    for i in range(lag, lag + steps):
        d0, d1 = x[i - lag], x[i - lag + 1]
        dh = 0.5 * (d0 + d1)
        xi = x[i]
        k1 = f(xi, d0)
        k2 = f(xi + 0.5 * DT * k1, dh)
        k3 = f(xi + 0.5 * DT * k2, dh)
        k4 = f(xi + DT * k3, d1)
        x[i + 1] = xi + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + SUBSAMPLE :: SUBSAMPLE][:n]


#: the series, centred: u(n) = x(n) - 1, after a transient; train on the first part, test on the rest
SERIES = (mackey_glass(TRANSIENT + TRAIN + TEST + 1) - 1.0)[TRANSIENT:]
TRAIN_PART, TEST_PART = SERIES[: TRAIN + 1], SERIES[TRAIN:]

esn = rg.ESN(400, outputs=1, density=0.05, spectral_radius=0.9, leak=0.8, input_scaling=1.0,
             bias_scaling=0.2, reads=("input", "state"))
u = rg.Input("u", features=1)                         # (batch, time, 1)
steps = rg.Input("steps", count=True)                 # int64 scalar
generated, y = rg.Generative(esn, name="esn")(u, steps)
model = rg.Model(inputs=[u, steps], outputs={"y": y, "generated": generated}, name="esn_mackey_glass")
# the driven mode alone (input sequence in, predictions out): same node name, so the same parameters
u_driven = rg.Input("u", features=1)
driven = rg.Model(inputs=u_driven, outputs={"y": rg.Recurrent(esn, name="esn")(u_driven)}, name="esn_driven")

params = rg.fit_ridge(model, model.init(seed=0), inputs=TRAIN_PART[:-1, None], targets=TRAIN_PART[1:, None],
                      washout=WASHOUT, ridge=RIDGE)
tolerance = "float32"                                # the strict entry of rnngraph.verify.TOLERANCES


def feeds(batch: int, time: int, seed: int) -> dict[str, np.ndarray]:
    """Windows of the test series (ragged: row 0 full, others up to a third shorter); min(time, 50) free steps."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(TEST_PART) - time, size=batch) if len(TEST_PART) > time else np.zeros(batch, int)
    window = np.stack([np.resize(TEST_PART[s:], time) for s in starts])[:, :, None].astype(np.float32)
    # rows end at different steps, but none is much shorter than the rest: a reservoir primed for a
    # few steps only has not forgotten its zero start and its free run leaves the attractor
    lengths = rng.integers(max(1, time - time // 3), time + 1, size=batch)
    lengths[0] = time
    return {"u": window, "lengths": lengths.astype(np.int64), "steps": np.array(min(time, 50), dtype=np.int64)}


def nrmse(prediction: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((prediction - truth) ** 2) / np.var(TEST_PART)))


def main() -> None:
    session = rg.runtime.Session(rg.export(model, params))
    # one-step prediction over the test part, driven by the true series (the first WASHOUT steps warm up)
    test_in = TEST_PART[:-1][None, :, None].astype(np.float32)
    predicted = session.run(u=test_in, steps=np.array(0))["y"][0, WASHOUT:, 0]
    print(f"one-step test NRMSE over {len(predicted)} steps: {nrmse(predicted, TEST_PART[1 + WASHOUT:]):.2e}")
    # free run: 30 trials, each primed with 300 true steps, then closed loop; compare u(T+84)
    prime, trials = 300, 30
    starts = np.linspace(0, len(TEST_PART) - prime - HORIZON - 1, trials).astype(int)
    windows = np.stack([TEST_PART[s : s + prime] for s in starts])[:, :, None].astype(np.float32)
    out = session.run(u=windows, steps=np.array(HORIZON - 1))
    continuation = np.concatenate([out["y"][:, -1:, 0], out["generated"][:, :, 0]], axis=1)  # u(T+1..T+84)
    truth = np.stack([TEST_PART[s + prime : s + prime + HORIZON] for s in starts])
    print(f"free-run NRMSE at step {HORIZON} over {trials} trials: {nrmse(continuation[:, -1], truth[:, -1]):.2e}")
    print(f"free-run NRMSE over all {HORIZON} steps: {nrmse(continuation, truth):.2e}")
    print(f"(NRMSE = RMSE / standard deviation of the test series, {np.std(TEST_PART):.4f})")


if __name__ == "__main__":
    main()
