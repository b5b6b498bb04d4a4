"""Do tags steer real pictures? Variants of the emoji-tags recipe at equal training time, each judged by
tag_accuracy (per tag group: the share of samples that a classifier trained on the real images reads as
requested, beside chance) and FID, against an unconditional run of the same recipe.

Usage (from the repository root; classifiers from `ganforge train-classifier --tags`, README):
  .venv/bin/python benchmarks/tag_steering.py --data ../shared/data/emoji --minutes 25 --parallel 2 \\
      --classifier skin.safetensors,hair.safetensors,category.safetensors --out runs/tag-steering \\
      --only groups+classifier,unconditional --n 2000 --n-ref 7572

Each variant is `ganforge train --preset emoji-tags` with the --set overrides below (every key the
variants differ in is set, so a change to the preset does not change what a variant means), after
the script's own --set overrides (for another folder, such as fluent3d, its tags and their groups:
--set "dataset.tags_keep=people & body, …" --tag-groups "skin tone: …; category: …"). With
--parallel 2 two variants train at once, one thread each, so both see the same machine; then, one at
a time, `ganforge eval RUN --metrics tag_accuracy,fid` (requests drawn like the data; FID on --n samples of the
EMA G against a seeded --n-ref of the training images, real Inception weights). Prints one row per
variant and writes OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

EMOJI_GROUPS = ("skin tone: light skin tone, medium-light skin tone, medium skin tone, medium-dark skin tone, "
                "dark skin tone; hair: red hair, blond hair, white hair, curly hair, bald; person: man, woman, person; "
                "category: smileys & emotion, people & body, animals & nature, food & drink, travel & places, "
                "activities, objects, symbols, flags; style: twemoji, noto")
COLOUR = "loss.augment=translation,color"
NO_COLOUR = "loss.augment=translation"
UNBALANCED = "conditioning.classifier_balance=false"
GROUPS = "{groups}"  # each variant's placeholder for --tag-groups
VARIANTS = {
    "averaged": ["dataset.tag_groups=none", "conditioning.classifier_weight=0", UNBALANCED, COLOUR],
    "groups": [f"dataset.tag_groups={GROUPS}", "conditioning.classifier_weight=0", UNBALANCED, NO_COLOUR],
    "groups+classifier": [f"dataset.tag_groups={GROUPS}", "conditioning.classifier_weight=1", UNBALANCED, NO_COLOUR],
    "groups+classifier3": [f"dataset.tag_groups={GROUPS}", "conditioning.classifier_weight=3", UNBALANCED, NO_COLOUR],
    "groups+classifier10": [f"dataset.tag_groups={GROUPS}", "conditioning.classifier_weight=10", UNBALANCED, NO_COLOUR],
    "groups+classifier10+balanced": [f"dataset.tag_groups={GROUPS}", "conditioning.classifier_weight=10",
                                     "conditioning.classifier_balance=true", NO_COLOUR],
    "groups+classifier+colour": [f"dataset.tag_groups={GROUPS}", "conditioning.classifier_weight=1", UNBALANCED, COLOUR],
    "inferred+classifier": ["dataset.tag_groups=", "conditioning.classifier_weight=1", UNBALANCED, NO_COLOUR],
    "unconditional": ["condition=none", NO_COLOUR],
}
GANFORGE = Path(sys.executable).with_name("ganforge")


def overrides(name: str, args) -> list[str]:
    return [override.replace(GROUPS, args.tag_groups) for override in VARIANTS[name]]


def train(name: str, args, threads: int) -> subprocess.Popen:
    run = args.out / f"{name}-seed{args.seed}"
    argv = [str(GANFORGE), "train", "--preset", "emoji-tags", "--data", args.data, "--minutes", str(args.minutes),
            "--out", str(run), "--quiet", "--set", f"seed={args.seed}", "--set", "steps=1000000"]
    for override in [*args.set, *overrides(name, args)]:
        argv += ["--set", override]
    log = open(args.out / f"{name}-seed{args.seed}.train.log", "w")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def evaluate(name: str, args, threads: int) -> subprocess.Popen:
    run = args.out / f"{name}-seed{args.seed}"
    metrics = "fid" if name == "unconditional" else "tag_accuracy,fid"
    argv = [str(GANFORGE), "eval", str(run), "--metrics", metrics, "--n", str(args.n), "--n-ref", str(args.n_ref),
            "--json", "--quiet"]
    if name != "unconditional":
        argv += ["--classifier", args.classifier]
    out = open(args.out / f"{name}-seed{args.seed}.eval.json", "w")
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def in_batches(names: list[str], start, args, parallel: int) -> None:
    threads = args.threads or max(1, (os.cpu_count() or 2) // parallel)
    for i in range(0, len(names), parallel):
        batch = names[i:i + parallel]
        for process, name in [(start(name, args, threads), name) for name in batch]:
            if process.wait() != 0:
                raise SystemExit(f"{start.__name__} of {name} failed (rc {process.returncode}); see {args.out}")


def row(name: str, args) -> dict:
    run = args.out / f"{name}-seed{args.seed}"
    result = json.loads((args.out / f"{name}-seed{args.seed}.eval.json").read_text())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = max((r.get("step", 0) for r in history), default=0)
    return {"variant": name, "seed": args.seed, "steps": steps, "minutes": args.minutes,
            "overrides": overrides(name, args),
            **{k: v for k, v in result.items() if k.startswith(("tag_", "fid"))}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--classifier", required=True, help="the tag readers, comma-separated train-classifier files")
    parser.add_argument("--minutes", type=float, default=25)
    parser.add_argument("--out", type=Path, default=Path("runs/tag-steering"))
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--parallel", type=int, default=2, choices=(1, 2))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per process (default: the cores shared among --parallel); 1 when two "
                             "invocations at different seeds share the machine")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every variant (another folder's dataset.tags_keep, say)")
    parser.add_argument("--tag-groups", default=EMOJI_GROUPS,
                        help="the groups of the groups+… variants, tag_groups syntax (default: the emoji's)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--n-ref", type=int, default=7572)
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    in_batches(names, train, args, args.parallel)
    in_batches(names, evaluate, args, 1)  # one at a time: the first fills the reference statistics' cache
    rows = [row(name, args) for name in names]
    results = args.out / "results.json"
    previous = json.loads(results.read_text()) if results.is_file() else []
    kept = [r for r in previous if (r["variant"], r["seed"]) not in {(n, args.seed) for n in names}]
    results.write_text(json.dumps(kept + rows, indent=1))
    print(f"{len(names)} variants, {args.minutes:g} min each, {args.parallel} at a time "
          f"({time.time() - started:.0f} s in all); FID {args.n:,} vs a seeded {args.n_ref:,} of the training images")
    for r in rows:
        groups = sorted(k.split(".", 1)[1] for k in r if k.startswith("tag_accuracy."))
        shown = "  ".join(f"{g} {r[f'tag_accuracy.{g}']:.1%} (chance {r[f'tag_chance.{g}']:.1%})" for g in groups)
        print(f"{r['variant']:<26} {r['steps']:>6,} steps  FID {r.get('fid', float('nan')):6.1f}  {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
