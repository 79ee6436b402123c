"""`Imported`: what a one-call import returns — the model, its parameters, and how to feed it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngraph.dsl.model import Model
from rnngraph.errors import InputError


@dataclass(frozen=True)
class MaskRule:
    """How a Keras model masks the steps of input `input`: ``ids != 0`` (``Embedding(mask_zero=True)``)
    or ``any(x != value)`` over the features (``Masking(mask_value=value)``)."""

    input: str
    lengths: str
    value: float | None = None  # None: token ids, 0 is padding

    def mask(self, x: np.ndarray) -> np.ndarray:
        return x != 0 if self.value is None else np.any(x != self.value, axis=-1)


def lengths_from_mask(mask: np.ndarray, what: str) -> np.ndarray:
    """Lengths ``(batch,)`` of a ``(batch, time)`` mask whose rows are valid steps, then padding.

    rnngraph pads at the end of each row only (``lengths`` in ``1..time``); a mask with
    a gap, leading padding or no valid step is an InputError saying so.
    """
    mask = np.asarray(mask, dtype=bool)
    lengths = mask.sum(axis=1)
    prefix = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero(np.any(mask != prefix, axis=1) | (lengths == 0))
    if bad.size:
        row = int(bad[0])
        raise InputError(
            f"{what}: row {row} has the mask {mask[row].astype(int).tolist()}; rnngraph takes masks that keep a "
            "row's first steps and pad after them (at least one valid step). Pad at the end "
            "(keras.utils.pad_sequences(..., padding='post')), and never put the mask value inside a sequence.")
    return lengths.astype(np.int64)


@dataclass(frozen=True)
class Imported:
    """A trained framework model as an rnngraph model and parameters.

        model, params = import_pytorch(module)          # unpacks like a pair
        imported.feeds(x=x)                              # inputs for a session / the oracle
        imported.final_states(outputs)                   # PyTorch-shaped h_n, c_n

    `notes` say what the import reconciled (dropout at inference, how padded steps are
    emitted); `state_stacks` names the outputs that stack into each PyTorch final state.
    """

    model: Model
    params: dict[str, np.ndarray]
    notes: tuple[str, ...] = ()
    masks: tuple[MaskRule, ...] = ()
    state_stacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.params))

    def feeds(self, **inputs: Any) -> dict[str, Any]:
        """`inputs` plus the lengths the framework's masks imply, where not given.

        ``Embedding(mask_zero=True)``: a row's length is its count of non-zero ids;
        ``Masking(mask_value=v)``: of steps with any feature ≠ v. See `lengths_from_mask`.
        """
        out = dict(inputs)
        for rule in self.masks:
            if rule.lengths not in out and rule.input in out:
                out[rule.lengths] = lengths_from_mask(rule.mask(np.asarray(out[rule.input])),
                                                      f"the mask of input {rule.input!r}")
        return out

    def final_states(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """PyTorch's final states from a run's outputs: ``h_n`` (and ``c_n``), ``(layers*directions, batch, H)``."""
        return {name: np.stack([outputs[part] for part in parts]) for name, parts in self.state_stacks.items()}


__all__ = ["Imported", "MaskRule", "lengths_from_mask"]
