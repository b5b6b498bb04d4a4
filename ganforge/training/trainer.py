"""The training loop: plan, step, flush rows, callbacks, stop.

setup.build makes the parts from the config, the one generator step among them (step.py: D's phase ×n,
G's ×m); the Trainer adds the run directory and runs the loop, which knows sampling, evaluation and
checkpoints only as callbacks with a cadence (callbacks.py), the metrics rows through rows.py and
divergence through guard.py. Nothing in a step reads a value back to the host: its terms are summed on
the device and copied out once per log interval, one interval late, so the device never waits on Python.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from ..version import __version__
from ..config import Config
from ..data.conditions import Conditions
from ..errors import GanforgeError
from ..models import count_parameters
from ..rundir import RunDir, read_config, read_info
from ..signals import pending as pending_signal
from . import distributed
from .callbacks import Cadence, Checkpoints, Evaluation, SamplePictures, early_sample_step
from ..checkpoint import best_value, find_checkpoint, list_checkpoints
from .guard import DivergenceGuard, TrainingDiverged
from .lock import hold_run_lock
from .rows import Interval, MetricRows, trained_seconds
from .setup import Parts, build
from .step_metrics import StepMetrics
from .tensorboard import TensorBoard, require_tensorboard

# The signals that stop a run gracefully: Ctrl-C, and what Slurm, Kubernetes and a closed terminal send.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool = False
    stop_signal: int = 0  # the signal that stopped it (SIGINT for Ctrl-C); the CLI exits with 128 + it
    stopped_by: str = "steps"   # steps | time (train.minutes) | interrupt (Ctrl-C, SIGTERM, SIGHUP)


def time_left(seconds: float) -> str:
    """'12:05 left': what remains of a train.minutes budget, written as tqdm writes elapsed time."""
    return f"{tqdm.format_interval(max(0.0, seconds))} left"


def progress_text(img_per_s: float, losses: str, seconds_left: float | None) -> str:
    """A progress line's tail: under a time budget what remains of it (the steps are only a cap, so a
    time left by steps would mislead), then speed and losses."""
    shown = f"{img_per_s:.0f} img/s {losses}".rstrip()
    return shown if seconds_left is None else f"{time_left(seconds_left)}, {shown}"


def default_run_dir(config: Config) -> Path:
    return Path("runs") / f"{run_name(config)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_name(config: Config) -> str:
    data = config.data.rstrip("/").split("/")[-1].split(":")[0] or "data"
    return config.name or f"{config.objective}-{data}"


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


class Trainer:
    """A run: its parts built by setup.build from the config, its run directory, and the loop over steps."""

    def __init__(self, config: Config, run_dir: Path, resume: bool = False, echo=print):
        world, device_name = distributed.init_world(config.device)
        self.echo = echo if world.main else (lambda *args, **kwargs: None)
        echo = self.echo
        self.paths = RunDir(Path(run_dir))
        if config.train.tensorboard:
            require_tensorboard()  # on every rank and before the data loads: a missing package stops at once
        if resume and not list_checkpoints(self.paths.root):
            resume = False  # nothing to continue from: it starts again in place (_create_run_dir)
        saved_conditions = Conditions.load(self.paths.root) if resume else None
        self.parts: Parts = build(config, world, device_name, resume, saved_conditions, echo)
        parts = self.parts
        self.config, self.world, self.device, self.state = parts.config, parts.world, parts.device, parts.state
        self.dataset, self.data_shape, self.conditions = parts.dataset, parts.data_shape, parts.conditions
        self.schedule = parts.schedule
        self.rollbacks = 0

        self.best_so_far = None  # eval.best's value at checkpoints/best, as the run directory has it
        if resume:
            self.best_so_far = best_value(self.paths.root, self.config.eval.best)
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
        self.tensorboard = (TensorBoard(cfg, self.paths, self.state.step)
                            if cfg.train.tensorboard and self.world.main else None)
        self.callbacks = [
            Evaluation(cfg, self.paths, self.state, self.dataset, self.conditions, self.device,
                       self._record_eval, self.best_so_far),
            self.samples,
            *([self.tensorboard] if self.tensorboard else []),  # after the grid it shows
            Checkpoints(cfg, self.paths, self.state),
        ]
        self.log_cadence = Cadence(cfg.train.log_every, cfg.steps)

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
        self.echo(f"{self.paths.history_file.name}: kept the {len(self.history)} rows up to step {self.state.step}, "
                  f"dropped {dropped} (past it, or damaged); the file as it was is {backup.name}")

    def _record_eval(self, step: int, result: dict) -> None:
        """An evaluation's result, into the history and the run directory's one place for results."""
        self.history.append(self.paths.record_eval(step, result))
        if self.tensorboard:
            self.tensorboard.write_rows(self.history[-1:])

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
        self.history[:] = [row for row in self.history if row["step"] <= self.state.step]
        if self.world.main:
            self._rewrite_history()
        if self.tensorboard:
            self.tensorboard.restart(self.state.step)
        self.echo(f"{diverged.what} became NaN/Inf at step {diverged.step}: rolled back to {checkpoint.name} with "
                  f"learning rates × {lr_schedule.scale:g} (rollback {self.rollbacks} of {tc.max_rollbacks})")
        return True

    # ------------------------------------------------------------------ the loop

    def train(self) -> TrainResult:
        try:
            while True:
                try:
                    return self._train_to_the_end()
                except TrainingDiverged as diverged:
                    if not self._roll_back(diverged):
                        raise
        finally:
            if self.tensorboard:
                self.tensorboard.close()

    def _train_to_the_end(self) -> TrainResult:
        cfg, st, tc = self.config, self.state, self.config.train
        wall_offset = trained_seconds(self.history)
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

        metrics = StepMetrics(self.device)
        interval = Interval()
        if st.log_row:  # resumed mid-row: carry on with the row the checkpoint was taken in
            metrics.load_state_dict(st.log_row)
            interval.steps, interval.d_steps = st.log_row["steps"], st.log_row["d_steps"]
        carried = None  # the row in progress before a row written only because the run ends here
        guard = DivergenceGuard(self.device, watch_norms=st.scaler is None)
        rows = MetricRows(self.paths, self.history, self.parts.balance, self.world, cfg.batch_size,
                          also_to=self.tensorboard.write_rows if self.tensorboard else None)
        bad_as_logged = torch.full((2,), -1)  # the guard's mark as of the previous log row, off the device
        wall_start = time.perf_counter()
        # The perf_counter time the train.minutes budget (summed over resumes) runs out; None: no budget.
        self._budget_ends = wall_start + budget - wall_offset if budget < math.inf else None

        def out_of_time() -> bool:
            left = self._seconds_left()
            return left is not None and left <= 0

        if st.step == 0 and self.world.main:  # the starting point, before the first step
            self.samples.write(0)
            if self.tensorboard:
                self.tensorboard(0)

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
                n_d = self.parts.step(st.step, metrics, want_grad_norms=log_now)
                st.step = done
                interval.add_step(n_d)
                guard.mark(metrics, done)

                if log_now:
                    guard.watch_optimizers((st.opt_d, st.opt_g), done)
                    # Last interval's values are surely ready now: write them, then queue this one.
                    rows.flush()
                    if not self.world.parallel and bad_as_logged[0] >= 0:  # ranks agree only at flushes
                        guard.check(self.world, self.paths.root)
                    bad_as_logged = guard.marked_as_of_now()
                    on_cadence = done % self.log_cadence.every == 0
                    if not on_cadence:  # the run ends here: a resume continues the regular row
                        carried = self._row_so_far(metrics, interval)
                    meta = rows.queue(metrics, interval, done, wall_offset + time.perf_counter() - wall_start,
                                      {"lr_d": st.opt_d.param_groups[0]["lr"], "lr_g": st.opt_g.param_groups[0]["lr"]},
                                      on_cadence)
                    self._report_progress(bar, meta)
                elif early_sample_step(done):
                    self._report_early_progress(bar, done, time.perf_counter() - wall_start)

                if self.world.parallel:
                    ending = self._stop_reason_agreed(interrupt, out_of_time(), log_now)
                stop = ending is not None
                due = [callback for callback in self.callbacks if callback.cadence.due(done, stopping=stop)]
                if due:
                    t0 = time.perf_counter()
                    rows.flush()
                    # Never a checkpoint of a non-finite state, even between log rows.
                    guard.watch_optimizers((st.opt_d, st.opt_g), done)
                    guard.check(self.world, self.paths.root)
                    st.log_row = carried or self._row_so_far(metrics, interval)
                    if self.world.main:  # the other ranks wait for it at the next gradient reduction
                        for callback in due:
                            callback(done)
                    interval.callback_time += time.perf_counter() - t0
                if stop:
                    stopped_by = ending
                    break
        bar.close()
        rows.flush()
        guard.check(self.world, self.paths.root)
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

    def _row_so_far(self, metrics: StepMetrics, interval: Interval) -> dict:
        """The log row in progress, as checkpoints keep it: its sums (rank-averaged) and step counts."""
        return {**metrics.state_dict(lambda sums: distributed.average(sums, self.world)),
                "steps": interval.steps, "d_steps": interval.d_steps}

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
        left = self._seconds_left()
        if self.config.train.quiet:
            tail = "" if left is None else f"  {time_left(left)}"
            self.echo(f"step {step}/{self.config.steps}  {seconds:.1f} s{tail}")
        else:
            if left is not None:
                bar.set_postfix_str(time_left(left), refresh=False)
            bar.update(step - bar.n)

    def _seconds_left(self) -> float | None:
        """Seconds left of the train.minutes budget (None: no budget); the loop stops when they reach 0."""
        return None if self._budget_ends is None else self._budget_ends - time.perf_counter()

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
        text = progress_text(meta["img_per_s"], losses, self._seconds_left())
        if self.config.train.quiet:
            self.echo(f"step {meta['step']}/{self.config.steps}  {text}")
        else:
            bar.set_postfix_str(text, refresh=False)
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
