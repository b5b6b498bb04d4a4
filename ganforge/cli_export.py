"""The `export` sub-command: a run's generator as a TorchScript or ONNX file (the logic: export.py).

`add_export_command(subparsers)` adds it to ganforge's parser. Help strings are plain text: building the
parser imports no torch (the exporters' registry lives in export.py, which does).
"""
from __future__ import annotations


def cmd_export(args) -> int:
    from .export import CHECK_N, export_run

    done = export_run(args.run, args.format, out=args.out, checkpoint=args.checkpoint)
    print(f"exported {args.run} (step {done.step}, generator {done.generator}) as {args.format} to {done.path}; "
          f"manifest {done.manifest.name}; run on {CHECK_N} latents it matches torch to {done.difference:.1g}")
    return 0


def add_export_command(sub) -> None:
    p = sub.add_parser("export", help="write a run's generator as a TorchScript or ONNX file, with a JSON manifest",
                       description="The generator samples come from (the EMA of G where the run keeps one), in "
                                   "eval mode: G(z), or G(z, y) for a conditional run, gives images in [-1, 1]. "
                                   "FILE.json beside it records z_dim, the image shape, the condition and its "
                                   "vocabulary, and the source run and step.")
    p.add_argument("run", help="run directory")
    p.add_argument("--format", required=True, help="torchscript | onnx (onnx: pip install 'ganforge[export]')")
    p.add_argument("--out", metavar="FILE", help="file to write (default RUN/exports/generator-step<N>.pt or .onnx; "
                                                 "an existing folder: that name inside it)")
    p.add_argument("--checkpoint", default="latest", help="'latest' or a step number")
    p.set_defaults(func=cmd_export)
