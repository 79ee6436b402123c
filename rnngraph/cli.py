"""The `rnngraph` command line: export, verify, run, show, demo (exit codes: EXIT_CODES below)."""

from __future__ import annotations

import argparse
import collections
import glob
import importlib.util
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnngraph.cli_args import model_kind, output_path, parse_feed
from rnngraph.errors import RnnGraphError

NATIVE_OPS = ("LSTM", "GRU", "RNN")


def op_histogram(graph: object) -> collections.Counter[str]:
    """Op types of a graph, subgraphs (Scan/Loop/If bodies) included."""
    counts: collections.Counter[str] = collections.Counter()
    for node in graph.node:  # type: ignore[attr-defined]
        counts[node.op_type] += 1
        for attr in node.attribute:
            if attr.g.node:
                counts.update(op_histogram(attr.g))
            for sub in attr.graphs:
                counts.update(op_histogram(sub))
    return counts


def loop_kinds(graph: object) -> str:
    ops = op_histogram(graph)
    kinds = [k for k in ("Scan", "Loop", *NATIVE_OPS) if ops.get(k)]
    return "+".join(kinds) or "-"


def cmd_export(args: argparse.Namespace) -> int:
    from rnngraph.compiler.options import ExportOptions
    from rnngraph.exporters.onnx import export
    from rnngraph.verify import load_model_file

    mf = load_model_file(args.model, args.seed, args.kind)
    if args.streaming and has_decoder(mf.model):
        return export_decoder_files(args, mf.model, mf.params)
    # float64 is compiled in (ExportOptions.dtype); float16 and int8 are copies of the float32 export
    compiled = "float64" if args.dtype == "float64" and not args.quantize else "float32"
    options = ExportOptions(lowering=args.lowering, streaming=args.streaming, dtype=compiled, device=args.device)
    if args.quantize or args.dtype == "float16":
        import tempfile

        import onnx

        from rnngraph.errors import ExportError
        from rnngraph.exporters.onnx.precision import quantize_int8, to_float16

        if args.quantize and args.dtype != "float32":
            raise ExportError(f"--quantize {args.quantize} and --dtype {args.dtype} cannot be combined: int8 "
                                f"quantization starts from the float32 export; give one of them.")
        if args.dtype == "float16" and args.streaming and args.lowering == "auto":
            # onnxruntime 1.32 crashes on float16 chunk models with native LSTM/GRU/RNN nodes (precision.py)
            options = ExportOptions(lowering="scan", streaming=True, device=args.device)
        # the float32 export is written beside the output first; the reduced-precision copy replaces it
        with tempfile.TemporaryDirectory(dir=Path(args.output).resolve().parent, prefix=".rnngraph-") as tmp:
            float32 = Path(tmp) / Path(args.output).name
            export(mf.model, mf.params, float32, opset=args.opset, options=options)
            size32 = os.path.getsize(float32)
            (quantize_int8 if args.quantize else to_float16)(float32, args.output)
        proto = onnx.load(args.output, load_external_data=False)
        precision = f"{args.quantize or args.dtype} ({size32} bytes in float32)"
    else:
        proto = export(mf.model, mf.params, args.output, opset=args.opset, options=options)
        precision = "float64" if compiled == "float64" else ""
    print(f"wrote {args.output}: {len(proto.graph.node)} nodes, opset {args.opset}, "
          f"{os.path.getsize(args.output)} bytes, loops {loop_kinds(proto.graph)}"
          f"{', streaming chunk model' if args.streaming else ''}{', ' + precision if precision else ''}")
    if args.ort_format:
        from rnngraph.exporters.onnx.ort_format import write_ort_format

        files = write_ort_format(args.output)
        print(f"wrote {files.ort} and {files.required_operators} (onnxruntime's mobile and minimal builds)")
    if args.triton:
        import onnx

        from rnngraph.exporters.onnx.write import tensors
        from rnngraph.exporters.triton import write_triton_repository

        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors(proto.graph)):
            proto = onnx.load(args.output)  # a large export returned a model that refers to its data file
        name = Path(args.output).name.rsplit(".", 1)[0]
        folder = write_triton_repository(proto, args.triton, name)
        print(f"wrote the Triton model repository entry {folder} (config.pbtxt, 1/model.onnx)")
    return 0


def has_decoder(model: object) -> bool:
    from rnngraph.dsl.decoder import DecoderLayer
    from rnngraph.dsl.model import Model

    assert isinstance(model, Model)
    return any(isinstance(node.layer, DecoderLayer) for _, node in model.nodes())


def export_decoder_files(args: argparse.Namespace, model: object, params: object) -> int:
    """``--streaming`` on a decoder model: its step export, the encoder and the step model beside the output."""
    import json

    from rnngraph.errors import ExportError
    from rnngraph.exporters.onnx.decoder_step import export_decoder_step, step_paths

    extras = [flag for flag, on in (("--quantize", args.quantize), ("--dtype", args.dtype != "float32"),
                                    ("--ort-format", args.ort_format), ("--triton", args.triton)) if on]
    if extras:
        raise ExportError(f"{' and '.join(extras)} cannot be combined with --streaming for a decoder model yet: its "
                          "step export is two float32 files; export them without these flags.")
    encoder_path, step_path = step_paths(args.output)
    files = export_decoder_step(model, params, encoder_path, step_path, opset=args.opset,  # type: ignore[arg-type]
                                lowering=args.lowering)
    layout = json.loads({p.key: p.value for p in files.step.metadata_props}["rnngraph.state"])
    print(f"{args.model}: a decoder streams one token at a time through two files (docs/deploy.md):")
    for path, proto, role in ((encoder_path, files.encoder, "run once per batch of sources"),
                              (step_path, files.step, "run once per token")):
        ins = ", ".join(i.name for i in proto.graph.input)
        outs = ", ".join(o.name for o in proto.graph.output)
        print(f"wrote {path}: {role}; {len(proto.graph.node)} nodes, {os.path.getsize(path)} bytes\n"
              f"  inputs: {ins}\n  outputs: {outs}")
    print(f"feed token = {layout['bos']} (BOS) first, then each step's argmax; stop at EOS = {layout['eos']} "
          f"(pad = {layout['pad']}). From Python (numpy and onnxruntime only):\n"
          f"  rnngraph.runtime.StepDecoder({encoder_path!r}, {step_path!r}).greedy(**sources)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from rnngraph.verify import load_model_file, verify

    mf = load_model_file(args.model, args.seed, args.kind)
    feeds = mf.example_inputs(args.batch, args.time, args.seed)
    # a shipped .onnx is checked as it is: its own graph, its parameters read back from its initializers
    lowering, proto = (mf.onnx.lowering, mf.onnx.proto) if mf.onnx is not None else (args.lowering, None)
    report = verify(mf.model, mf.params, feeds=feeds, lowering=lowering, opset=args.opset,
                    tolerance=mf.tolerance, proto=proto, progress=False if args.quiet else None, dtype=args.dtype)
    what = f"the file itself, opset {mf.onnx.opset}, exported with" if mf.onnx is not None else ""
    print(f"{args.model}: batch {args.batch}, time {args.time}, seed {args.seed}, {what} lowering {lowering} "
          f"({', '.join(f'{k}: {v}' for k, v in report.paths.items()) or 'no recurrent nodes'})".replace(",  ", ", "))
    print(report.table())
    print("verified" if report.ok else "FAILED")
    return 0 if report.ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from rnngraph.runtime.session import Session

    session = Session(args.model, device=args.device)
    feeds = dict(parse_feed(t) for t in args.input or [])
    outputs = session.run(**feeds)
    if args.output:
        path = args.output  # ends in .npz (output_path), so np.savez writes exactly this name
        try:
            np.savez(path, **outputs)
        except OSError as exc:
            raise RnnGraphError(f"cannot write {path!r}: {exc.strerror or exc}.") from exc
        print(f"wrote {path}: {', '.join(f'{k} {v.shape}' for k, v in outputs.items())}")
    else:
        with np.printoptions(precision=5, suppress=True, threshold=200):
            for name, value in outputs.items():
                print(f"{name} {value.shape} {value.dtype}\n{value}")
    return 0


def describe_onnx(proto: object, size: int | None) -> str:
    import numpy as np
    import onnx

    assert isinstance(proto, onnx.ModelProto)
    from rnngraph.exporters.onnx.write import tensors

    n_params = sum(int(np.prod(t.dims)) for t in tensors(proto.graph))
    lines = [f"opset {proto.opset_import[0].version}, IR {proto.ir_version}, producer {proto.producer_name}"]
    for kind, values in (("input", proto.graph.input), ("output", proto.graph.output)):
        for v in values:
            dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            dtype = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
            lines.append(f"  {kind:<6} {v.name:<14} {dtype} {dims}")
    # every initializer value, small constants (axes, sizes) included: more than the model's parameter count
    lines.append(f"  top-level nodes {len(proto.graph.node)}, initializer values {n_params}"
                 + (f", file size {size} bytes" if size is not None else ""))
    hist = op_histogram(proto.graph)
    lines.append("  ops: " + ", ".join(f"{k}×{v}" for k, v in sorted(hist.items())))
    lines += [metadata_line(prop.key, prop.value) for prop in proto.metadata_props]
    return "\n".join(lines)


#: metadata shown by its start only: the model description and the parameter layout are long, and read by rnngraph
ABRIDGED_METADATA = ("rnngraph.description", "rnngraph.params")


def metadata_line(key: str, value: str) -> str:
    """One metadata entry; the device keys (names, state layout, tokens) in full, for a caller to read."""
    shown = value if len(value) <= 100 or key not in ABRIDGED_METADATA else f"{value[:72]}… ({len(value)} characters)"
    return f"  {key}: {shown}"


def describe_with_onnxruntime(path: str) -> str:
    """What onnxruntime tells of a model file (a runtime-only install, without the onnx package)."""
    from rnngraph.runtime.session import Session

    session = Session(path)
    lines = ["read with onnxruntime (install onnx for the opset and the operators)"]
    for kind, values in (("input", session.inputs), ("output", session.outputs)):
        for name, info in values.items():
            lines.append(f"  {kind:<6} {name:<14} {info.type} {list(info.shape)}")
    lines.append(f"  file size {os.path.getsize(path)} bytes")
    lines += [metadata_line(key, value) for key, value in sorted(session.metadata.items())]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    if args.kind == "onnx" and not (args.png or args.svg) and importlib.util.find_spec("onnx") is None:
        print(describe_with_onnxruntime(args.model))  # a runtime-only install: what onnxruntime can read
        return 0
    from rnngraph.loading import DESCRIPTION_KEY, read_proto
    from rnngraph.verify import load_model_file

    if args.unroll is not None and not (args.png or args.svg):
        raise RnnGraphError("--unroll N draws a picture: give it a file with --png FILE.png or --svg FILE.svg.")
    if args.kind == "onnx":
        from rnngraph.dsl.model import Model

        proto = read_proto(args.model)
        meta = {p.key: p.value for p in proto.metadata_props}
        model = None
        if DESCRIPTION_KEY in meta:  # the summary and pictures need the description only, not the parameters
            model = Model.from_json(meta[DESCRIPTION_KEY])
            print(model.summary())
        elif args.png or args.svg:
            raise RnnGraphError(f"{args.model} carries no model description to draw; draw its model file instead.")
        print(describe_onnx(proto, os.path.getsize(args.model)))
    else:
        from rnngraph.exporters.onnx import build_model_proto

        mf = load_model_file(args.model, args.seed, args.kind)
        model = mf.model
        print(model.summary())
        proto = build_model_proto(mf.model, mf.params, args.opset, args.lowering)
        print(describe_onnx(proto, len(proto.SerializeToString())))
    for path in (args.png, args.svg):
        if path and model is not None:
            from rnngraph.draw import draw_model, draw_unrolled

            drawn = draw_unrolled(model, path, args.unroll) if args.unroll else draw_model(model, path)
            print(f"wrote {drawn}")
    return 0


def default_samples_dir() -> str:
    here = Path.cwd() / "samples"
    if here.is_dir():
        return str(here)
    return str(Path(__file__).resolve().parents[1] / "samples")


def reduced_precision(proto: Any, model: Any, params: Any, feeds: Any, folder: str) -> dict[str, tuple[int, float]]:
    """File size and largest error on the float outputs, against the oracle, of the int8 and float16 copies."""
    import warnings

    import numpy as np

    from rnngraph.exporters.onnx import write_atomic
    from rnngraph.exporters.onnx.precision import quantize_int8, to_float16
    from rnngraph.runtime import oracle
    from rnngraph.runtime.session import Session

    src = os.path.join(folder, "model.onnx")
    write_atomic(proto, src)
    ref = oracle.run(model, params, **feeds)
    out = {}
    for label, convert in (("float16", to_float16), ("int8", quantize_int8)):
        with warnings.catch_warnings():
            # the float16 converter warns for each constant it clips to ±1e4 (attention masks, tiny weights);
            # the table's error column shows what that does, and the lines would break the table apart
            warnings.simplefilter("ignore", UserWarning)
            dst = convert(src, os.path.join(folder, f"{label}.onnx"))
        got = Session(str(dst)).run(**feeds)
        errors = [float(np.max(np.abs(got[k] - ref[k]), initial=0.0)) for k in ref
                  if np.issubdtype(np.asarray(ref[k]).dtype, np.floating)]
        out[label] = (os.path.getsize(dst), max(errors, default=0.0))
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from rnngraph.exporters.onnx import DEFAULT_OPSET, build_model_proto
    from rnngraph.verify import load_model_file, verify

    files = sorted(glob.glob(os.path.join(args.samples, "*.py")))
    if not files:
        raise RnnGraphError(f"no samples found in {args.samples!r}; pass --samples DIR.")
    header = (f"{'sample':<22} {'loops':<14} {'nodes':>6} {'params':>9} {'bytes':>9} {'max err':>10}  {'verdict':<9}"
              f"{'f16 bytes':>10} {'f16 err':>9} {'int8 bytes':>10} {'int8 err':>9}")
    print(f"rnngraph demo: every sample exported (opset {DEFAULT_OPSET}, lowering auto) and verified against the "
          f"NumPy oracle (batch {args.batch}, time {args.time}, ragged lengths); beside it the float16 and int8 "
          f"copies (--dtype float16, --quantize int8): size and largest error of their float outputs\n")
    print(header)
    print("-" * len(header))
    failures = 0
    for path in files:
        name = Path(path).stem
        try:
            mf = load_model_file(path)
            proto = build_model_proto(mf.model, mf.params)
            feeds = mf.example_inputs(args.batch, args.time, 0)
            report = verify(mf.model, mf.params, feeds=feeds, tolerance=mf.tolerance,
                            progress=False if args.quiet else None)
            verdict = "verified" if report.ok else "FAILED"
            failures += not report.ok
            size = len(proto.SerializeToString())
            with tempfile.TemporaryDirectory() as folder:
                reduced = reduced_precision(proto, mf.model, mf.params, feeds, folder)
            (f16_size, f16_err), (i8_size, i8_err) = reduced["float16"], reduced["int8"]
            print(f"{name:<22} {loop_kinds(proto.graph):<14} {len(proto.graph.node):>6} "
                  f"{mf.model.count_params():>9} {size:>9} {report.max_abs:>10.2e}  {verdict:<9}"
                  f"{f16_size:>10} {f16_err:>9.1e} {i8_size:>10} {i8_err:>9.1e}")
        except RnnGraphError as exc:
            failures += 1
            print(f"{name:<22} error: {exc}")
    print(f"\n{len(files) - failures} of {len(files)} samples verified")
    return 1 if failures else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rnngraph.bench.model_file import main as bench_main

    return int(bench_main([args.model, *args.options]))


#: the newest opset every test covers; equal to rnngraph.exporters.onnx.DEFAULT_OPSET (a test keeps them
#: equal) and written out here so that building the parser (``--help``) does not import onnx
DEFAULT_OPSET = 17

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_MISMATCH}    verification failed: onnxruntime and the oracle disagree (verify, demo)
  {EXIT_USAGE}    usage or input error: bad option, missing or unreadable file, invalid model or input
  {EXIT_INTERNAL}    internal error (a bug in rnngraph): one line on stderr; --debug shows the traceback
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""

DEBUG_ENV = "RNNGRAPH_DEBUG"

#: per command: (help, description, examples)
COMMANDS = {
    "export": (
        "export a model file to ONNX",
        "Run a Python model file (which defines `model`, optionally `params`), or read a .json/.toml model "
        "description or an ONNX file rnngraph wrote, and write its checked ONNX export. The file is written "
        "atomically: the old file or the whole new one.",
        ["rnngraph export samples/classic_rnn.py -o tagger.onnx",
         "rnngraph export samples/lstm.toml -o lstm.onnx                         # a model description",
         "rnngraph export samples/lstm.py -o lstm --opset 13 --lowering scan     # writes lstm.onnx"],
    ),
    "verify": (
        "compare onnxruntime with the NumPy oracle on random ragged inputs",
        "Export the model in memory, run it with onnxruntime and with the independent NumPy oracle on the "
        "same random inputs (ragged lengths), and compare every output within the tolerance the model file "
        "names (default float32: |ort - oracle| <= 1e-4 + 1e-3·|oracle|). Exit 1 if any output differs. "
        "Given an ONNX file rnngraph wrote, the file itself is run, the oracle reading the model and the "
        "parameters stored in it.",
        ["rnngraph verify samples/classic_rnn.py --time 500",
         "rnngraph verify tagger.onnx                                   # a shipped file, nothing else needed",
         "rnngraph verify samples/attention.py --lowering scan --batch 1 --time 1"],
    ),
    "run": (
        "run an exported ONNX model on given inputs",
        "Run an exported .onnx file with onnxruntime. Each --input is NAME=FILE.npy, NAME=NUMBER or "
        "NAME=[NESTED, LIST]; a missing `lengths` input means full length. Prints the outputs, or writes "
        "them to one .npz file with -o.",
        ["rnngraph run tagger.onnx --input x=x.npy --input lengths=[5,2,4] -o out.npz",
         "rnngraph run captioner.onnx --input image=image.npy --input steps=12"],
    ),
    "show": (
        "describe a model file or an ONNX file",
        "For a Python model file: the layer summary and its ONNX export (inputs, outputs, op histogram, "
        "size). For an ONNX file (any name; recognized by its header): the same for the file as it is. "
        "--png/--svg also draw the layer graph (--unroll N: the first recurrent layer over N steps).",
        ["rnngraph show samples/attention.py",
         "rnngraph show samples/attention.py --png attention.png",
         "rnngraph show tagger.onnx"],
    ),
    "bench": (
        "time a model file in onnxruntime",
        "Export a Python model file and time it in onnxruntime (median latency and throughput, against "
        "PyTorch and its torch.onnx.export model where PyTorch has the cell, and the NumPy oracle).",
        ["rnngraph bench samples/lstm.py --batch 1 16 --time 100",
         "rnngraph bench samples/gru.py --profile --json gru.json"],
    ),
    "demo": (
        "export and verify every sample, print one table",
        "Export every *.py model file of a folder and verify each against the oracle; one line per sample.",
        ["rnngraph demo",
         "rnngraph demo --samples samples --time 20"],
    ),
}

#: which model files each command takes (cli_args.model_kind)
MODEL_FILES = ("python", "description", "onnx")
ACCEPTS = {"export": MODEL_FILES, "verify": MODEL_FILES, "run": ("onnx",), "show": MODEL_FILES,
           "bench": ("python",)}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's line breaks; shows each option's default where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class VersionAction(argparse.Action):
    """``--version``: rnngraph's version and the versions of what it runs on (read without importing them)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the versions of rnngraph, Python, numpy, onnx and onnxruntime and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        import platform
        from importlib import metadata

        from rnngraph import __version__

        def version(dist: str) -> str:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                return "not installed"

        deps = ", ".join(f"{d} {version(d)}" for d in ("numpy", "onnx", "onnxruntime"))
        print(f"rnngraph {__version__} (Python {platform.python_version()}, {deps})")
        parser.exit()


def epilog(examples: list[str]) -> str:
    return "example:\n" + "\n".join(f"  {e}" for e in examples) + "\n\n" + EXIT_CODES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, received {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; imports nothing beyond the standard library, so ``--help`` is fast."""
    parser = argparse.ArgumentParser(
        prog="rnngraph", formatter_class=HelpFormatter,
        description=textwrap.fill("Describe recurrent networks in Python, export them to ONNX, run them with "
                                  "onnxruntime and verify them against an independent NumPy oracle.", 100),
        epilog=epilog(["rnngraph export samples/attention.py -o a.onnx && rnngraph show a.onnx",
                       "rnngraph verify samples/lstm.py --time 100",
                       "rnngraph COMMAND --help     # the options and examples of one command"]))
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an internal error (also: {DEBUG_ENV}=1)")
    # the same flag after the command: SUPPRESS keeps the subparser from overwriting the value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        help_, description, examples = COMMANDS[name]
        p = sub.add_parser(name, help=help_, description=textwrap.fill(description, 100), epilog=epilog(examples),
                           formatter_class=HelpFormatter, parents=[common])
        p.set_defaults(accepts=ACCEPTS.get(name, ()))
        return p

    def model_options(p: argparse.ArgumentParser, model_help: str) -> None:
        p.add_argument("model", help=model_help)
        p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                       help="ONNX opset, from 13 to the newest that the installed onnx and onnxruntime support")
        p.add_argument("--lowering", choices=("auto", "scan", "native"), default="auto",
                       help="recurrent layers as ONNX's native LSTM/GRU/RNN ops where they match exactly "
                            "(native), as Scan loops (scan), or whichever was measured faster per cell (auto)")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of the parameters (when the model file defines no `params`) and of the inputs")

    python_file = ("a model file: Python (*.py) defining `model` and optionally `params`, a .json/.toml model "
                   "description, or an ONNX file written by rnngraph export (any name; it describes itself)")
    p = command("export")
    model_options(p, python_file)
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx", type=lambda s: output_path(s, ".onnx"),
                   help="where to write the model (.onnx is appended to a name without suffix)")
    p.add_argument("--streaming", action="store_true",
                   help="export a chunk model: every recurrent state an explicit input and output (causal models "
                        "only; docs/deploy.md gives the layout)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="the onnxruntime provider to lower for: cuda keeps every node on onnxruntime's CUDA provider "
                        "(native LSTM/GRU/RNN only where cuDNN runs them, Scan loops elsewhere; docs/deploy.md)")
    p.add_argument("--quantize", choices=("int8",),
                   help="write the model with int8 weights (onnxruntime's dynamic quantization, Scan/Loop bodies "
                        "included); inputs and outputs stay float32")
    p.add_argument("--dtype", choices=("float32", "float16", "float64"), default="float32",
                   help="float16: weights and computation in float16, inputs and outputs float32 "
                        "(needs onnxconverter-common); float64: weights, inputs, outputs and computation in "
                        "float64, recurrent layers as Scan loops (onnxruntime has no float64 LSTM/GRU/RNN)")
    p.add_argument("--ort-format", action="store_true",
                   help="also write FILE.ort and FILE.required_operators.config for onnxruntime's mobile and "
                        "minimal builds")
    p.add_argument("--triton", metavar="DIR",
                   help="also write a Triton Inference Server model repository entry DIR/NAME (NAME: the output's "
                        "file name without .onnx): config.pbtxt and 1/model.onnx")
    p.set_defaults(func=cmd_export)

    p = command("verify")
    model_options(p, python_file)
    p.add_argument("--batch", type=positive_int, default=3, help="rows of the random input batch")
    p.add_argument("--time", type=positive_int, default=7,
                   help="time steps of the random inputs (and the value of every count input, e.g. `steps`)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (one is shown on a terminal while the oracle runs; never in a pipe)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="the float type of the export verified (float64: compared with the float64 entries of "
                        "the tolerance table); an .onnx file is verified in its own")
    p.set_defaults(func=cmd_verify)

    p = command("run")
    p.add_argument("model", help="an exported ONNX file (recognized by its header, whatever its name)")
    p.add_argument("--input", action="append", metavar="NAME=VALUE",
                   help="one model input: NAME=FILE.npy, NAME=5 or NAME=[1,2,3] (repeat for each input)")
    p.add_argument("-o", "--output", metavar="FILE.npz", type=lambda s: output_path(s, ".npz"),
                   help="write the outputs to this .npz file (.npz is appended to a name without suffix) "
                        "instead of printing them")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="onnxruntime provider; cuda is an error where onnxruntime has no CUDA provider")
    p.set_defaults(func=cmd_run)

    p = command("show")
    model_options(p, "a model file (*.py, a .json/.toml model description) or an ONNX file (any name)")
    p.add_argument("--png", metavar="FILE.png", help="also draw the model's layer graph to this PNG file")
    p.add_argument("--svg", metavar="FILE.svg", help="also draw the model's layer graph to this SVG file")
    p.add_argument("--unroll", type=int, metavar="N",
                   help="with --png/--svg: draw the first recurrent layer unrolled over N steps instead")
    p.set_defaults(func=cmd_show)

    p = command("bench")
    p.add_argument("model", help=python_file)
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="passed on to the benchmark: --batch, --time, --threads, --profile, --json (see "
                        "`python -m rnngraph.bench --help`)")
    p.set_defaults(func=cmd_bench)

    p = command("demo")
    p.add_argument("--samples", default=default_samples_dir(), metavar="DIR", help="folder of model files")
    p.add_argument("--batch", type=positive_int, default=3, help="rows of the random input batch")
    p.add_argument("--time", type=positive_int, default=9, help="time steps of the random inputs")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (one is shown on a terminal while the oracle runs; never in a pipe)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (see EXIT_CODES) instead of raising."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        if args.accepts:
            args.kind = model_kind(args.model, args.accepts, args.command)
        return int(args.func(args))
    except SystemExit as exc:  # argparse: --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except RnnGraphError as exc:
        print(f"rnngraph: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the file system's refusal (permissions, full disk), not a bug
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"rnngraph: error: cannot access{where}: {exc.strerror or exc}.", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnngraph: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the promise: one line, a distinct code, the traceback on request
        if debug:
            raise
        print(f"rnngraph: internal error (a bug in rnngraph): {type(exc).__name__}: {exc}\n"
              f"rnngraph: rerun with --debug (or {DEBUG_ENV}=1) for the traceback, and report it to the "
              f"rnngraph maintainers with the command you ran.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
