"""Throughput of the evaluation layer: Inception features/s, and the FID statistics cost at D = 2048.

    .venv/bin/python benchmarks/eval_throughput.py [--device cpu|cuda] [--n 256] [--batch-size 64]
                                                    [--resolution 32] [--threads N]

Uses the real weights when found, else random weights (the arithmetic, hence the speed, is the same).
Prints one Markdown table row for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ganforge.metrics import FeatureStats, InceptionV3, WeightsError, frechet_distance


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        network, weights = InceptionV3(), "real"
    except WeightsError:
        network, weights = InceptionV3(pretrained=False), "random"
    network = network.to(device)
    images = torch.randint(0, 256, (args.batch_size, 3, args.resolution, args.resolution), dtype=torch.uint8)

    stats = FeatureStats()
    with torch.inference_mode():
        stats.update(network(images[:2].to(device))[0])  # warm-up: kernels, allocator
        sync(device)
        start, done = time.perf_counter(), 0
        while done < args.n:
            stats.update(network(images.to(device))[0])
            done += len(images)
        sync(device)
    features_per_s = done / (time.perf_counter() - start)

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2 * 2048, 2048)), rng.normal(size=(2 * 2048, 2048))
    mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    start = time.perf_counter()
    frechet_distance(mu_a, cov_a, mu_b, cov_b)
    fid_s = time.perf_counter() - start

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print("| device | weights | input | batch | Inception features/s | FID from 2048-d stats (s) |")
    print("|---|---|---|---|---|---|")
    print(f"| {name} | {weights} | {args.resolution}×{args.resolution} uint8 | {args.batch_size} "
          f"| {features_per_s:.1f} | {fid_s:.2f} |")


if __name__ == "__main__":
    main()
