"""The one registry of cells: every implementation of a cell is found through it.

A cell type is registered once, in the module that defines it, with

- ``examples``: small instances (odd sizes) covering every option that changes the
  math; every "for each cell" test catalogue reads them, so a new cell is tested
  everywhere the moment it is registered;
- one implementation per backend, named as ``"module:attribute"`` (imported on first
  use, so the DSL stays free of onnx and torch) or given as the object itself (how a
  test registers a cell that exists only inside the test):

      register_cell(LSTM, examples=(LSTM(5), LSTM(5, peephole=True)),
                    onnx="rnngraph.compiler.cells.lstm:LOWERING",
                    oracle="rnngraph.runtime.oracle.lstm:STEP")

A backend asks ``implementation(cell, "onnx")``; a cell without one for that backend
is refused loudly (`UnsupportedCellError` names the cell, the backend and what to add),
never skipped. `REQUIRED_BACKENDS` are the backends every cell must have (a test
checks each registered cell against them); others (``"interop"``: PyTorch/Keras
weight converters) exist only where they make sense.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rnngraph.errors import RnnGraphError

#: every cell needs these: the ONNX lowering and the NumPy oracle's step
REQUIRED_BACKENDS = ("onnx", "oracle")


class UnsupportedCellError(RnnGraphError):
    """A cell has no implementation in the backend that was asked for it."""


@dataclass
class CellEntry:
    cell_type: type
    examples: tuple[Any, ...]
    #: backend -> "module:attribute" or the implementation itself
    implementations: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cell_type.__name__


_ENTRIES: dict[type, CellEntry] = {}
_LOADED: dict[tuple[type, str], Any] = {}


def register_cell(cell_type: type, *, examples: Sequence[Any], **implementations: Any) -> CellEntry:
    """Register `cell_type` with its test examples and its implementation per backend."""
    if not examples:
        raise ValueError(f"register_cell({cell_type.__name__}): give at least one example instance")
    bad = [e for e in examples if not isinstance(e, cell_type)]
    if bad:
        raise ValueError(f"register_cell({cell_type.__name__}): examples {bad} are not {cell_type.__name__} cells")
    entry = CellEntry(cell_type, tuple(examples), dict(implementations))
    _ENTRIES[cell_type] = entry
    for key in [k for k in _LOADED if k[0] is cell_type]:
        del _LOADED[key]
    return entry


def unregister_cell(cell_type: type) -> None:
    _ENTRIES.pop(cell_type, None)
    for key in [k for k in _LOADED if k[0] is cell_type]:
        del _LOADED[key]


@contextmanager
def registered(cell_type: type, *, examples: Sequence[Any], **implementations: Any) -> Iterator[CellEntry]:
    """Register a cell for the duration of a ``with`` block (tests of a cell defined in the test)."""
    entry = register_cell(cell_type, examples=examples, **implementations)
    try:
        yield entry
    finally:
        unregister_cell(cell_type)


def entries() -> list[CellEntry]:
    """Every registered cell, in registration order."""
    return list(_ENTRIES.values())


def entry_for(cell_or_type: Any) -> CellEntry:
    """The entry of a cell (or cell type): its own, else its nearest registered base class's."""
    cell_type = cell_or_type if isinstance(cell_or_type, type) else type(cell_or_type)
    for klass in cell_type.__mro__:
        if klass in _ENTRIES:
            return _ENTRIES[klass]
    raise UnsupportedCellError(f"{cell_type.__name__} is not a registered cell; register it with "
                          "rnngraph.dsl.registry.register_cell(...) next to its definition.")


def has_implementation(cell_or_type: Any, backend: str) -> bool:
    try:
        return backend in entry_for(cell_or_type).implementations
    except UnsupportedCellError:
        return False


def implementation(cell_or_type: Any, backend: str) -> Any:
    """The `backend` implementation of a cell, imported on first use; `UnsupportedCellError` if it has none."""
    entry = entry_for(cell_or_type)
    key = (entry.cell_type, backend)
    if key in _LOADED:
        return _LOADED[key]
    if backend not in entry.implementations:
        have = ", ".join(sorted(entry.implementations)) or "none"
        raise UnsupportedCellError(f"cell {entry.name} has no {backend!r} implementation (it has: {have}); "
                              f"add {backend}=... to its register_cell(...) call.")
    impl = entry.implementations[backend]
    if isinstance(impl, str):
        module_name, _, attribute = impl.partition(":")
        impl = getattr(importlib.import_module(module_name), attribute)
    _LOADED[key] = impl
    return impl


def examples(backend: str | None = None) -> list[Any]:
    """Every example cell of every registered cell (that has `backend`, when given)."""
    return [cell for entry in entries() if backend is None or backend in entry.implementations
            for cell in entry.examples]
