"""onnxruntime's ORT format, for its mobile and minimal builds.

A minimal onnxruntime build runs only `.ort` files and contains only the operator
kernels listed in a "required operators" configuration at build time. Both come
from onnxruntime's own converter (`onnxruntime.tools.convert_onnx_models_to_ort`),
which this module runs on an exported `.onnx` file:

    files = write_ort_format("tagger.onnx")        # tagger.ort, tagger.required_operators.config
    onnxruntime.InferenceSession(str(files.ort))    # loads in any onnxruntime, full or minimal

The conversion uses the "fixed" optimization style: the graph is optimized once, at
conversion, for the basic optimizations every build has, so the `.ort` file runs the
same graph on every device. `operator_table` lists which operators an export needs,
per ONNX domain and opset, for the documentation of what a minimal build must contain.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass

import onnx

from rnngraph.errors import ExportError
from rnngraph.exporters.onnx.write import external_locations


@dataclass(frozen=True)
class OrtFiles:
    """The files `write_ort_format` wrote."""

    ort: pathlib.Path
    #: the operator list to build a minimal onnxruntime with (its `--include_ops_by_config` option)
    required_operators: pathlib.Path


def write_ort_format(onnx_path: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None) -> OrtFiles:
    """Convert `onnx_path` to `<stem>.ort` and `<stem>.required_operators.config` in `output_dir`.

    `output_dir` defaults to the folder of `onnx_path`. Existing files of those names are
    replaced only once both new files exist (the converter writes into a temporary folder).
    """
    try:
        from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort
    except ImportError as exc:  # the tools ship with the full onnxruntime package, not with minimal builds
        raise ExportError(f"the ORT format needs onnxruntime's converter (onnxruntime.tools), which this "
                          f"onnxruntime lacks ({exc}); install the full `onnxruntime` package.") from exc
    source = pathlib.Path(onnx_path)
    if not source.is_file():
        raise ExportError(f"cannot convert {str(source)!r} to the ORT format: no such file; export the model first.")
    target = pathlib.Path(output_dir) if output_dir is not None else source.parent
    if not target.is_dir():
        raise ExportError(f"cannot write the ORT files into {str(target)!r}: no such directory.")
    stem = source.name[: -len(".onnx")] if source.name.lower().endswith(".onnx") else source.name
    with tempfile.TemporaryDirectory(dir=target, prefix=".rnngraph-ort-") as tmp:
        work = pathlib.Path(tmp)
        staged = work / f"{stem}.onnx"
        shutil.copyfile(source, staged)
        for data in external_data_files(source):  # weights stored beside a large model travel with it
            shutil.copyfile(source.parent / data, work / data)
        out = work / "out"
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                convert_onnx_models_to_ort(staged, output_dir=out, optimization_styles=[OptimizationStyle.Fixed])
        except Exception as exc:  # noqa: BLE001 - the converter raises bare Exceptions; name the file and its log
            raise ExportError(f"onnxruntime could not convert {str(source)!r} to the ORT format: {exc}\n"
                              f"{log.getvalue().strip()}") from exc
        made = {"ort": out / f"{stem}.ort", "required_operators": out / f"{stem}.required_operators.config"}
        missing = [str(p.name) for p in made.values() if not p.is_file()]
        if missing:
            raise ExportError(f"onnxruntime's converter did not write {missing} for {str(source)!r}:\n"
                              f"{log.getvalue().strip()}")
        final = {key: target / path.name for key, path in made.items()}
        for key, path in made.items():
            os.replace(path, final[key])
    return OrtFiles(**final)


def external_data_files(path: pathlib.Path) -> set[str]:
    """The file names (relative to the model's folder) that a model's external-data tensors point to."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and onnx's own errors alike
        raise ExportError(f"could not convert {str(path)!r} to the ORT format: it is not a readable ONNX file "
                          f"({type(exc).__name__}: {exc}).") from exc

    return external_locations(proto.graph)


def operators(graph: onnx.GraphProto) -> set[str]:
    """Operator types of a graph and of every Scan/Loop/If body in it, as ``domain:Op`` (``ai.onnx`` for "")."""
    found = {f"{node.domain or 'ai.onnx'}:{node.op_type}" for node in graph.node}
    for node in graph.node:
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found |= operators(body)
    return found


def operator_table(models: dict[str, onnx.ModelProto]) -> str:
    """A Markdown table: one row per model, the ONNX operators it needs (sorted, domain prefix dropped for ai.onnx)."""
    lines = ["| model | opset | operators |", "|---|---|---|"]
    for name, proto in models.items():
        opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        ops = sorted(op.removeprefix("ai.onnx:") for op in operators(proto.graph))
        lines.append(f"| {name} | {opset} | {', '.join(ops)} |")
    return "\n".join(lines)
