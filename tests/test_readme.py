"""The README's quickstart runs as written."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    head = "\n".join(lines[:5])
    assert "make demo" in head and "make test" in head


def test_quickstart_runs(tmp_path, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "tagger.onnx").stat().st_size > 0


def test_train_in_pytorch_section_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    section = (ROOT / "README.md").read_text().split("## Train in PyTorch, deploy with rnngraph", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    assert len([line for line in code.splitlines() if line.strip()]) < 25, "the section promises < 25 lines"
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "running_mean.onnx").stat().st_size > 0
