"""A model as data: a JSON (or TOML) document that describes it completely, and back.

    doc = model.to_dict()                   # {"format": "rnngraph.model", "version": 1, "name": ..., ...}
    text = model.to_json()                  # the same, as JSON text
    same = Model.from_json(text)            # an equal model: same names, same parameters, same export
    model = load_description("lstm.toml")   # a .json or .toml file

The document (schema: `schema()`, shipped as ``rnngraph/dsl/model.schema.json``)::

    {"format": "rnngraph.model", "version": 1, "name": "lstm_tagger",
     "inputs":  [{"name": "words", "features": 16, "lengths": "lengths", "time": "time"}],
     "layers":  [{"name": "lstm0", "type": "Recurrent", "inputs": {"x": "words"},
                  "cell": {"type": "LSTM", "hidden": 32, "peephole": false, "coupled": false},
                  "reverse": false, "returns": "sequence"},
                 {"name": "dense0", "type": "Dense", "inputs": {"x": "lstm0"}, "units": 12, "activation": "softmax"}],
     "outputs": {"tags": "dense0"}}

- ``inputs``: the arguments of `Input` (``features`` or ``tokens``, ``sequence``,
  ``lengths``, ``time``; ``count: true`` and its ``max`` for a runtime count).
- ``layers``: one entry per node, each after the nodes it reads: its node ``name``,
  its layer ``type`` and fields (every init field of the dataclass; nested cells and
  configurations as ``{"type": ..., ...}`` objects), and ``inputs`` mapping each input
  slot to ``"node"`` (its output 0) or ``"node:i"`` (its output i).
- ``outputs``: output name -> ``"node"`` or ``"node:i"``.

Fields left out take their defaults. ``null`` (``false`` in TOML, which has no null)
sets a field that may be None. Parameters are not part of the description: they
live in ``.npz`` files and ONNX initializers. Errors name the key path
(``layers[1].cell.hidden``) and, for files, the line.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from rnngraph.dsl.fields import (
    LAYER_TYPES,
    DescriptionError,
    decode,
    decode_object,
    encode_object,
    fail,
    object_schema,
)
from rnngraph.dsl.layers import Input
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.tensor import SCALAR, VECTOR, Tensor, TensorSpec
from rnngraph.errors import ModelError

FORMAT = "rnngraph.model"
VERSION = 1
TOP_KEYS = ("$schema", "format", "version", "name", "inputs", "layers", "outputs")
#: where the schema ships, beside this module
SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "model.schema.json")


# -- model -> document ------------------------------------------------------------
def input_entry(name: str, spec: TensorSpec) -> dict[str, Any]:
    """The `Input(...)` arguments that declare `spec`."""
    if spec.kind == SCALAR:
        return {"name": name, "count": True, "max": spec.count_max}
    entry: dict[str, Any] = {"name": name}
    entry["tokens" if spec.is_tokens else "features"] = spec.vocab if spec.is_tokens else spec.features
    if spec.kind == VECTOR:
        entry["sequence"] = False
    else:
        entry["lengths"] = spec.lengths
        entry["time"] = spec.time
    return entry


def reference(source: Source) -> str:
    return source.node if source.index == 0 else f"{source.node}:{source.index}"


def to_dict(model: Model) -> dict[str, Any]:
    """The description of `model` as a JSON-ready dict (every field written, defaults included)."""
    layers = []
    for name, node in model.nodes():
        if name in model.inputs:
            continue
        fields = encode_object(node.layer, skip=("name",))
        entry = {"name": name, "type": fields.pop("type"),
                 "inputs": {slot: reference(src) for slot, src in model.sources(name).items()}}
        layers.append({**entry, **fields})
    return {"format": FORMAT, "version": VERSION, "name": model.name,
            "inputs": [input_entry(name, spec) for name, spec in model.inputs.items()],
            "layers": layers,
            "outputs": {out: reference(src) for out, src in model.outputs.items()}}


def to_json(model: Model, path: str | os.PathLike[str] | None = None, indent: int | None = 2) -> str:
    """The description as JSON text; also written to `path` when given."""
    text = json.dumps(to_dict(model), indent=indent, ensure_ascii=False) + "\n"
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text


# -- document -> model ------------------------------------------------------------
def _input_fields() -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(Input)
    return {name: (hints[name], p.default) for name, p in inspect.signature(Input).parameters.items()}


def _entries(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise fail((key,), f"expected a list, received {value!r}")
    return value


def _object(value: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"expected an object, received {value!r}")
    return value


def _make_input(entry: dict[str, Any], path: tuple[str | int, ...]) -> Tensor:
    fields = _input_fields()
    kwargs = {}
    for key, value in entry.items():
        if key not in fields:
            raise fail((*path, key), f"unknown key for an input; inputs take {', '.join(fields)}")
        kwargs[key] = decode(value, fields[key][0], (*path, key))
    if "name" not in kwargs:
        raise fail(path, "an input needs a 'name'")
    try:
        return Input(**kwargs)
    except ModelError as exc:
        raise fail(path, str(exc)) from exc


def from_dict(doc: Mapping[str, Any]) -> Model:
    """Build the model a description dict describes; DescriptionError names the key path of what is wrong."""
    doc = _object(doc, ())
    for key in doc:
        if key not in TOP_KEYS:
            raise fail((key,), f"unknown key; a model description has {', '.join(TOP_KEYS)}")
    if doc.get("format", FORMAT) != FORMAT:
        raise fail(("format",), f"expected {FORMAT!r}, received {doc['format']!r}")
    if doc.get("version", VERSION) != VERSION:
        raise fail(("version",), f"this rnngraph reads version {VERSION}, received {doc['version']!r}; "
                   "upgrade rnngraph to read it")
    name = decode(doc.get("name", "model"), str, ("name",))
    values: dict[str, tuple[Tensor, ...]] = {}
    inputs = []
    for i, entry in enumerate(_entries(doc, "inputs")):
        tensor = _make_input(_object(entry, ("inputs", i)), ("inputs", i))
        values[str(entry["name"])] = (tensor,)
        inputs.append(tensor)
    for i, entry in enumerate(_entries(doc, "layers")):
        path: tuple[str | int, ...] = ("layers", i)
        entry = _object(entry, path)
        node = entry.get("name")
        if not isinstance(node, str):
            raise fail((*path, "name"), f"every layer needs a 'name' (its node name), received {node!r}")
        if node in values:
            raise fail((*path, "name"), f"{node!r} names an earlier input or layer; node names must be unique")
        wiring = _object(entry.get("inputs", {}), (*path, "inputs"))
        feeds = {slot: _resolve(ref, values, (*path, "inputs", slot)) for slot, ref in wiring.items()}
        fields = {k: v for k, v in entry.items() if k not in ("name", "inputs")}
        layer = decode_object(fields, path, list(LAYER_TYPES), extra={"name": node})
        try:
            out = layer(**feeds)
        except ModelError as exc:
            raise fail((*path, "inputs"), str(exc)) from exc
        values[node] = out if isinstance(out, tuple) else (out,)
    outputs = _object(doc.get("outputs", {}), ("outputs",))
    tensors = {out: _resolve(ref, values, ("outputs", out)) for out, ref in outputs.items()}
    try:
        return Model(inputs, tensors, name=name)
    except ModelError as exc:
        raise fail(("outputs",), str(exc)) from exc


def _resolve(ref: Any, values: Mapping[str, tuple[Tensor, ...]], path: tuple[str | int, ...]) -> Tensor:
    match = re.fullmatch(r"(\w+)(?::(\d+))?", ref) if isinstance(ref, str) else None
    if match is None:
        raise fail(path, f"expected \"node\" or \"node:index\", received {ref!r}")
    node, index = match.group(1), int(match.group(2) or 0)
    if node not in values:
        known = ", ".join(values) or "none yet"
        raise fail(path, f"{node!r} is not an input nor a layer listed before this one (known: {known})")
    if index >= len(values[node]):
        raise fail(path, f"{node!r} has {len(values[node])} output(s), so index {index} does not exist")
    return values[node][index]


def from_json(text: str) -> Model:
    """The model described by JSON `text`; DescriptionError names the key path and line of what is wrong."""
    doc, lines = parse_json(text)
    return _with_lines(doc, lines, "<json>")


# -- files ------------------------------------------------------------------------
def load_description(path: str | os.PathLike[str]) -> Model:
    """The model described by a ``.json`` or ``.toml`` file."""
    path = os.fspath(path)
    if not path.endswith((".json", ".toml")):
        raise DescriptionError(f"{path!r}: a model description is a .json or .toml file.")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise DescriptionError(f"cannot read {path!r}: {exc.strerror or exc}.") from exc
    if path.endswith(".toml"):
        doc = parse_toml(text, path)
        return _with_lines(doc, lambda p: toml_line(text, p), path)
    doc, lines = parse_json(text, path)
    return _with_lines(doc, lines, path)


def _with_lines(doc: Any, lines: Any, where: str) -> Model:
    try:
        return from_dict(doc)
    except DescriptionError as exc:
        line = lines(exc.path) if callable(lines) else _deepest(lines, exc.path)
        raise DescriptionError(f"{where}{f':{line}' if line else ''}: {exc}", exc.path) from exc


def _deepest(lines: Mapping[tuple[str | int, ...], int], path: tuple[str | int, ...]) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def parse_json(text: str, where: str = "<json>") -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """Parse JSON `text` and map the key path of every value to its line (1-based).

    Uses json's own pure-Python scanner with its value parser wrapped, so that the
    start of every value is recorded in document order (a pre-order walk), then paired
    with the paths of the parsed value walked in the same order.
    """
    import json.decoder
    import json.scanner

    starts: list[int] = []

    def record(scan: Any) -> Any:
        def scan_once(s: str, idx: int) -> Any:
            starts.append(idx)
            return scan(s, idx)
        return scan_once

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise DescriptionError(f"{where}: key {dupes[0]!r} appears twice in one object.")
        return dict(pairs)

    parse_object, parse_array = getattr(json.decoder, "JSONObject"), getattr(json.decoder, "JSONArray")  # noqa: B009
    decoder = json.JSONDecoder(object_pairs_hook=unique)
    # the hooks py_make_scanner reads (typeshed does not declare them)
    setattr(decoder, "parse_object",  # noqa: B010
            lambda s_end, strict, scan, *rest: parse_object(s_end, strict, record(scan), *rest))
    setattr(decoder, "parse_array", lambda s_end, scan: parse_array(s_end, record(scan)))  # noqa: B010
    py_scanner = getattr(json.scanner, "py_make_scanner")  # noqa: B009 - the pure-Python scanner calls the hooks
    setattr(decoder, "scan_once", record(py_scanner(decoder)))  # noqa: B010
    try:
        value = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise DescriptionError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}.") from exc
    lines = {path: text.count("\n", 0, start) + 1 for path, start in zip(_paths(value, ()), starts, strict=True)}
    return value, lines


def _paths(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*path, key))


def parse_toml(text: str, where: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DescriptionError(f"{where}: not valid TOML: {exc}.") from exc


def toml_line(text: str, path: tuple[str | int, ...]) -> int | None:
    """The line (1-based) of key path `path` in TOML `text`, found by its table headers and keys; None if not found.

    TOML parsers keep no positions; this follows the path through ``[[array]]`` headers
    (the n-th one for index n), ``[table]`` headers and ``key =`` assignments.
    """
    lines = text.splitlines()
    start, found, i = 0, None, 0
    while i < len(path):
        key = path[i]
        if isinstance(key, int):
            i += 1
            continue
        k = re.escape(key)
        array = re.compile(rf"^\s*\[\[\s*(?:[\w.]+\.)?{k}\s*\]\]")
        table = re.compile(rf"^\s*\[\s*(?:[\w.]+\.)?{k}\s*\]")
        assign = re.compile(rf"(^|[{{,\s]){k}\s*=")
        index = path[i + 1] if i + 1 < len(path) else None
        if isinstance(index, int):
            headers = [n for n in range(start, len(lines)) if array.match(lines[n])]
            if len(headers) > index:
                start = found = headers[index]
                i += 2
                continue
        hits = [n for n in range(start, len(lines)) if table.match(lines[n]) or array.match(lines[n])
                or assign.search(lines[n])]
        if not hits:
            break
        start = found = hits[0]
        i += 1
    return None if found is None else found + 1


# -- schema -------------------------------------------------------------------------
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model description, derived from the DSL's dataclasses."""
    from rnngraph.dsl.fields import schema_of, types_by_name

    wiring = {"type": "string", "pattern": r"^\w+(:\d+)?$"}
    layer_extra = {"name": {"type": "string", "pattern": r"^[A-Za-z_]\w*$"},
                   "inputs": {"type": "object", "additionalProperties": wiring}}
    # a layer nested in another (a readout, a Stack's items) is a plain object; a node of the
    # model ("node.<type>") also has its node name and its inputs
    defs = {cls.__name__: object_schema(cls) for cls in types_by_name().values()}
    for cls in LAYER_TYPES:
        defs[f"node.{cls.__name__}"] = object_schema(cls, layer_extra)
        defs[f"node.{cls.__name__}"]["required"].append("name")
    inputs = {name: schema_of(hint) for name, (hint, _) in _input_fields().items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rnngraph model description",
        "description": "Generated from rnngraph's own dataclasses (rnngraph.dsl.description.schema); rnngraph "
                       "checks descriptions against the same definitions, with errors that name the key path "
                       "and line. Where a field may be null, TOML (which has no null) writes false.",
        "type": "object",
        "properties": {
            "$schema": {"type": "string"},
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "name": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "object", "properties": inputs, "required": ["name"],
                                                  "additionalProperties": False}},
            "layers": {"type": "array",
                       "items": {"anyOf": [{"$ref": f"#/$defs/node.{c.__name__}"} for c in LAYER_TYPES]}},
            "outputs": {"type": "object", "additionalProperties": wiring},
        },
        "required": ["inputs", "layers", "outputs"],
        "additionalProperties": False,
        "$defs": defs,
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


__all__ = ["FORMAT", "VERSION", "DescriptionError", "from_dict", "from_json", "load_description", "schema",
           "to_dict", "to_json"]
