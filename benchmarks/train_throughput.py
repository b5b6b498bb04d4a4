"""Training throughput: ganforge's Trainer step against plain reference loops, in one process.

    .venv/bin/python benchmarks/train_throughput.py [--quick] [--json] [--device cpu|cuda]
                                                     [--rounds 5] [--batch-size 64] [--cases dcgan64,...]
                                                     [--malloc-tune] [--threads N] [--steps N]

Cases (same architecture, objective, optimizer and batch on both sides):
  dcgan64    the PyTorch DCGAN example (examples/dcgan/main.py): netG/netD with BatchNorm, nz 100,
             ngf = ndf = 64, Adam 2e-4 β1 0.5, Sigmoid + BCELoss, one noise draw per iteration whose
             fake serves both the D and the G step, and the example's per-iteration .item() reads.
  dcgan32    the same loop and layer pattern at 32×32 (one up/down-sampling block fewer).
  wgan-gp64  WGAN-GP (Gulrajani et al., Algorithm 1): critic without BatchNorm, 5 critic steps with a
             gradient penalty through autograd.grad(create_graph=True), then one G step on fresh
             noise; Adam 1e-4, β (0, 0.9), λ 10.

The reference loops read batches as slices of a float tensor in [-1, 1] already on the device (the
cheapest input there is); ganforge runs `parts.step` (training/step.py), its real training step, with its own sampler
(uint8 on the device, converted per batch). Images/s counts real images seen by D (the critic) per
second. Rounds alternate between the two sides so drift in machine speed hits both; medians are compared.

After timing, checks that both compute the same thing: dcgan64 in fp32 on the CPU from the same
weights, batches and noise, comparing the weights after each of a few steps. Exit status 1 if that fails.
Also reports peak RSS, minor page faults per G step of each side, and on CUDA peak GPU memory.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ganforge.config import from_dict, merge, parse_override
from ganforge.training.step_metrics import StepMetrics
from ganforge.training.trainer import Trainer

CASES = {  # name: (resolution, ganforge objective)
    "dcgan64": (64, "dcgan"),
    "dcgan32": (32, "dcgan"),
    "wgan-gp64": (64, "wgan-gp"),
}
# Timed G steps per round (full, quick). At batch 64 on a 2-core CPU one G step takes ~0.5 s
# (dcgan64), ~0.1 s (dcgan32), ~3 s (wgan-gp64: 5 critic steps with double backward).
STEPS = {"dcgan64": (10, 2), "dcgan32": (40, 3), "wgan-gp64": (3, 1)}
NZ, WIDTH = 100, 64


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)  # stdout stays clean for --json


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def page_faults() -> int:
    # Minor faults: memory glibc handed back to the OS and the next step touches afresh. Both sides
    # share one allocator here, so its state (hence who pays) depends on the two sides' interleaving.
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def tune_malloc() -> None:
    """glibc: keep freed blocks in the process instead of unmapping/trimming them (for both sides)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD at its maximum (also stops its dynamic adjustment)
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


# ---------------------------------------------------------------------------------------------
# The reference networks: the DCGAN example's netG / netD, written out for 32 or 64 pixels


def example_netG(resolution: int, nz: int = NZ, ngf: int = WIDTH, nc: int = 3) -> nn.Sequential:
    mults = [2**i for i in reversed(range(int(math.log2(resolution)) - 2))]  # 64: 8 4 2 1; 32: 4 2 1
    layers = [nn.ConvTranspose2d(nz, ngf * mults[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mults[0]),
              nn.ReLU(True)]
    for a, b in zip(mults, mults[1:]):
        layers += [nn.ConvTranspose2d(ngf * a, ngf * b, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * b), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def example_netD(resolution: int, ndf: int = WIDTH, nc: int = 3, batchnorm: bool = True,
                 sigmoid: bool = True, linear_head: bool = False) -> nn.Sequential:
    """batchnorm=False is the WGAN-GP critic: no norm, so every conv has a bias (as ganforge's d_norm none).
    linear_head=True computes the final 4×4 conv as ganforge does, as a Linear on the flattened map:
    the same weights and math, only the 8192-term sum is ordered differently."""
    mults = [2**i for i in range(int(math.log2(resolution)) - 2)]  # 64: 1 2 4 8; 32: 1 2 4
    bias = not batchnorm
    layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, inplace=True)]
    for a, b in zip(mults, mults[1:]):
        layers += [nn.Conv2d(ndf * a, ndf * b, 4, 2, 1, bias=bias)]
        layers += [nn.BatchNorm2d(ndf * b)] if batchnorm else []
        layers += [nn.LeakyReLU(0.2, inplace=True)]
    if linear_head:
        layers += [nn.Flatten(), nn.Linear(ndf * mults[-1] * 16, 1, bias=bias)]
    else:
        layers += [nn.Conv2d(ndf * mults[-1], 1, 4, 1, 0, bias=bias)]
    layers += [nn.Sigmoid()] if sigmoid else []
    return nn.Sequential(*layers)


def parameters(*nets: nn.Module) -> list[nn.Parameter]:
    return [p for net in nets for p in net.parameters()]


# ---------------------------------------------------------------------------------------------
# The reference loops: one G step each, written as their sources write them


class ExampleDCGAN:
    """The DCGAN example's training iteration. logits=True swaps Sigmoid + BCELoss for
    BCEWithLogitsLoss on the same network without its Sigmoid (the same math, rounded differently);
    it and linear_head (see example_netD) exist only for the numerics check."""

    def __init__(self, resolution: int, device: torch.device, logits: bool = False, linear_head: bool = False):
        self.netG = example_netG(resolution).to(device)
        self.netD = example_netD(resolution, sigmoid=not logits, linear_head=linear_head).to(device)
        self.criterion = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.device = device

    def step(self, real: torch.Tensor, noise: torch.Tensor | None = None):
        netG, netD, criterion = self.netG, self.netD, self.criterion
        b = real.size(0)
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((b,), 1.0, dtype=real.dtype, device=self.device)
        output = netD(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        if noise is None:
            noise = torch.randn(b, NZ, 1, 1, device=self.device)
        fake = netG(noise)
        label.fill_(0.0)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optD.step()
        # (2) Update G network: maximize log(D(G(z))), on the same fake
        netG.zero_grad()
        label.fill_(1.0)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optG.step()
        return errD, errG, D_x, D_G_z1, D_G_z2


class PlainWGANGP:
    """WGAN-GP's Algorithm 1 written plainly: n_critic critic steps, then a G step on fresh noise."""

    def __init__(self, resolution: int, device: torch.device, n_critic: int = 5, gp_weight: float = 10.0):
        self.netG = example_netG(resolution).to(device)
        self.netD = example_netD(resolution, batchnorm=False, sigmoid=False).to(device)
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=1e-4, betas=(0.0, 0.9))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=1e-4, betas=(0.0, 0.9))
        self.device, self.n_critic, self.gp_weight = device, n_critic, gp_weight

    def step(self, next_real) -> None:
        netG, netD = self.netG, self.netD
        for _ in range(self.n_critic):
            real = next_real()
            b = real.size(0)
            with torch.no_grad():
                fake = netG(torch.randn(b, NZ, 1, 1, device=self.device))
            eps = torch.rand(b, 1, 1, 1, device=self.device)
            mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(netD(mixed).sum(), mixed, create_graph=True)
            penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            loss_d = netD(fake).mean() - netD(real).mean() + self.gp_weight * penalty
            self.optD.zero_grad()
            loss_d.backward()
            self.optD.step()
        self.optG.zero_grad()
        loss_g = -netD(netG(torch.randn(b, NZ, 1, 1, device=self.device))).mean()
        loss_g.backward()
        self.optG.step()


# ---------------------------------------------------------------------------------------------
# ganforge's side


def make_trainer(resolution: int, objective: str, batch_size: int, device: torch.device, workdir: Path,
                 overrides: tuple[str, ...] = ()) -> Trainer:
    cfg = {
        "data": "shapes", "resolution": resolution, "objective": objective, "batch_size": batch_size,
        "device": str(device),
        # A small dataset: only the step is timed, and the data sit on the device either way.
        "dataset": {"size": max(512, 4 * batch_size), "flip": False, "cache_dir": str(workdir / "cache")},
        "model": {"norm": "batch", "width": WIDTH, "z_dim": NZ},  # wgan-gp: d_norm auto → none
        "train": {"quiet": True},
    }
    for override in overrides:  # --set: ganforge's switches (perf.*), the reference loop stays as it is
        cfg = merge(cfg, parse_override(override))
    cfg = from_dict(cfg)
    run = workdir / f"run-{objective}-{resolution}-{batch_size}-{device.type}-{len(list(workdir.glob('run-*')))}"
    return Trainer(cfg, run, echo=lambda *a: None)


def time_steps(step, n: int, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return time.perf_counter() - start


def run_case(name: str, args, device: torch.device, workdir: Path) -> dict:
    resolution, objective = CASES[name]
    steps = args.steps or STEPS[name][1 if args.quick else 0]
    trainer = make_trainer(resolution, objective, args.batch_size, device, workdir, tuple(args.set))
    # The reference loops get the trainer's own images, as float in [-1, 1] on the device.
    data = (trainer.dataset.data.float() / 127.5 - 1).to(device)
    n_batches, cursor = len(data) // args.batch_size, [0]

    def next_real() -> torch.Tensor:  # a slice: a view, no copy
        i = cursor[0] % n_batches
        cursor[0] += 1
        return data[i * args.batch_size:(i + 1) * args.batch_size]

    if objective == "dcgan":
        reference = ExampleDCGAN(resolution, device)
        d_steps_per_g_step = 1

        def reference_step() -> None:
            reference.step(next_real())
    else:
        reference = PlainWGANGP(resolution, device)
        d_steps_per_g_step = reference.n_critic

        def reference_step() -> None:
            reference.step(next_real)
    assert trainer.schedule.d_steps(0) == d_steps_per_g_step  # both see as many real images per G step

    acc = StepMetrics(device)  # the trainer's on-device sums of the step's named terms
    g_step = [0]

    def ganforge_step() -> None:
        trainer.parts.step(g_step[0], acc, want_grad_norms=False)
        g_step[0] += 1

    sides = {"reference": reference_step, "ganforge": ganforge_step}
    for step in sides.values():  # warm-up, untimed: allocator, lazy inits, cudnn autotuning
        time_steps(step, 1, device)
    images = steps * d_steps_per_g_step * args.batch_size
    rates, faults = {side: [] for side in sides}, {side: [] for side in sides}
    gpu_peak = {side: 0 for side in sides}
    for r in range(args.rounds):
        for side in (("reference", "ganforge") if r % 2 == 0 else ("ganforge", "reference")):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            before = page_faults()
            rates[side].append(images / time_steps(sides[side], steps, device))
            faults[side].append((page_faults() - before) / steps)
            if device.type == "cuda":
                gpu_peak[side] = max(gpu_peak[side], torch.cuda.max_memory_allocated(device))
        log(f"  {name} round {r + 1}/{args.rounds}: reference {rates['reference'][-1]:.1f} img/s, "
            f"ganforge {rates['ganforge'][-1]:.1f} img/s")

    ref, ours = statistics.median(rates["reference"]), statistics.median(rates["ganforge"])
    result = {"name": name, "reference_img_s": round(ref, 2), "ganforge_img_s": round(ours, 2),
              "ratio": round(ours / ref, 3), "batch_size": args.batch_size, "g_steps_per_round": steps,
              "rounds": args.rounds, "reference_rounds": [round(x, 2) for x in rates["reference"]],
              "ganforge_rounds": [round(x, 2) for x in rates["ganforge"]], "peak_rss_mb": round(peak_rss_mb(), 1),
              **{f"{side}_page_faults_per_g_step": round(statistics.median(f)) for side, f in faults.items()}}
    if device.type == "cuda":  # both sides' models stay allocated throughout: compare the difference
        result.update({f"{side}_gpu_peak_mb": round(v / 2**20, 1) for side, v in gpu_peak.items()})
    return result


# ---------------------------------------------------------------------------------------------
# Numerics: from the same weights, batches and noise both loops must reach the same weights


def flat_weights(*nets: nn.Module) -> torch.Tensor:
    # ganforge's parameters map one to one, in order and element order, onto the example's
    # (its Linear head's (1, 8192) weight is the example's (1, 512, 4, 4) final conv).
    return torch.cat([p.detach().flatten() for net in nets for p in net.parameters()])


def numerics_check(steps: int, workdir: Path) -> dict:
    cpu = torch.device("cpu")
    # The reference's layout and optimizer loop (ganforge's defaults, NHWC and fused Adam, round differently)
    trainer = make_trainer(64, "dcgan", 64, cpu, workdir / "numerics",
                           ("perf.channels_last=false", "perf.fused_optim=false"))
    st = trainer.state
    lr = st.opt_d.param_groups[0]["lr"]
    # The batches ganforge's sampler will hand out: read ahead, then rewound through its resume API.
    batches = [st.sampler.next()[0].clone() for _ in range(steps)]
    st.sampler.load_state_dict({"epoch": 0, "position": 0})
    initial = flat_weights(st.G, st.D)

    ours, acc = [], StepMetrics()
    for k in range(steps):
        torch.manual_seed(1000 + k)  # the step's first draw from the global RNG is its z
        trainer.parts.step(k, acc, want_grad_norms=False)
        ours.append(flat_weights(st.G, st.D))

    result = {"steps": steps}
    variants = {"example": dict(logits=False, linear_head=False),  # the example as it is
                "bce_logits": dict(logits=True, linear_head=False),
                "bce_logits_linear_head": dict(logits=True, linear_head=True)}  # ganforge's math, op for op
    for variant, kwargs in variants.items():
        ref = ExampleDCGAN(64, cpu, **kwargs)
        # ganforge's initial weights; a clone, since the parameters become views of the vector given
        torch.nn.utils.vector_to_parameters(initial.clone(), parameters(ref.netG, ref.netD))
        maxima, means = [], []
        for k in range(steps):
            torch.manual_seed(1000 + k)
            ref.step(batches[k], torch.randn(64, NZ).view(64, NZ, 1, 1))  # the same draw as ganforge's z
            diff = (ours[k] - flat_weights(ref.netG, ref.netD)).abs()
            maxima.append(diff.max().item())
            means.append(diff.mean().item())
        result[variant] = {"max_abs_weight_diff": maxima, "mean_abs_weight_diff": means}  # after each step
    # Computed op for op as ganforge does, the loops must agree bit for bit at every step. The
    # example's conv head and Sigmoid + BCELoss only round differently (~1e-6 relative on D's logits),
    # but Adam's first update is ±lr whatever a gradient's size, so a gradient within rounding of zero
    # flips its weight's update by up to 2·lr; the next steps spread that, as any GAN run spreads a
    # perturbation. So after step 1: a few weights up to 2·lr apart, on average ~1e-11 with 2 threads
    # and ~2e-8 with 1 (the thread count changes the order of the convolutions' sums).
    result["passed"] = (all(m == 0.0 for m in result["bce_logits_linear_head"]["max_abs_weight_diff"])
                        and all(result[v]["max_abs_weight_diff"][0] <= 2 * lr
                                and result[v]["mean_abs_weight_diff"][0] <= 1e-7 for v in ("example", "bce_logits")))
    return result


def log_numerics(numerics: dict) -> None:
    log(f"numerics, dcgan64 in fp32 on the CPU, from the same weights, batches and noise: ganforge vs "
        f"reference |Δweight| max (mean) after each of {numerics['steps']} steps")
    for variant, what in (("example", "the example (Sigmoid + BCELoss, conv head)"),
                          ("bce_logits", "BCEWithLogits, conv head"),
                          ("bce_logits_linear_head", "BCEWithLogits, Linear head as ganforge")):
        v = numerics[variant]
        log(f"  {what:43s} " + ", ".join(f"{m:.2g} ({a:.2g})" for m, a in
                                           zip(v["max_abs_weight_diff"], v["mean_abs_weight_diff"])))
    log(f"  -> {'PASS' if numerics['passed'] else 'FAIL'}")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a smoke run for CI: one round of few steps, batch 16")
    parser.add_argument("--json", action="store_true", help="print one JSON list, an object per case, on stdout")
    parser.add_argument("--rounds", type=int, help="alternating timed rounds per side (default 5; quick 1)")
    parser.add_argument("--batch-size", type=int, help="default 64 (quick 16)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--steps", type=int, help="timed G steps per round, for every case (default: per case)")
    parser.add_argument("--numerics-steps", type=int,
                        help="steps of the fp32 identity check (default 3; quick 2; 0: skip the check)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a ganforge config override for the timed cases, e.g. perf.channels_last=true "
                             "(repeatable; the numerics check always runs NCHW with per-tensor Adam, as the reference)")
    parser.add_argument("--malloc-tune", action="store_true",
                        help="glibc (Linux): keep freed memory in the process (no page faults per step), both sides")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.batch_size = args.batch_size or (16 if args.quick else 64)
    names = [n for n in args.cases.split(",") if n]
    if unknown := [n for n in names if n not in CASES]:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc_tune:
        tune_malloc()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the DCGAN example sets it; process-wide, so both sides get it

    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    log(f"torch {torch.__version__}, {machine}, batch {args.batch_size}, {args.rounds} round(s)"
        + (", malloc tuned" if args.malloc_tune else "") + "".join(f", ganforge {o}" for o in args.set))
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        results = [run_case(name, args, device, Path(tmp)) for name in names]
        rss_timed = peak_rss_mb()  # before the check below, which holds several copies of the weights
        numerics_steps = args.numerics_steps if args.numerics_steps is not None else (2 if args.quick else 3)
        numerics = numerics_check(numerics_steps, Path(tmp)) if numerics_steps else None
        if numerics:
            log_numerics(numerics)
    for r in results:
        if r["name"] == "dcgan64" and numerics:
            r["numerics"] = numerics  # the check is about dcgan64: it rides on that case's object

    if args.json:
        print(json.dumps(results))
    else:
        print(f"\n{machine}, batch {args.batch_size}, median of {args.rounds} round(s)")
        print("| case | reference img/s | ganforge img/s | ratio | page faults per G step (reference / ganforge) |")
        print("| --- | --- | --- | --- | --- |")
        for r in results:
            print(f"| {r['name']} | {r['reference_img_s']:.1f} | {r['ganforge_img_s']:.1f} | {r['ratio']:.2f}× "
                  f"| {r['reference_page_faults_per_g_step']:,} / {r['ganforge_page_faults_per_g_step']:,} |")
    log(f"peak RSS of the process: {rss_timed:.0f} MiB after the timed cases, {peak_rss_mb():.0f} MiB in all")
    for r in results:
        if device.type == "cuda":
            log(f"peak GPU memory allocated in {r['name']}: reference {r['reference_gpu_peak_mb']:.0f} MiB, "
                f"ganforge {r['ganforge_gpu_peak_mb']:.0f} MiB")
    return 0 if numerics is None or numerics["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
