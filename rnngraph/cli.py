"""The `rnngraph` command line: export, verify, run, show, demo."""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    from rnngraph.exporters.onnx import export
    from rnngraph.verify import load_model_file

    mf = load_model_file(args.model, args.seed)
    proto = export(mf.model, mf.params, args.output, opset=args.opset, lowering=args.lowering)
    print(f"wrote {args.output}: {len(proto.graph.node)} nodes, opset {args.opset}, "
          f"{os.path.getsize(args.output)} bytes, loops {loop_kinds(proto.graph)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from rnngraph.verify import load_model_file, verify

    mf = load_model_file(args.model, args.seed)
    feeds = mf.example_inputs(args.batch, args.time, args.seed)
    # a shipped .onnx is checked as it is: its own graph, its parameters read back from its initializers
    lowering, proto = (mf.onnx.lowering, mf.onnx.proto) if mf.onnx is not None else (args.lowering, None)
    report = verify(mf.model, mf.params, feeds=feeds, lowering=lowering, opset=args.opset,
                    tolerance=mf.tolerance, proto=proto)
    what = f"the file itself, opset {mf.onnx.opset}, exported with" if mf.onnx is not None else ""
    print(f"{args.model}: batch {args.batch}, time {args.time}, seed {args.seed}, {what} lowering {lowering} "
          f"({', '.join(f'{k}: {v}' for k, v in report.paths.items()) or 'no recurrent nodes'})".replace(",  ", ", "))
    print(report.table())
    print("verified" if report.ok else "FAILED")
    return 0 if report.ok else 1


def parse_feed(text: str) -> tuple[str, np.ndarray]:
    if "=" not in text:
        raise RnnGraphError(f"--input takes NAME=FILE.npy, received {text!r}.")
    name, path = text.split("=", 1)
    try:
        return name, np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RnnGraphError(f"--input {name}: cannot read {path!r} as a .npy file: {exc}") from exc


def cmd_run(args: argparse.Namespace) -> int:
    from rnngraph.runtime.session import Session

    if args.model.endswith((".py", ".json", ".toml")):
        stem = os.path.splitext(os.path.basename(args.model))[0]
        raise RnnGraphError(f"run takes an exported .onnx file, and {args.model!r} is a model file; export it "
                            f"first: rnngraph export {args.model} -o {stem}.onnx, then rnngraph run {stem}.onnx ...")
    session = Session(args.model, device=args.device)
    feeds = dict(parse_feed(t) for t in args.input or [])
    outputs = session.run(**feeds)
    if args.output:
        path = args.output if args.output.endswith(".npz") else args.output + ".npz"  # what np.savez writes
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
    import onnx

    assert isinstance(proto, onnx.ModelProto)
    n_params = sum(int(np.prod(t.dims)) for t in _all_initializers(proto.graph))
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
    for prop in proto.metadata_props:  # the description and parameter layout are long: their start is enough
        value = prop.value if len(prop.value) <= 100 else f"{prop.value[:72]}… ({len(prop.value)} characters)"
        lines.append(f"  {prop.key}: {value}")
    return "\n".join(lines)


def _all_initializers(graph: object) -> list[object]:
    out = list(graph.initializer)  # type: ignore[attr-defined]
    for node in graph.node:  # type: ignore[attr-defined]
        for attr in node.attribute:
            if attr.g.node:
                out += _all_initializers(attr.g)
            for sub in attr.graphs:
                out += _all_initializers(sub)
    return out


def cmd_show(args: argparse.Namespace) -> int:
    from rnngraph.loading import DESCRIPTION_KEY, read_proto
    from rnngraph.verify import load_model_file

    if args.unroll is not None and not (args.png or args.svg):
        raise RnnGraphError("--unroll N draws a picture: give it a file with --png FILE.png or --svg FILE.svg.")
    if args.model.endswith(".onnx"):
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

        mf = load_model_file(args.model, args.seed)
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


def cmd_demo(args: argparse.Namespace) -> int:
    from rnngraph.exporters.onnx import DEFAULT_OPSET, build_model_proto
    from rnngraph.verify import load_model_file, verify

    files = sorted(glob.glob(os.path.join(args.samples, "*.py")))
    if not files:
        raise RnnGraphError(f"no samples found in {args.samples!r}; pass --samples DIR.")
    header = f"{'sample':<22} {'loops':<14} {'nodes':>6} {'params':>9} {'bytes':>9} {'max err':>10}  verdict"
    print(f"rnngraph demo: every sample exported (opset {DEFAULT_OPSET}, lowering auto) and verified against the "
          f"NumPy oracle (batch {args.batch}, time {args.time}, ragged lengths)\n")
    print(header)
    print("-" * len(header))
    failures = 0
    for path in files:
        name = Path(path).stem
        try:
            mf = load_model_file(path)
            proto = build_model_proto(mf.model, mf.params)
            feeds = mf.example_inputs(args.batch, args.time, 0)
            report = verify(mf.model, mf.params, feeds=feeds, tolerance=mf.tolerance)
            verdict = "verified" if report.ok else "FAILED"
            failures += not report.ok
            size = len(proto.SerializeToString())
            print(f"{name:<22} {loop_kinds(proto.graph):<14} {len(proto.graph.node):>6} "
                  f"{mf.model.count_params():>9} {size:>9} {report.max_abs:>10.2e}  {verdict}")
        except RnnGraphError as exc:
            failures += 1
            print(f"{name:<22} error: {exc}")
    print(f"\n{len(files) - failures} of {len(files)} samples verified")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    from rnngraph.exporters.onnx import DEFAULT_OPSET

    parser = argparse.ArgumentParser(prog="rnngraph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def model_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("model", help="a model file: .py defining `model` (and optionally `params`), a .json/.toml "
                       "model description, or an .onnx exported by rnngraph")
        p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
        p.add_argument("--lowering", choices=("auto", "scan", "native"), default="auto")
        p.add_argument("--seed", type=int, default=0, help="seed for parameters (if the file has none) and inputs")

    p = sub.add_parser("export", help="export a model file to ONNX")
    model_options(p)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="compare onnxruntime with the NumPy oracle on random ragged inputs")
    model_options(p)
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--time", type=int, default=7)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("run", help="run an exported model on .npy inputs")
    p.add_argument("model", help="an .onnx file")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    p.add_argument("-o", "--output", help="write the outputs to this .npz file")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("show", help="describe a model file or an .onnx file")
    model_options(p)
    p.add_argument("--png", metavar="FILE.png", help="also draw the model's layer graph to this PNG file")
    p.add_argument("--svg", metavar="FILE.svg", help="also draw the model's layer graph to this SVG file")
    p.add_argument("--unroll", type=int, metavar="N",
                   help="with --png/--svg: draw the first recurrent layer unrolled over N steps instead")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("demo", help="export and verify every sample, print one table")
    p.add_argument("--samples", default=default_samples_dir())
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--time", type=int, default=9)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("batch", "time"):
        if getattr(args, name, 1) < 1:
            print(f"rnngraph: error: --{name} must be at least 1, received {getattr(args, name)}", file=sys.stderr)
            return 2
    try:
        return int(args.func(args))
    except RnnGraphError as exc:
        print(f"rnngraph: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
