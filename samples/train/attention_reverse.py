"""Train `samples/attention_reverse.py` in PyTorch (teacher forcing) and save its weights next to it.

    python samples/train/attention_reverse.py [--iterations 1500]

Adam on the cross-entropy of the teacher-forced model's scores (readout logits) over each
row's target steps, fresh random batches of 64 every iteration (seeds 0, 1, …; the sample's
held-out set uses seed 12345). Every 250 iterations the greedy model — the same parameters,
`TorchModel(greedy, net.rnngraph_params())` — is scored on 500 validation sequences; the
run stops early once they are all decoded exactly. One thread: on a small shared machine
more only contend.
"""

from __future__ import annotations

import argparse
import pathlib
import runpy
import time

import numpy as np
import torch

from rnngraph.pytorch import TorchModel

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "attention_reverse.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    s = runpy.run_path(str(SAMPLE), run_name="__train__")
    teacher, greedy = s["build"]("teacher_forced"), s["model"]
    net = TorchModel(teacher, greedy.init(seed=0))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    valid = s["examples"](500, seed=999_999)
    start = time.perf_counter()
    for it in range(args.iterations):
        batch = s["examples"](64, seed=it)
        scores = net(src=batch["src"], lengths=batch["lengths"], tgt=batch["tgt"],
                     tgt_lengths=batch["tgt_lengths"])["scores"]
        target = torch.as_tensor(batch["target"])
        mask = torch.arange(target.shape[1])[None, :] < torch.as_tensor(batch["tgt_lengths"])[:, None]
        loss = torch.nn.functional.cross_entropy(scores[mask], target[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (it + 1) % 250 == 0 or it == args.iterations - 1:
            with torch.no_grad():
                out = TorchModel(greedy, net.rnngraph_params())(src=valid["src"], lengths=valid["lengths"])
            acc = s["exact_match"](out["tokens"].numpy(), valid["target"], valid["lengths"])
            print(f"{it + 1:>5}  loss {loss.item():.4f}  validation exact match {acc:.1%}  "
                  f"({time.perf_counter() - start:.0f} s)")
            if acc == 1.0:
                break
    params = net.rnngraph_params()
    greedy.save_params(params, s["WEIGHTS"])
    print(f"wrote {s['WEIGHTS']}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
