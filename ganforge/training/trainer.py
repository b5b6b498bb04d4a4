"""The training loop: per generator step, n D steps then one G step; callbacks every N steps.

setup.build makes the parts from the config; the Trainer adds the run directory and runs the loop, which
knows objectives and networks only through their small interfaces (losses/base.py, models/registry.py),
and sampling, evaluation and checkpoints only as callbacks with a cadence (callbacks.py). Nothing in a step reads a value back to the host: losses are summed on the
device and copied out once per log interval, one interval late, so the device never waits on Python.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from .. import __version__
from ..config import Config
from ..data.conditions import Conditions
from ..errors import GanforgeError
from ..models import count_parameters
from ..models.conditioning import mismatched
from ..rundir import RunDir, read_config, read_info
from ..signals import pending as pending_signal
from . import distributed
from .callbacks import Cadence, Checkpoints, Evaluation, SamplePictures, early_sample_step, sampling_generator
from ..checkpoint import best_fid, find_checkpoint, list_checkpoints
from .lock import hold_run_lock
from .setup import Parts, build
from .step_metrics import (D_TERMS, GRAD_NORMS, LOSSES, LOSSES_AND_GRAD_NORMS, PER_STEP, Scalar, accumulator,
                           row_values)

# What went non-finite first (the code kept beside the step): checked for on the device, read at flushes.
_DIVERGED = {1: "losses", 2: "gradient norms", 3: "the optimizer state (Adam/RMSprop moments)"}
# The signals that stop a run gracefully: Ctrl-C, and what Slurm, Kubernetes and a closed terminal send.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class TrainingDiverged(GanforgeError):
    def __init__(self, message: str, step: int, what: str):
        super().__init__(message)
        self.step, self.what = step, what


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool = False
    stop_signal: int = 0  # the signal that stopped it (SIGINT for Ctrl-C); the CLI exits with 128 + it
    stopped_by: str = "steps"   # steps | time (train.minutes) | interrupt (Ctrl-C, SIGTERM, SIGHUP)


def default_run_dir(config: Config) -> Path:
    return Path("runs") / f"{run_name(config)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_name(config: Config) -> str:
    data = config.data.rstrip("/").split("/")[-1].split(":")[0] or "data"
    return config.name or f"{config.objective}-{data}"


def _call(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """net(x), or net(x, y) for a conditional network."""
    return net(x) if y is None else net(x, y)


def _grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())


@contextmanager
def _graceful_interrupt():
    """The first Ctrl-C, SIGTERM or SIGHUP asks the loop to stop at the next step boundary (flag["signal"]
    names it); a second one aborts as the signal does by default. One that came during start-up and was
    lost in C code (signals.py) counts as received."""
    flag = {"signal": pending_signal()}

    def handler(signum, frame):
        flag["signal"] = flag["signal"] or signum
        if signum == getattr(signal, "SIGHUP", None):
            _detach_from_closed_terminal()
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)

    try:
        previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: no handler, signals behave as usual
        yield flag
        return
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _detach_from_closed_terminal() -> None:
    """After SIGHUP the terminal is gone and writing to it fails: send terminal output to /dev/null so the
    checkpoint still gets written (output to files and pipes is kept)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


@dataclass
class _Interval:
    """The steps since the last log row: counts for its row, and the time its callbacks took (not training)."""
    steps: int = 0
    d_steps: int = 0
    batches: int = 0
    start: float = field(default_factory=time.perf_counter)
    callback_time: float = 0.0

    def add_step(self, n_d: int) -> None:
        self.steps += 1
        self.d_steps += n_d
        self.batches += max(n_d, 1)  # a step whose D sits out still draws one batch

    def reset(self) -> None:
        self.steps = self.d_steps = self.batches = 0
        self.start, self.callback_time = time.perf_counter(), 0.0


def _mark_non_finite(acc: torch.Tensor, watched: slice, first_bad: torch.Tensor, step: int) -> torch.Tensor:
    """first_bad with `step` marked when the sums went non-finite and nothing was marked before; on the device.
    Losses (code 1) are watched every step; gradient norms (code 2) enter acc only at log steps."""
    norms_code = torch.where(torch.isfinite(acc[watched].sum()), 0, 2)
    code = torch.where(torch.isfinite(acc[LOSSES].sum()), norms_code, 1)
    first = (code > 0) & (first_bad[0] < 0)
    return torch.where(first, torch.stack([torch.full_like(code, step), code]), first_bad)


class Trainer:
    """A run: its parts built by setup.build from the config, its run directory, and the loop over steps."""

    def __init__(self, config: Config, run_dir: Path, resume: bool = False, echo=print):
        world, device_name = distributed.init_world(config.device)
        self.echo = echo if world.main else (lambda *args, **kwargs: None)
        echo = self.echo
        self.paths = RunDir(Path(run_dir))
        if resume and not list_checkpoints(self.paths.root):
            resume = False  # nothing to continue from: it starts again in place (_create_run_dir)
        saved_conditions = Conditions.load(self.paths.root) if resume else None
        self.parts: Parts = build(config, world, device_name, resume, saved_conditions, echo)
        parts = self.parts
        self.config, self.world, self.device, self.state = parts.config, parts.world, parts.device, parts.state
        self.dataset, self.data_shape, self.conditions = parts.dataset, parts.data_shape, parts.conditions
        self.schedule = parts.schedule
        self.rollbacks = 0

        self.best_fid = math.inf  # as the run directory has it; Evaluation keeps it from here on
        if resume:
            best = best_fid(self.paths.root)
            self.best_fid = math.inf if best is None else best
            checkpoint = find_checkpoint(self.paths.root)  # the newest intact one, as sample and eval use
            self.state.load(checkpoint, self.device)
            echo(f"resumed {self.paths.root} from {checkpoint.name}")
            self.history = [row for row in self.paths.read_history() if row["step"] <= self.state.step]
            if self.world.main:
                self._rewrite_history()
                self._keep_resume_changes(config)
        else:
            if self.world.main:
                self._create_run_dir()
            self.history = []

        # Called in this order at a step where several are due: an evaluation's row is in the history
        # before the loss curve is drawn, and a new best is kept before the regular checkpoint.
        cfg = self.config
        self.samples = SamplePictures(cfg, self.paths, self.state, self.dataset, self.conditions,
                                      lambda: self.history, self.device)
        self.callbacks = [
            Evaluation(cfg, self.paths, self.state, self.dataset, self.conditions, self.device,
                       self.samples.fixed_z, self._record_eval, self.best_fid),
            self.samples,
            Checkpoints(cfg, self.paths, self.state),
        ]
        self.log_cadence = Cadence(cfg.train.log_every, cfg.steps)

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """What samples and metrics use: the EMA of G's weights when model.ema_decay > 0, else G."""
        return sampling_generator(self.state)

    # ------------------------------------------------------------------ run directory

    def _create_run_dir(self) -> None:
        """A new run's first files. A run ganforge made that has no checkpoint starts again in place; any
        other folder with something in it is refused: training never deletes what it did not write."""
        paths, root = self.paths, self.paths.root
        contents = sorted(p.name for p in root.iterdir() if p != paths.lock) if root.exists() else []
        if contents and paths.made_by_ganforge() and not list_checkpoints(root):
            backup = paths.clear_for_restart()
            kept = f"its history is {backup.name}, its" if backup else "its"
            self.echo(f"{root} holds a run with no checkpoint to continue from: starting it again in place from "
                      f"step 0; {kept} sample grids stay in {paths.samples.name}/ until this run writes those "
                      f"steps again")
        elif contents and paths.made_by_ganforge():
            raise GanforgeError(f"run directory {root} already exists and is not empty; "
                                f"continue it with --resume {root} or choose another --out")
        elif contents:
            shown = ", ".join(contents[:3]) + (", …" if len(contents) > 3 else "")
            raise GanforgeError(f"{root} already exists and is not empty ({shown}) but holds no ganforge run, and "
                                f"training never deletes what it did not write; choose a new or empty folder with --out")
        info = {
            "ganforge_version": __version__,
            "created": datetime.now().isoformat(timespec="seconds"),
            "data_kind": self.dataset.kind,
            "data_shape": list(self.data_shape),
            "dataset": self.dataset.info.get("summary", ""),
            "parameters": {"G": count_parameters(self.state.G), "D": count_parameters(self.state.D)},
            "device": str(self.device),
            "world_size": self.world.size,
        }
        if self.conditions:
            info["condition"] = {"kind": self.conditions.kind, "dim": self.conditions.dim}
        paths.write_config(self.config, info)  # run.json first: from then on the folder is a run of ganforge's
        paths.samples.mkdir(parents=True, exist_ok=True)
        if self.conditions:
            self.conditions.save(root)

    def _keep_resume_changes(self, given: Config) -> None:
        """--steps and train.* given at --resume go into config.yaml, so that a later plain --resume
        continues with them; --device and --quiet hold for this session only."""
        saved = read_config(self.paths.root)
        kept = replace(saved, steps=given.steps, train=replace(given.train, quiet=saved.train.quiet))
        if kept == saved:
            return
        changed = [f"steps = {kept.steps}"] if kept.steps != saved.steps else []
        changed += [f"train.{key} = {value}" for key, value in asdict(kept.train).items()
                    if value != getattr(saved.train, key)]
        self.paths.write_config(kept, read_info(self.paths.root))
        self.echo(f"{self.paths.config.name}: {', '.join(changed)} (kept for later resumes)")

    def _rewrite_history(self) -> None:
        """On resume, drop rows past the checkpoint (those steps are about to be trained again) and
        damaged lines — after keeping the file as it was, so nothing written is lost."""
        truncated = self.paths.truncate_history(self.history, self.state.step)
        if truncated is None:
            return
        backup, dropped = truncated
        self.echo(f"{self.paths.metrics.name}: kept the {len(self.history)} rows up to step {self.state.step}, "
                  f"dropped {dropped} (past it, or damaged); the file as it was is {backup.name}")

    # ------------------------------------------------------------------ one generator step

    def _step(self, g_step: int, acc: torch.Tensor, want_grad_norms: bool) -> int:
        """D phase ×n then G phase ×m, as the balance policy plans; sums the step's scalars into `acc`
        (on the device; step_metrics.accumulator()). Returns the number of D steps."""
        parts, st, objective, scaler = self.parts, self.state, self.parts.objective, self.state.scaler
        autocast = parts.accel.autocast(self.device)
        n_d, n_g = parts.balance.plan(g_step)
        grad_scale = scaler.scale(torch.ones((), device=self.device)) if scaler is not None else None
        for i in range(n_d):
            real, y = st.sampler.next()  # y: the batch's conditions (None without), also asked of G
            z = torch.randn(self.config.batch_size, st.G.z_dim, device=self.device)[parts.noise_shard]
            last = i == n_d - 1
            # The last D step's fake keeps its graph: the G step below reuses it instead of a new G forward.
            with torch.set_grad_enabled(last), autocast:
                fake = _call(parts.G_train, z, y)
            with autocast:
                # DiffAugment (loss.augment): every image D sees, real or fake, with fresh random draws.
                real_seen, fake_seen = parts.augment(real), parts.augment(fake.detach())
                real_logits, fake_logits = _call(parts.D_train, real_seen, y), _call(parts.D_train, fake_seen, y)
                d_loss = objective.d_loss(real_logits, fake_logits)
                if parts.mismatch_weight > 0:  # GAN-CLS: real images with wrong conditions are negatives too
                    wrong_logits = parts.D_train(real_seen, mismatched(y, parts.condition))
                    d_loss = d_loss + parts.mismatch_weight * objective.d_wrong_loss(wrong_logits)
                penalty = objective.d_penalty(st.D, real_seen, fake_seen, y, grad_scale)
            total = d_loss if penalty is None else d_loss + penalty
            st.opt_d.zero_grad(set_to_none=True)
            self._backward(total)
            if last and want_grad_norms:
                if scaler is not None:
                    scaler.unscale_(st.opt_d)
                acc[Scalar.d_grad_norm] += _grad_norm(st.D)
            self._optimizer_step(st.opt_d)
            objective.after_d_step(st.D)
            logged_penalty = torch.zeros((), device=self.device)
            if penalty is not None:
                logged_penalty = penalty.detach()
                if scaler is not None:
                    # Under fp16 an overflowing scale makes the penalty's input gradient inf: the scaler
                    # skips that step and lowers its scale, so it is logged as 0, not taken as divergence.
                    logged_penalty = torch.where(torch.isfinite(logged_penalty), logged_penalty, 0.0)
            acc[D_TERMS] += torch.stack([
                d_loss.detach(), objective.d_output(real_logits.detach()).float().mean(),
                objective.d_output(fake_logits.detach()).float().mean(), logged_penalty,
            ]) / n_d
            acc[Scalar.d_accuracy] += objective.d_accuracy(real_logits.detach(), fake_logits.detach()) / n_d
        if n_d == 0:  # D sits this step out; G still needs a batch's conditions, the policy D's accuracy
            real, y = st.sampler.next()
            with torch.no_grad(), autocast:
                real_logits = _call(parts.D_for_g, parts.augment(real), y)

        # The G step needs gradients through D, not D's own weight gradients (the next D step would
        # discard them), so D's parameters sit out of this backward pass.
        st.D.requires_grad_(False)
        try:
            for j in range(n_g):
                if j > 0 or n_d == 0:  # only the last D step's fake can be reused: further updates draw fresh z
                    z = torch.randn(self.config.batch_size, st.G.z_dim, device=self.device)[parts.noise_shard]
                    with autocast:
                        fake = _call(parts.G_train, z, y)
                with autocast:
                    fake_logits = _call(parts.D_for_g, parts.augment(fake), y)
                    g_loss = objective.g_loss(fake_logits)
                st.opt_g.zero_grad(set_to_none=True)
                self._backward(g_loss)
                if want_grad_norms and j == n_g - 1:
                    if scaler is not None:
                        scaler.unscale_(st.opt_g)
                    acc[Scalar.g_grad_norm] += _grad_norm(st.G)
                self._optimizer_step(st.opt_g)
                if st.ema is not None:
                    st.ema.update(st.G)
                acc[Scalar.g_loss] += g_loss.detach() / n_g
                if n_d == 0 and j == 0:  # D as it stands on this batch, so a skipped D still shows in the row
                    fake_logits = fake_logits.detach()
                    acc[D_TERMS] += torch.stack([
                        objective.d_loss(real_logits, fake_logits), objective.d_output(real_logits).float().mean(),
                        objective.d_output(fake_logits).float().mean(), torch.zeros((), device=self.device)])
                    acc[Scalar.d_accuracy] += objective.d_accuracy(real_logits, fake_logits)
        finally:
            st.D.requires_grad_(True)
        return n_d

    def _backward(self, loss: torch.Tensor) -> None:
        scaler = self.state.scaler
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """One gradient scaler serves both optimizers; it updates its scale after every step, since D
        steps several times per G step and a scaler may step each optimizer once per update."""
        scaler = self.state.scaler
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    def _record_eval(self, step: int, result: dict) -> None:
        """An evaluation's result, into the history and the run directory's one place for results."""
        self.history.append(self.paths.record_eval(step, result))

    # ------------------------------------------------------------------ stop policies: divergence

    def _watch_optimizers(self, first_bad: torch.Tensor, step: int) -> torch.Tensor:
        """Mark `step` as diverged (code 3) when any optimizer moment is NaN/Inf, unless something was
        already marked. Stays on the device; called once per log row and before each checkpoint."""
        # "step" is left out: a count, and on the CPU even when the moments are on a GPU.
        moments = [value for opt in (self.state.opt_d, self.state.opt_g) for entry in opt.state.values()
                   for key, value in entry.items() if key != "step" and torch.is_tensor(value)
                   and value.is_floating_point()]
        if not moments:
            return first_bad
        largest = torch.stack(torch._foreach_norm(moments, ord=math.inf))  # NaN propagates, Inf stays Inf
        bad = ~torch.isfinite(largest).all() & (first_bad[0] < 0)
        return torch.where(bad, torch.tensor([step, 3], device=first_bad.device), first_bad)

    def _check_finite(self, first_bad: torch.Tensor) -> None:
        if self.world.parallel:  # every rank must stop together, or the others wait forever
            torch.distributed.all_reduce(first_bad, torch.distributed.ReduceOp.MAX)
        bad_step, code = first_bad.tolist()
        if bad_step >= 0:
            good = list_checkpoints(self.paths.root)
            kept = f"the last good checkpoint is {good[-1][1]}" if good else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"{_DIVERGED[code]} became NaN/Inf at step {bad_step}; training stopped and {kept} — "
                f"lower the learning rates (optim.lr_d, optim.lr_g), try another objective, or set "
                f"train.on_diverge=rollback", bad_step, _DIVERGED[code])

    def _roll_back(self, diverged: TrainingDiverged) -> bool:
        """train.on_diverge=rollback: back to the newest intact checkpoint with the learning rates scaled
        down, at most train.max_rollbacks times; False when that is not possible (the error stands)."""
        tc = self.config.train
        if tc.on_diverge != "rollback" or self.rollbacks >= tc.max_rollbacks or not list_checkpoints(self.paths.root):
            return False
        checkpoint = find_checkpoint(self.paths.root)
        self.state.load(checkpoint, self.device)
        lr_schedule = self.parts.lr_schedule
        lr_schedule.scale *= tc.rollback_lr_scale
        lr_schedule.apply(self.state.step)
        self.rollbacks += 1
        self.history = [row for row in self.history if row["step"] <= self.state.step]
        if self.world.main:
            self._rewrite_history()
        self.echo(f"{diverged.what} became NaN/Inf at step {diverged.step}: rolled back to {checkpoint.name} with "
                  f"learning rates × {lr_schedule.scale:g} (rollback {self.rollbacks} of {tc.max_rollbacks})")
        return True

    def _queue_row(self, pending: list, acc: torch.Tensor, interval: "_Interval", step: int, wall_time: float) -> dict:
        """A log row for the interval ending at `step`: its sums, averaged over ranks and steps, start their
        copy off the device and wait in `pending` to be written at the next flush; `acc` starts afresh."""
        st = self.state
        elapsed = time.perf_counter() - interval.start - interval.callback_time
        means = distributed.average(acc.clone(), self.world)
        means[PER_STEP] /= interval.steps
        meta = {
            "step": step, "d_steps": interval.d_steps,
            "lr_d": st.opt_d.param_groups[0]["lr"], "lr_g": st.opt_g.param_groups[0]["lr"],
            "img_per_s": round(interval.batches * self.config.batch_size / max(elapsed, 1e-9), 1),
            "wall_time": round(wall_time, 2),
        }
        pending.append((meta, means.to("cpu", non_blocking=True)))
        acc.zero_()
        interval.reset()
        return meta

    def _write_rows(self, pending: list) -> None:
        rows = []
        for meta, values in pending:
            scalars = row_values(values.tolist())
            row = {"step": meta["step"]}
            row.update({name: v if math.isfinite(v) else None for name, v in scalars.items()})
            # Every rank observes the same rank-averaged accuracy, so all ranks keep the same plan.
            self.parts.balance.observe(meta["step"], scalars["d_accuracy"])
            row.update(self.parts.balance.decisions)
            row.update({k: v for k, v in meta.items() if k != "step"})
            rows.append(row)
        pending.clear()
        if not self.world.main:
            return
        self.history.extend(rows)
        self.paths.append_history(rows)

    # ------------------------------------------------------------------ the loop

    def train(self) -> TrainResult:
        while True:
            try:
                return self._train_to_the_end()
            except TrainingDiverged as diverged:
                if not self._roll_back(diverged):
                    raise

    def _train_to_the_end(self) -> TrainResult:
        cfg, st, tc = self.config, self.state, self.config.train
        wall_offset = max((row["wall_time"] for row in self.history if "wall_time" in row), default=0.0)
        budget = tc.minutes * 60 if tc.minutes > 0 else math.inf  # seconds of training, over all resumes
        if st.step >= cfg.steps:
            self.echo(f"{self.paths.root} is already at step {st.step} ≥ steps = {cfg.steps}; "
                      f"nothing to do (raise it with --steps)")
            return TrainResult(self.paths.root, st.step)
        if wall_offset >= budget:
            self.echo(f"{self.paths.root} has already trained {wall_offset / 60:.1f} min ≥ train.minutes = "
                      f"{tc.minutes:g}; nothing to do (raise it with --minutes)")
            return TrainResult(self.paths.root, st.step, stopped_by="time")
        if budget < math.inf:
            self.echo(f"time budget: {tc.minutes:g} min of training (stops then, or at step {cfg.steps} if sooner)")

        acc = accumulator(self.device)
        interval = _Interval()
        if st.log_row:  # resumed mid-row: carry on with the row the checkpoint was taken in
            acc += torch.tensor(st.log_row["sums"], device=self.device)
            interval.steps, interval.d_steps = st.log_row["steps"], st.log_row["d_steps"]
        carried = None  # the row in progress before a row written only because the run ends here
        first_bad = torch.full((2,), -1, dtype=torch.long, device=self.device)  # (step, _DIVERGED code)
        # Under fp16 a non-finite gradient is the scaler's signal to lower its scale, not divergence.
        watched = LOSSES if st.scaler is not None else LOSSES_AND_GRAD_NORMS
        pending: list = []  # (host metadata, values copied off the device) awaiting the next flush
        bad_as_logged = torch.full((2,), -1)  # first_bad as of the previous log row, copied off the device
        wall_start = time.perf_counter()

        def out_of_time() -> bool:
            return wall_offset + time.perf_counter() - wall_start >= budget

        if st.step == 0 and self.world.main:  # the starting point, before the first step
            self.samples.write(0)

        # Under a time budget the step count is only a cap: an ETA for it would mislead.
        bar = tqdm(total=cfg.steps, initial=st.step, disable=tc.quiet or not self.world.main, unit="step",
                   dynamic_ncols=True, desc=self.paths.root.name,
                   bar_format=None if budget == math.inf else "{desc}: step {n_fmt} [{elapsed}, {rate_fmt}{postfix}]")
        self._pace_from = (time.perf_counter(), st.step) if budget == math.inf else None
        stopped_by = "steps"
        with _graceful_interrupt() as interrupt:
            while st.step < cfg.steps:
                done = st.step + 1
                # One process decides before a step whether it is the last, so that it is logged, sampled
                # and checkpointed like a run's final step; several ranks agree at log steps (below).
                ending = None if self.world.parallel else self._stop_reason(interrupt, out_of_time())
                log_now = self.log_cadence.due(done, stopping=ending is not None)
                self.parts.lr_schedule.apply(st.step)
                n_d = self._step(st.step, acc, want_grad_norms=log_now)
                st.step = done
                interval.add_step(n_d)
                first_bad = _mark_non_finite(acc, watched, first_bad, done)

                if log_now:
                    first_bad = self._watch_optimizers(first_bad, done)
                    # Last interval's values are surely ready now: write them, then queue this one.
                    self._write_rows(pending)
                    if not self.world.parallel and bad_as_logged[0] >= 0:  # ranks agree only at flushes
                        self._check_finite(first_bad)
                    bad_as_logged = first_bad.to("cpu", non_blocking=True)
                    if done % self.log_cadence.every:  # off the cadence: a resume continues the regular row
                        carried = self._row_so_far(acc, interval)
                    meta = self._queue_row(pending, acc, interval, done, wall_offset + time.perf_counter() - wall_start)
                    self._report_progress(bar, meta)
                elif early_sample_step(done):
                    self._report_early_progress(bar, done, time.perf_counter() - wall_start)

                if self.world.parallel:
                    ending = self._stop_reason_agreed(interrupt, out_of_time(), log_now)
                stop = ending is not None
                due = [callback for callback in self.callbacks if callback.cadence.due(done, stopping=stop)]
                if due:
                    t0 = time.perf_counter()
                    self._write_rows(pending)
                    # Never a checkpoint of a non-finite state, even between log rows.
                    self._check_finite(self._watch_optimizers(first_bad, done))
                    st.log_row = carried or self._row_so_far(acc, interval)
                    if self.world.main:  # the other ranks wait for it at the next gradient reduction
                        for callback in due:
                            callback(done)
                    interval.callback_time += time.perf_counter() - t0
                if stop:
                    stopped_by = ending
                    break
        bar.close()
        self._write_rows(pending)
        self._check_finite(first_bad)
        stop_signal = interrupt["signal"] if stopped_by == "interrupt" else 0
        if stopped_by == "interrupt":
            self.echo(f"interrupted at step {st.step} ({signal.Signals(stop_signal).name}): checkpoint written; "
                      f"continue with ganforge train --resume {self.paths.root}")
        elif stopped_by == "time":
            self.echo(f"time budget of {tc.minutes:g} min used at step {st.step}: {self.paths.root}; "
                      f"continue with ganforge train --resume {self.paths.root} --minutes M (a larger total)")
        else:
            self.echo(f"finished {st.step} steps: {self.paths.root}")
        return TrainResult(self.paths.root, st.step, stopped_by == "interrupt", stop_signal, stopped_by)

    def _row_so_far(self, acc: torch.Tensor, interval: "_Interval") -> dict:
        """The log row in progress, as checkpoints keep it: its sums (rank-averaged) and step counts."""
        sums = distributed.average(acc.clone(), self.world)
        sums[list(GRAD_NORMS)] = 0  # taken at a row's last step only: the resumed row takes its own
        return {"sums": sums.tolist(), "steps": interval.steps, "d_steps": interval.d_steps}

    @staticmethod
    def _stop_reason(interrupt: dict, out_of_time: bool) -> str | None:
        """Why training stops here: 'interrupt' (Ctrl-C, SIGTERM, SIGHUP), 'time' (train.minutes used up), or None."""
        return "interrupt" if interrupt["signal"] else ("time" if out_of_time else None)

    def _stop_reason_agreed(self, interrupt: dict, out_of_time: bool, log_now: bool) -> str | None:
        """With several ranks, a stop happens at a log step that all ranks agree on (a rank that stopped
        alone would leave the others waiting in a gradient reduction); any rank's reason stops them all,
        and every rank exits with the signal one of them received."""
        if not log_now:
            return None
        flags = torch.tensor([interrupt["signal"], int(out_of_time)], device=self.device)
        torch.distributed.all_reduce(flags, torch.distributed.ReduceOp.MAX)
        interrupt["signal"] = int(flags[0])
        return self._stop_reason(interrupt, bool(flags[1]))

    def _report_early_progress(self, bar, step: int, seconds: float) -> None:
        """Progress before the first log row: the step and the time so far, at steps 1, 2, 5, 10, …"""
        if self.config.train.quiet:
            self.echo(f"step {step}/{self.config.steps}  {seconds:.1f} s")
        else:
            bar.update(step - bar.n)

    def _pace_note(self, step: int) -> None:
        """Once, at the first log row without a time budget: how long the steps left take at this pace,
        when that is over an hour (a 64-px WGAN-GP on a CPU: days), and how to bound it."""
        started, first = self._pace_from
        self._pace_from = None
        hours = (time.perf_counter() - started) / max(step - first, 1) * (self.config.steps - step) / 3600
        if hours > 1:
            self.echo(f"at this pace the {self.config.steps - step:,} steps left take about {hours:.0f} h; "
                      f"stop earlier with a time budget: --minutes M (or ganforge train --resume "
                      f"{self.paths.root} --minutes M after Ctrl-C)")

    def _report_progress(self, bar, meta: dict) -> None:
        if self._pace_from is not None:
            self._pace_note(meta["step"])
        # The latest losses shown are one interval old (the newest are still on their way off the device).
        last = next((row for row in reversed(self.history) if "d_loss" in row), None)
        losses = f"D {last['d_loss']:.3f} G {last['g_loss']:.3f}" if last and last["d_loss"] is not None else ""
        if self.config.train.quiet:
            self.echo(f"step {meta['step']}/{self.config.steps}  {meta['img_per_s']:.0f} img/s  {losses}")
        else:
            bar.set_postfix_str(f"{meta['img_per_s']:.0f} img/s {losses}", refresh=False)
            bar.update(meta["step"] - bar.n)


def train(config: Config, run_dir: Path | None = None, resume: bool = False, echo=print) -> TrainResult:
    """Train (or with `resume`, continue) a run, holding its directory's lock throughout (the main rank)."""
    run_dir = Path(run_dir) if run_dir else (Path(config.out) if config.out else default_run_dir(config))
    with hold_run_lock(run_dir) if distributed.launch_rank() == 0 else nullcontext():
        trainer = Trainer(config, run_dir, resume=resume, echo=echo)
        try:
            return trainer.train()
        finally:
            distributed.shutdown(trainer.world)
