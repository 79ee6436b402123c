"""Every code block and command of README.md and docs/*.md runs as written, in order (see tests/docblocks.py)."""

from __future__ import annotations

import pathlib
import re
import warnings

import pytest

from tests.docblocks import ROOT, SHELLS, Block, blocks, pages, run_shell, workspace


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    head = "\n".join(lines[:5])
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_block_runs(page: pathlib.Path, tmp_path, monkeypatch):
    env = workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    skipped: list[str] = []
    for block in blocks(page):
        if not block.runs:
            continue
        if not block.available():
            skipped.append(f"{block.where} (needs {', '.join(block.requires)})")
            continue
        if block.language == "python":
            exec(compile(block.code, block.where, "exec"), namespace)
        else:
            run_shell(block, tmp_path, env)
    if skipped:  # everything else ran; say what did not
        warnings.warn("blocks not run, optional packages not installed: " + "; ".join(skipped), stacklevel=1)


def test_commands_are_fenced_so_that_they_run():
    """An indented block would be shown but never run: commands and code go in fenced blocks."""
    for page in pages():
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
        for match in re.finditer(r"^(?: {4}|\t)(\$ |rnngraph |python |\.venv/|import |from |rg\.)", text, re.M):
            line = text.count("\n", 0, match.start()) + 1
            pytest.fail(f"{page.name}:{line}: an indented command or code line ({match.group(0).strip()!r}); fence it")


def test_blocks_that_do_not_run_are_rare_and_known():
    """`norun` is for what a test must not do (install packages, start the whole suite)."""
    held = [b for page in pages() for b in blocks(page) if b.language in ("python", *SHELLS) and not b.runs]
    assert len(held) <= 4, [b.where for b in held]
    for block in held:
        assert re.search(r"^(make |pip |python -m pip |\.venv/bin/pip )", block.code, re.M), block.where


def test_the_fence_parser_sees_every_fence():
    for page in pages():
        fences = sum(1 for line in page.read_text().splitlines() if line.startswith("```"))
        assert fences == 2 * len(blocks(page)), f"{page.name}: unbalanced or unparsed fences"


def test_pages_cite_nothing_outside_the_repository():
    for page in pages():
        text = page.read_text()
        # the docs stand alone: no citation of the team's notebook (its folder name spelled out of pieces here,
        # so that this test does not cite it either)
        assert "SPEC" not in text and "../" + "shared" not in text, page.name
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not re.match(r"https?://", target):
                assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def count_blocks() -> dict[str, int]:
    """Blocks that tests run, per page (for the report: `python -c 'from tests.test_readme import ...'`)."""
    return {p.relative_to(ROOT).as_posix(): sum(1 for b in blocks(p) if b.runs) for p in pages()}


__all__ = ["Block", "count_blocks"]
