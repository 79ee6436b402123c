"""Running a decoder step export: the encoder once per batch of sources, then one call per token.

    decoder = StepDecoder("mt.encoder.onnx", "mt.step.onnx")   # written by rnngraph export MT.py --streaming
    streams = decoder.open(src=src, lengths=lengths)           # one stream per source row, from its encoder state
    out = streams.step([1, 1, 1])                              # the previous token of each stream (BOS first)
    out["scores"], out["argmax"]                               # (streams, vocab), (streams,)
    decoded = decoder.greedy(src=src, lengths=lengths)         # {"tokens", "scores"[, "weights"]}, as in-graph

The layout (inputs, outputs, state, context; docs/deploy.md) is read from the files'
metadata ``rnngraph.state``. Each `open` gives an independent group of streams with its
own context and state; row b of every call belongs to stream b.

Imports numpy and onnxruntime only (and rnngraph's error classes, which import nothing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnngraph.errors import InputError, RnnGraphError
from rnngraph.runtime.session import Session, as_array, inference_session

Model = str | os.PathLike[str] | bytes | Any


def step_layout(metadata: dict[str, str], what: str) -> dict[str, Any]:
    """The decoder step layout of one of the two files, or an error saying what the file is instead."""
    layout: dict[str, Any] = json.loads(metadata.get("rnngraph.state", '{"streaming": false}'))
    if layout.get("kind") != "decoder_step":
        raise RnnGraphError(f"the {what} is not part of a decoder step export (its metadata `rnngraph.state` has no "
                            "kind 'decoder_step'); export the decoder model with `rnngraph export MODEL.py "
                            "--streaming` or `rnngraph.export_decoder_step`.")
    return layout


class StepDecoder:
    """The two sessions of a decoder step export: `encoder` (a checked `Session`) and the step model."""

    def __init__(self, encoder: Model, step: Model, device: str = "cpu", threads: int | None = None) -> None:
        self.encoder = Session(encoder, device, threads)
        self.step_session = inference_session(step, device, threads)
        self.layout = step_layout(self.step_session.get_modelmeta().custom_metadata_map, "step model")
        if step_layout(self.encoder.metadata, "encoder model") != self.layout:
            raise RnnGraphError("the encoder and step models are not one pair (their `rnngraph.state` layouts "
                                "differ); give the two files written by one export.")
        lay = self.layout
        #: state input -> state output, the steps first
        self.carried = {s["input"]: s["output"] for s in [lay["steps"], *lay["states"]]}
        self.context = [c["name"] for c in lay["context"]]
        self.outputs = list(lay["outputs"].values())
        #: the per-step float outputs: scores[, weights]
        self.per_step = [lay["outputs"][k] for k in ("scores", "weights") if k in lay["outputs"]]
        self.states = [s["input"] for s in lay["states"]]
        self.argmax: str = lay["outputs"]["argmax"]
        self.token: str = lay["token"]["input"]
        #: what each step call fetches: the outputs, then the carried states in `carried` order
        self.fetched = self.outputs + list(self.carried.values())
        self.bos, self.eos, self.pad, self.vocab = lay["bos"], lay["eos"], lay["pad"], lay["vocab"]

    def open(self, **sources: Any) -> DecoderStreams:
        """Run the encoder on a batch of sources (its inputs, e.g. ``src``, ``lengths``): one stream per row."""
        slots = self.layout["states"]
        got = self.encoder.run([s["output"] for s in slots] + self.context, **sources)
        count = got[slots[0]["output"]].shape[0]
        state = {self.layout["steps"]["input"]: np.zeros((count, 1), np.int64)}
        state.update({s["input"]: got[s["output"]] for s in slots})
        return DecoderStreams(self, count, state, {name: got[name] for name in self.context})

    def greedy(self, max_len: int | None = None, **sources: Any) -> dict[str, np.ndarray]:
        """Greedy decoding driven from Python, one step call per token (see `DecoderStreams.greedy`)."""
        return self.open(**sources).greedy(max_len)


class DecoderStreams:
    """The context and decoder state of a batch of independent streams (row b is stream b)."""

    def __init__(self, model: StepDecoder, count: int, state: dict[str, np.ndarray],
                 context: dict[str, np.ndarray]) -> None:
        self.model, self.count = model, count
        self.state, self.context = state, context

    def step(self, tokens: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """One decoding step of every stream from its previous token ``(streams,)`` (BOS at the first step).

        Returns ``scores (streams, vocab)``, ``argmax (streams,)`` and, with attention,
        ``weights (streams, time)``; the state moves on (kept here).
        """
        token = as_array("tokens", tokens)
        if not np.issubdtype(token.dtype, np.integer) or token.shape != (self.count,):
            raise InputError(f"tokens: expected integer token ids of shape ({self.count},), one per stream, "
                             f"received dtype {token.dtype} shape {token.shape}.")
        if token.size and (token.min() < 0 or token.max() >= self.model.vocab):
            raise InputError(f"tokens: ids must be in [0, {self.model.vocab}) (the decoder's vocabulary), "
                             f"received {token.tolist()}.")
        return self._run(token.astype(np.int64))

    def _run(self, token: np.ndarray) -> dict[str, np.ndarray]:
        model = self.model
        feeds = {model.token: token, **self.state, **self.context}
        try:
            values = model.step_session.run(model.fetched, feeds)
        except Exception as exc:  # noqa: BLE001
            raise RnnGraphError(f"onnxruntime failed while running the decoder step: {exc}") from exc
        n = len(model.outputs)
        self.state = dict(zip(model.carried, values[n:], strict=True))
        return dict(zip(model.outputs, values[:n], strict=True))

    def greedy(self, max_len: int | None = None) -> dict[str, np.ndarray]:
        """Greedy decoding: from BOS, each step fed the previous step's argmax, until every stream emitted EOS
        or `max_len` steps ran (None: the decoder's own `max_len`).

        As the in-graph Loop: after a stream's EOS its tokens are `pad`, its scores and weights 0, its
        state kept. Returns ``tokens (streams, steps)`` int64, ``scores (streams, steps, vocab)`` and,
        with attention, ``weights (streams, steps, time)``.
        """
        model = self.model
        limit = model.layout["max_len"] if max_len is None else max_len
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0:
            raise InputError(f"max_len: expected a count ≥ 0, received {max_len!r}.")
        cap = model.layout.get("max_len_cap")
        limit = min(int(limit), cap) if cap is not None else int(limit)
        token = np.full(self.count, model.bos, np.int64)
        done = np.zeros(self.count, bool)
        steps: dict[str, list[np.ndarray]] = {"tokens": [], **{name: [] for name in model.per_step}}
        for _ in range(limit):
            before = self.state
            out = self._run(token)
            best = out[model.argmax]
            if done.any():  # only then is there anything to mask (kept off the common path: it costs per token)
                alive = ~done[:, None]
                best = np.where(done, model.pad, best)
                out = {name: out[name] * alive for name in model.per_step}
                # finished streams keep their decoder state (the steps count on, as the Loop's clock does)
                self.state.update({k: np.where(alive, self.state[k], before[k]) for k in model.states})
            token = best
            steps["tokens"].append(token)
            for name in model.per_step:
                steps[name].append(out[name])
            done = done | (token == model.eos)
            if done.all():
                break
        return {name: _stacked(values, self, name) for name, values in steps.items()}


def _stacked(values: list[np.ndarray], streams: DecoderStreams, name: str) -> np.ndarray:
    """Steps stacked on axis 1; no step: an empty axis with the right trailing size."""
    if values:
        return np.stack(values, axis=1)
    if name == "tokens":
        return np.zeros((streams.count, 0), np.int64)
    trailing = streams.model.vocab if name == "scores" else streams.context["context/memory"].shape[1]
    return np.zeros((streams.count, 0, trailing), np.float32)
