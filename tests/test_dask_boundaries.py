"""The scale-out room (ARCHITECTURE.md): it imports the DSL, training and runtime.session; nothing imports it back."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_outside_scaleout_imports_it():
    for folder in ("rnngraph", "runtime", "exporters"):
        for path in (ROOT / folder).rglob("*.py"):
            if "scaleout" in path.parts:
                continue
            bad = {n for n in imports(path) if n.startswith("rnngraph.scaleout")}
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the scale-out room is imported by nobody"


def test_scaleout_imports_the_dsl_training_and_the_session_only():
    allowed = ("rnngraph.scaleout", "rnngraph.dsl", "rnngraph.train", "rnngraph.ridge", "rnngraph.progress",
               "rnngraph.errors", "rnngraph.runtime.session", "dask", "distributed", "numpy", "pandas",
               "__future__", "collections", "dataclasses", "typing", "functools", "itertools", "hashlib", "os",
               "time", "importlib")
    for path in (ROOT / "rnngraph" / "scaleout").glob("*.py"):
        bad = {n for n in imports(path) if not n.startswith(allowed)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
