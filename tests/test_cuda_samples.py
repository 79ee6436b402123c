"""benchmarks/cuda_samples.py: its run on a GPU (skipped without one), its no-GPU path, its measured path on the CPU."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

import onnxruntime as ort
import pytest

from rnngraph.compiler.options import ExportOptions
from rnngraph.exporters.onnx import build_model_proto
from rnngraph.runtime import oracle

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "cuda_samples.py"
#: CUDA's float32 matrix products may use TF32 (10-bit mantissa) on recent GPUs: errors near 1e-3, bounded here
CUDA_ATOL = 1e-2


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("cuda_samples", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cuda_samples"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has a CUDA provider: the GPU run is tested instead")
def test_without_cuda_it_prints_the_predictions_and_says_why_it_measured_nothing(script, capsys):
    assert script.main(["lstm_peephole", "cell:GRU1", "--batch", "2", "--time", "3"]) == 0
    out = capsys.readouterr().out
    assert "No CUDA provider in this onnxruntime" in out and "install onnxruntime-gpu" in out
    # its native LSTM (in both branches of the NaN-rule If, rnngraph/compiler/nan_rule.py), the lengths' int64 Pad
    assert "lstm_peephole [default] predicted: 3 refused" in out
    assert "refused: Pad 'guard/lengths/padded' [fallback] no CUDA kernel for Pad on int64" in out
    assert re.search(r"lstm_peephole \[cuda\] predicted: 0 refused", out)
    assert "cell:GRU1 [default] predicted: 3 refused" in out and "linear_before_reset=0" in out
    assert "cell:GRU1 [cuda] predicted: 0 refused" in out
    assert "measured:" not in out
    assert script.main(["lstm", "--require-cuda"]) == script.NO_CUDA_STATUS


def test_the_measured_path_runs_on_the_cpu_provider(script, capsys):
    """The report a GPU prints, with the CPU provider standing in for CUDA: values, placement, timing lines."""
    name, model, params, make_feeds = next(c for c in script.cases() if c[0] == "cell:LSTM1")
    feeds = make_feeds(3, 4, 0)
    proto = build_model_proto(model, params, options=ExportOptions(device="cuda"))
    script.report(name, "cuda", proto, feeds, oracle.run(model, params, **feeds), runs=2, device="cpu")
    out = capsys.readouterr().out
    measured = re.search(r"measured: provider CPUExecutionProvider, max \|err\| vs oracle (\S+), "
                         r"nodes \{'CPUExecutionProvider': \d+\}, [\d.]+ ms on cpu vs [\d.]+ ms on the CPU", out)
    assert measured, out
    assert float(measured.group(1)) < 1e-5
    assert "on the CPU:" not in out  # a CPU session leaves nothing to the CPU that another provider refused


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDAExecutionProvider in this onnxruntime (install onnxruntime-gpu)")
def test_every_sample_and_cell_on_cuda_matches_the_oracle(script, capsys):
    assert script.main(["--batch", "3", "--time", "7", "--runs", "2", "--require-cuda"]) == 0
    out = capsys.readouterr().out
    measured = re.findall(r"^(\S+) \[(\w+)\].*\n(?:    (?:refused|inexact).*\n)*    measured: provider (\w+), "
                          r"max \|err\| vs oracle (\S+)", out, re.M)
    assert len(measured) == 2 * len(list(script.cases())), out
    for name, form, provider, err in measured:
        assert provider == "CUDAExecutionProvider", (name, form)
        assert float(err) < CUDA_ATOL, (name, form, err)
    # the heavy nodes of a CUDA-lowered export all run on the GPU, as predicted
    for section in out.split("[cuda]")[1:]:
        section = section.split("[default]")[0]
        assert not re.search(r"on the CPU \(not predicted\): (LSTM|GRU|RNN|Scan|Loop|Gemm|MatMul) ", section), section
