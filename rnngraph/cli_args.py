"""What the `rnngraph` command reads from its arguments: model files, `--input` values, output paths.

Kept apart from the commands so that the rules live in one place and the parser
imports nothing heavy: ``rnngraph --help`` must not load numpy, onnx or onnxruntime.

- A model file is run as Python only when its name ends in ``.py`` (any case);
  ``.json`` and ``.toml`` files are model descriptions (data); every other file is
  read as data: its first bytes must look like a serialized ONNX model (see
  `looks_like_onnx`), else it is refused without being executed.
- ``--input NAME=VALUE``: VALUE is a ``.npy`` file, or a Python literal — a number
  (``steps=5``) or a nested list (``x=[[[0.1, 0.2]]]``).
- ``-o``: the expected suffix is appended when the name has none; another suffix
  is an error (``-o out.json`` for an ONNX file).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

from rnngraph.errors import InputError

#: what each kind of model file is, for messages
KINDS = {"python": "a Python model file (.py)", "description": "a model description (.json or .toml)",
         "onnx": "an ONNX file"}


def looks_like_onnx(head: bytes) -> bool:
    """Whether `head`, the first bytes of a file, can start a serialized ONNX ModelProto.

    Protobuf writes fields in field-number order, and every ModelProto that onnx
    writes starts with field 1, ``ir_version`` (a varint, tag byte 0x08), whose
    value is a small positive number (3..13 for the IR versions that exist).
    """
    return len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 0x7F


def model_kind(path: str, accepts: tuple[str, ...], command: str) -> str:
    """``"python"`` or ``"onnx"`` for the model file `path`, checked against what `command` `accepts`.

    Raises InputError when the file is missing, empty, neither Python nor ONNX, or
    of a kind the command does not take (with the command that does).
    """
    if not os.path.exists(path):
        raise InputError(f"no model file at {path!r}.")
    if os.path.isdir(path):
        raise InputError(f"{path!r} is a directory; give a model file (.py) or an ONNX file.")
    if path.lower().endswith(".py"):
        kind = "python"
    elif path.lower().endswith((".json", ".toml")):  # data, never run: rnngraph.dsl.description reads it
        kind = "description"
    else:
        try:
            with open(path, "rb") as f:
                head = f.read(2)
        except OSError as exc:
            raise InputError(f"cannot read {path!r}: {exc.strerror or exc}.") from exc
        if not head:
            raise InputError(f"{path!r} is empty; expected an ONNX file (as `rnngraph export` writes).")
        if not looks_like_onnx(head):
            raise InputError(
                f"{path!r} is not an ONNX file (its first bytes are not an ONNX header), and only files "
                f"named *.py are run as Python model files."
            )
        kind = "onnx"
    if kind not in accepts:
        raise InputError(_wrong_kind(path, kind, command))
    return kind


def _wrong_kind(path: str, kind: str, command: str) -> str:
    if kind in ("python", "description") and command == "run":
        what = "a Python model file" if kind == "python" else KINDS[kind]
        return (f"{path!r} is {what}; `run` needs an exported ONNX file. Export it first: "
                f"rnngraph export {path} -o model.onnx && rnngraph run model.onnx ...")
    return f"{path!r} is {KINDS[kind]}; `rnngraph {command}` takes {KINDS['python']}."


def output_path(path: str, suffix: str, option: str = "-o") -> str:
    """`path` with `suffix` (``.onnx``, ``.npz``) appended when it has no suffix at all.

    A name with another suffix is refused rather than silently extended (``-o out.json``
    would otherwise write ``out.json.npz``); the suffix is compared case-insensitively.
    """
    name = Path(path).name
    if not name or name in (".", ".."):
        raise InputError(f"{option} {path!r}: give a file name, e.g. {os.path.join(path, 'out' + suffix)!r}.")
    ext = Path(name).suffix
    if not ext:
        return path + suffix
    if ext.lower() != suffix:
        raise InputError(f"{option} {path!r}: expected a {suffix} file name, received a {ext} one; "
                         f"write e.g. {str(Path(path).with_suffix(suffix))!r}.")
    return path


def parse_feed(text: str) -> tuple[str, Any]:
    """``NAME=FILE.npy``, ``NAME=5`` or ``NAME=[1, 2, 3]`` -> (name, numpy array)."""
    import numpy as np

    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise InputError(f"--input takes NAME=FILE.npy, NAME=NUMBER or NAME=[LIST], received {text!r}.")
    if value.lower().endswith(".npy") or os.path.isfile(value):
        try:
            return name, np.load(value, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"--input {name}: cannot read {value!r} as a .npy file: {exc}") from exc
    try:
        literal = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        literal = None
    if isinstance(literal, bool) or not _is_numbers(literal):
        raise InputError(f"--input {name}: {value!r} is neither a .npy file nor a number or nested list of "
                         f"numbers (e.g. {name}=5 or {name}=[[1, 2], [3, 4]]).")
    try:
        array = np.array(literal)
    except ValueError as exc:  # ragged nesting
        raise InputError(f"--input {name}: {value!r} is not rectangular: {exc}") from exc
    if array.dtype == object:
        raise InputError(f"--input {name}: {value!r} is not rectangular (rows of different lengths).")
    return name, array


def _is_numbers(value: object) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)
