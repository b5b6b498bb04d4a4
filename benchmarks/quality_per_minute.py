"""Quality per CPU-minute: the PyTorch DCGAN example as published against any list of ganforge recipes,
trained on the same folder for the same wall-clock budget, FID of each at the same training times.

    .venv/bin/python benchmarks/quality_per_minute.py --data ../shared/data/emoji            # folder64; 5, 10, 20 min
    .venv/bin/python benchmarks/quality_per_minute.py --data ../shared/data/emoji --at 20 \
        --recipe folder64 --recipe "r3=folder64; objective=rpgan; model.arch=resnet"      # several recipes

The reference is the DCGAN example (examples/dcgan/main.py) at 64×64: its netG/netD (BatchNorm,
ngf = ndf = 64, nz 100), Sigmoid + BCELoss, Adam 2e-4 β1 0.5, batch 64, shuffled epochs; the loop is
benchmarks/train_throughput.py's ExampleDCGAN, written from the example's description. Its images are
the same decoded 64×64 pixels ganforge trains on (the example's Resize + CenterCrop of each picture),
as floats in [-1, 1] on the device. Its samples are drawn as the example draws its grids: netG in train
mode (BatchNorm on batch statistics, batches of 64), from a copy so training is untouched.

Each ganforge side is a recipe, `--recipe "[LABEL=]PRESET[; key=value; ...]"` (repeatable; default
folder64; `--set` applies to all), trained by `ganforge train` stopped by its time budget
(train.minutes) at each measuring time and resumed to the next: resuming is exact, so this is one
run paused for measurement. The sides alternate segment by segment (reference to 5 min, each recipe
to 5 min, reference to 10, …), so drift in the machine's load hits all of them. Only training time
counts against the budget; measuring is paused time.

FID: the real FID Inception weights (`ganforge fetch-weights inception --pip`) on --fid-n generated
images (default 2,000) against the whole folder (--ref-n, default all of it), the same latent seed at
every measurement. Output in --out: quality_per_minute.json (every figure and the protocol),
quality_per_minute.png (FID against training minutes), the last sample grid of every side, and the
ganforge runs. Ratios: each recipe's final FID against the reference's and against the first recipe's.

Other resolutions (`--resolution 128 --reference none`): the example exists at 64×64 only, so the
sides are the recipes alone and the first recipe is the baseline. A two-stage recipe names its stage 1
as `model.stage1_run=@LABEL`, where `--stage1 "LABEL=PRESET; key=value; train.minutes=M"` is trained
first (at its own resolution, same data and seed); stage 1's training time counts against the two-stage
side's budget, so at every measuring time both stages together have trained as long as every other side.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import NZ, ExampleDCGAN  # noqa: E402  (the benchmarks folder is no package)

from ganforge.config import build_config, parse_override  # noqa: E402
from ganforge.data import load_dataset  # noqa: E402
from ganforge.metrics import evaluate  # noqa: E402
from ganforge.report import save_grid  # noqa: E402
from ganforge.report.grids import to_uint8  # noqa: E402
from ganforge.rundir import RunDir, read_config  # noqa: E402
from ganforge.device import pick_device  # noqa: E402
from ganforge.training.rows import trained_seconds  # noqa: E402
from ganforge.training.trainer import train  # noqa: E402

RESOLUTION, BATCH = 64, 64


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)  # stdout: the table (or --json) only


class ExampleSampler(nn.Module):
    """G(z) for evaluate(): the example's netG on z as N×100×1×1, in train mode as the example samples."""

    def __init__(self, netG: nn.Module):
        super().__init__()
        self.netG, self.z_dim = netG, NZ

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.netG(z.view(len(z), NZ, 1, 1))


class Reference:
    """The example's loop over shuffled epochs of the folder, trained in segments of wall-clock time."""

    def __init__(self, images: torch.Tensor, device: torch.device, seed: int):
        torch.manual_seed(seed)
        self.loop = ExampleDCGAN(RESOLUTION, device)
        for net in (self.loop.netG, self.loop.netD):  # the example's weights_init: N(0, 0.02), BN N(1, 0.02)
            net.apply(_example_init)
        self.images = images.to(device).float().div_(127.5).sub_(1)
        self.order = torch.randperm(len(self.images), device=device)
        self.position, self.seconds, self.steps = 0, 0.0, 0

    def train_until(self, seconds: float) -> None:
        device = self.images.device
        start = time.perf_counter()
        while self.seconds + time.perf_counter() - start < seconds:
            if self.position >= len(self.order):
                self.order, self.position = torch.randperm(len(self.images), device=device), 0
            batch = self.images[self.order[self.position:self.position + BATCH]]
            self.position += BATCH
            self.loop.step(batch)  # reads losses back with .item(), as the example does
            self.steps += 1
        self.seconds += time.perf_counter() - start

    def generator_of_z(self) -> ExampleSampler:
        return ExampleSampler(copy.deepcopy(self.loop.netG).train())


def _example_init(m: nn.Module) -> None:
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def fid(source, images: torch.Tensor, args, device) -> float:
    result = evaluate(source, ref=images, ref_name=args.data, metrics="fid", n=args.fid_n,
                      n_ref=args.ref_n or len(images), features=args.features, device=device, seed=0,
                      progress=not args.quiet)
    return result["fid"]


def parse_recipe(spec: str) -> tuple[str, str, list[str]]:
    """'[LABEL=]PRESET[; key=value; ...]' → (label, preset, overrides); the label defaults to the preset."""
    head, *overrides = [part.strip() for part in spec.split(";") if part.strip()]
    label, _, preset = head.rpartition("=")
    return label or preset, preset, overrides


def train_stage1(specs: list[str], out: Path, common: dict, first_at: float, args) -> dict[str, tuple[Path, float]]:
    """Each --stage1 run trained to its own train.minutes: label → (run folder, minutes it trained)."""
    configs = {}
    for label, preset, overrides in map(parse_recipe, specs):
        config = build_config(preset, None, [parse_override(s) for s in overrides + args.set] +
                              [{key: value for key, value in common.items() if key != "resolution"}])
        if not 0 < config.train.minutes < first_at:
            raise SystemExit(f"--stage1 {label}: give it a budget below the first measuring time {first_at:g}, "
                             f"e.g. '{label}={preset}; train.minutes={first_at / 2:g}'")
        configs[label] = config
    runs = {}
    for label, config in configs.items():
        run_dir = out / f"{label}-run"
        result = train(config, run_dir, echo=lambda *a: None if args.quiet else log(*a))
        runs[label] = run_dir, trained_seconds(RunDir(run_dir).read_history()) / 60
        log(f"stage 1 {label}: {result.step} steps in {runs[label][1]:.2f} min at {config.resolution} px")
    return runs


def with_stage1(overrides: list[str], stage1: dict[str, tuple[Path, float]]) -> tuple[list[str], float]:
    """A recipe's overrides with model.stage1_run=@LABEL pointing at that --stage1 run, and the minutes that
    run trained (0 for a recipe without one)."""
    resolved, spent = [], 0.0
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "model.stage1_run" and value.strip().startswith("@"):
            name = value.strip()[1:]
            if name not in stage1:
                raise SystemExit(f"{item}: no --stage1 run is labelled {name!r} (have: {', '.join(stage1) or 'none'})")
            run_dir, spent = stage1[name]
            item = f"model.stage1_run={run_dir}"
        resolved.append(item)
    return resolved, spent


def run(args) -> dict:
    device = pick_device(args.device)
    at = sorted(float(m) for m in args.at.split(","))
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"--out {out} exists and is not empty; choose another")
    with_reference = args.reference == "example"
    if with_reference and args.resolution != RESOLUTION:
        raise SystemExit(f"the DCGAN example is {RESOLUTION}×{RESOLUTION} only: at --resolution {args.resolution} "
                         f"add --reference none (the first recipe is then the baseline)")
    recipes = [parse_recipe(spec) for spec in (args.recipe or ["folder64"])]
    if len({label for label, _, _ in recipes} | {parse_recipe(s)[0] for s in args.stage1}) < \
            len(recipes) + len(args.stage1):
        raise SystemExit("two --recipe or --stage1 sides share a label; name them LABEL=PRESET")
    out.mkdir(parents=True, exist_ok=True)
    common = {"data": args.data, "resolution": args.resolution, "seed": args.seed, "device": args.device,
              "train": {"quiet": True}}
    stage1 = train_stage1(args.stage1, out, common, at[0], args)
    configs, head_start = {}, {}
    for label, preset, overrides in recipes:
        overrides, head_start[label] = with_stage1(overrides, stage1)
        if head_start[label] >= at[0]:
            raise SystemExit(f"{label}: its stage 1 trained {head_start[label]:.1f} min, not less than the first "
                             f"measuring time {at[0]:g}; give stage 1 less (train.minutes) or measure later (--at)")
        configs[label] = build_config(preset, None, [parse_override(s) for s in overrides + args.set] + [common])
    first = next(iter(configs.values()))
    dataset = load_dataset(args.data, args.resolution, 3, replace(first.dataset, flip=False), seed=args.seed)
    images = dataset.data
    log(dataset.info["summary"])
    reference = Reference(images, device, args.seed) if with_reference else None
    rows = []
    started = time.perf_counter()
    for minutes in at:
        row = {"minutes": minutes, "recipes": {}}
        if reference:
            reference.train_until(minutes * 60)
            log(f"reference: {reference.steps} steps in {reference.seconds / 60:.2f} min; measuring FID")
            row.update(reference_fid=fid(reference.generator_of_z(), images, args, device),
                       reference_steps=reference.steps)
        for label, config in configs.items():
            run_dir = out / f"{label}-run"
            timed = read_config(run_dir) if run_dir.exists() else config
            timed = replace(timed, train=replace(timed.train, minutes=minutes - head_start[label]))
            result = train(timed, run_dir, resume=run_dir.exists(), echo=lambda *a: None if args.quiet else log(*a))
            log(f"{label}: {result.step} steps ({result.stopped_by}); measuring FID")
            row["recipes"][label] = {"fid": fid(run_dir, images, args, device), "steps": result.step,
                                     "stage1_minutes": head_start[label]}
        rows.append(row)
        log(f"{minutes:g} min: " + (f"reference FID {row['reference_fid']:.2f} ({reference.steps} steps), "
                                    if reference else "") + ", ".join(
            f"{label} FID {side['fid']:.2f} ({side['steps']} steps)" for label, side in row["recipes"].items()))
    if reference:
        with torch.no_grad():
            z = torch.randn(64, NZ, generator=torch.Generator().manual_seed(1)).to(device)
            save_grid(to_uint8(reference.generator_of_z()(z)), out / "reference-samples.png")
    from ganforge import load_run

    for label in configs:
        ours_run = load_run(out / f"{label}-run", device=device)
        with torch.no_grad():
            z = torch.randn(64, ours_run.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
            save_grid(to_uint8(ours_run.generator_of_z(z)), out / f"{label}-samples.png")
    report = {"protocol": {"data": args.data, "images": len(images), "fid_n": args.fid_n,
                           "ref_n": args.ref_n or len(images), "features": args.features, "device": str(device),
                           "threads": torch.get_num_threads(), "recipes": args.recipe or ["folder64"],
                           "resolution": args.resolution, "reference": args.reference, "stage1": args.stage1,
                           "set": args.set, "seed": args.seed,
                           "wall_seconds": round(time.perf_counter() - started, 1)},
              "rows": rows, "summary": summarize(rows)}
    (out / "quality_per_minute.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(rows, out / "quality_per_minute.png", f"{Path(args.data).name}, FID on {args.fid_n} samples ({device})")
    return report


def summarize(rows: list[dict]) -> dict:
    """Per recipe: its final FID over the first recipe's and, with the reference, over the reference's and
    the first measuring time at which it reached the reference's final FID (None if it never did)."""
    final = rows[-1]
    baseline = next(iter(final["recipes"].values()))["fid"]
    summary = {}
    for label, side in final["recipes"].items():
        summary[label] = {"fid": side["fid"], "steps": side["steps"], "ratio_to_first_recipe": side["fid"] / baseline}
        if "reference_fid" in final:
            reached = next((row["minutes"] for row in rows
                            if row["recipes"][label]["fid"] <= final["reference_fid"]), None)
            summary[label].update(ratio_to_reference=side["fid"] / final["reference_fid"],
                                  time_to_reference_final=reached,
                                  time_ratio=None if reached is None else reached / final["minutes"])
    return summary


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    minutes = [row["minutes"] for row in rows]
    if "reference_fid" in rows[0]:
        ax.plot(minutes, [row["reference_fid"] for row in rows], "o-", label="PyTorch DCGAN example")
    for label in rows[0]["recipes"]:
        ax.plot(minutes, [row["recipes"][label]["fid"] for row in rows], "o-", label=f"ganforge {label}")
    ax.set_xlabel("training minutes")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(report: dict) -> str:
    labels = list(report["rows"][0]["recipes"])
    with_reference = "reference_fid" in report["rows"][0]
    lines = ["| minutes | " + ("reference FID (steps) | " if with_reference else "") +
             " | ".join(f"{label} FID (steps)" for label in labels) + " |",
             "| --- " * (1 + with_reference + len(labels)) + "|"]
    for row in report["rows"]:
        lines.append(f"| {row['minutes']:g} | " +
                     (f"{row['reference_fid']:.2f} ({row['reference_steps']}) | " if with_reference else "") +
                     " | ".join(f"{row['recipes'][label]['fid']:.2f} ({row['recipes'][label]['steps']})"
                                for label in labels) + " |")
    lines.append("")
    for label, side in report["summary"].items():
        text = f"{label}: final FID {side['fid']:.2f} = {side['ratio_to_first_recipe']:.2f}× {labels[0]}'s"
        if with_reference:
            reached = side["time_to_reference_final"]
            text += (f", {side['ratio_to_reference']:.2f}× the reference's; reaches the reference's final FID at "
                     f"{'—' if reached is None else f'{reached:g} min'}")
        lines.append(text)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="image folder (or any ganforge data spec)")
    parser.add_argument("--at", default="5,10,20", help="training minutes at which both are measured (default 5,10,20)")
    parser.add_argument("--fid-n", type=int, default=2000, help="generated images per FID (default 2000)")
    parser.add_argument("--ref-n", type=int, default=0, help="reference images (default 0: the whole folder)")
    parser.add_argument("--features", default="inception", help="inception (real weights) or classifier:PATH")
    parser.add_argument("--recipe", action="append", metavar="[LABEL=]PRESET[; key=value ...]",
                        help="a ganforge side (repeatable; default folder64)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for every recipe")
    parser.add_argument("--resolution", type=int, default=RESOLUTION, help="training and FID resolution (default 64)")
    parser.add_argument("--reference", choices=("example", "none"), default="example",
                        help="example: the PyTorch DCGAN example beside the recipes (64×64 only); none: recipes only")
    parser.add_argument("--stage1", action="append", default=[], metavar="LABEL=PRESET; train.minutes=M[; ...]",
                        help="a stage-1 run trained first, named by recipes as model.stage1_run=@LABEL (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", default="benchmarks/quality-per-minute", help="output folder (must be new or empty)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run(args)
    print(json.dumps(report) if args.json else table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
