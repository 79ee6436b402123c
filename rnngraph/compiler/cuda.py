"""What onnxruntime's CUDA execution provider runs, and what it leaves to the CPU.

docs/deploy.md, "On a GPU: onnxruntime's CUDA provider", says it for users.

Three ways a node of an exported graph ends up on the CPU in a CUDA session:

1. **Rejected recurrent options.** The CUDA provider runs ONNX's ``LSTM``, ``GRU`` and
   ``RNN`` through cuDNN, and its capability check (``RNNNeedFallbackToCPU``, called from
   ``CUDAExecutionProvider::GetCapability`` in
   onnxruntime/core/providers/cuda/cuda_execution_provider.cc) hands the node to the CPU
   provider when it carries any of ``clip``, ``activation_alpha``, ``activation_beta``;
   when an ``activations`` entry differs from cuDNN's fixed ones (LSTM: sigmoid, tanh,
   tanh; GRU: sigmoid, tanh; RNN: tanh only — its CUDA kernel could run ReLU, the check
   still refuses it); for an LSTM with ``input_forget`` ≠ 0 or a peephole input ``P``;
   for a GRU whose ``linear_before_reset`` is not 1 (cuDNN applies the reset gate after
   the recurrent product only). `recurrent_fallback` states the same rule.
2. **No CUDA kernel for the op at that type** (the CUDA table of onnxruntime's
   docs/OperatorKernels.md; `KERNELS` below holds it for every op rnngraph emits). Of
   rnngraph's graphs only ``Pad`` on int64 (the guards' padding of lengths and token ids)
   has none; lowered for CUDA, the guards pad those by concatenation instead.
3. **Small shape computations, on purpose** (``GetCpuPreferredNodes`` in
   onnxruntime/core/framework/fallback_cpu_capability.cc): starting from values a CUDA
   kernel leaves in CPU memory (``Shape``'s output, a CPU provider node's outputs), a
   node whose every input is such a value, a graph input or an initializer of at most 100
   elements, and that a CUDA kernel would not read from CPU memory anyway, runs on the CPU
   (float16 inputs excepted). These are int64 index and size computations that cost less
   on the CPU than a copy to the GPU; rnngraph reports them apart from 1 and 2.

One more limit is not a placement but a result: the CUDA kernels run a ``reverse`` LSTM, GRU
or RNN by reversing the whole padded time axis before cuDNN (``ReverseBySequence`` over all
steps, in onnxruntime/core/providers/cuda/rnn/cudnn_rnn_base.cc), so a row shorter than the
batch's time axis starts its reverse pass on padding rather than on its own last step, which
ONNX's ``sequence_lens`` requires (`CUDA_REVERSE_WITH_LENGTHS`). Read in the sources, not
confirmed on a GPU here; the CUDA lowering keeps reverse runs in Scan loops.

Checked against onnxruntime's sources (the rule of 1 is unchanged from 1.x releases up to
the current CUDA provider; the kernel table is the one of opsets up to 24); the measured
report of a real session (`rnngraph.runtime.placement`) is the authority where they differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: cuDNN's activations, per direction, in ONNX's order (forward then reverse for bidirectional nodes)
CUDNN_ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "LSTM": ("sigmoid", "tanh", "tanh") * 2,
    "GRU": ("sigmoid", "tanh") * 2,
    "RNN": ("tanh",) * 2,
}

_FLOATS = frozenset({"FLOAT", "DOUBLE", "FLOAT16"})
_FLOATS_B = _FLOATS | {"BFLOAT16"}
_WIDE_INTS = frozenset({"INT32", "INT64", "UINT32", "UINT64"})
_ALL = _FLOATS_B | {"BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
_BOOL = frozenset({"BOOL"})

#: op -> (element types its CUDA kernels take, index of the input whose type decides), opsets 13 on
KERNELS: dict[str, tuple[frozenset[str], int]] = {
    **{op: (_FLOATS_B | _WIDE_INTS, 0) for op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Mod")},
    **{op: (_BOOL, 0) for op in ("And", "Or", "Not", "Xor")},
    **{op: (_FLOATS, 0) for op in ("ArgMax", "ArgMin", "LSTM", "GRU", "RNN", "Exp", "Log", "Softsign",
                                   "Softplus", "Elu", "LeakyRelu", "HardSigmoid", "Reciprocal", "Einsum",
                                   "Floor", "Ceil", "Round")},
    **{op: (_FLOATS_B, 0) for op in ("Gemm", "MatMul", "Sigmoid", "Tanh", "Relu", "Softmax", "Sqrt", "Erf",
                                     "IsNaN", "IsInf", "Sum", "Dropout")},
    **{op: (_ALL, 0) for op in ("Cast", "Concat", "Expand", "Gather", "GatherElements", "Identity", "Reshape",
                                "Shape", "Size", "Slice", "Split", "Squeeze", "Unsqueeze", "Transpose",
                                "Flatten", "If", "Loop", "Scan", "Trilu", "Compress")},
    "ConstantOfShape": (frozenset({"INT64"}), 0),
    "CumSum": (_FLOATS | _WIDE_INTS, 0),
    "Equal": (_FLOATS | _WIDE_INTS | _BOOL, 0),
    **{op: (_FLOATS | _WIDE_INTS, 0) for op in ("Less", "Greater", "LessOrEqual", "GreaterOrEqual")},
    "GatherND": (_FLOATS_B | {"BOOL", "INT64"}, 0),
    "Pad": (_FLOATS | _BOOL, 0),
    "Range": (frozenset({"FLOAT", "DOUBLE", "INT16", "INT32", "INT64"}), 0),
    "ReduceMax": (_FLOATS | {"INT32", "INT64"}, 0),
    "ReduceMin": (_FLOATS | {"INT32", "INT64", "INT8", "UINT8"}, 0),
    "ReduceSum": (_FLOATS_B | {"INT32", "INT64"}, 0),
    "ReduceMean": (_FLOATS | {"INT32"}, 0),
    "Where": (_FLOATS_B | {"INT32", "INT64", "UINT8"}, 1),
    "Tile": (_FLOATS_B | {"INT32", "INT64"}, 0),
    "Clip": (_FLOATS | {"INT64", "INT8", "UINT64", "UINT8"}, 0),
    "NonZero": (frozenset({"BOOL", "FLOAT", "FLOAT16", "INT32", "INT64", "UINT8"}), 0),
    "TopK": (_FLOATS | {"INT32", "INT64"}, 0),
    "Neg": (_FLOATS_B | {"INT8", "INT16", "INT32", "INT64"}, 0),
    "Abs": (_ALL - _BOOL, 0),
    "Pow": (_FLOATS_B | {"INT32", "INT64"}, 0),
}

#: inputs a CUDA kernel reads from CPU memory (shapes, axes, counts, lengths): they never pull a node to the CPU
CPU_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2), "Slice": (1, 2, 3, 4),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "Tile": (1,), "Pad": (1, 2, 3), "TopK": (1,),
    "CumSum": (1,), "Loop": (0, 1), "If": (0,), "Trilu": (1,), "Clip": (1, 2),
    **{op: (1,) for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean")},
    **{op: (4,) for op in ("LSTM", "GRU", "RNN")},
}
#: outputs a CUDA kernel writes to CPU memory: where onnxruntime's CPU-preferred shape subgraphs start
CPU_OUTPUTS: dict[str, tuple[int, ...]] = {"Shape": (0,), "Size": (0,)}

#: why the CUDA lowering runs reverse recurrent layers as Scan loops (module docstring)
CUDA_REVERSE_WITH_LENGTHS = ("runs on CUDA, but its CUDA kernel reverses the whole padded time axis before cuDNN, "
                             "so a reverse pass over a row shorter than the time axis starts on padding")

#: ONNX's element type number of strings (TensorProto.STRING)
STRING = 8
#: the initializer size (elements) up to which onnxruntime lets a node with that input stay on the CPU
SMALL_INITIALIZER = 100


def recurrent_fallback(op_type: str, attributes: Mapping[str, Any], inputs: Sequence[str]) -> str | None:
    """Why the CUDA provider leaves this LSTM/GRU/RNN node to the CPU, or None where cuDNN runs it.

    `attributes` maps names to values (ints, floats, lists of strings); `inputs` are the
    node's input names ("" for an absent optional input).
    """
    for name in ("clip", "activation_alpha", "activation_beta"):
        if name in attributes:
            return f"{op_type} with `{name}`: cuDNN has no such option"
    wanted = CUDNN_ACTIVATIONS[op_type]
    given = [str(a.decode() if isinstance(a, bytes) else a).lower() for a in attributes.get("activations", ())]
    if any(have != want for have, want in zip(given, wanted, strict=False)):
        return f"{op_type} with activations {given}: cuDNN runs only {list(wanted[:len(given)])}"
    if op_type == "LSTM" and int(attributes.get("input_forget", 0)) != 0:
        return "LSTM with input_forget=1 (coupled gates): cuDNN has no coupled LSTM"
    if op_type == "LSTM" and len(inputs) > 7 and inputs[7]:
        return "LSTM with peepholes (input P): cuDNN has no peephole LSTM"
    if op_type == "GRU" and "linear_before_reset" in attributes and int(attributes["linear_before_reset"]) != 1:
        return "GRU with linear_before_reset=0: cuDNN applies the reset gate after the recurrent product only"
    return None


def recurrent_runs_on_cuda(op_type: str, attributes: Mapping[str, Any], peephole: bool = False) -> bool:
    """Whether the CUDA provider runs a native `op_type` node with these attributes (a cell's eligibility)."""
    inputs = ["X", "W", "R", "B", "", "", "", "P" if peephole else ""]
    return recurrent_fallback(op_type, attributes, inputs) is None


def kernel_fallback(op_type: str, domain: str, dtypes: Sequence[str | None], attributes: Mapping[str, Any],
                    inputs: Sequence[str]) -> str | None:
    """Why the CUDA provider would not run this node (no kernel, a rejected option), or None.

    `dtypes` are the element type names of the node's inputs (None where unknown).
    """
    if domain not in ("", "ai.onnx"):
        return f"{op_type} of domain {domain!r}: rnngraph knows no CUDA kernel of that domain"
    if op_type not in KERNELS:
        return (f"{op_type}: not in rnngraph's table of onnxruntime's CUDA kernels (compiler/cuda.py KERNELS); "
                "counted as a CPU node until checked against onnxruntime's docs/OperatorKernels.md")
    if op_type in CUDNN_ACTIVATIONS:
        reason = recurrent_fallback(op_type, attributes, inputs)
        if reason:
            return reason
    if op_type == "Cast" and attributes.get("to") == STRING:
        return "Cast to string: the CUDA provider has no string tensors"
    types, index = KERNELS[op_type]
    dtype = dtypes[index] if index < len(dtypes) else None
    if dtype is not None and dtype not in types:
        return f"no CUDA kernel for {op_type} on {dtype.lower()} (it has {', '.join(sorted(t.lower() for t in types))})"
    return None


def inexact_on_cuda(op_type: str, attributes: Mapping[str, Any], inputs: Sequence[str]) -> str | None:
    """Why a recurrent node the CUDA provider runs may differ from ONNX's meaning there, or None.

    A ``reverse`` or ``bidirectional`` LSTM/GRU/RNN with ``sequence_lens`` (`CUDA_REVERSE_WITH_LENGTHS`).
    """
    direction = attributes.get("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    if op_type in CUDNN_ACTIVATIONS and direction != "forward" and len(inputs) > 4 and inputs[4]:
        return f"{op_type} direction={direction} with sequence_lens {CUDA_REVERSE_WITH_LENGTHS}"
    return None
