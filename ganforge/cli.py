"""Command line: each sub-command parses its flags, calls one library function and prints what it returns."""
from __future__ import annotations

import argparse
import errno
import signal
import sys
from collections import Counter
from pathlib import Path

from .version import __version__
from .cli_common import CONFIG_FLAGS, TRAINING_FLAGS, add_flags, config_from_args, folder_preset, overrides
from .cli_compare import add_compare_command
from .cli_eval import add_eval_commands
from .cli_export import add_export_command
from .cli_parser import SuggestingParser
from .errors import ConfigError, GanforgeError
from .signals import StoppedBySignal, stopping_on_signals

# File-system errors a user fixes, and how; any other OSError is a bug and keeps its traceback.
_FILE_SYSTEM_FIXES = {
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free space within your disk quota",
    errno.EROFS: "the file system is read-only: write elsewhere (--out) or remount it writable",
    errno.EACCES: "make it writable (or readable) for this user, or write elsewhere (--out)",
    errno.EPERM: "make it writable (or readable) for this user, or write elsewhere (--out)",
}
# Static (the parser is built without torch): the range is models.latent.MAX_PSI's, checked there.
PSI_HELP = "truncation ψ: z ← ψ·z, from 0 (the mean z) to 2; below 1 trades variety for typical images (default 1)"


def cmd_train(args) -> int:
    with stopping_on_signals():
        return _train(args)


def _train(args) -> int:
    from .api import folder_note, resumed_config
    from .training.trainer import train

    if args.resume:
        if args.preset or args.config:
            raise ConfigError("--resume continues a run with its own config; drop --preset/--config")
        result = train(resumed_config(args.resume, overrides(args)), Path(args.resume), resume=True)
    else:
        preset = None if args.preset else folder_preset(args)
        if preset:
            print(folder_note(preset), flush=True)
        result = train(config_from_args(args))
    return 128 + result.stop_signal if result.interrupted else 0  # the shell's code for death by that signal


def _asked_condition(args) -> tuple[str, str] | None:
    """(kind, request) of --class/--tags/--text, or None when none is given: then G draws conditions like
    its training data (as it does for an empty request)."""
    asked = [(kind, value) for kind, value in (("class", args.class_), ("tags", args.tags), ("text", args.text))
             if value is not None]
    return asked[0] if asked else None  # the flags are mutually exclusive


def _asked(args) -> dict:
    """--class/--tags/--text as Run.sample's keywords (None: not given; the flags are mutually exclusive)."""
    return {"classes": args.class_, "tags": args.tags, "text": args.text}


def cmd_sample(args) -> int:
    from .models.latent import check_psi

    args.run = args.run or args.run_flag
    for flag, value in (("--n", args.n), ("--nrow", args.nrow)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value} must be at least 1")
    if args.recipe:
        return _sample_recipe(args)
    if args.run is None:
        raise ConfigError("give the run directory to sample from (ganforge sample RUN), or --recipe IMAGE.png")
    args.psi = check_psi(1.0 if args.psi is None else args.psi, "--psi")

    from .device import pick_device
    from .run import load_run
    from .samples import write_request_rows, write_samples

    run = load_run(args.run, checkpoint=args.checkpoint, device=pick_device(args.device))
    requests = args.tags or []  # --tags may be given several times: one grid row per request
    if len(requests) > 1:
        if args.stages:
            raise ConfigError("--stages pairs one request's rows; give a single --tags with --stages")
        target = write_request_rows(run, args.out, args.n, args.seed, args.psi, requests)
        print(f"wrote {len(requests)} rows of {args.n} samples of {run.path} (step {run.step}, seeds {args.seed}–"
              f"{args.seed + args.n - 1} in every row, one row per --tags) to {target}")
        return 0
    args.tags = requests[0] if requests else None
    target = write_samples(run, args.out, args.n, args.seed, args.psi, _asked(args), stages=args.stages,
                           nrow=args.nrow)
    print(f"wrote {args.n} samples of {run.path} (step {run.step}, seed {args.seed}) to {target}")
    return 0


def cmd_interpolate(args) -> int:
    from .models.latent import check_psi

    seeds = _seed_list(args.seeds)
    if args.frames < 1:
        raise ConfigError(f"--frames {args.frames} must be at least 1: the images from one seed to the next")
    # one limit for both formats: GIF times are in 1/100 s, and an mp4 faster than 100 fps plays nowhere better
    if not 0 < args.fps <= 100:
        raise ConfigError(f"--fps {args.fps:g} must be above 0 and at most 100 (GIF times are in 1/100 s)")
    check_psi(args.psi, "--psi")
    target = Path(args.out)
    from .report.grids import WALK_WRITERS

    if target.suffix.lower() not in WALK_WRITERS:
        raise ConfigError(f"--out {target} must end in {' or '.join(WALK_WRITERS)} "
                          "(an animated GIF or an H.264 video of the walk)")
    save_walk, check_installed = WALK_WRITERS[target.suffix.lower()]
    check_installed()

    from .device import pick_device
    from .run import load_run

    run = load_run(args.run, checkpoint=args.checkpoint, device=pick_device(args.device))
    frames = run.interpolate(seeds, args.frames, args.psi, **_asked(args))
    target.parent.mkdir(parents=True, exist_ok=True)
    save_walk(frames, target, fps=args.fps)
    print(f"wrote a walk through seeds {', '.join(map(str, seeds))} of {run.path} (step {run.step}): "
          f"{len(frames)} frames at {args.fps:g} fps to {target}")
    return 0


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if len(seeds) < 2 or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r} must be two or more seeds separated by commas, e.g. --seeds 1,2,3")
    return seeds


def _sample_recipe(args) -> int:
    """Regenerate an image downloaded from `ganforge serve` from the recipe inside it."""
    from .fileio import write_atomic
    from .serve.recipe import png_bytes, read_recipe, regenerate

    ignored = [flag for flag, value in (("--class", args.class_), ("--tags", args.tags), ("--text", args.text),
                                        ("--stages", args.stages or None), ("--psi", args.psi)) if value is not None]
    if ignored:
        raise ConfigError(f"--recipe replays the image's own request; drop {', '.join(ignored)}")
    recipe = read_recipe(args.recipe)
    image = regenerate(recipe, args.run)
    target = Path(args.out) if args.out else Path(args.recipe).with_name(Path(args.recipe).stem + "-regenerated.png")
    if target.suffix.lower() != ".png":
        raise ConfigError(f"--out {target} must be a .png (the recipe is written into it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = png_bytes(image, recipe)
    write_atomic(target, lambda f: f.write(data))
    print(f"regenerated image {recipe['index']} of seed {recipe['request']['seed']} from {recipe['run']} "
          f"(step {recipe['step']}) to {target}")
    return 0


def cmd_project(args) -> int:
    from .device import pick_device
    from .project import project_image

    out = Path(args.out) if args.out else Path(f"{Path(args.image).stem}-projection")
    run, result, written = project_image(args.run, args.image, out, checkpoint=args.checkpoint,
                                         device=pick_device(args.device), steps=args.steps, starts=args.starts,
                                         seed=args.seed, asked=_asked_condition(args))
    held = f", condition {run.conditions.describe(result.condition)}" if result.condition is not None else ""
    print(f"projected {args.image} into {run.path} (step {run.step}{held}): RMS pixel error {result.error:.4f} "
          f"({255 * result.error:.1f} of 255) after {args.steps} Adam steps; wrote "
          f"{', '.join(str(path) for path in written)}")
    return 0


def cmd_serve(args) -> int:
    from .serve import serve

    serve(args.runs, host=args.host, port=args.port, verbose=args.verbose, features=args.features,
          projections=args.projection)
    return 0


def cmd_data_inspect(args) -> int:
    from .config import DatasetOptions
    from .data import load_dataset

    options = DatasetOptions(size=args.size, flip=False, cache_dir=args.cache_dir or "", tags_file=args.tags_file or "",
                             tags_top=args.tags_top, tags_keep=args.tags_keep or "", background=args.background,
                             tag_groups=args.tag_groups)
    ds = load_dataset(args.spec, args.resolution, args.channels, options)
    print(ds.info["summary"])
    print(f"kind: {ds.kind}; samples: {len(ds.data)}; sample shape: {tuple(ds.data.shape[1:])}; dtype: {ds.data.dtype}")
    for key, value in ds.info.items():
        if key not in ("summary", "tags", "tag_groups"):  # shown with the vocabulary below
            print(f"{key}: {value}")
    if ds.labels is not None:
        counts = Counter(ds.labels.tolist())
        names = ds.class_names or [str(i) for i in range(max(counts) + 1)]
        print("classes: " + ", ".join(f"{names[i]} {counts[i]}" for i in sorted(counts)))
    if ds.tags is not None:
        tag_counts = Counter(tag for tags in ds.tags for tag in tags)
        ranked = sorted(tag_counts.items(), key=lambda item: (-item[1], item[0]))
        print(f"tags ({len(tag_counts)}): " + ", ".join(f"{tag} {count}" for tag, count in ranked))
        found = ds.info.get("tags", {})
        line = f"untagged images: {sum(not tags for tags in ds.tags)}"
        if found:
            examples = ", ".join(found["unknown_id_examples"])
            line = (f"tags from {found['source']}; {line}; tag ids without an image: {found['unknown_ids']}"
                    + (f" (e.g. {examples})" if examples else ""))
            if found.get("malformed"):
                line += f"; malformed, skipped: {found['malformed']} ({'; '.join(found['malformed_examples'])}" + (
                    ", …)" if found["malformed"] > len(found["malformed_examples"]) else ")")
        print(line)
        _print_tag_groups(ds, options)
    if args.preview:
        _write_preview(ds, Path(args.preview))
    else:
        print("a grid of what training sees: add --preview FILE.png")
    return 0


def _print_tag_groups(ds, options) -> None:
    """The one-of groups a tag-conditional run would embed, with each value's image count."""
    from .data.tag_groups import group_counts, resolve_groups

    groups, source = resolve_groups(options.tag_groups, ds.tags, ds.tag_groups,
                                    ds.info.get("tag_groups", f"{ds.name}'s own"),
                                    options.tags_lowercase)
    print(f"tag groups ({source}): {len(groups)}" + ("; every tag is free" if not groups else ""))
    for name, counts in group_counts(groups, ds.tags).items():
        print(f"  {name}: " + ", ".join(f"{tag} {count}" for tag, count in counts.items()))
    grouped = {tag for tags in groups.values() for tag in tags}
    free = sorted({tag for tags in ds.tags for tag in tags} - grouped)
    if groups and free:
        shown = ", ".join(free[:12]) + (f", … {len(free) - 12} more" if len(free) > 12 else "")
        print(f"  free tags ({len(free)}): {shown}")


def _write_preview(ds, target: Path, count: int = 64) -> None:
    """A seeded sample of the data as training sees it (decoded, resized, cropped; scatter for points)."""
    import torch

    from .data.kinds import data_kinds
    from .report import save_grid, save_points

    if target.suffix.lower() != ".png":
        raise ConfigError(f"--preview {target} must be a .png file")
    target.parent.mkdir(parents=True, exist_ok=True)
    kind = data_kinds.get(ds.kind)
    if kind.images:
        chosen = torch.randperm(len(ds.data), generator=torch.Generator().manual_seed(0))[:count]
        save_grid(ds.data[chosen], target)
        print(f"preview: {target} ({min(count, len(ds.data))} images)")
    else:
        save_points(ds.data[:kind.sample_count], target, title=ds.name)
        print(f"preview: {target} ({kind.sample_count:,} points)")


def cmd_presets(args) -> int:
    from .config import preset_names, preset_summary

    for name in preset_names():
        print(f"{name:24s} {preset_summary(name)}")
    return 0


def cmd_config(args) -> int:
    from .config import markdown_table
    from .losses import resolve

    if args.markdown:
        print(markdown_table())
    else:
        print(resolve(config_from_args(args)).to_yaml(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(prog="ganforge", description="Train, sample and inspect GANs.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a GAN (or continue one with --resume RUN)")
    add_flags(p, CONFIG_FLAGS)
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its latest checkpoint (up to --steps)")
    add_flags(p, TRAINING_FLAGS, help={
        "--minutes": "time budget: stop after M minutes of training in all (train.minutes), or at --steps if "
                     "sooner; with --resume, a larger total continues the run",
        "--quiet": "no progress bar; one line per log row"})
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate images from a trained run")
    p.add_argument("run", nargs="?", help="run directory")
    p.add_argument("--recipe", metavar="IMAGE.png",
                   help="regenerate a PNG downloaded from `ganforge serve` exactly, from the recipe inside it")
    p.add_argument("--run", dest="run_flag", metavar="RUN", help="the run directory, as RUN; with --recipe: where "
                                                                  "the run is now, if not where it was served from")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default 0)")
    p.add_argument("--out", help="grid.png for one grid, DIR/ for one PNG per sample "
                                 "(default RUN/samples/sample-step<N>-seed<S>.png)")
    p.add_argument("--nrow", type=int, help="images per grid row (default: square)")
    p.add_argument("--checkpoint", default="latest", help="'latest' or a step number")
    p.add_argument("--device", default="auto")
    p.add_argument("--stages", action="store_true",
                   help="two-stage runs: each row of stage-1 images above the same samples' stage-2 row")
    p.add_argument("--psi", type=float, help=PSI_HELP)  # None: not given (a --recipe replays its own ψ)
    ask = p.add_mutually_exclusive_group()
    ask.add_argument("--class", dest="class_", metavar="NAME", help="class-conditional runs: a class name or index")
    ask.add_argument("--tags", action="append",
                     help="tag-conditional runs: 'red, star, yellow background' or weighted 'mountain=0.6, "
                          "lake=0.3'; empty: tags drawn like the training data's; given several times: one "
                          "grid row per request, the same seeds in every row")
    ask.add_argument("--text", help="text-conditional runs: a prompt, e.g. 'a small blue circle'")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="an animated GIF or an mp4 walking a run's latent space through given "
                                           "seeds")
    p.add_argument("run", help="run directory")
    p.add_argument("--seeds", required=True, help="two or more seeds to walk through, e.g. 1,2,3 (end on the "
                                                  "first again for a seamless loop: 1,2,3,1)")
    p.add_argument("--frames", type=int, default=30, help="images from one seed to the next (default 30)")
    p.add_argument("--out", required=True, metavar="WALK.gif|WALK.mp4",
                   help="the file to write: .gif (it loops forever) or .mp4 (H.264; needs ganforge[video])")
    p.add_argument("--fps", type=float, default=25, help="frames a second (default 25)")
    p.add_argument("--psi", type=float, default=1.0, help=PSI_HELP)
    p.add_argument("--checkpoint", default="latest", help="'latest' or a step number")
    p.add_argument("--device", default="auto")
    ask = p.add_mutually_exclusive_group()
    ask.add_argument("--class", dest="class_", metavar="NAME", help="class-conditional runs: hold this class fixed "
                                                                     "(default: each seed's own, blended)")
    ask.add_argument("--tags", help="tag-conditional runs: hold these tags fixed, e.g. 'red, star'")
    ask.add_argument("--text", help="text-conditional runs: hold this prompt fixed")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("project", help="find the latent z from which a run's generator draws a given picture")
    p.add_argument("run", help="run directory")
    p.add_argument("image", help="the picture (decoded as image folders are: alpha on dataset.background, "
                                 "resized and centre-cropped to the run's size)")
    p.add_argument("--out", metavar="DIR", help="where reconstruction.png, latent.safetensors and progress.png "
                                                "go (default IMAGE-projection/)")
    p.add_argument("--steps", type=int, default=300, help="Adam steps on z (default 300)")
    p.add_argument("--starts", type=int, default=16,
                   help="random z tried first, the closest the start (default 16; 0: the mean z)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--checkpoint", default="latest", help="'latest' or a step number")
    p.add_argument("--device", default="auto")
    ask = p.add_mutually_exclusive_group()
    ask.add_argument("--class", dest="class_", metavar="NAME", help="class-conditional runs: hold this class fixed")
    ask.add_argument("--tags", help="tag-conditional runs: hold these tags fixed, e.g. 'red, star'")
    ask.add_argument("--text", help="text-conditional runs: hold this prompt fixed")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("serve", help="a local web page to explore trained runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories to serve")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this computer only; another prints a warning)")
    p.add_argument("--features", default="pixels", help="where nearest training images are searched: pixels "
                                                        "(default), inception, or classifier:PATH")
    p.add_argument("--projection", action="append", default=[], metavar="DIR",
                   help="a folder written by `ganforge project` for one of the runs, shown on its page to walk "
                        "from and check against the training data (repeatable)")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("data", help="look at a dataset")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("inspect", help="load a dataset as training would and summarise it")
    q.add_argument("spec", help="image folder, or shapes | ring8 | grid25 | mnist:PATH")
    q.add_argument("--resolution", type=int, default=32)
    q.add_argument("--channels", type=int, default=3, choices=(1, 3))
    q.add_argument("--size", type=int, default=20000, help="samples of procedural sources")
    q.add_argument("--cache-dir", help="where decoded-image caches live")
    q.add_argument("--tags-file", help="image folders: the CSV of id,tags (default: tags.csv, else .txt sidecars)")
    q.add_argument("--tags-top", type=int, default=0, help="keep only the N most frequent tags")
    q.add_argument("--tags-keep", help="comma-separated tags to keep")
    q.add_argument("--tag-groups", default="", help="one-of tag groups: 'name: tag, tag; name: tag, tag', or none "
                                                    "(default: the folder's tag_groups.txt, else inferred)")
    q.add_argument("--background", default="white", help="colour transparent pixels are composited on (default white)")
    q.add_argument("--preview", metavar="FILE.png", help="write a grid of 64 images as training sees them")
    q.set_defaults(func=cmd_data_inspect)

    add_eval_commands(sub)
    add_compare_command(sub)
    add_export_command(sub)

    p = sub.add_parser("presets", help="list the presets shipped with ganforge")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("config", help="print the resolved config for the given options (YAML)")
    add_flags(p, CONFIG_FLAGS)
    p.add_argument("--markdown", action="store_true", help="print the table of every config key instead")
    p.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GanforgeError as err:
        print(f"ganforge: error: {err}", file=sys.stderr)
        return 2
    except StoppedBySignal as stopped:
        print(f"ganforge: stopped by {signal.Signals(stopped.signum).name}", file=sys.stderr)
        return 128 + stopped.signum
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        if err.errno not in _FILE_SYSTEM_FIXES:
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"ganforge: error: cannot read or write{where} ({err.strerror}); {_FILE_SYSTEM_FIXES[err.errno]}, "
              f"then run the command again — files already written are kept (a run continues with "
              f"ganforge train --resume RUN)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
