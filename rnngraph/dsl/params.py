"""Parameter declarations, seeded initialisation, and `.npz` save/load.

Parameters live in a flat dict ``"<node>/<param>" -> ndarray`` (float32), e.g.
``"rnn0/W"``. Each draw uses its own generator seeded from ``(seed, name)``, so
adding a layer does not change the weights of the others.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from rnngraph.errors import ParameterError, RnnGraphError
from rnngraph.files import write_atomic

Initializer = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def uniform(scale: float) -> Initializer:
    """U(-scale, scale), PyTorch's recurrent default with scale = 1/sqrt(hidden)."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(-scale, scale, size=shape)

    return draw


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its shape, how it is drawn, and an optional structural mask.

    `mask` (same shape, 0/1) marks entries that are structurally zero (e.g. the
    Clockwork block mask): the compiler and the oracle both multiply by it, so a
    caller-supplied value outside the mask never matters. `trainable` is False
    for weights that stay as drawn (an ESN reservoir).
    """

    shape: tuple[int, ...]
    init: Initializer
    doc: str = ""
    mask: np.ndarray | None = None
    trainable: bool = True


def check_seed(seed: object, error: type[RnnGraphError] = ParameterError) -> int:
    """`seed` if it is a non-negative integer (what numpy's generators take), else `error`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise error(f"invalid value for `seed`: expected a non-negative integer, received {seed!r}.")
    return int(seed)


def generator(seed: int, name: str) -> np.random.Generator:
    """The generator for parameter `name` under `seed` (stable across runs and layers)."""
    return np.random.default_rng([check_seed(seed), zlib.crc32(name.encode())])


def init_params(specs: Mapping[str, ParamSpec], seed: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, spec in specs.items():
        value = np.asarray(spec.init(generator(seed, name), spec.shape), dtype=np.float64)
        if spec.mask is not None:
            value = value * spec.mask
        out[name] = value.astype(np.float32)
    return out


def check_params(specs: Mapping[str, ParamSpec], params: Mapping[str, np.ndarray]) -> None:
    """Raise ParameterError unless `params` has exactly the names and shapes of `specs`."""
    missing = [n for n in specs if n not in params]
    extra = [n for n in params if n not in specs]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise ParameterError(
            f"parameters do not match the model: {'; '.join(parts)}. "
            "Use model.init(seed) or load_params(model, path) to get a matching set."
        )
    for name, spec in specs.items():
        value = np.asarray(params[name])
        if tuple(value.shape) != tuple(spec.shape):
            raise ParameterError(
                f"parameter `{name}`: expected shape {tuple(spec.shape)}, received {tuple(value.shape)}."
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise ParameterError(f"parameter `{name}`: expected a float array, received dtype {value.dtype}.")
        if not np.all(np.isfinite(value)):
            raise ParameterError(f"parameter `{name}`: contains NaN or infinity.")


def effective(specs: Mapping[str, ParamSpec], params: Mapping[str, np.ndarray],
              dtype: type[np.floating] = np.float64) -> dict[str, np.ndarray]:
    """Parameters as the model computes with them (structural masks applied), in `dtype`.

    The oracle computes in float64. The compiler asks for float32, the dtype it writes: an
    unmasked float32 parameter is then the caller's own array (no copy), so a large model's
    export holds its weights once in the caller's dict and once in the ONNX graph, not more.
    """
    out = {}
    for name, spec in specs.items():
        value = np.asarray(params[name], dtype=dtype)
        # np.where, not a product: masked entries are +0 whatever the sign of what the caller stored there,
        # so equal effective parameters export to the same bytes
        out[name] = np.where(spec.mask != 0, value, dtype(0)) if spec.mask is not None else value
    return out


def save_params(params: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Write `params` to an `.npz` file atomically (no pickle; see `rnngraph.files`)."""
    arrays = {k: np.asarray(v) for k, v in params.items()}
    write_atomic(path, lambda f: np.savez(f, **arrays), ParameterError, "parameters")  # type: ignore[arg-type]


def load_params(specs: Mapping[str, ParamSpec], path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read an `.npz` file written by `save_params` and check it against `specs`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ParameterError(f"cannot read parameters from {path!r}: no such file.")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # every .npz is a zip archive; np.load would guess "pickle" for anything else
        raise ParameterError(f"cannot read parameters from {path!r}: not an .npz archive "
                             "(write one with save_params or model.save_params).")
    try:
        with np.load(path, allow_pickle=False) as data:
            params = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # a truncated or damaged archive
        raise ParameterError(f"cannot read parameters from {path!r}: {exc}") from exc
    check_params(specs, params)  # before the cast, so that integer arrays are refused, not converted
    return {k: v.astype(np.float32) for k, v in params.items()}
