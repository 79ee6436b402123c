"""State shared by the lowerings of one model: the builder, values, hoisted masks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.compiler.builder import GraphBuilder
from rnngraph.compiler.options import ExportOptions
from rnngraph.dsl.layers import Layer
from rnngraph.dsl.model import Model, Source
from rnngraph.dsl.tensor import TensorSpec
from rnngraph.errors import ExportError


@dataclass
class LoweringContext:
    """Everything a lowering needs.

    `params` are the effective parameters (in the export's float type, `options.dtype`, the dtype written;
    structural masks applied).
    `values` maps ``(node, output index)`` to the ONNX value holding it. Sequences
    are batch-first ``(batch, time, features)`` between layers; padded steps hold 0.
    `options` are the export options, read by every lowering that has a choice.
    """

    g: GraphBuilder
    model: Model
    params: dict[str, np.ndarray]
    options: ExportOptions = field(default_factory=ExportOptions)
    values: dict[tuple[str, int], str] = field(default_factory=dict)
    #: per node: which path each recurrent lowering took ("scan", "native", "loop")
    paths: dict[str, str] = field(default_factory=dict)
    #: lengths input -> its clamped value 0..time (`guards.Guards.valid_lengths`); the lowerings themselves
    #: read the lengths input's name, which the guards point at max(L, 1)
    valid_lengths: dict[str, str] = field(default_factory=dict)
    #: pads the batch axis of a graph input the guards do not know (a chunk model's state) to at least one row
    pad_rows: Callable[[str, int], str] = lambda value, rank: value
    #: cuts a batch-first value back to the real batch size (the counterpart of `pad_rows`)
    cut_rows: Callable[[str], str] = lambda value: value
    #: a batch-first sequence value -> a value holding it time-major ``(time, batch, ·)``: consecutive native
    #: layers pass this one on instead of transposing back and forth (`recurrent.time_major`, `batch_first`)
    time_major: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], str] = field(default_factory=dict)

    def value(self, source: Source) -> str:
        return self.values[(source.node, source.index)]

    def node_params(self, node: str) -> dict[str, np.ndarray]:
        return self.model.node_params(node, self.params)

    def cached(self, key: tuple[str, ...], build: Callable[[], str]) -> str:
        """Build a value once per model (masks, lengths casts); later calls reuse it."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # -- padding ------------------------------------------------------------
    def lengths_i32(self, spec: TensorSpec) -> str | None:
        """Lengths as int32 ``(batch,)``, the type ONNX's recurrent ops take, or None."""
        if spec.lengths is None:
            return None
        lengths = spec.lengths
        return self.cached(("lengths_i32", lengths),
                           lambda: self.g.cast(lengths, "int32", name=f"{lengths}/int32"))

    def mask(self, spec: TensorSpec, like: str) -> str | None:
        """Float mask ``(batch, time, 1)``: 1 where step t < lengths[b], else 0; None if unpadded.

        `like` is any batch-first sequence with the same time axis; the mask is
        built once per lengths input, outside every loop.
        """
        valid = self.valid(spec, like)
        if valid is None or spec.lengths is None:
            return None
        lengths = spec.lengths
        return self.cached(("mask", lengths), lambda: self.g.cast(valid, "float", name=f"{lengths}/mask"))

    def valid(self, spec: TensorSpec, like: str, time_axis: int = 1) -> str | None:
        """Bool mask ``(batch, time, 1)``, True where step t < lengths[b]; None if unpadded.

        For `Where`, which (unlike a product with the float `mask`) also clears NaN and infinity.
        With ``time_axis=0``: ``(time, batch, 1)``, for a time-major `like` (the native ops' layout).
        """
        if spec.lengths is None:
            return None
        lengths = spec.lengths
        batch_axis = 1 - time_axis

        def build() -> str:
            g = self.g
            with g.scope(lengths):
                time = g.squeeze(g.dim(like, time_axis), [0])
                steps = g.op("Range", g.const("zero", 0, "int64"), time, g.const("one", 1, "int64"), name="steps")
                valid = g.op("Less", g.unsqueeze(steps, [batch_axis]), g.unsqueeze(lengths, [time_axis]),
                             name="valid" if time_axis else "valid_tm")
                return g.unsqueeze(valid, [2])

        return self.cached(("mask_bool" if time_axis else "valid_tm", lengths), build)


#: fn(ctx, node, layer, sources) -> output values; `layer` is the registered Layer subclass
Lowering = Callable[[LoweringContext, str, Any, Mapping[str, Source]], tuple[str, ...]]
REGISTRY: dict[type, Lowering] = {}


def lowers(layer_type: type) -> Callable[[Lowering], Lowering]:
    """Register the lowering of a layer type: ``fn(ctx, node_name, layer, sources) -> output values``."""

    def register(fn: Lowering) -> Lowering:
        REGISTRY[layer_type] = fn
        return fn

    return register


def lowering_for(layer: Layer) -> Lowering:
    for klass in type(layer).__mro__:
        if klass in REGISTRY:
            return REGISTRY[klass]
    raise ExportError(f"no ONNX lowering for layer {type(layer).__name__}; it cannot be exported yet.")
