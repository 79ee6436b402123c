"""Progress of long verify runs: the oracle reports its steps; a bar only on a terminal; --quiet silences it."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np

import rnngraph as rg
from rnngraph.runtime import oracle
from rnngraph.verify import verify

ROOT = Path(__file__).resolve().parents[1]


def test_the_oracle_reports_every_valid_step_of_every_recurrent_row():
    x = rg.Input("x", features=3)
    model = rg.Model(x, {"y": rg.Bidirectional(rg.GRU(4, linear_before_reset=True))(x)})
    params = model.init(0)
    feeds = model.example_inputs(3, 6, seed=2)  # ragged lengths
    calls: list[int] = []
    out = oracle.run_reporting(model, params, feeds, calls.append)
    np.testing.assert_array_equal(out["y"], oracle.run(model, params, **feeds)["y"])
    assert sum(calls) == 2 * int(feeds["lengths"].sum())  # both directions, valid steps only
    assert len(calls) == 2 * 3  # one call per row per direction


def test_verify_passes_progress_to_a_callback():
    x = rg.Input("x", features=2)
    model = rg.Model(x, {"y": rg.Recurrent(rg.RNN(3))(x)})
    seen: list[tuple[int, int | None]] = []
    report = verify(model, model.init(0), batch=2, time=5, progress=lambda done, total: seen.append((done, total)))
    assert report.ok and seen and seen[-1][1] is None and seen[-1][0] == seen[-1][0] > 0
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # counts only grow


def run_cli(args: list[str], tty: bool) -> str:
    """The CLI's stderr, with stderr a pipe or a pseudo-terminal."""
    cmd = [sys.executable, "-m", "rnngraph.cli", *args]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False).stderr
    leader, follower = pty.openpty()
    # a terminal 120 columns wide (a fresh pseudo-terminal has 0, where a bar draws nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_bar_on_a_terminal_none_in_a_pipe_or_with_quiet():
    args = ["verify", "samples/srn.py", "--time", "300"]
    assert "oracle" in run_cli(args, tty=True)
    assert run_cli(args, tty=False) == ""
    assert "oracle" not in run_cli([*args, "--quiet"], tty=True)
