"""Folders larger than memory: the streamed data path against the in-memory one, on one generated folder.

1. Writes a folder of procedural JPEGs (a coloured shape on a background, with sensor-like noise, so
   decoding costs what a photo of that size costs) — or reuses one given with --folder.
2. Builds ganforge's decoded cache from it, cold (a fresh cache folder): images/s of the streaming build.
3. Trains the same run from that cache, each time in its own process — `dataset.stream=true` (batches
   read from the file on disk by a prefetching thread) and `dataset.stream=false` (the whole set in
   memory and on the device), alternating for --rounds rounds — and reports each side's peak RSS
   (wait4, the largest of its processes) and images/s (the median of its runs' own `img_per_s` rows,
   each run's first row left out as warm-up).

    .venv/bin/python benchmarks/stream_throughput.py --images 100000            # the issue's 4.9 GB case
    .venv/bin/python benchmarks/stream_throughput.py --quick --json             # a smoke run for CI
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.data.shapes import load_shapes
from ganforge.rundir import RunDir

CHUNK = 1000  # images rendered at a time while writing the folder


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stdout stays clean for --json


def make_folder(folder: Path, count: int, resolution: int, seed: int = 0) -> None:
    """`count` JPEGs (quality 90) of shapes with Gaussian noise (σ 12), in sub-folders of 1,000."""
    rng = np.random.default_rng(seed)
    # Noise from a bank of fields, each image's rolled by a random offset: as costly to decode as
    # fresh noise, far cheaper to make.
    bank = rng.normal(0, 12, (16, resolution, resolution, 3)).astype(np.float32)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL encodes without the GIL
        for start in range(0, count, CHUNK):
            n = min(CHUNK, count - start)
            images = load_shapes("", resolution, 3, DatasetOptions(size=n), seed=seed + start).data.numpy()
            picks, shifts = rng.integers(len(bank), size=n), rng.integers(resolution, size=(n, 2))
            part = folder / f"{start // CHUNK:04d}"
            part.mkdir(parents=True, exist_ok=True)

            def write(i: int) -> None:
                noise = np.roll(bank[picks[i]], tuple(shifts[i]), axis=(0, 1))
                pixels = np.clip(images[i].transpose(1, 2, 0) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(part / f"{start + i:07d}.jpg", quality=90)

            list(pool.map(write, range(n)))


def train(folder: Path, cache_dir: Path, out: Path, stream: bool, args) -> dict:
    """One training run in a child process; its peak RSS and images/s."""
    command = [sys.executable, "-m", "ganforge", "train", "--data", str(folder), "--resolution", str(args.resolution),
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--device", args.device,
               "--out", str(out), "--set", "train.quiet=true", "--set", f"train.log_every={args.log_every}",
               "--set", f"train.sample_every={10 * args.steps}", "--set", f"train.checkpoint_every={10 * args.steps}",
               "--set", f"dataset.cache_dir={cache_dir}", "--set", f"dataset.stream={str(stream).lower()}"]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"training failed ({' '.join(command)}):\n{stderr[-3000:]}")
    rates = [row["img_per_s"] for row in RunDir(out).read_history() if "img_per_s" in row][1:]
    return {"img_s": round(statistics.median(rates), 1), "img_s_rows": rates,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, help="images in the generated folder (default 100000; quick 300)")
    parser.add_argument("--resolution", type=int, help="default 128 (quick 32)")
    parser.add_argument("--steps", type=int, help="training steps of each run (default 150; quick 6)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--log-every", type=int, help="steps per img/s row (default 10; quick 2)")
    parser.add_argument("--rounds", type=int, help="alternating runs per side (default 2; quick 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", help="use this folder instead of writing one (it is kept)")
    parser.add_argument("--workdir", help="where the folder, cache and runs go (default: a temporary folder, removed)")
    parser.add_argument("--quick", action="store_true", help="a smoke run for CI")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    args.images = args.images or (300 if args.quick else 100_000)
    args.resolution = args.resolution or (32 if args.quick else 128)
    args.steps = args.steps or (6 if args.quick else 150)
    args.log_every = args.log_every or (2 if args.quick else 10)
    args.rounds = args.rounds or (1 if args.quick else 2)

    with tempfile.TemporaryDirectory(prefix="ganforge-stream-bench-", dir=args.workdir) as tmp:
        tmp = Path(tmp)
        result: dict = {"resolution": args.resolution, "batch_size": args.batch_size, "steps": args.steps,
                        "device": args.device}
        folder = Path(args.folder) if args.folder else tmp / "images"
        if not args.folder:
            seconds = time.perf_counter()
            make_folder(folder, args.images, args.resolution)
            seconds = time.perf_counter() - seconds
            result["write_img_s"] = round(args.images / seconds, 1)
            log(f"wrote {args.images:,} JPEGs of {args.resolution}×{args.resolution} in {seconds:.0f} s")

        cache_dir = tmp / "cache"
        seconds = time.perf_counter()
        dataset = load_dataset(str(folder), args.resolution, 3, DatasetOptions(cache_dir=str(cache_dir), stream=True))
        seconds = time.perf_counter() - seconds
        assert dataset.info["cache"] == "built"
        result.update(images=len(dataset.data), decoded_mb=round(dataset.data.numel() / 2**20, 1),
                      cache_build_img_s=round(len(dataset.data) / seconds, 1), cache_build_s=round(seconds, 1))
        log(f"cache built cold: {len(dataset.data):,} images, {dataset.data.numel() / 2**30:.2f} GiB decoded, "
            f"{seconds:.0f} s, {len(dataset.data) / seconds:,.0f} img/s")
        del dataset

        # Alternating rounds, so drift in the machine's load hits both sides alike.
        runs: dict[str, list[dict]] = {"streamed": [], "in_memory": []}
        for r in range(args.rounds):
            for side in (("streamed", "in_memory") if r % 2 == 0 else ("in_memory", "streamed")):
                run = train(folder, cache_dir, tmp / f"run-{side}-{r}", side == "streamed", args)
                runs[side].append(run)
                log(f"round {r + 1}/{args.rounds} {side:9s}: {run['img_s']:,.1f} img/s, "
                    f"peak RSS {run['peak_rss_mb']:,.0f} MiB")
        for side, done in runs.items():
            rows = [rate for run in done for rate in run["img_s_rows"]]
            result[side] = {"img_s": round(statistics.median(rows), 1), "img_s_rows": rows,
                            "peak_rss_mb": max(run["peak_rss_mb"] for run in done),
                            "seconds": [run["seconds"] for run in done]}
        result["ratio"] = round(result["streamed"]["img_s"] / result["in_memory"]["img_s"], 3)
        log(f"streamed / in memory: {result['ratio']:.3f}× (medians of every run's rows)")

    if args.json:
        print(json.dumps(result))
    else:
        print("| images | decoded | cache build img/s | streamed img/s | in-memory img/s | ratio | "
              "peak RSS streamed / in memory |")
        print(f"| {result['images']:,} | {result['decoded_mb'] / 1024:.2f} GiB | {result['cache_build_img_s']:,.0f} | "
              f"{result['streamed']['img_s']:,.1f} | {result['in_memory']['img_s']:,.1f} | {result['ratio']:.2f}× | "
              f"{result['streamed']['peak_rss_mb']:,.0f} / {result['in_memory']['peak_rss_mb']:,.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
