"""Small validators shared by cells and layers; each raises the house ModelError."""

from __future__ import annotations

from collections.abc import Iterable

from rnngraph.errors import invalid


def positive_int(where: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise invalid(where, field, "a positive integer", value)


def one_of(where: str, field: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise invalid(where, field, "one of " + ", ".join(repr(a) for a in allowed), value)


def boolean(where: str, field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise invalid(where, field, "True or False", value)


def in_range(where: str, field: str, value: object, low: float, high: float, low_open: bool, high_open: bool) -> None:
    """`value` must be a real number in the interval given (open or closed at each end)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        interval = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        raise invalid(where, field, f"a number in {interval}", value)


def identifier(where: str, field: str, value: object) -> None:
    if not isinstance(value, str) or not value.isidentifier():
        raise invalid(where, field, "a name made of letters, digits and underscores", value)
