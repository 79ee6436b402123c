"""The README's Dask block runs as written, cluster part included.

tests/test_readme.py runs every block with ``__name__ == "__docs__"``, so the part under
``if __name__ == "__main__":`` (the cluster, which worker processes must not re-run) runs here.
"""

from __future__ import annotations

import pytest

from tests.docblocks import ROOT, blocks

pytest.importorskip("distributed")


def test_readme_dask_block_runs(tmp_path, monkeypatch, capsys):
    (block,) = [b for b in blocks(ROOT / "README.md") if "scaleout" in b.code and b.language == "python"]
    assert block.requires == ["distributed"]  # skipped, not failed, where Dask is not installed
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(block.code, block.where, "exec"), namespace)
    printed = capsys.readouterr().out
    assert "<- chosen" in printed and "spectral_radius" in printed
    outputs, pairs = namespace["outputs"], namespace["pairs"]
    assert len(outputs) == 12 and all(o["y"].shape == p[0].shape for o, p in zip(outputs, pairs, strict=True))
