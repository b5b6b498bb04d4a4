"""The training loop: per generator step, n D steps then one G step; callbacks every N steps.

The loop knows objectives and networks only through their small interfaces (losses/base.py,
models/registry.py). Nothing in a step reads a value back to the host: losses are summed on the
device and copied out once per log interval, one interval late, so the device never waits on Python.
"""
from __future__ import annotations

import json
import math
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from .. import __version__
from ..config import Config, resolve
from ..data import BatchSampler, Dataset, load_dataset, mode_coverage
from ..errors import GanforgeError
from ..losses import build_objective, objective_class
from ..models import build_networks, count_parameters, describe
from ..report import plot_losses, save_grid, save_points
from ..report.grids import to_uint8
from ..run import RunPaths, read_history
from .checkpoint import find_checkpoint, list_checkpoints
from .device import pick_device
from .optim import build_optimizers
from .schedules import CriticSchedule
from .state import TrainState

_SCALARS = ("d_loss", "d_real", "d_fake", "d_penalty", "g_loss", "d_grad_norm", "g_grad_norm")


class TrainingDiverged(GanforgeError):
    pass


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool = False


def default_run_dir(config: Config) -> Path:
    return Path("runs") / f"{run_name(config)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_name(config: Config) -> str:
    data = config.data.rstrip("/").split("/")[-1].split(":")[0] or "data"
    return config.name or f"{config.objective}-{data}"


def _grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())


@contextmanager
def _graceful_interrupt():
    """The first Ctrl-C asks the loop to stop at the next step boundary; a second one aborts."""
    flag = {"stop": False}

    def handler(signum, frame):
        flag["stop"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class Trainer:
    def __init__(self, config: Config, run_dir: Path, resume: bool = False, echo=print):
        self.echo = echo
        self.paths = RunPaths(Path(run_dir))
        self.config = config if resume else resolve(config)
        cfg = self.config
        self.device = pick_device(cfg.device)

        self.dataset: Dataset = load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.dataset, seed=cfg.seed)
        echo(self.dataset.info["summary"])
        self.data_shape = tuple(self.dataset.data.shape[1:])

        torch.manual_seed(cfg.seed)  # identical initial weights for a given seed
        d_batchnorm_ok = objective_class(cfg.objective).d_batchnorm_ok
        G, D = build_networks(cfg.model, self.dataset.kind, self.data_shape, d_batchnorm_ok)
        G, D = G.to(self.device), D.to(self.device)
        opt_d, opt_g = build_optimizers(G, D, cfg.optim)
        sampler = BatchSampler(self.dataset, cfg.batch_size, self.device, cfg.seed, cfg.dataset.flip)
        self.state = TrainState(step=0, G=G, D=D, opt_g=opt_g, opt_d=opt_d, sampler=sampler)
        self.objective = build_objective(cfg.objective, cfg.loss)
        self.schedule = CriticSchedule(cfg.optim.n_critic, cfg.optim.critic_burst, cfg.optim.burst_first,
                                       cfg.optim.burst_every)
        echo(describe(G, D))

        # One fixed z, independent of the training RNG, so grids over time are comparable.
        n_fixed = 2000 if self.dataset.kind == "points" else cfg.train.sample_count
        fixed = torch.Generator().manual_seed(cfg.seed + 1)
        self.fixed_z = torch.randn(n_fixed, G.z_dim, generator=fixed).to(self.device)

        self.best_fid = math.inf
        if resume:
            best = self.paths.checkpoints / "best" / "state.json"
            if best.is_file():
                self.best_fid = json.loads(best.read_text())["best"]["fid"]
            checkpoint = find_checkpoint(self.paths.root)
            self.state.load(checkpoint, self.device)
            echo(f"resumed {self.paths.root} from {checkpoint.name}")
            self.history = [row for row in read_history(self.paths.metrics) if row["step"] <= self.state.step]
            self._rewrite_history()
        else:
            self._create_run_dir()
            self.history = []

    # ------------------------------------------------------------------ run directory

    def _create_run_dir(self) -> None:
        root = self.paths.root
        if root.exists() and any(root.iterdir()):
            raise GanforgeError(f"run directory {root} already exists and is not empty; "
                                f"continue it with --resume {root} or choose another --out")
        self.paths.samples.mkdir(parents=True, exist_ok=True)
        self.config.save(self.paths.config)
        info = {
            "ganforge_version": __version__,
            "created": datetime.now().isoformat(timespec="seconds"),
            "data_kind": self.dataset.kind,
            "data_shape": list(self.data_shape),
            "dataset": self.dataset.info.get("summary", ""),
            "parameters": {"G": count_parameters(self.state.G), "D": count_parameters(self.state.D)},
            "device": str(self.device),
        }
        self.paths.info.write_text(json.dumps(info, indent=1))

    def _rewrite_history(self) -> None:
        """On resume, drop rows past the checkpoint: those steps are about to be trained again."""
        tmp = self.paths.metrics.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in self.history))
        tmp.replace(self.paths.metrics)

    # ------------------------------------------------------------------ one generator step

    def _step(self, g_step: int, acc: torch.Tensor, want_grad_norms: bool) -> int:
        """D phase ×n then G phase; sums losses into `acc` (on device). Returns the number of D steps."""
        st, objective = self.state, self.objective
        n_d = self.schedule.d_steps(g_step)
        batch = self.config.batch_size
        for i in range(n_d):
            real, _ = st.sampler.next()
            z = torch.randn(batch, st.G.z_dim, device=self.device)
            last = i == n_d - 1
            # The last D step's fake keeps its graph: the G step below reuses it instead of a new G forward.
            with torch.set_grad_enabled(last):
                fake = st.G(z)
            real_logits, fake_logits = st.D(real), st.D(fake.detach())
            d_loss = objective.d_loss(real_logits, fake_logits)
            penalty = objective.d_penalty(st.D, real, fake.detach())
            total = d_loss if penalty is None else d_loss + penalty
            st.opt_d.zero_grad(set_to_none=True)
            total.backward()
            if last and want_grad_norms:
                acc[5] += _grad_norm(st.D)
            st.opt_d.step()
            objective.after_d_step(st.D)
            acc[:4] += torch.stack([
                d_loss.detach(), objective.d_output(real_logits.detach()).mean(),
                objective.d_output(fake_logits.detach()).mean(),
                penalty.detach() if penalty is not None else torch.zeros((), device=self.device),
            ]) / n_d

        # The G step needs gradients through D, not D's own weight gradients (the next D step would
        # discard them), so D's parameters sit out of this backward pass.
        st.D.requires_grad_(False)
        try:
            g_loss = objective.g_loss(st.D(fake))
            st.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
        finally:
            st.D.requires_grad_(True)
        if want_grad_norms:
            acc[6] += _grad_norm(st.G)
        st.opt_g.step()
        acc[4] += g_loss.detach()
        return n_d

    # ------------------------------------------------------------------ callbacks

    @torch.no_grad()
    def write_samples(self) -> Path:
        G = self.state.G
        G.eval()
        out = G(self.fixed_z)
        G.train()
        path = self.paths.samples / f"step-{self.state.step:06d}.png"
        if self.dataset.kind == "points":
            ds = self.dataset
            real = ds.data[torch.randperm(len(ds.data), generator=torch.Generator().manual_seed(0))[:2000]]
            cover = mode_coverage(out, ds.centers, ds.std)
            title = (f"step {self.state.step}: {cover['modes']}/{len(ds.centers)} modes, "
                     f"{100 * cover['high_quality']:.1f}% high quality")
            save_points(out, path, real=real, title=title)
        else:
            save_grid(to_uint8(out), path)
        return path

    def evaluate_now(self) -> dict:
        """Metrics of the current G (eval.*), logged as an "eval" row; a better FID is kept as checkpoints/best."""
        cfg, G = self.config, self.state.G
        G.eval()  # BatchNorm must not update its running statistics while measuring
        try:
            if self.dataset.kind == "points":
                with torch.no_grad():
                    result = mode_coverage(G(self.fixed_z), self.dataset.centers, self.dataset.std)
            else:
                from ..metrics import evaluate

                result = evaluate(G, ref=self.dataset.data, metrics=cfg.eval.metrics, n=cfg.eval.n,
                                  features=cfg.eval.features, device=self.device, seed=cfg.seed,
                                  cache_dir=cfg.dataset.cache_dir or None, progress=False)
        finally:
            G.train()
        row = {"step": self.state.step, "eval": result}
        self.history.append(row)
        with self.paths.metrics.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if result.get("fid", math.inf) < self.best_fid:
            self.best_fid = result["fid"]
            self.state.save(self.paths.root, self.config.train.keep_checkpoints, name="best",
                            extra={"best": {"fid": self.best_fid, "step": self.state.step}})
        return result

    def _check_finite(self, first_bad: torch.Tensor) -> None:
        bad_step = int(first_bad)
        if bad_step >= 0:
            good = list_checkpoints(self.paths.root)
            kept = f"the last good checkpoint is {good[-1][1]}" if good else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"losses became NaN/Inf at step {bad_step}; training stopped and {kept} — "
                f"lower the learning rates (optim.lr_d, optim.lr_g) or try another objective")

    def _write_rows(self, pending: list) -> None:
        with self.paths.metrics.open("a") as f:
            for meta, values in pending:
                values = values.tolist()
                row = {"step": meta["step"]}
                for name, v in zip(_SCALARS, values):
                    row[name] = v if math.isfinite(v) else None
                row.update({k: v for k, v in meta.items() if k != "step"})
                self.history.append(row)
                f.write(json.dumps(row) + "\n")
        pending.clear()

    # ------------------------------------------------------------------ the loop

    def train(self) -> TrainResult:
        cfg, st, tc = self.config, self.state, self.config.train
        if st.step >= cfg.steps:
            self.echo(f"{self.paths.root} is already at step {st.step} ≥ steps = {cfg.steps}; "
                      f"nothing to do (raise it with --steps)")
            return TrainResult(self.paths.root, st.step)

        acc = torch.zeros(len(_SCALARS), device=self.device)
        first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        pending: list = []  # (host metadata, values copied off the device) awaiting the next flush
        steps_in_interval = d_steps_in_interval = 0
        interval_start, callback_time, wall_start = time.perf_counter(), 0.0, time.perf_counter()
        wall_offset = max((row["wall_time"] for row in self.history if "wall_time" in row), default=0.0)

        bar = tqdm(total=cfg.steps, initial=st.step, disable=tc.quiet, unit="step", dynamic_ncols=True,
                   desc=self.paths.root.name)
        interrupted = False
        with _graceful_interrupt() as interrupt:
            while st.step < cfg.steps:
                done = st.step + 1
                log_now = done % tc.log_every == 0 or done == cfg.steps
                n_d = self._step(st.step, acc, want_grad_norms=log_now)
                st.step = done
                steps_in_interval += 1
                d_steps_in_interval += n_d
                bad = ~torch.isfinite(acc[:5].sum())
                first_bad = torch.where(bad & (first_bad < 0), done, first_bad)

                if log_now:
                    # Last interval's values are surely ready now: write them, then queue this one.
                    self._write_rows(pending)
                    elapsed = time.perf_counter() - interval_start - callback_time
                    means = acc.clone()
                    means[:5] /= steps_in_interval
                    meta = {
                        "step": done, "d_steps": d_steps_in_interval,
                        "lr_d": st.opt_d.param_groups[0]["lr"], "lr_g": st.opt_g.param_groups[0]["lr"],
                        "img_per_s": round(d_steps_in_interval * cfg.batch_size / max(elapsed, 1e-9), 1),
                        "wall_time": round(wall_offset + time.perf_counter() - wall_start, 2),
                    }
                    pending.append((meta, means.to("cpu", non_blocking=True)))
                    acc.zero_()
                    steps_in_interval = d_steps_in_interval = 0
                    interval_start, callback_time = time.perf_counter(), 0.0
                    self._report_progress(bar, meta)

                sample_now = done % tc.sample_every == 0 or done == cfg.steps
                checkpoint_now = done % tc.checkpoint_every == 0 or done == cfg.steps or interrupt["stop"]
                eval_now = cfg.eval.every > 0 and (done % cfg.eval.every == 0 or done == cfg.steps)
                if sample_now or checkpoint_now or eval_now:
                    t0 = time.perf_counter()
                    self._write_rows(pending)
                    self._check_finite(first_bad)
                    if eval_now:
                        self.evaluate_now()
                    if sample_now:
                        self.write_samples()
                        plot_losses(self.history, self.paths.loss_curve)
                    if checkpoint_now:
                        st.save(self.paths.root, tc.keep_checkpoints)
                    callback_time += time.perf_counter() - t0
                if interrupt["stop"]:
                    interrupted = True
                    break
        bar.close()
        self._write_rows(pending)
        self._check_finite(first_bad)
        if interrupted:
            self.echo(f"interrupted at step {st.step}: checkpoint written; continue with "
                      f"ganforge train --resume {self.paths.root}")
        else:
            self.echo(f"finished {st.step} steps: {self.paths.root}")
        return TrainResult(self.paths.root, st.step, interrupted)

    def _report_progress(self, bar, meta: dict) -> None:
        # The latest losses shown are one interval old (the newest are still on their way off the device).
        last = next((row for row in reversed(self.history) if "d_loss" in row), None)
        losses = f"D {last['d_loss']:.3f} G {last['g_loss']:.3f}" if last and last["d_loss"] is not None else ""
        if self.config.train.quiet:
            self.echo(f"step {meta['step']}/{self.config.steps}  {meta['img_per_s']:.0f} img/s  {losses}")
        else:
            bar.set_postfix_str(f"{meta['img_per_s']:.0f} img/s {losses}", refresh=False)
            bar.update(meta["step"] - bar.n)


def train(config: Config, run_dir: Path | None = None, resume: bool = False, echo=print) -> TrainResult:
    run_dir = Path(run_dir) if run_dir else (Path(config.out) if config.out else default_run_dir(config))
    return Trainer(config, run_dir, resume=resume, echo=echo).train()
