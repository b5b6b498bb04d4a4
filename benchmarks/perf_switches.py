"""The speed switches (perf.*) on the recipes users train: each recipe's real training step with one set
of overrides (the base) against another (the candidate), in one process, rounds alternating so that drift
in machine speed hits both; per recipe the median images/s of each side and their ratio.

    .venv/bin/python benchmarks/perf_switches.py --threads 2 --rounds 3 \\
        --recipe folder64 --recipe "rpgan-resnet16=folder64; objective=rpgan; model.arch=resnet; model.width=16; ..." \\
        --base "perf.channels_last=false; perf.fused_optim=false" \\
        --candidate "perf.channels_last=true; perf.fused_optim=true"

A recipe is '[LABEL=]PRESET[; key=value; ...]' as in quality_per_minute.py, PRESET `defaults` being
the config with no preset (`ganforge train`'s default run). Both sides train the built-in
shapes data at the recipe's own resolution, 3 channels, from the same seed; only
the step is timed (`parts.step`: the D and G phases, penalties, EMA), as the trainer runs it. Images/s
counts real images seen by D. Exit status 1 if any of the candidate's loss terms went NaN/Inf. Prints one
row per recipe; --json writes them to stdout.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_per_minute import parse_recipe  # noqa: E402  (the benchmarks folder is no package)
from train_throughput import time_steps  # noqa: E402

from ganforge.config import build_config, parse_override  # noqa: E402
from ganforge.training.step_metrics import StepMetrics  # noqa: E402
from ganforge.training.trainer import Trainer  # noqa: E402


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)  # stdout stays clean for --json


def overrides(spec: str) -> list[str]:
    return [part.strip() for part in spec.split(";") if part.strip()]


def make_trainer(preset: str, recipe_overrides: list[str], side: list[str], args, workdir: Path) -> Trainer:
    common = {"data": "shapes", "channels": 3, "seed": args.seed, "device": args.device,
              "dataset": {"size": 512, "cache_dir": str(workdir / "cache")}, "train": {"quiet": True}}
    updates = [common] + [parse_override(s) for s in recipe_overrides + side]
    cfg = build_config(None if preset == "defaults" else preset, None, updates)
    return Trainer(cfg, workdir / f"run-{len(list(workdir.glob('run-*')))}", echo=lambda *a: None)


def time_recipe(label: str, preset: str, recipe_overrides: list[str], args, workdir: Path) -> dict:
    sides = {"base": overrides(args.base), "candidate": overrides(args.candidate)}
    trainers = {side: make_trainer(preset, recipe_overrides, sets, args, workdir) for side, sets in sides.items()}
    steps = {side: [0] for side in sides}
    metrics = {side: StepMetrics(trainer.device) for side, trainer in trainers.items()}

    def run(side: str, n: int) -> tuple[float, int]:
        """(seconds, real images seen by D) of n G steps of one side."""
        trainer, images = trainers[side], [0]

        def step() -> None:
            d_steps = trainer.parts.step(steps[side][0], metrics[side], want_grad_norms=False)
            images[0] += d_steps * trainer.config.batch_size
            steps[side][0] += 1

        return time_steps(step, n, trainer.device), images[0]

    for side in sides:  # warm-up, untimed: allocator, lazy inits
        run(side, 2)
    rates = {side: [] for side in sides}
    for r in range(args.rounds):
        for side in (("base", "candidate") if r % 2 == 0 else ("candidate", "base")):
            seconds, images = run(side, args.steps)
            rates[side].append(images / seconds)
        log(f"  {label} round {r + 1}/{args.rounds}: base {rates['base'][-1]:.1f} img/s, "
            f"candidate {rates['candidate'][-1]:.1f} img/s")
    finite = int(metrics["candidate"].non_finite(watch_norms=False)) == 0  # every loss term of every step
    base, candidate = statistics.median(rates["base"]), statistics.median(rates["candidate"])
    return {"recipe": label, "base_img_s": round(base, 2), "candidate_img_s": round(candidate, 2),
            "ratio": round(candidate / base, 3), "rounds": args.rounds, "g_steps_per_round": args.steps,
            "base_rounds": [round(x, 2) for x in rates["base"]],
            "candidate_rounds": [round(x, 2) for x in rates["candidate"]], "candidate_losses_finite": finite}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", help="'[LABEL=]PRESET[; key=value; ...]' (repeatable; "
                                                          "default folder64)")
    parser.add_argument("--base", default="perf.channels_last=false; perf.fused_optim=false")
    parser.add_argument("--candidate", default="perf.channels_last=true; perf.fused_optim=true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="timed G steps per round and side")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.recipe or ["folder64"]:
            label, preset, recipe_overrides = parse_recipe(spec)
            rows.append(time_recipe(label, preset, recipe_overrides, args, Path(tmp)))
    log(f"base: {args.base}; candidate: {args.candidate}; {torch.get_num_threads()} thread(s), {args.device}")
    for row in rows:
        log(f"{row['recipe']}: base {row['base_img_s']} img/s, candidate {row['candidate_img_s']} img/s, "
            f"{row['ratio']:.2f}x (median of {row['rounds']} rounds of {row['g_steps_per_round']} G steps)"
            + ("" if row["candidate_losses_finite"] else "; candidate losses NOT finite"))
    if args.json:
        print(json.dumps({"base": args.base, "candidate": args.candidate, "threads": torch.get_num_threads(),
                          "device": args.device, "rows": rows}, indent=1))
    return 0 if all(row["candidate_losses_finite"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
