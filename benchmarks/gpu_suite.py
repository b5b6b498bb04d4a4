"""The GPU suite: every figure issue 16 asks of a lent GPU, in one run (`bash benchmarks/gpu_suite.sh`).

1. train    ganforge's step against the plain PyTorch loop (benchmarks/train_throughput.py), dcgan64 at
            batch 128: fp32 (NCHW), bf16 autocast, channels_last (fp32), torch.compile (bf16; NCHW, as compiling
            NHWC convolutions fails on CUDA, pytorch#171622).
2. flops    achieved TFLOP/s of that step (FLOPs of one G step counted by torch.utils.flop_counter,
            times G steps/s), as a share of the GPU's dense peak for the precision the step runs in.
3. fid      a 50,000-sample FID through `ganforge.metrics.evaluate`: generation by a 64×64 DCGAN G,
            Inception features, statistics and the distance, with reference statistics cached as in
            a real evaluation. The GPU machine reaches no registry, so G and the Inception network
            have random weights of the real shapes: the same arithmetic, hence the same time.
4. stream   the streamed data path at 128×128 (benchmarks/stream_throughput.py): cache build rate, and
            images/s and peak RSS streamed against in memory.

Prints each section's figures and writes them all as JSON (--out). `--tiny` runs every section at toy
sizes on any device (the CPU smoke test in tests/ uses it).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train_throughput import make_trainer, numerics_check, run_case  # noqa: E402

from ganforge.metrics import InceptionV3, evaluate  # noqa: E402
from ganforge.metrics.extractors import InceptionExtractor, extractors  # noqa: E402
from ganforge.models import build_networks  # noqa: E402
from ganforge.config import ModelConfig  # noqa: E402
from ganforge.fileio import write_atomic  # noqa: E402
from ganforge.training.step_metrics import StepMetrics  # noqa: E402

# Dense (no sparsity) peak TFLOP/s from the vendors' data sheets: TF32 tensor cores (what cuDNN uses for
# fp32 convolutions by default) and bf16. Matched by a substring of torch.cuda.get_device_name().
PEAK_TFLOPS = {
    "H200": {"tf32": 494.7, "bf16": 989.4},
    "H100 80GB HBM3": {"tf32": 494.7, "bf16": 989.4},  # SXM
    "H100 NVL": {"tf32": 417.5, "bf16": 835.5},
    "H100 PCIe": {"tf32": 378.0, "bf16": 756.0},
    "A100": {"tf32": 156.0, "bf16": 312.0},
    "L40S": {"tf32": 183.0, "bf16": 366.0},
}
VARIANTS = {  # name: ganforge overrides (the reference loop stays plain fp32 NCHW); 'off' quoted: YAML reads off as false
    "fp32": ["perf.amp='off'", "perf.channels_last=false"],
    "bf16": ["perf.amp=bf16", "perf.channels_last=false"],
    "channels_last": ["perf.amp='off'", "perf.channels_last=true"],
    "compile": ["perf.amp=bf16", "perf.channels_last=false", "perf.compile=true"],  # NHWC: pytorch#171622
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_for(device: torch.device) -> dict | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


def run_json(command: list[str], timeout: float) -> object:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def train_section(args, workdir: Path) -> dict:
    """train_throughput.py's cases, run in this process (one import of torch for all variants)."""
    device, out = torch.device(args.device), {}
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as train_throughput.py: the DCGAN example sets it
    for variant in args.variants.split(","):
        overrides = VARIANTS[variant]
        options = argparse.Namespace(quick=args.tiny, steps=args.steps, batch_size=args.batch_size,
                                     rounds=args.rounds, set=overrides)
        start = time.perf_counter()
        try:
            result = run_case(args.case, options, device, workdir / f"train-{variant}")
        except Exception as err:  # one failing variant must not cost the others' figures
            out[variant] = {"error": f"{type(err).__name__}: {err}"[:2000]}
            log(f"train {variant:13s}: FAILED: {out[variant]['error']}")
            continue
        out[variant] = {key: result[key] for key in ("reference_img_s", "ganforge_img_s", "ratio")}
        log(f"train {variant:13s}: reference {result['reference_img_s']:9.1f} img/s, ganforge "
            f"{result['ganforge_img_s']:9.1f} img/s, {result['ratio']:.2f}× ({time.perf_counter() - start:.0f} s)")
    if not args.tiny:  # the reference loop computes what ganforge computes (fp32, CPU, as train_throughput.py)
        out["numerics_passed"] = numerics_check(2, workdir / "numerics")["passed"]
    return out


def flops_section(args, workdir: Path) -> dict:
    device, out, peak = torch.device(args.device), {}, peak_for(torch.device(args.device))
    resolution = int(args.case.removeprefix("dcgan"))
    for variant, precision in (("fp32", "tf32"), ("bf16", "bf16")):
        trainer = make_trainer(resolution, "dcgan", args.batch_size, device, workdir / variant, tuple(VARIANTS[variant]))
        acc = StepMetrics(device)
        trainer.parts.step(0, acc, want_grad_norms=False)  # warm-up: cuDNN autotuning, allocator
        counter = FlopCounterMode(display=False)
        with counter:
            trainer.parts.step(1, acc, want_grad_norms=False)
        flops = counter.get_total_flops()
        sync(device)
        start = time.perf_counter()
        for k in range(args.flop_steps):
            trainer.parts.step(2 + k, acc, want_grad_norms=False)
        sync(device)
        seconds = time.perf_counter() - start
        tflops = flops * args.flop_steps / seconds / 1e12
        out[variant] = {"gflop_per_g_step": round(flops / 1e9, 2), "tflop_s": round(tflops, 3),
                        "peak_tflop_s": peak[precision] if peak else None, "peak_precision": precision,
                        "share_of_peak": round(tflops / peak[precision], 4) if peak else None}
        share = f", {100 * tflops / peak[precision]:.1f}% of the {peak[precision]} {precision} peak" if peak else ""
        log(f"flops {variant}: {flops / 1e9:.1f} GFLOP per G step, {tflops:.2f} TFLOP/s{share}")
    return out


def random_inception(device: torch.device) -> InceptionExtractor:
    """The FID Inception with random weights: the same arithmetic as the real network. He-initialised
    convolutions keep activations at the real network's scale (with PyTorch's default initialisation
    they shrink ~10× per layer towards denormals, which run slowly on CPUs and give a FID of 0)."""
    network = InceptionV3(pretrained=False)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return InceptionExtractor(network.to(device))


def fid_section(args, workdir: Path) -> dict:
    device = torch.device(args.device)
    if "inception-random" not in extractors:
        extractors.register("inception-random")(lambda argument, device, weights_path: random_inception(device))
    torch.manual_seed(0)
    G, _ = build_networks(ModelConfig(norm="batch", width=64), "image", (3, 64, 64))
    G = G.to(device).eval()
    common = dict(metrics="fid", n=args.fid_n, features="inception-random", batch_size=args.fid_batch,
                  device=device, cache_dir=workdir / "fid-cache", progress=False)
    reference = torch.randint(0, 256, (args.fid_n, 3, 64, 64), dtype=torch.uint8)
    start = time.perf_counter()
    evaluate(G, ref=reference, **common)  # the reference statistics, computed once and cached
    cold = time.perf_counter() - start
    sync(device)
    start = time.perf_counter()
    fid = evaluate(G, ref=reference, seed=1, **common)["fid"]
    sync(device)
    seconds = time.perf_counter() - start
    log(f"fid: {args.fid_n:,} samples in {seconds:.1f} s with the reference statistics cached "
        f"({args.fid_n / seconds:,.0f} samples/s; {cold:.1f} s with the reference computed too)")
    return {"n": args.fid_n, "batch_size": args.fid_batch, "seconds": round(seconds, 2),
            "seconds_with_reference": round(cold, 2), "fid_of_random_networks": round(fid, 3)}


def stream_section(args, workdir: Path) -> dict:
    command = [sys.executable, str(HERE / "stream_throughput.py"), "--json", "--device", args.device,
               "--images", str(args.stream_images), "--resolution", str(args.stream_resolution),
               "--steps", str(args.stream_steps), "--log-every", str(max(1, args.stream_steps // 6)),
               "--batch-size", str(args.batch_size), "--rounds", "1" if args.tiny else "2", "--workdir", str(workdir)]
    result = run_json(command, timeout=600)
    log(f"stream: {result['images']:,} images {result['resolution']}×{result['resolution']}, cache built at "
        f"{result['cache_build_img_s']:,.0f} img/s; streamed {result['streamed']['img_s']:,.0f} img/s "
        f"(peak RSS {result['streamed']['peak_rss_mb']:,.0f} MiB) against in memory "
        f"{result['in_memory']['img_s']:,.0f} img/s ({result['in_memory']['peak_rss_mb']:,.0f} MiB): "
        f"{result['ratio']:.2f}×")
    return result


def save(out: Path, report: dict) -> None:
    text = (json.dumps(report, indent=1) + "\n").encode()
    write_atomic(out, lambda f: f.write(text))


SECTIONS = {"train": train_section, "flops": flops_section, "fid": fid_section, "stream": stream_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="every section at toy sizes: a smoke run for CI")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, from: " + ", ".join(SECTIONS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="train section's variants, from: " + ", ".join(VARIANTS))
    parser.add_argument("--out", help="JSON file to write (default benchmarks/gpu-suite-<device>-<time>.json)")
    args = parser.parse_args(argv)
    tiny = args.tiny
    args.case = "dcgan32" if tiny else "dcgan64"
    args.batch_size = 8 if tiny else 128
    args.rounds, args.steps, args.flop_steps = (1, 1, 1) if tiny else (5, 50, 50)
    args.fid_n, args.fid_batch = (8, 8) if tiny else (50_000, 500)
    args.stream_images, args.stream_resolution, args.stream_steps = (120, 32, 4) if tiny else (20_000, 128, 300)
    names = [n for n in args.sections.split(",") if n]
    if unknown := [n for n in names if n not in SECTIONS]:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if unknown := [v for v in args.variants.split(",") if v not in VARIANTS]:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    log(f"ganforge GPU suite on {machine}, torch {torch.__version__}" + (" (tiny)" if tiny else ""))
    report = {"device": machine, "torch": torch.__version__, "tiny": tiny,
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    out = Path(args.out) if args.out else HERE / f"gpu-suite-{device.type}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganforge-gpu-suite-") as tmp:
        for name in names:
            section_start = time.perf_counter()
            try:
                report[name] = SECTIONS[name](args, Path(tmp))
            except Exception as err:  # one failing section must not cost the others' figures
                report[name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
                log(f"{name}: FAILED: {report[name]['error']}")
            report[name + "_seconds"] = round(time.perf_counter() - section_start, 1)
            save(out, report)  # a lease cut short keeps the sections done
    report["seconds"] = round(time.perf_counter() - start, 1)
    log(f"suite done in {report['seconds']:.0f} s")
    save(out, report)
    print(json.dumps(report))
    log(f"written to {out}")
    failed = [v for v in report.values() if isinstance(v, dict) and ("error" in v or any(
        isinstance(w, dict) and "error" in w for w in v.values()))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
