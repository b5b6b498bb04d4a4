"""Data throughput and run memory: the image-folder pipeline against a plain PIL loop, in one process.

1. Decoding: a folder of JPEGs (varied sizes, as photos are) is loaded by ganforge (threaded decode +
   resize + centre crop, then written to the uint8 cache) and by a reference loop written here, the
   way a notebook does it (PIL open → RGB → resize → crop → numpy, one file after the other).
   Alternating rounds; a fresh cache folder for each ganforge cold load.
2. Cache hit: the same load again, served from the cache.
3. Batches: ganforge's on-device sampler (index, flip, normalise) against a plain loop that stacks
   per-image tensors from a list, as a map-style Dataset + default collate does.
4. Peak memory of a short default training run in a child process (`--run-steps`): maximum RSS,
   and on a GPU peak memory allocated (printed by the run's own process).

    .venv/bin/python benchmarks/data_throughput.py               # 2,000 images, 3 rounds
    .venv/bin/python benchmarks/data_throughput.py --quick       # a smoke run for CI
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.config import DatasetOptions
from ganforge.data import BatchSampler, load_dataset


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_folder(folder: Path, count: int, seed: int = 0) -> None:
    """JPEGs of 200–640 px sides with smooth colour fields and noise: real decode and resize work."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        w, h = (int(v) for v in rng.integers(200, 641, size=2))
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.random(3, dtype=np.float32)
        image = ramp + rng.normal(0, 25, size=(h, w, 3)).astype(np.float32)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)


def reference_load(folder: Path, resolution: int) -> np.ndarray:
    """The notebook way: one file after the other."""
    out = []
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = resolution / min(img.size)
            size = (max(resolution, round(img.width * scale)), max(resolution, round(img.height * scale)))
            img = img.resize(size, Image.BILINEAR)
            left, top = (img.width - resolution) // 2, (img.height - resolution) // 2
            out.append(np.asarray(img.crop((left, top, left + resolution, top + resolution))))
    return np.stack(out).transpose(0, 3, 1, 2)


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, help="images in the generated folder (default 2000; quick 200)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3; quick 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--run-steps", type=int, help="steps of the default run measured for memory "
                                                      "(default 300; quick 20; 0: skip)")
    parser.add_argument("--quick", action="store_true", help="a smoke run for CI")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    count = args.images or (200 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    run_steps = args.run_steps if args.run_steps is not None else (20 if args.quick else 300)

    result: dict = {"images": count, "resolution": args.resolution, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="ganforge-data-bench-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "images"
        make_folder(folder, count)
        rates = {"reference": [], "ganforge": []}
        for r in range(rounds):
            for side in (("reference", "ganforge") if r % 2 == 0 else ("ganforge", "reference")):
                if side == "reference":
                    seconds, images = timed(lambda: reference_load(folder, args.resolution))
                    assert images.shape == (count, 3, args.resolution, args.resolution)
                else:
                    options = DatasetOptions(cache_dir=str(tmp / f"cache-{r}"))  # cold: an empty cache
                    seconds, dataset = timed(lambda: load_dataset(str(folder), args.resolution, 3, options))
                    assert dataset.info["cache"] == "built" and len(dataset.data) == count
                rates[side].append(count / seconds)
            log(f"decode round {r + 1}/{rounds}: reference {rates['reference'][-1]:.0f} img/s, "
                f"ganforge {rates['ganforge'][-1]:.0f} img/s (cold, cache written)")
        hit_seconds, dataset = timed(lambda: load_dataset(str(folder), args.resolution, 3,
                                                         DatasetOptions(cache_dir=str(tmp / "cache-0"))))
        assert dataset.info["cache"] == "hit"
        reference, ours = statistics.median(rates["reference"]), statistics.median(rates["ganforge"])
        result["decode"] = {"reference_img_s": round(reference, 1), "ganforge_img_s": round(ours, 1),
                            "ratio": round(ours / reference, 3), "cache_hit_img_s": round(count / hit_seconds, 1)}
        log(f"cache hit: {count / hit_seconds:,.0f} img/s")

        # Batches per second: ganforge's sampler against stacking per-image tensors.
        sampler = BatchSampler(dataset, args.batch_size, torch.device("cpu"), seed=0, flip=True)
        per_image = [image for image in dataset.data]
        batches = 200 if args.quick else 2000
        order = torch.randperm(len(per_image) // args.batch_size * args.batch_size)

        def plain_batches():
            for b in range(batches):
                start = b * args.batch_size % len(order)
                index = order[start:start + args.batch_size].tolist()
                torch.stack([per_image[i].float() / 127.5 - 1 for i in index])

        def sampler_batches():
            for _ in range(batches):
                sampler.next()

        plain_s, _ = timed(plain_batches)
        ours_s, _ = timed(sampler_batches)
        result["batches"] = {"reference_img_s": round(batches * args.batch_size / plain_s, 1),
                             "ganforge_img_s": round(batches * args.batch_size / ours_s, 1),
                             "ratio": round(plain_s / ours_s, 3)}
        log(f"batches of {args.batch_size}: reference {result['batches']['reference_img_s']:,.0f} img/s, "
            f"ganforge {result['batches']['ganforge_img_s']:,.0f} img/s")

        if run_steps:
            command = [sys.executable, "-m", "ganforge", "train", "--quiet", "--steps", str(run_steps),
                       "--out", str(tmp / "run"), "--set", f"dataset.cache_dir={tmp / 'cache-run'}"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            seconds, done = timed(lambda: subprocess.run(command, capture_output=True, text=True))
            if done.returncode:
                log(done.stderr[-2000:])
                return 1
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
            result["run"] = {"command": "ganforge train --steps " + str(run_steps), "seconds": round(seconds, 1),
                             "peak_rss_mb": round(max(peak, before) / 1024, 1)}
            log(f"default run of {run_steps} steps: {seconds:.1f} s, peak RSS {result['run']['peak_rss_mb']:.0f} MiB")

    if args.json:
        print(json.dumps(result))
    else:
        d, b = result["decode"], result["batches"]
        print(f"\n{count} JPEGs (200–640 px) → {args.resolution}×{args.resolution}, median of {rounds} round(s)")
        print("| stage | reference img/s | ganforge img/s | ratio |")
        print("| --- | --- | --- | --- |")
        print(f"| decode + resize (cold) | {d['reference_img_s']:,.0f} | {d['ganforge_img_s']:,.0f} | {d['ratio']:.2f}× |")
        print(f"| cache hit | – | {d['cache_hit_img_s']:,.0f} | – |")
        print(f"| batches of {args.batch_size} | {b['reference_img_s']:,.0f} | {b['ganforge_img_s']:,.0f} | "
              f"{b['ratio']:.2f}× |")
        if "run" in result:
            print(f"| peak RSS, {result['run']['command']} | | {result['run']['peak_rss_mb']:,.0f} MiB | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
