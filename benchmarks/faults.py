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
4. Input and a user's files: `serve` on a trained run gets each malformed request (JSON nested
   10,000 deep, 5,000-digit numbers, a bad Content-Length, bytes that are not UTF-8, garbage request
   lines, a 70 kB header, …) `--requests` times over, 1,100 half-open sockets at once and 1,000
   clients that reset mid-request; `sample` gets counts below 1 and damaged recipes; `train` gets a
   folder holding a user's config and files, and a run whose checkpoints are gone; `data inspect` a
   PNG bomb and bad tag lines. Counted over all of them: files lost (a user's file, a history row or
   a sample grid that was there before and is not after), tracebacks (on stderr, of ganforge or the
   server) and server 5xx answers; each must be 0.

    .venv/bin/python benchmarks/faults.py              # 30 cycles
    .venv/bin/python benchmarks/faults.py --cycles 5   # quicker
    .venv/bin/python benchmarks/faults.py --only input # section 4 alone
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
import threading
import time
import struct
import socket
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
    print(message, file=sys.__stderr__, flush=True)  # past any redirect of sys.stderr


def ganforge(*argv, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def in_process(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = ganforge_main([str(a) for a in argv])
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code
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
        history = RunDir(run).history_file.read_text()
        filler = fill(mount, leave=8_000)
        stopped = ganforge("train", "--resume", run, "--steps", 30)
        kept = intact_step(run) == 10 and RunDir(run).history_file.read_text().startswith(history)
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
        again = ganforge("train", "--resume", run, "--steps", 10,
                                 refused=False)
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


# ------------------------------------------------------------------ 4 input and a user's files

def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _lost(before: dict, after: dict, case: str) -> int:
    """Files of `before` missing or changed in `after`."""
    lost = [name for name, data in before.items() if after.get(name) != data]
    if lost:
        log(f"{case}: lost {', '.join(lost)}")
    return len(lost)


def _post(host: str, body: bytes, length: str | None = None) -> bytes:
    return (f"POST /api/generate HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length or len(body)}\r\n\r\n"
            .encode() + body)


MALFORMED = {
    "JSON nested 10,000 deep": lambda host: _post(host, b"[" * 10_000 + b"]" * 10_000),
    "a 5,000-digit body": lambda host: _post(host, b"9" * 5000),
    "a 5,000-digit seed": lambda host: _post(host, b'{"run": "run", "seed": ' + b"9" * 5000 + b"}"),
    "Content-Length: abc": lambda host: _post(host, b"{}", length="abc"),
    "a 5,000-digit sample step": lambda host: f"GET /api/runs/run/samples/{'9' * 5000} HTTP/1.1\r\nHost: {host}"
                                              f"\r\n\r\n".encode(),
    "a superscript digit as the step": lambda host: b"GET /api/runs/run/samples/\xb2 HTTP/1.1\r\nHost: "
                                                    + host.encode() + b"\r\n\r\n",
    "body not UTF-8": lambda host: _post(host, b'{"run": "\xff"}'),
    "an unknown run": lambda host: _post(host, b'{"run": "nope"}'),
    "a count of -1": lambda host: _post(host, b'{"run": "run", "count": -1}'),
    "a garbage request line": lambda host: b"GARBAGE\r\n\r\n",
    "an unknown method": lambda host: f"BREW / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(),
    "a 70 kB header": lambda host: f"GET / HTTP/1.1\r\nHost: {host}\r\nX: {'a' * 70_000}\r\n\r\n".encode(),
}


def _status(port: int, raw: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(maxsplit=2)[1])


def _serve_cases(run: Path, requests: int, tally: dict) -> None:
    from ganforge.serve import ExplorerServer

    server = ExplorerServer([run], port=0)
    server.request_timeout = 2.0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    host = f"127.0.0.1:{port}"
    try:
        for name, build in MALFORMED.items():
            for _ in range(requests):
                status = _status(port, build(host))
                tally["cases"] += 1
                tally["server_5xx"] += status >= 500
                if not 400 <= status < 500:
                    tally["wrong_answers"] += 1
                    log(f"serve, {name}: answered {status}, not a 4xx")
        before = threading.active_count()
        half = f"POST /api/generate HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n".encode()
        held = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(1100)]
        for sock in held:
            sock.sendall(half)
        time.sleep(1.0)
        tally["threads_with_1100_half_open"] = threading.active_count() - before
        answered = _status(port, f"GET /api/runs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        tally["cases"] += 1
        tally["server_5xx"] += answered >= 500
        tally["normal_request_beside_them"] = answered
        tally["wrong_answers"] += answered != 200
        for sock in held:
            sock.close()
        reset = struct.pack("ii", 1, 0)  # SO_LINGER 0: close() resets the connection
        for i in range(1000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(_post(host, b'{"run": "run"', length="100") if i % 2 else
                         f"GET /api/runs/run/samples/20 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
            sock.close()
            tally["cases"] += 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _png_with_recipe(path: Path, text: str) -> Path:
    from PIL import Image, PngImagePlugin

    from ganforge.serve.recipe import KEY

    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, text)
    Image.new("RGB", (32, 32)).save(path, pnginfo=info)
    return path


def _cli_case(tally: dict, name: str, *argv, refused: bool = True) -> tuple[int, str, str]:
    """One command that must be `refused` with a one-line error (or must succeed)."""
    code, out, err = in_process(*argv)
    tally["cases"] += 1
    if (code != 0 and not one_line(err)) or (code == 0) == refused:
        tally["wrong_answers"] += 1
        log(f"{name}: exit {code}, {'expected a one-line error' if refused else 'expected success'}: "
            f"{err.strip()[-300:]}")
    return code, out, err


def _user_files(folder: Path) -> None:
    from PIL import Image

    (folder / "notes.txt").write_text("what I tried\n")
    (folder / "pictures").mkdir()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(folder / "pictures" / "mine.png")


def inputs(work: Path, cache: Path, requests: int) -> dict:
    from PIL import Image

    from ganforge.serve.recipe import make_recipe
    from ganforge.serve.render import Explorer
    from ganforge.serve.request import parse_request
    from ganforge.run import load_run

    tally = {"cases": 0, "files_lost": 0, "tracebacks": 0, "server_5xx": 0, "wrong_answers": 0}
    run = work / "input-run"
    trained = ganforge("train", *SHAPE, "--set", f"dataset.cache_dir={cache}", "--steps", 20, "--out", run)
    assert trained.returncode == 0, trained.stderr
    stderr = io.StringIO()  # everything the server threads and in-process commands print to stderr
    with contextlib.redirect_stderr(stderr):
        _serve_cases(run, requests, tally)

        for flags in (("--n", 0), ("--n", -5), ("--nrow", -2)):
            _cli_case(tally, f"sample {flags}", "sample", run, *flags, "--out", work / "grid.png")
        good = json.dumps(make_recipe(Explorer(load_run(run)), parse_request({"seed": 3, "count": 2}).to_dict(), 1, 2))
        for name, text in {"nested 5,000 deep": "[" * 5000 + "]" * 5000,
                           "a 5,000-digit index": good.replace('"index": 1', '"index": ' + "9" * 5000),
                           "index a string": good.replace('"index": 1', '"index": "0"'),
                           "stage x": good.replace('"stage": 2', '"stage": "x"'),
                           "not an object": "[1, 2]"}.items():
            _cli_case(tally, f"recipe {name}", "sample", "--recipe", _png_with_recipe(work / "recipe.png", text),
                      "--out", work / "grid.png")

        exp = work / "exp"  # a user's folder with their own config beside their files
        exp.mkdir()
        (exp / "config.yaml").write_text("steps: 20\n")
        _user_files(exp)
        before = _tree(exp)
        _cli_case(tally, "train into a user's folder", "train", *SHAPE, "--set", f"dataset.cache_dir={cache}",
                  "--config", exp / "config.yaml", "--out", exp)
        tally["files_lost"] += _lost(before, _tree(exp), "train into a user's folder")

        shutil.rmtree(run / "checkpoints")  # a run with nothing to continue from, and the user's notes in it
        _user_files(run)
        history = (run / "metrics.jsonl").read_bytes()
        before = {name: data for name, data in _tree(run).items() if name.startswith(("notes", "pictures", "samples"))}
        code, _, err = _cli_case(tally, "resume without checkpoints", "train", "--resume", run, "--steps", 10,
                                 refused=False)
        after = _tree(run)
        kept = after.get("metrics.before-step000000.jsonl") == history
        tally["files_lost"] += _lost(before, after, "resume without checkpoints") + (not kept)

        folder = work / "hostile"
        folder.mkdir()
        for i in range(3):
            Image.new("RGB", (16, 16), (i * 80, 0, 0)).save(folder / f"{i}.png")
        bomb = folder / "bomb.png"  # 50,000 × 50,000 in its header, a few bytes on disk
        Image.new("1", (8, 8)).save(bomb)
        data = bytearray(bomb.read_bytes())
        data[16:24] = struct.pack(">II", 50_000, 50_000)
        import zlib
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        bomb.write_bytes(bytes(data))
        (folder / "tags.csv").write_text("0.png,red\n1.png\n\"unclosed,2.png,blue\n" + "2.png," + "x" * 300 + "\n")
        before = _tree(folder)
        code, out, err = _cli_case(tally, "data inspect on hostile files", "data", "inspect", folder,
                                   "--cache-dir", cache, refused=False)
        if code != 0 or "max_image_pixels" not in out + err:
            tally["wrong_answers"] += 1
            log(f"data inspect: the PNG bomb was not counted over max_image_pixels: {(out + err)[-300:]}")
        tally["files_lost"] += _lost(before, _tree(folder), "data inspect")
    printed = stderr.getvalue()
    tally["tracebacks"] = printed.count("Traceback") + printed.count("Exception occurred")
    if tally["tracebacks"]:
        log(printed[-2000:])
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requests", type=int, default=10, help="section 4: each malformed request this many times")
    parser.add_argument("--only", choices=["cycles", "disk", "damaged", "input"], help="run one section")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="ganforge-faults-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        t0 = time.perf_counter()
        sections = {"cycles": ("cycles", lambda: cycles(work, args.cycles, rng, cache)),
                    "disk": ("disk_full", lambda: disk_full(work, cache)),
                    "damaged": ("damaged_checkpoint", lambda: damaged(work, cache)),
                    "input": ("input", lambda: inputs(work, cache, args.requests))}
        result = {key: measure() for name, (key, measure) in sections.items() if args.only in (None, name)}
        result["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result))
        return
    for key, line in SUMMARIES.items():
        if key in result:
            print(line(result[key]))
    print(f"({result['seconds']} s)")


def _cycles_line(c: dict) -> str:
    return (f"kill -9 / SIGTERM cycles: {c['cycles']} ({c['SIGKILL']} SIGKILL, {c['SIGTERM']} SIGTERM): "
            f"survived {c['survived']}, lost {c['lost']}; SIGTERM checkpointed at the stop step "
            f"{c['sigterm_checkpoint_at_stop']} times ({c['sigterm_before_training']} arrived before training began); "
            f"kill -9 redid at least {c['kill9_mean_steps_redone']} steps on average (a lower bound: rows are written "
            f"a log interval late); final weights bit-identical to an "
            f"uninterrupted run: {'yes' if c['identical_to_uninterrupted'] else 'NO'}, metrics rows differing from "
            f"its: {c.get('rows_differing_from_uninterrupted', 'not compared')}")


def _disk_line(full: dict) -> str:
    if "skipped" in full:
        return f"disk full: skipped ({full['skipped']})"
    survived = sum(s["survived"] for s in full.values())
    outcomes = ", ".join(f"{name}: {'survived' if s['survived'] else s}" for name, s in full.items())
    return f"disk full on a 16 MB tmpfs: survived {survived}, lost {len(full) - survived} ({outcomes})"


def _damaged_line(d: dict) -> str:
    return (f"damaged latest checkpoint (4 files × 5 damages): survived {d['survived']}, lost {d['lost']}, "
            f"silently wrong {d['silently_wrong']}")


def _input_line(t: dict) -> str:
    return (f"input and a user's files: {t['cases']} cases, {t['wrong_answers']} answered otherwise than a 4xx or "
            f"one line: files lost {t['files_lost']}, tracebacks "
            f"{t['tracebacks']}, server 5xx answers {t['server_5xx']}; 1,100 half-open sockets held "
            f"{t['threads_with_1100_half_open']} threads, a normal request beside them answered "
            f"{t['normal_request_beside_them']}")


SUMMARIES = {"cycles": _cycles_line, "disk_full": _disk_line, "damaged_checkpoint": _damaged_line,
             "input": _input_line}


if __name__ == "__main__":
    main()
