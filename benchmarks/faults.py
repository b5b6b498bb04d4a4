"""What a run survives: random kill -9 / SIGTERM cycles, a full disk, a damaged latest checkpoint.

1. Cycles: one run (the issue's command shape: shapes, 32×32, batch 16, 2,000 images; width 8,
   a checkpoint every 10 steps) is started, stopped by SIGKILL or SIGTERM (chosen at random) a
   random 0-3 s after its first progress row, and continued with `train --resume`, `--cycles`
   times. A cycle is survived when its command continued the run (no error) and nothing already
   checkpointed was lost; SIGTERM should lose no step (a checkpoint at the stop), kill -9 the steps
   since the last checkpoint. At the end the run is trained to a fixed step and its weights
   are compared with an uninterrupted run's: on a CPU they must be bit-identical.
2. Disk full (where this machine lets us mount a small tmpfs): a run on a nearly full tmpfs, first
   at a later checkpoint, then at its very first one; survived = one-line error, earlier checkpoint
   and history intact, and the run continues once space is freed.
3. Damaged latest checkpoint: each of its four files truncated, zeroed, filled with garbage,
   deleted, or one bit flipped; survived = `sample` and `train --resume` use the previous checkpoint
   with a one-line warning. "Silently wrong" counts loads of the damaged one.

    .venv/bin/python benchmarks/faults.py              # 30 cycles
    .venv/bin/python benchmarks/faults.py --cycles 5   # quicker
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from ganforge.cli import main as ganforge_main
from ganforge.errors import GanforgeError
from ganforge.rundir import RunDir
from ganforge.checkpoint import find_checkpoint, list_checkpoints

SHAPE = ["--data", "shapes", "--resolution", "32", "--batch-size", "16", "--set", "dataset.size=2000", "--quiet",
         "--set", "model.width=8", "--set", "model.z_dim=16", "--set", "train.log_every=5",
         "--set", "train.checkpoint_every=10", "--set", "train.sample_every=1000"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ganforge(*argv, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def in_process(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ganforge_main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def intact_step(run: Path) -> int:
    """Step of the newest checkpoint that verifies (0: none)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return int(find_checkpoint(run).name.split("-")[1])
    except GanforgeError:
        return 0


def one_line(err: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("ganforge: error: ")


# ------------------------------------------------------------------ 1 kill -9 / SIGTERM cycles

def cycles(work: Path, count: int, rng: random.Random, cache: Path) -> dict:
    run = work / "cycled"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    tally = {"cycles": count, "SIGKILL": 0, "SIGTERM": 0, "survived": 0, "lost": 0,
             "sigterm_checkpoint_at_stop": 0, "sigterm_before_training": 0, "kill9_steps_redone": []}
    for i in range(count):
        first = not (run / "config.yaml").exists()
        argv = (["train", *SHAPE, "--set", f"dataset.cache_dir={cache}", "--steps", 10**6, "--out", run] if first
                else ["train", "--resume", run, "--steps", 10**6])
        before = intact_step(run)
        proc = subprocess.Popen([sys.executable, "-m", "ganforge", *map(str, argv)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        # Signals land in the training loop: after the first progress row, a random 0-3 s later.
        for line in proc.stdout:
            if line.startswith("step ") or "already at step" in line or "error" in line:
                break
        time.sleep(rng.uniform(0.0, 3.0))
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        tally[sig.name] += 1
        proc.send_signal(sig)
        output = line + proc.communicate(timeout=300)[0]
        rows = [row["step"] for row in RunDir(run).read_history() if "d_loss" in row]
        after = intact_step(run)
        if "error" in output and proc.returncode == 2:
            log(f"cycle {i}: {output.strip().splitlines()[-1]}")
        if sig == signal.SIGTERM:
            stopped = re.search(r"interrupted at step (\d+)", output)
            if proc.returncode == 128 + signal.SIGTERM and stopped and int(stopped.group(1)) == after:
                tally["sigterm_checkpoint_at_stop"] += 1
            elif proc.returncode == -signal.SIGTERM:
                tally["sigterm_before_training"] += 1  # still importing or loading data: nothing to lose
        else:
            trained = max(rows, default=0)  # a lower bound of the step it reached
            tally["kill9_steps_redone"].append(max(0, trained - after))
        ok = proc.returncode != 2 and after >= before  # continued, and nothing checkpointed was lost
        tally["survived" if ok else "lost"] += 1
        log(f"cycle {i + 1}/{count}: {sig.name} → rc {proc.returncode}, checkpoint step {before} → {after}")

    final = intact_step(run) + 20
    resumed = ganforge("train", "--resume", run, "--steps", final)
    straight = ganforge("train", *SHAPE, "--set", f"dataset.cache_dir={cache}", "--steps", final, "--out",
                        work / "straight")
    if resumed.returncode or straight.returncode:
        tally["final_resume_ok"] = False
        tally["identical_to_uninterrupted"] = False
        log(resumed.stderr[-2000:] + straight.stderr[-2000:])
    else:
        a = load_file(find_checkpoint(run) / "model.safetensors")
        b = load_file(find_checkpoint(work / "straight") / "model.safetensors")
        tally["final_resume_ok"] = True
        tally["identical_to_uninterrupted"] = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        # The rows too, every field but timing: a resume continues the log row its checkpoint was taken in.
        rows = [{r["step"]: {k: v for k, v in r.items() if k not in ("img_per_s", "wall_time")}
                 for r in RunDir(path).read_history() if "d_loss" in r} for path in (run, work / "straight")]
        tally["rows_differing_from_uninterrupted"] = sum(rows[0].get(step) != row for step, row in rows[1].items())
    tally["final_step"] = final
    redone = tally.pop("kill9_steps_redone")
    tally["kill9_mean_steps_redone"] = round(sum(redone) / len(redone), 1) if redone else None
    return tally


# ------------------------------------------------------------------ 2 disk full

def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` but for about `leave` bytes."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(bytes(1 << 16))
                f.flush()
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def disk_full(work: Path, cache: Path) -> dict:
    mount = work / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(mount)], capture_output=True).returncode:
        return {"skipped": "cannot mount a tmpfs here (needs root)"}
    scenarios = {}
    try:
        # A later checkpoint does not fit: the one before it and the history must stay.
        run = mount / "later"
        first = ganforge("train", *SHAPE, "--set", f"dataset.cache_dir={cache}", "--steps", 10, "--out", run)
        assert first.returncode == 0, first.stderr
        history = RunDir(run).metrics.read_text()
        filler = fill(mount, leave=8_000)
        stopped = ganforge("train", "--resume", run, "--steps", 30)
        kept = intact_step(run) == 10 and RunDir(run).metrics.read_text().startswith(history)
        clean = not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]
        filler.unlink()
        again = ganforge("train", "--resume", run, "--steps", 30)
        scenarios["later checkpoint"] = {
            "one_line_error": stopped.returncode == 2 and one_line(stopped.stderr), "previous_intact": kept,
            "no_partial_files": clean, "resumed_after_freeing": again.returncode == 0 and intact_step(run) == 30,
            "message": stopped.stderr.strip()[:240]}
        # The very first checkpoint does not fit: the run must restart in place afterwards.
        filler = fill(mount, leave=40_000)
        run = mount / "first"
        stopped = ganforge("train", *SHAPE, "--set", f"dataset.cache_dir={cache}", "--steps", 10, "--out", run)
        filler.unlink()
        again = ganforge("train", "--resume", run, "--steps", 10)
        scenarios["first checkpoint"] = {
            "one_line_error": stopped.returncode == 2 and one_line(stopped.stderr), "previous_intact": True,
            "no_partial_files": not (run / "checkpoints").is_dir() or not [
                p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")],
            "resumed_after_freeing": again.returncode == 0 and intact_step(run) == 10,
            "message": stopped.stderr.strip()[:240]}
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
    for result in scenarios.values():
        result["survived"] = all(v for k, v in result.items() if k != "message")
    return scenarios


# ------------------------------------------------------------------ 3 damaged latest checkpoint

def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "zeroed": lambda p: p.write_bytes(bytes(p.stat().st_size)),
    "garbage": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "deleted": lambda p: p.unlink(),
    "one bit flipped": _flip,
}


def damaged(work: Path, cache: Path) -> dict:
    base = work / "damaged-base"
    trained = ganforge("train", *SHAPE, "--set", f"dataset.cache_dir={cache}", "--steps", 20, "--out", base)
    assert trained.returncode == 0, trained.stderr
    tally = {"cases": 0, "survived": 0, "lost": 0, "silently_wrong": 0}
    for name in ("model.safetensors", "state.safetensors", "state.json", "manifest.json"):
        for damage, apply in DAMAGES.items():
            run = work / "damaged"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(base, run)
            apply(list_checkpoints(run)[-1][1] / name)
            code, out, err = in_process("sample", run, "--n", 4, "--out", work / "grid.png")
            fell_back = code == 0 and "(step 10," in out and "step-000020 is damaged" in err
            tally["silently_wrong"] += code == 0 and "(step 20," in out
            code, out, err = in_process("train", "--resume", run, "--steps", 25)
            ok = fell_back and code == 0 and "from step-000010" in out
            tally["cases"] += 1
            tally["survived" if ok else "lost"] += 1
            if not ok:
                log(f"damaged {name} ({damage}): not survived: {err.strip()[-300:]}")
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="ganforge-faults-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        t0 = time.perf_counter()
        result = {"cycles": cycles(work, args.cycles, rng, cache), "disk_full": disk_full(work, cache),
                  "damaged_checkpoint": damaged(work, cache)}
        result["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result))
        return
    c = result["cycles"]
    print(f"kill -9 / SIGTERM cycles: {c['cycles']} ({c['SIGKILL']} SIGKILL, {c['SIGTERM']} SIGTERM): "
          f"survived {c['survived']}, lost {c['lost']}; SIGTERM checkpointed at the stop step "
          f"{c['sigterm_checkpoint_at_stop']} times ({c['sigterm_before_training']} arrived before training began); "
          f"kill -9 redid at least {c['kill9_mean_steps_redone']} steps on average (a lower bound: rows are written "
          f"a log interval late); final weights bit-identical to an "
          f"uninterrupted run: {'yes' if c['identical_to_uninterrupted'] else 'NO'}, metrics rows differing from "
          f"its: {c.get('rows_differing_from_uninterrupted', 'not compared')}")
    full = result["disk_full"]
    if "skipped" in full:
        print(f"disk full: skipped ({full['skipped']})")
    else:
        survived = sum(s["survived"] for s in full.values())
        outcomes = ", ".join(f"{name}: {'survived' if s['survived'] else s}" for name, s in full.items())
        print(f"disk full on a 16 MB tmpfs: survived {survived}, lost {len(full) - survived} ({outcomes})")
    d = result["damaged_checkpoint"]
    print(f"damaged latest checkpoint (4 files × 5 damages): survived {d['survived']}, lost {d['lost']}, "
          f"silently wrong {d['silently_wrong']}")
    print(f"({result['seconds']} s)")


if __name__ == "__main__":
    main()
