"""`ganforge serve` under load: request latency against the plain forward pass, and a load test.

1. Latency: a 64×64 DCGAN of the default shape (SELU, width 32, z 100; trained for 1 step: random
   weights cost the same arithmetic as trained ones) is served by `ganforge serve` in a child process
   on 127.0.0.1; one client times `--requests` requests of 16 images (JSON in, 16 PNGs with their
   recipes out, base64). Reference, in this process with the same thread count: the generator's
   forward pass for the same 16 latents plus the uint8 conversion, which is all a request must do.
2. Load (`--load N`): 8 client threads send N requests in all (`--load-count` images each, seeds
   varied), loopback only, each with a 60 s timeout and the whole test bounded by `--max-seconds`;
   counts errors and reads the server's resident memory after a warm-up of 10% of the requests and at
   the end.

    .venv/bin/python benchmarks/serve_latency.py                  # 50 requests of 16, then 1,000 under load
    .venv/bin/python benchmarks/serve_latency.py --quick          # a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from ganforge.config import from_dict
from ganforge.report.grids import to_uint8
from ganforge.run import load_run
from ganforge.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_run(folder: Path, resolution: int) -> Path:
    out = folder / f"dcgan{resolution}"
    cfg = from_dict({"resolution": resolution, "steps": 1, "batch_size": 8, "out": str(out),
                     "dataset": {"size": 64, "cache_dir": str(folder / "cache")}, "train": {"quiet": True}})
    train(cfg, echo=lambda *a: None)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict, timeout: float = 60) -> dict:
    request = urllib.request.Request(url + "/api/generate", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def reference(run_dir: Path, count: int, rounds: int) -> list[float]:
    run = load_run(run_dir)
    G = run.generator_of_z
    times = []
    for i in range(rounds):
        z = torch.randn(count, run.z_dim, generator=torch.Generator().manual_seed(i))
        started = time.perf_counter()
        with torch.no_grad():
            to_uint8(G(z))
        times.append(time.perf_counter() - started)
    return times


def load_test(url: str, pid: int, total: int, count: int, clients: int, max_seconds: float) -> dict:
    lock = threading.Lock()
    done, errors, warm = [0], [], {}
    deadline = time.monotonic() + max_seconds

    def client(k: int) -> None:
        while time.monotonic() < deadline:
            with lock:
                if done[0] >= total:
                    return
                n = done[0]
                done[0] += 1
            try:
                data = post(url, {"run": "dcgan64", "seed": 1000 * k + n, "count": count, "psi": 0.8})
                if len(data["images"]) != count:
                    raise RuntimeError(f"{len(data['images'])} images for {count}")
            except (OSError, urllib.error.URLError, RuntimeError, KeyError, ValueError) as err:
                errors.append(repr(err))
            if n == total // 10:
                warm["rss"] = rss_mb(pid)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    end = rss_mb(pid)
    return {"requests": done[0], "clients": clients, "images_per_request": count, "errors": len(errors),
            "first_errors": errors[:3], "seconds": round(seconds, 1), "requests_per_s": round(done[0] / seconds, 1),
            "rss_after_warmup_mb": round(warm.get("rss", float("nan")), 1), "rss_end_mb": round(end, 1),
            "rss_growth_mb": round(end - warm.get("rss", float("nan")), 1), "finished": done[0] >= total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="timed requests of --count images")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or 2))
    parser.add_argument("--load", type=int, default=1000, help="requests of the load test (0: none)")
    parser.add_argument("--load-count", type=int, default=4, help="images per load-test request")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=600, help="bound on the load test")
    parser.add_argument("--quick", action="store_true", help="10 timed requests and a 80-request load test")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.load = 10, 80
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp), args.resolution)
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", str(run_dir), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url + "/api/runs", timeout=1).read()
                    break
                except OSError:
                    if server.poll() is not None:
                        raise RuntimeError(f"the server stopped: {server.stderr.read()[-2000:]}")
                    time.sleep(0.1)
            for seed in range(3):  # warm-up: first-call allocations
                post(url, {"run": run_dir.name, "seed": seed, "count": args.count})
            latencies = []
            for i in range(args.requests):
                started = time.perf_counter()
                data = post(url, {"run": run_dir.name, "seed": 100 + i * args.count, "count": args.count, "psi": 0.8})
                latencies.append(time.perf_counter() - started)
                assert len(data["images"]) == args.count
            plain = reference(run_dir, args.count, args.requests)
            result = {"resolution": args.resolution, "count": args.count, "requests": args.requests,
                      "threads": args.threads, "torch": torch.__version__,
                      "median_s": round(statistics.median(latencies), 4), "p95_s": round(percentile(latencies, 0.95), 4),
                      "reference_median_s": round(statistics.median(plain), 4),
                      "reference_p95_s": round(percentile(plain, 0.95), 4)}
            result["ratio_median"] = round(result["median_s"] / result["reference_median_s"], 2)
            log(f"{args.requests} requests of {args.count} {args.resolution}×{args.resolution} images: median "
                f"{result['median_s'] * 1000:.1f} ms, p95 {result['p95_s'] * 1000:.1f} ms; plain forward + uint8: median "
                f"{result['reference_median_s'] * 1000:.1f} ms, p95 {result['reference_p95_s'] * 1000:.1f} ms "
                f"(request / forward: {result['ratio_median']}×)")
            if args.load:
                load = load_test(url, server.pid, args.load, args.load_count, args.clients, args.max_seconds)
                result["load"] = load
                log(f"load: {load['requests']} requests of {load['images_per_request']} from {load['clients']} clients in "
                    f"{load['seconds']} s ({load['requests_per_s']}/s), {load['errors']} errors; server RSS "
                    f"{load['rss_after_warmup_mb']} MB after warm-up → {load['rss_end_mb']} MB at the end "
                    f"({load['rss_growth_mb']:+} MB)")
        finally:
            server.terminate()
            server.wait(10)
    if args.json:
        print(json.dumps(result))
    ok = "load" not in result or (result["load"]["errors"] == 0 and result["load"]["finished"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
