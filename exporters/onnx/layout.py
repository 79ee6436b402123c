"""Where each model parameter lives in an exported file, so that a shipped ``.onnx`` reads back exactly.

The compiler rewrites parameters on their way into initializers: it transposes,
reorders gate blocks, splits them between activation groups, negates (a coupled
LSTM's input gate) and folds some together (``Wb + Rb``, which only matter as a
sum). Rather than keep an inverse of every lowering in step with the compiler,
`record` asks the compiler itself: it compiles the model once more with *probe*
parameters, element k of the flattened parameters set to the integer k + 1 (exact
in float32 up to 2^24 elements), and finds where each integer landed (``±(k + 1)``
in some initializer). Each such place is then checked against the real export;
what is found and checked is written as runs, what is not (folded sums; anything
the check rejects) is written out as float32 values. So `read` gives back the
parameters bit for bit as the model computes with them (structural masks applied),
and the same parameters re-export the same file.

The layout, JSON in the metadata key ``rnngraph.params``::

    {"version": 1, "initializers": ["rnn0/W", ...],
     "params": {"rnn0/W": {"runs": [[init, sign, e0, i0, length, stride, count, de, di], ...],
                           "values": [[e0, "<base64 float32, little-endian>"], ...]}}}

A float64 export (`ExportOptions.dtype`) adds ``"dtype": "float64"``: its parameters are read
from its float64 initializers and its ``values`` are float64 (the probe integers are exact there too).

A run group sets, for c < count and j < length, flat element ``e0 + c·de + j`` of the
parameter to ``sign · initializers[init].flat[i0 + c·di + j·stride]``; ``values`` sets
consecutive elements from e0 on; every other element is 0.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from rnngraph.compiler.options import ExportOptions
from rnngraph.dsl.model import Model
from rnngraph.dsl.params import effective
from rnngraph.exporters.onnx.write import tensors

LAYOUT_VERSION = 1
#: float32 holds every integer up to 2^24 exactly: the largest model a probe can trace
MAX_TRACED = 1 << 24


#: the export's float type -> (its initializers' ONNX type, the unsigned integer of its bit pattern)
FLOAT_TYPES = {"float32": (onnx.TensorProto.FLOAT, np.uint32), "float64": (onnx.TensorProto.DOUBLE, np.uint64)}


def float_arrays(graph: onnx.GraphProto, dtype: str = "float32") -> dict[str, np.ndarray]:
    """The initializers of `graph` (bodies included) of the float type `dtype`, flattened, by name."""
    return {t.name: numpy_helper.to_array(t).ravel() for t in tensors(graph)
            if t.data_type == FLOAT_TYPES[dtype][0]}


def record(model: Model, params: Mapping[str, np.ndarray], graph: onnx.GraphProto, opset: int,
           options: ExportOptions) -> dict[str, Any] | None:
    """The layout of `params` in `graph` (the compiled export of `model`); None past 2^24 parameter values."""
    from rnngraph.compiler import compile_model

    specs = model.param_specs()
    sizes = {name: int(np.prod(spec.shape)) for name, spec in specs.items()}
    total = sum(sizes.values())
    if total >= MAX_TRACED:
        return None
    offsets = dict(zip(sizes, np.cumsum([0, *sizes.values()])[:-1].tolist(), strict=True))
    probe = {name: (np.arange(sizes[name], dtype=np.float64) + offsets[name] + 1).reshape(spec.shape)
             for name, spec in specs.items()}
    dtype, bits = options.dtype, FLOAT_TYPES[options.dtype][1]
    traced = float_arrays(compile_model(model, probe, opset, options=options).filled(), dtype)
    names = list(traced)
    real = float_arrays(graph, dtype)
    flat_probe = np.concatenate([traced[n] for n in names]) if names else np.zeros(0, dtype)
    # the real values at the same places; NaN where the real export has no initializer of that name and size
    flat_real = np.concatenate([real[n] if n in real and real[n].size == traced[n].size
                                else np.full(traced[n].size, np.nan, dtype) for n in names]) \
        if names else np.zeros(0, dtype)
    starts = np.cumsum([0, *(traced[n].size for n in names)])

    # first place of each probe integer, a positive copy before a negated one. A repeated index in a numpy
    # assignment keeps the last value assigned, so the places are assigned last to first, negated ones before
    value = np.abs(flat_probe)
    hit = np.nonzero((value >= 1) & (value <= total) & (value == np.floor(value)))[0][::-1]
    ids = value[hit].astype(np.int64) - 1
    negative = flat_probe[hit] < 0
    location = np.full(total, -1, np.int64)
    sign = np.ones(total, dtype)
    location[ids[negative]] = hit[negative]
    sign[ids[negative]] = -1
    location[ids[~negative]] = hit[~negative]
    sign[ids[~negative]] = 1

    truth = np.concatenate([np.asarray(v, dtype).ravel() for v in effective(specs, params).values()]) \
        if specs else np.zeros(0, dtype)
    found = location >= 0
    got = np.zeros(total, dtype)
    got[found] = flat_real[location[found]] * sign[found]
    exact = found & (got.view(bits) == truth.view(bits))

    which = np.searchsorted(starts, location, side="right") - 1  # initializer of each location
    out: dict[str, Any] = {}
    used: dict[str, int] = {}
    for name, size in sizes.items():
        e = np.arange(offsets[name], offsets[name] + size)
        ok = exact[e]
        entry: dict[str, Any] = {}
        runs = _runs(np.nonzero(ok)[0], which[e][ok], location[e][ok] - starts[which[e][ok]], sign[e][ok])
        if runs:
            entry["runs"] = [[used.setdefault(names[r[0]], len(used)), *r[1:]] for r in runs]
        rest = np.nonzero(~ok & (truth[e].view(bits) != 0))[0]  # +0 needs no entry: read gives 0
        if rest.size:
            little = np.dtype(dtype).newbyteorder("<")
            entry["values"] = [[int(seg[0]), base64.b64encode(truth[e][seg].astype(little).tobytes()).decode()]
                               for seg in np.split(rest, np.nonzero(np.diff(rest) != 1)[0] + 1)]
        out[name] = entry
    found_layout: dict[str, Any] = {"version": LAYOUT_VERSION, "initializers": list(used), "params": out}
    if dtype != "float32":  # a float32 layout stays as it was written before float64 exports
        found_layout["dtype"] = dtype
    return found_layout


def _runs(e: np.ndarray, k: np.ndarray, i: np.ndarray, s: np.ndarray) -> list[list[int]]:
    """Run groups ``[init, sign, e0, i0, length, stride, count, de, di]`` covering elements `e` (sorted).

    Level 1: maximal runs of consecutive elements in one initializer, one sign, and an
    arithmetic progression of places. Level 2: level-1 runs alike in all but their start, with
    starts in arithmetic progression (a transposed matrix is one group), each continuing the
    latest group of its kind (so runs that alternate between two initializers make two groups).
    """
    n = e.size
    if n == 0:
        return []
    d = np.diff(i)
    bad = (np.diff(e) != 1) | (np.diff(k) != 0) | (np.diff(s) != 0)
    changes = np.union1d(np.nonzero(bad)[0], np.nonzero(d[1:] != d[:-1])[0] + 1)
    level1: list[tuple[int, int, int, int, int, int]] = []
    start = 0
    while start < n:
        if start == n - 1 or bad[start]:
            stop, stride = start, 1
        else:
            after = changes[np.searchsorted(changes, start + 1):]
            stop, stride = (int(after[0]) if after.size else n - 1), int(d[start])
        level1.append((int(k[start]), int(s[start]), int(e[start]), int(i[start]), stop - start + 1, stride))
        start = stop + 1
    groups: list[list[int]] = []
    # the group each (initializer, sign, length, stride) continues: runs into two initializers interleave
    # (a parameter split between a bias and a weight), and each initializer's runs form their own progression
    latest: dict[tuple[int, int, int, int], list[int]] = {}
    for run in level1:
        key = (run[0], run[1], run[4], run[5])
        g = latest.get(key)
        if g is not None:
            if g[6] == 1:
                g[6], g[7], g[8] = 2, run[2] - g[2], run[3] - g[3]
                continue
            if run[2] == g[2] + g[6] * g[7] and run[3] == g[3] + g[6] * g[8]:
                g[6] += 1
                continue
        latest[key] = [*run, 1, 0, 0]
        groups.append(latest[key])
    return groups


def read(graph: onnx.GraphProto, layout: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """The parameters recorded by `record`, from the initializers of `graph`, as arrays of `shapes` in the
    export's float type (float32, or float64 for a float64 export)."""
    dtype = layout.get("dtype", "float32")
    arrays = float_arrays(graph, dtype)
    names = layout["initializers"]
    out = {}
    for name, shape in shapes.items():
        entry = layout["params"][name]
        flat = np.zeros(int(np.prod(shape)), dtype)
        for init, sign, e0, i0, length, stride, count, de, di in entry.get("runs", []):
            c, j = np.arange(count)[:, None], np.arange(length)[None, :]
            flat[(e0 + c * de + j).ravel()] = sign * arrays[names[init]][(i0 + c * di + j * stride).ravel()]
        for e0, data in entry.get("values", []):
            values = np.frombuffer(base64.b64decode(data), np.dtype(dtype).newbyteorder("<"))
            flat[e0:e0 + values.size] = values
        out[name] = flat.reshape(shape)
    return out
