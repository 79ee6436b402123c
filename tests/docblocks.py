"""The fenced code blocks of a Markdown page, and how tests run them.

Rules (documented for writers in docs/README.md, "How these pages are tested"):
- ```python blocks are executed, in page order, in one namespace per page;
- ```sh blocks run with bash (``-e -o pipefail``); ```console blocks run each ``$ `` line and
  check that every output line shown after it appears in that command's output;
- both run in one temporary folder per page, where ``samples``, ``benchmarks`` and ``.venv`` link to the
  repository's, and where ``rnngraph`` and ``python`` are the virtual environment's;
- an info string with ``norun`` (```sh norun) marks a block shown but never run; one with
  ``requires=MODULE`` runs only where MODULE imports (an optional extra such as torch);
  ``requires=cuda`` only where onnxruntime offers its CUDA provider (a GPU machine);
- any other language (```text, diagrams) is not code and is not run.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHELLS = ("sh", "console")
FENCE = re.compile(r"^```([\w-]*)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    options: tuple[str, ...]
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in ("python", *SHELLS) and "norun" not in self.options

    @property
    def requires(self) -> list[str]:
        return [o.split("=", 1)[1] for o in self.options if o.startswith("requires=")]

    def available(self) -> bool:
        return all(_cuda() if module == "cuda" else importlib.util.find_spec(module) is not None
                   for module in self.requires)


def _cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def blocks(path: pathlib.Path) -> list[Block]:
    text = path.read_text()
    return [Block(path.relative_to(ROOT).as_posix(), text.count("\n", 0, m.start()) + 1, m.group(1),
                  tuple(m.group(2).split()), m.group(3)) for m in FENCE.finditer(text)]


def pages() -> list[pathlib.Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def workspace(tmp: pathlib.Path) -> dict[str, str]:
    """Prepare `tmp` for a page's shell blocks; returns their environment."""
    (tmp / "samples").symlink_to(ROOT / "samples", target_is_directory=True)
    (tmp / "benchmarks").symlink_to(ROOT / "benchmarks", target_is_directory=True)
    (tmp / ".venv").symlink_to(pathlib.Path(sys.prefix), target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("RNNGRAPH_DEBUG", None)
    return env


def run_shell(block: Block, cwd: pathlib.Path, env: dict[str, str]) -> None:
    if block.language == "sh":
        _run(block, block.code, cwd, env, expected=[])
        return
    command, shown = None, []
    for line in [*block.code.splitlines(), "$ "]:
        if line.startswith("$ "):
            if command:
                _run(block, command, cwd, env, shown)
            command, shown = line[2:], []
        elif line.strip() and line.strip() != "...":
            shown.append(line.strip())


def _run(block: Block, script: str, cwd: pathlib.Path, env: dict[str, str], expected: list[str]) -> None:
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.where}: exit {result.returncode}:\n{script}\n{output}"
    missing = [line for line in expected if line not in output]
    assert not missing, f"{block.where}: {script!r} printed no line containing {missing}; it printed:\n{output}"
