"""The README's Dask block runs as written, cluster part included (it sits under `if __name__ == "__main__"`)."""

from __future__ import annotations

import pathlib
import re

import pytest

pytest.importorskip("distributed")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_dask_block_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (code,) = [b for b in blocks if "scaleout" in b]
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "<- chosen" in printed and "spectral_radius" in printed
    outputs, pairs = namespace["outputs"], namespace["pairs"]
    assert len(outputs) == 12 and all(o["y"].shape == p[0].shape for o, p in zip(outputs, pairs, strict=True))
