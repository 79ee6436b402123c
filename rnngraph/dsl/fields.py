"""The describable types of the DSL and their fields, read from the dataclasses themselves.

A model description (`rnngraph.dsl.description`) writes every layer, cell and
configuration as a JSON object ``{"type": "LSTM", "hidden": 32, ...}`` whose keys
are the dataclass's init fields. This module knows which classes are describable
(every registered cell, from `registry.entries()`, plus the layers and
configurations below), turns a field's type hint into a checker for JSON values
(`decode`), back (`encode`), and into a JSON Schema fragment (`schema_of`), so the
three can never disagree. JSON has no tuples and TOML has no null: arrays become
tuples, and where a field may be None but never a boolean, ``false`` stands for None.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any

from rnngraph.dsl import registry
from rnngraph.dsl.attention import Attention
from rnngraph.dsl.decoder import Decoder, GreedyDecode, TeacherForced
from rnngraph.dsl.embedding import Embedding
from rnngraph.dsl.esn_generate import Generative
from rnngraph.dsl.generate import Generate
from rnngraph.dsl.layers import Dense, Recurrent
from rnngraph.dsl.wrappers import Bidirectional, Stack
from rnngraph.errors import ModelError

#: layers and configurations a description may hold (cells come from the registry)
LAYER_TYPES: tuple[type, ...] = (Dense, Recurrent, Bidirectional, Stack, Embedding, Generate, Generative,
                                 TeacherForced, GreedyDecode)
CONFIG_TYPES: tuple[type, ...] = (Attention, Decoder)


class DescriptionError(ModelError):
    """A model description (a dict, a JSON or TOML file) is invalid; the message names the key path.

    `path` is that key path, e.g. ``("layers", 2, "cell", "hidden")``, so that a file reader
    can add the line it is on.
    """

    def __init__(self, message: str, path: tuple[str | int, ...] = (), shaped: bool = False) -> None:
        super().__init__(message)
        self.path = path
        #: raised about a value of the right JSON shape (an object naming a type), not a shape mismatch
        self.shaped = shaped


def cell_types() -> list[type]:
    return [entry.cell_type for entry in registry.entries()]


def types_by_name() -> dict[str, type]:
    """Every describable class by the name a description gives in ``"type"``."""
    return {cls.__name__: cls for cls in (*cell_types(), *LAYER_TYPES, *CONFIG_TYPES)}


def init_fields(cls: type) -> list[tuple[str, Any, Any]]:
    """``(name, type hint, default)`` of the init fields of dataclass `cls` (`MISSING` when required)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        out.append((f.name, hints[f.name], default))
    return out


def _alternatives(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _classes(hint: Any) -> list[type]:
    """The describable classes a class hint admits (a base class admits its describable subclasses)."""
    return [cls for cls in types_by_name().values() if isinstance(hint, type) and issubclass(cls, hint)]


def path_text(path: tuple[str | int, ...]) -> str:
    """``layers[2].cell.hidden`` for ``("layers", 2, "cell", "hidden")``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text or "(document)"


def fail(path: tuple[str | int, ...], message: str, shaped: bool = False) -> DescriptionError:
    return DescriptionError(f"{path_text(path)}: {message}", path, shaped)


# -- JSON value -> Python value ---------------------------------------------------
def decode(value: Any, hint: Any, path: tuple[str | int, ...]) -> Any:
    """`value` (parsed JSON/TOML) as the Python value a field of type `hint` takes; DescriptionError if it fits none."""
    alts = _alternatives(hint)
    if value is None or (value is False and type(None) in alts and bool not in alts):
        if type(None) in alts:
            return None
        raise fail(path, f"expected {expected(hint)}, received {value!r}")
    errors: list[DescriptionError] = []
    for alt in alts:
        try:
            return _decode_one(value, alt, path)
        except DescriptionError as exc:
            errors.append(exc)
    # the value had the right shape for one alternative (an object for a class, a list for a tuple):
    # that alternative's own error says more
    shaped = [e for e in errors if e.shaped or len(e.path) > len(path)]
    if len(shaped) == 1:
        raise shaped[0]
    raise fail(path, f"expected {expected(hint)}, received {value!r}")


def _decode_one(value: Any, hint: Any, path: tuple[str | int, ...]) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, list):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(decode(v, args[0], (*path, i)) for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(decode(v, a, (*path, i)) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    elif isinstance(hint, type) and _classes(hint):
        if isinstance(value, dict):
            return decode_object(value, path, _classes(hint))
    raise fail(path, f"expected {expected(hint)}, received {value!r}")


def decode_object(obj: dict[str, Any], path: tuple[str | int, ...], allowed: list[type],
                  extra: dict[str, Any] | None = None) -> Any:
    """Build the object described by `obj` (``{"type": ..., field: value}``), one of the `allowed` classes."""
    names = {cls.__name__: cls for cls in allowed}
    kind = obj.get("type")
    if kind not in names:
        hint = difflib.get_close_matches(str(kind), names, n=1)
        fix = f"; did you mean {hint[0]!r}?" if hint else ""
        raise fail((*path, "type"), f"expected one of {', '.join(map(repr, names))}, received {kind!r}{fix}")
    cls = names[kind]
    fields = {name: (hint, default) for name, hint, default in init_fields(cls)}
    kwargs: dict[str, Any] = dict(extra or {})
    for key, value in obj.items():
        if key == "type":
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            fix = f"; did you mean {close[0]!r}?" if close else f"; {kind} takes {', '.join(fields)}"
            raise fail((*path, key), f"unknown key for {kind}{fix}")
        kwargs[key] = decode(value, fields[key][0], (*path, key))
    missing = [name for name, (_, default) in fields.items() if default is dataclasses.MISSING and name not in kwargs]
    if missing:
        raise fail(path, f"{kind} needs {', '.join(repr(m) for m in missing)}", shaped=True)
    try:
        return cls(**kwargs)
    except ModelError as exc:
        raise fail(path, str(exc), shaped=True) from exc


# -- Python value -> JSON value ---------------------------------------------------
def encode(value: Any) -> Any:
    """A field value as JSON: tuples as lists, describable objects as ``{"type": ..., every init field}``."""
    if isinstance(value, tuple):
        return [encode(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode_object(value)
    return value


def encode_object(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    cls = type(obj)
    if types_by_name().get(cls.__name__) is not cls:
        raise DescriptionError(f"{cls.__name__} cannot be written to a model description: it is not a registered "
                               "cell nor a layer the description knows; register the cell with "
                               "rnngraph.dsl.registry.register_cell(...).", ())
    out: dict[str, Any] = {"type": cls.__name__}
    for name, _, _ in init_fields(cls):
        value = getattr(obj, name)
        if name in skip or (name == "name" and value is None):
            continue
        out[name] = encode(value)
    return out


# -- documentation --------------------------------------------------------------------
def expected(hint: Any) -> str:
    """How an error message names what a field of type `hint` takes."""
    words = []
    for alt in _alternatives(hint):
        if alt is type(None):
            words.append("null (false in TOML)")
        elif typing.get_origin(alt) is tuple:
            words.append(f"a list of {expected(typing.get_args(alt)[0])}")
        elif alt in (bool, int, float, str):
            words.append({bool: "true or false", int: "an integer", float: "a number", str: "a string"}[alt])
        else:
            words.append("an object with \"type\" one of " + ", ".join(repr(c.__name__) for c in _classes(alt)))
    return " or ".join(words)


def schema_of(hint: Any) -> dict[str, Any]:
    """A JSON Schema fragment for a field of type `hint` (objects by reference to ``#/$defs/<type>``)."""
    options: list[dict[str, Any]] = []
    for alt in _alternatives(hint):
        if alt is type(None):
            options += [{"type": "null"}, {"const": False}]
        elif typing.get_origin(alt) is tuple:
            args = typing.get_args(alt)
            if len(args) == 2 and args[1] is Ellipsis:
                options.append({"type": "array", "items": schema_of(args[0])})
            else:
                options.append({"type": "array", "prefixItems": [schema_of(a) for a in args],
                                "minItems": len(args), "maxItems": len(args)})
        elif alt in (bool, int, float, str):
            options.append({"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[alt]})
        else:
            options += [{"$ref": f"#/$defs/{cls.__name__}"} for cls in _classes(alt)]
    return options[0] if len(options) == 1 else {"anyOf": options}


def object_schema(cls: type, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of a describable class: ``type`` plus its init fields, required ones marked."""
    props: dict[str, Any] = {"type": {"const": cls.__name__}, **(extra or {})}
    required = ["type"]
    for name, hint, default in init_fields(cls):
        props[name] = schema_of(hint)
        if default is dataclasses.MISSING:
            required.append(name)
        elif isinstance(default, (bool, int, float, str)):
            props[name]["default"] = default
        elif isinstance(default, tuple):
            props[name]["default"] = encode(default)
    doc = (cls.__doc__ or "").strip().splitlines()
    return {"type": "object", "description": doc[0] if doc else cls.__name__, "properties": props,
            "required": required, "additionalProperties": False}
