"""Running a study: every member not done yet is trained (to its steps, or until the time budget, a
stop policy the trainer honours: train.minutes), then evaluated, each stage recorded in
members/<member>.json; up to --jobs members at once, each in its own process. A member that fails is
recorded with its error (and, for a crash, its traceback) and the others go on; a stopped study
continues with --resume."""
from __future__ import annotations

import os
import shutil
import signal
import traceback
from dataclasses import dataclass, replace

import torch

from ..errors import ConfigError, GanforgeError
from ..rundir import RunDir, read_config
from ..checkpoint import list_checkpoints
from ..training.trainer import train
from .plan import EVAL_SEED, STUDY_FILE, Member, Study


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, GanforgeError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass
class _Trained:
    step: int
    stopped_by: str           # "steps" | "time" | "interrupt"
    interrupted: bool = False


def _train_member(member: Member, minutes: float | None, echo, quiet: bool | None = None) -> _Trained:
    """Train (or continue) a member's run to its steps or, with a budget, until the trainer's own time
    budget (train.minutes, training time summed over resumes) is used up. A start that never reached its
    first checkpoint starts again in place: the trainer keeps its history and removes only what it wrote."""
    resume = bool(list_checkpoints(member.run_dir))
    config = read_config(member.run_dir) if resume else member.config
    if minutes is not None:
        config = replace(config, train=replace(config.train, minutes=minutes))
    if quiet is not None:
        config = replace(config, train=replace(config.train, quiet=quiet))
    result = train(config, member.run_dir, resume=resume, echo=echo)
    return _Trained(result.step, result.stopped_by, result.interrupted)


def evaluate_member(study: Study, member: Member, echo=None) -> tuple[dict, dict[str, str]]:
    """Final metrics of a member's latest checkpoint, and an error message for each metric that failed.
    All metrics go through one pass over the samples; after a failure each is tried alone, so one
    metric (FID without Inception weights, say) fails by itself. `echo` gets a progress line at each tenth
    of a feature pass (minutes on a CPU)."""
    from ..metrics import evaluate

    def measure(metrics: list[str]) -> dict:
        # The reference drawn with the study's seed, not the member's: one reference (and one cached set of
        # its features, see share_reference) for every member.
        return evaluate(member.run_dir, ref=member.config.data, ref_name=member.config.data, metrics=metrics,
                        n=study.n, features=study.features, device=member.config.device, seed=EVAL_SEED,
                        progress=echo or False)

    try:
        return measure(study.metrics), {}
    except Exception as err:  # noqa: BLE001 — a metric's failure is reported, not the study's
        if len(study.metrics) == 1:
            return {}, {study.metrics[0]: _one_line(err)}
    results, errors = {}, {}
    for name in study.metrics:
        try:
            results.update(measure([name]))
        except Exception as err:  # noqa: BLE001
            errors[name] = _one_line(err)
    return results, errors


def _run_member(study: Study, member: Member, tag: str, retry_failed: bool, echo) -> bool:
    """Train (unless trained) and evaluate one member, recording each stage; True when Ctrl-C stopped it.
    A training failure is recorded, never raised: the other members go on."""
    record = study.read_record(member)
    state = record.get("state")
    if state == "evaluated":
        echo(f"{tag}: done earlier, skipped")
        return False
    if state == "failed" and not retry_failed:
        echo(f"{tag}: failed earlier ({record['error']}); skipped (--retry-failed trains it again)")
        return False
    if state != "trained":
        if state == "failed":  # retried from step 0: without checkpoints the trainer restarts the run in
            shutil.rmtree(RunDir(member.run_dir).checkpoints, ignore_errors=True)  # place, keeping its history
        echo(f"{tag}: training")
        try:
            trained = _train_member(member, study.minutes, echo, study.quiet)
        except Exception as err:  # noqa: BLE001 — one member's failure must not end the study
            record = {"state": "failed", "error": _one_line(err)}
            if not isinstance(err, GanforgeError):  # a crash, not a user-facing problem: keep where
                record["traceback"] = traceback.format_exc()
            study.write_record(member, record)
            echo(f"{tag}: failed: {record['error']}")
            return False
        if trained.interrupted:
            echo(f"{tag}: interrupted; continue with ganforge compare --resume {study.root}")
            return True
        record = {"state": "trained", "step": trained.step, "stopped_by": trained.stopped_by}
        study.write_record(member, record)
    echo(f"{tag}: evaluating {','.join(study.metrics)} on {study.n} samples")
    results, errors = evaluate_member(study, member, echo=lambda line: echo(f"{tag}: {line}"))
    if results:  # kept where every evaluation of a run is kept: its run directory's eval rows
        RunDir(member.run_dir).record_eval(results.get("step", record.get("step", 0)), results)
    record.update(state="evaluated", eval_errors=errors)
    study.write_record(member, record)
    for name, message in errors.items():
        echo(f"{tag}: {name} failed: {message}")
    return False


def share_reference(study: Study, echo) -> None:
    """Compute each image reference's features once, before any member is evaluated (members evaluated
    side by side would otherwise each compute the same ones). A failure here (no Inception weights) is
    left for each member's evaluation to report, metric by metric."""
    from ..metrics.evaluate import cache_reference, metric_registry

    referenced = [name for name in study.metrics if name in metric_registry and metric_registry.get(name).uses_ref]
    if not referenced:  # 2-D points, mode counts: nothing is compared with real features
        return
    seen = set()
    for member in study.members():
        cfg = member.config
        key = (cfg.data, cfg.resolution, cfg.channels, repr(cfg.dataset))
        if key in seen:
            continue
        seen.add(key)
        echo(f"reference features of {cfg.data} at {cfg.resolution} px ({study.features}, up to {study.n} images), "
             f"once for all members")
        # All the metrics first, as members ask for them all at once; then those that compare with it alone.
        for metrics in (study.metrics, referenced):
            try:
                count, status = cache_reference(cfg.data, cfg.dataset, cfg.resolution, cfg.channels, metrics,
                                                study.n, features=study.features, device=cfg.device, seed=EVAL_SEED,
                                                progress=echo)
            except GanforgeError as err:
                error = _one_line(err)
                continue
            echo(f"reference features: {count} images ({'cached earlier' if status == 'hit' else 'computed'})")
            break
        else:
            echo(f"reference features not computed ({error}); each member's evaluation reports it")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int) -> int:
    """Intra-op threads of each of `jobs` members trained at once: the cores shared out, at least one.
    Small-network GAN steps are latency bound, so one-thread members side by side beat one member
    with every thread."""
    return max(1, cores // jobs)


_stop_starting = None   # in a worker process: the study's event that says start no more members


def _start_worker(threads: int, stop_starting) -> None:
    global _stop_starting
    _stop_starting = stop_starting
    torch.set_num_threads(threads)
    # An idle worker that Ctrl-C killed would break the pool, and the pool then kills the members still
    # training before they write their checkpoint: idle workers ignore it, running ones handle it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_member_in_worker(study: Study, member: Member, tag: str, retry_failed: bool) -> bool:
    if _stop_starting.is_set():  # queued before the study was interrupted: stays pending
        return False

    def echo(*args, **kwargs):  # several members print at once: each line names its member
        line = " ".join(map(str, args))
        print(line if line.startswith(tag) else f"{member.name}: {line}", flush=True)

    interrupted = False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupted = _run_member(study, member, tag, retry_failed, echo)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # An interrupted member ends the study: stop this worker (and the others) from starting a queued
        # member before the parent, slower to hear of Ctrl-C, sets the event itself.
        if interrupted:
            _stop_starting.set()
    return interrupted


def _run_in_parallel(study: Study, order: list[Member], jobs: int, retry_failed: bool, echo) -> bool:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: a forked child of a process that has used torch's thread pools can deadlock.
    context = multiprocessing.get_context("spawn")
    # The pool hands members to its workers ahead of time, beyond what cancelling can take back.
    stop_starting = context.Event()
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                               initargs=(threads_per_job(jobs, usable_cores()), stop_starting))
    # Submitted in training order; the pool starts them in that order, so seed 0 still finishes first.
    futures = [pool.submit(_run_member_in_worker, study, member, f"[{i}/{len(order)}] {member.name}", retry_failed)
               for i, member in enumerate(order, 1)]
    try:
        # An interrupted member ends the study, as when members train one by one.
        return any(future.result() for future in as_completed(futures))
    except KeyboardInterrupt:
        # Ctrl-C reached the running members too: each trainer writes a checkpoint and returns.
        echo(f"interrupted; continue with ganforge compare --resume {study.root}")
        return True
    except BrokenProcessPool as err:
        raise GanforgeError(f"a member's worker process died ({err}); members done so far are kept: "
                            f"continue with ganforge compare --resume {study.root}") from None
    finally:
        stop_starting.set()
        pool.shutdown(wait=True, cancel_futures=True)


def run_study(study: Study, retry_failed: bool = False, echo=print, jobs: int = 1) -> bool:
    """Train and evaluate every member not done yet, up to `jobs` at once in separate processes;
    True when Ctrl-C stopped the study. A member whose training raises (divergence, a bad setting, a
    crash) is recorded as failed and the others go on; failed members are skipped on resume unless
    `retry_failed`."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs} must be at least 1")
    if not (study.root / STUDY_FILE).is_file():
        study.save()
    order = study.training_order()
    if any(study.read_record(m).get("state") != "evaluated" for m in order):
        share_reference(study, echo)
    if jobs > 1 and len(order) > 1:
        return _run_in_parallel(study, order, min(jobs, len(order)), retry_failed, echo)
    for i, member in enumerate(order, 1):
        if _run_member(study, member, f"[{i}/{len(order)}] {member.name}", retry_failed, echo):
            return True
    return False
