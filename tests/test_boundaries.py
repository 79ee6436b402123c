"""What each room may import (ARCHITECTURE.md)."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def imported_modules(folder: pathlib.Path) -> dict[str, set[str]]:
    out = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def test_oracle_imports_nothing_from_the_compiler_or_exporters():
    for path, names in imported_modules(ROOT / "runtime" / "oracle").items():
        bad = {n for n in names if n.startswith(("rnngraph.compiler", "rnngraph.exporters", "onnx"))}
        assert not bad, f"{path} imports {bad}: the oracle must stay independent of the lowering"


def test_dsl_imports_only_numpy_and_networkx():
    allowed = ("rnngraph.dsl", "rnngraph.errors", "rnngraph.files", "numpy", "networkx", "__future__", "collections",
               "dataclasses", "typing", "math", "os", "tempfile", "zlib", "functools", "itertools", "warnings", "scipy",
               "importlib", "contextlib", "zipfile",  # importlib: the cell registry loads implementations by name
               "difflib", "inspect",  # dsl/signature.py: wrong constructor arguments answered with the right name
               # standard library only, for model descriptions (dsl/description.py, dsl/fields.py): JSON and TOML
               # text (tomli is tomllib's own backport, needed on Python 3.10), field types
               "json", "tomllib", "tomli", "re", "sys", "types")
    for path, names in imported_modules(ROOT / "rnngraph" / "dsl").items():
        bad = {n for n in names if not n.startswith(allowed)}
        assert not bad, f"{path} imports {bad}"


def test_oracle_run_does_not_load_the_compiler():
    code = ("import sys, rnngraph.runtime.oracle as o; "
            "bad = [m for m in sys.modules if m.startswith(('rnngraph.compiler', 'rnngraph.exporters')) "
            "or m.split('.')[0] == 'onnx']; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_session_needs_only_numpy_and_onnxruntime():
    code = ("import sys, rnngraph.runtime.session; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('onnx', 'networkx', 'scipy') "
            "or m.startswith(('rnngraph.dsl', 'rnngraph.compiler'))]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
