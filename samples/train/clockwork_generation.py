"""Train the three generators of `samples/clockwork_generation.py` in PyTorch and save their weights.

    python samples/train/clockwork_generation.py [--iterations 800]

Full-batch (one sequence) Adam on the mean squared error over the 320 steps, the same
schedule for the three networks (they share no weight, so one loss summing their three
errors trains each exactly as alone). One thread: on a small shared machine more threads
only contend (measured here: 2.5 s per iteration with two threads under load, 0.12 s with
one). Then the weights go back to rnngraph's layout, next to the sample, and the table is
computed by onnxruntime from the exported model.
"""

from __future__ import annotations

import argparse
import pathlib
import runpy
import time

import numpy as np
import torch

from rnngraph.pytorch import TorchModel

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "clockwork_generation.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sample = runpy.run_path(str(SAMPLE), run_name="__train__")
    model, names = sample["model"], list(sample["GENERATORS"])
    torch.manual_seed(0)
    net = TorchModel(model, model.init(seed=0))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iterations)
    x = torch.ones((1, sample["STEPS"], 1))
    y = torch.as_tensor(sample["target"](), dtype=torch.float32)[None, :, None]
    start = time.perf_counter()
    for it in range(args.iterations):
        out = net(x=x)
        losses = {name: ((out[name] - y) ** 2).mean() for name in names}
        opt.zero_grad()
        sum(losses.values()).backward()  # type: ignore[union-attr]
        opt.step()
        sched.step()
        if it % 250 == 0 or it == args.iterations - 1:
            print(f"{it:>5} " + "  ".join(f"{n} {v.item():.2e}" for n, v in losses.items())
                  + f"  ({time.perf_counter() - start:.0f} s)")
    params = net.rnngraph_params()
    model.save_params(params, sample["WEIGHTS"])
    print(f"wrote {sample['WEIGHTS']}\n")
    print(sample["mse_table"](params))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
