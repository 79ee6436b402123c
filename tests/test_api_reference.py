"""docs/api.md documents every public name, and every name and signature it shows is the code's."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
from typing import Any

import rnngraph

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.md"
HEADING = re.compile(r"^### `([\w.]+)(?:\((.*)\))?`$", re.M)


def resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            continue
    for attribute in parts[i:]:
        value = getattr(value, attribute)
    return value


def documented_parameters(text: str) -> list[tuple[str, str | None]]:
    """``a, b=1, *, c="x"`` -> [("a", None), ("b", "1"), ("c", "'x'")], markers (* and /) dropped."""
    out = []
    for part in re.split(r",\s*(?![^()]*\))", text):
        part = part.strip()
        if part in ("", "*", "/"):
            continue
        name, _, default = part.partition("=")
        out.append((name.lstrip("*"), default.replace('"', "'") if default else None))
    return out


def code_parameters(obj: Any) -> list[tuple[str, str | None]]:
    params = [p for p in inspect.signature(obj).parameters.values() if p.name != "self"]
    return [(p.name, None if p.default is inspect.Parameter.empty else repr(p.default)) for p in params]


def headings() -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in HEADING.finditer(PAGE.read_text())]


def test_every_public_name_is_documented():
    documented = {name for name, _ in headings()}
    missing = [name for name in rnngraph.__all__ if f"rnngraph.{name}" not in documented]
    assert not missing, f"add these to docs/api.md: {missing}"


def test_every_documented_name_exists_with_its_signature():
    for name, signature in headings():
        value = resolve(name)
        if signature is not None:
            assert documented_parameters(signature) == code_parameters(value), name


def test_no_name_is_documented_twice():
    names = [name for name, _ in headings()]
    assert len(names) == len(set(names))
