"""What a run survives: one test group per hole of issue #13, with the issue's command shape
(`--data shapes --resolution 32 --batch-size 16 --set dataset.size=2000 --quiet`, tiny networks).

1 SIGTERM/SIGHUP and restarts  2 damaged checkpoints, config, history  3 divergence  4 hostile data
5 the run-directory lock  6 one-line errors (full disk, unwritable places, broken files)
"""
import errno
import gzip
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganforge import load_run
from ganforge.cli import main
from ganforge.config import DatasetOptions
from ganforge.data import load_dataset, read_idx
from ganforge.errors import DataError
from ganforge.rundir import RunDir
from ganforge.checkpoint import list_checkpoints
from ganforge.training.lock import hold_run_lock

A = ["--data", "shapes", "--resolution", "32", "--batch-size", "16", "--set", "dataset.size=2000", "--quiet"]
TINY = ["--set", "model.width=8", "--set", "model.z_dim=16", "--set", "train.log_every=5",
        "--set", "train.checkpoint_every=10", "--set", "train.sample_every=10", "--set", "train.sample_count=16"]


def train_args(out, cache, *extra, steps=20):
    return ["train", *A, *TINY, "--set", f"dataset.cache_dir={cache}", "--steps", str(steps), "--out", str(out),
            *extra]


def run_cli(capsys, *argv):
    """main(argv) in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganforge: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run with checkpoints at steps 10 and 20 (each test damages its own copy)."""
    root = tmp_path_factory.mktemp("trained")
    assert main(train_args(root / "run", root / "cache")) == 0
    return root / "run"


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def latest_model(run_dir: Path) -> Path:
    return list_checkpoints(run_dir)[-1][1] / "model.safetensors"


# ------------------------------------------------------------------ 1 signals and restarts

def _train_child(out: Path, cache: Path):
    cmd = [sys.executable, "-m", "ganforge", "train", *A, "--set", "model.width=8", "--set", "model.z_dim=16",
           "--set", "train.log_every=2", "--set", "train.checkpoint_every=100000",
           "--set", "train.sample_every=100000", "--set", f"dataset.cache_dir={cache}", "--steps", "100000",
           "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_for_first_row(proc, out: Path) -> None:
    deadline = time.time() + 120
    while not ((out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text()):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0]
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_checkpoint_and_exit_like_ctrl_c(tmp_path, capsys, sig):
    out = tmp_path / "run"
    proc = _train_child(out, tmp_path / "cache")
    _wait_for_first_row(proc, out)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, output
    assert f"({sig.name}): checkpoint written" in output and f"--resume {out}" in output
    step = load_run(out).step
    assert step >= 2
    code, _, err = run_cli(capsys, "train", "--resume", out, "--steps", step + 4)
    assert code == 0, err
    assert load_run(out).step == step + 4


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(v[5:]) for v in environ if v.startswith(b"RANK=")), None)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not torch.distributed.is_available(),
                    reason="needs Linux /proc and torch.distributed")
def test_sigterm_to_one_rank_under_torchrun_stops_every_rank_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ganforge",
           "train", *A, "--set", "model.width=8", "--set", "model.z_dim=16", "--set", "train.log_every=2",
           "--set", "train.checkpoint_every=100000", "--set", "train.sample_every=100000", "--device", "cpu",
           "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--steps", "100000", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _wait_for_first_row(proc, out)
    workers = [int(c) for t in Path(f"/proc/{proc.pid}/task").iterdir()
               for c in (t / "children").read_text().split()]
    rank1 = next(pid for pid in workers if _rank_of(pid) == 1)
    os.kill(rank1, signal.SIGTERM)  # rank 0 gets no signal: it must still stop, at the same step
    output, _ = proc.communicate(timeout=180)
    stopped = [line for line in output.splitlines() if "interrupted at step" in line]
    assert len(stopped) == 1 and "(SIGTERM): checkpoint written" in stopped[0], output[-3000:]
    step = int(stopped[0].split("interrupted at step ")[1].split()[0])
    assert load_run(out).step == step and step % 2 == 0  # at a log step, which the ranks agree on


def test_a_run_that_stopped_before_its_first_checkpoint_restarts_in_place(tmp_path, capsys):
    from ganforge.config import build_config, parse_override
    from ganforge.training.trainer import Trainer

    out, cache = tmp_path / "run", tmp_path / "cache"
    config = build_config(overrides=[parse_override(f"dataset.cache_dir={cache}"), {"steps": 4},
                                     parse_override("model.width=8"), {"data": "shapes", "batch_size": 16},
                                     parse_override("dataset.size=2000")])
    Trainer(config, out, echo=lambda *a: None)  # what a kill before the first checkpoint leaves: no checkpoint
    assert (out / "config.yaml").is_file() and not list_checkpoints(out)

    code, stdout, err = run_cli(capsys, "train", "--resume", out, "--quiet")
    assert code == 0, err
    assert "starting it again in place from step 0" in stdout and load_run(out).step == 4

    shutil.rmtree(out / "checkpoints")
    code, stdout, err = run_cli(capsys, *train_args(out, cache, steps=5))
    assert code == 0, err
    assert "starting it again in place" in stdout and load_run(out).step == 5


# ------------------------------------------------------------------ 2 damaged checkpoints, config, history

DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "zeroed": lambda p: p.write_bytes(bytes(p.stat().st_size)),
    "garbage": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "missing": lambda p: p.unlink(),
    "one flipped bit": lambda p: p.write_bytes(_flip_bit(p.read_bytes(), p.stat().st_size - 7)),
}


def _flip_bit(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_latest_checkpoint_falls_back_to_the_intact_one(run, capsys, damage):
    intact_g = load_run(run, checkpoint="10").generator.state_dict()
    DAMAGES[damage](latest_model(run))
    if damage == "missing":
        (latest_model(run).parent / "manifest.json").unlink()  # the manifest gone too reads as damage, not as old

    loaded = load_run(run)  # sample and eval read through this
    assert loaded.step == 10
    assert all(torch.equal(v, intact_g[k]) for k, v in loaded.generator.state_dict().items())
    warning = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warning) == 1 and "step-000020 is damaged" in warning[0] and "using step-000010" in warning[0]

    code, stdout, err = run_cli(capsys, "sample", run, "--n", 4, "--out", run.parent / "grid.png")
    assert code == 0 and "(step 10," in stdout and "step-000020 is damaged" in err

    code, stdout, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    assert code == 0 and "resumed" in stdout and "from step-000010" in stdout, err
    assert load_run(run).step == 25


def test_a_named_damaged_checkpoint_is_an_error_not_another_one(run, capsys):
    DAMAGES["one flipped bit"](latest_model(run))
    code, _, err = run_cli(capsys, "sample", run, "--checkpoint", 20, "--n", 4, "--out", run.parent / "g.png")
    assert code == 2 and "step-000020 is damaged" in one_line_error(err)


def test_every_checkpoint_damaged_is_one_line(run, capsys):
    for _, folder in list_checkpoints(run):
        DAMAGES["zeroed"](folder / "state.safetensors")
    code, _, err = run_cli(capsys, "sample", run, "--n", 4, "--out", run.parent / "g.png")
    assert code == 2 and "every checkpoint of" in one_line_error(err)


def test_a_run_from_before_manifests_still_loads_and_resumes(run, capsys):
    info = json.loads((run / "run.json").read_text())
    del info["config_sha256"]
    (run / "run.json").write_text(json.dumps(info))
    for _, folder in list_checkpoints(run):  # make them as ganforge wrote them before manifests
        (folder / "manifest.json").unlink()
        state = json.loads((folder / "state.json").read_text())
        del state["manifest"]
        (folder / "state.json").write_text(json.dumps(state))
    assert load_run(run).step == 20
    latest_model(run).write_bytes(b"not a safetensors file")  # wrong format, no manifest to say so
    assert load_run(run).step == 10
    assert "step-000020 is damaged" in capsys.readouterr().err
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    assert code == 0, err


@pytest.mark.parametrize("damage", ["cut to a valid prefix", "not YAML", "empty"])
def test_damaged_config_is_an_error_not_defaults(run, capsys, damage):
    config = run / "config.yaml"
    text = config.read_text()
    config.write_text({"cut to a valid prefix": text[: text.index("model:")],
                       "not YAML": "model: [unclosed\n", "empty": ""}[damage])
    for argv in (["sample", run, "--n", 4, "--out", run.parent / "g.png"], ["train", "--resume", run, "--steps", 25]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "config.yaml" in one_line_error(err) and "restore it" in err


def test_damaged_run_json_is_one_line(run, capsys):
    info = run / "run.json"
    info.write_text(info.read_text()[:40])
    code, _, err = run_cli(capsys, "sample", run, "--n", 4, "--out", run.parent / "g.png")
    assert code == 2 and "run.json is damaged" in one_line_error(err)


def test_history_past_the_checkpoint_is_dropped_only_after_a_backup(run, capsys):
    DAMAGES["missing"](latest_model(run))  # resume falls back to step 10: rows 15 and 20 go
    metrics = run / "metrics.jsonl"
    with metrics.open("a") as f:
        f.write('{"step": 2\n')  # a damaged line
    before = metrics.read_text()
    code, stdout, err = run_cli(capsys, "train", "--resume", run, "--steps", 10)
    assert code == 0, err
    backup = run / "metrics.before-step000010.jsonl"
    assert backup.read_text() == before and backup.name in stdout
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [5, 10]


# ------------------------------------------------------------------ 3 divergence

def test_divergence_in_gradients_and_optimizer_state_stops_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(out, tmp_path / "cache", "--set", "optim.lr_d=1e6",
                                               "--set", "optim.lr_g=1e6", steps=200))
    line = one_line_error(err)
    assert code == 2 and "became NaN/Inf at step" in line and "train.on_diverge=rollback" in line
    for _, folder in list_checkpoints(out):  # whatever was written before is finite
        assert all(torch.isfinite(t).all() for t in load_file(folder / "state.safetensors").values())


def test_non_finite_adam_state_is_caught_and_never_checkpointed(tmp_path, capsys, monkeypatch):
    from ganforge.training.step import AdversarialStep

    original = AdversarialStep.__call__

    def poisoned(self, g_step, metrics, want_grad_norms):
        n_d = original(self, g_step, metrics, want_grad_norms)
        if g_step == 12:  # finite losses and gradients; only D's second moment goes bad
            next(iter(self.state.opt_d.state.values()))["exp_avg_sq"].fill_(math.inf)
        return n_d

    monkeypatch.setattr(AdversarialStep, "__call__", poisoned)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(out, tmp_path / "cache", "--set", "train.log_every=50", steps=30))
    assert code == 2 and "the optimizer state (Adam/RMSprop moments) became NaN/Inf at step 20" in one_line_error(err)
    assert [step for step, _ in list_checkpoints(out)] == [10]


def test_on_diverge_rollback_resumes_from_the_last_checkpoint_with_lower_rates(tmp_path, capsys, monkeypatch):
    from ganforge.losses.dcgan import DCGAN

    calls = {"n": 0}
    original = DCGAN.g_loss

    def poisoned_once(self, fake_logits):
        calls["n"] += 1
        loss = original(self, fake_logits)
        return loss * float("nan") if calls["n"] == 13 else loss

    monkeypatch.setattr(DCGAN, "g_loss", poisoned_once)
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, *train_args(out, tmp_path / "cache", "--set", "train.on_diverge=rollback",
                                                    steps=30))
    assert code == 0, err
    assert "losses became NaN/Inf at step 13: rolled back to step-000010 with learning rates × 0.5" in stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [5, 10, 15, 20, 25, 30]
    assert rows[1]["lr_g"] == 2e-4 and rows[2]["lr_g"] == 1e-4  # halved after the rollback
    assert load_run(out).step == 30
    state = json.loads((list_checkpoints(out)[-1][1] / "state.json").read_text())
    assert state["lr_schedule"] == {"scale": 0.5}  # a resume keeps the lowered rates


# ------------------------------------------------------------------ 4 hostile data

@pytest.fixture
def options(tmp_path):
    return DatasetOptions(cache_dir=str(tmp_path / "cache"))


def _images(folder: Path, count: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (40, 40), (60 * i, 20, 200)).save(folder / f"{i}.png")


def test_a_tags_line_with_too_many_tags_is_skipped_and_counted(tmp_path, options):
    _images(tmp_path / "d")
    (tmp_path / "d" / "tags.csv").write_text("0," + ",".join(f"t{i}" for i in range(5000)) + "\n1,red\n")
    data = load_dataset(str(tmp_path / "d"), 32, 3, options)
    assert data.tags == [[], ["red"], []]
    assert data.info["tags"]["malformed_examples"] == ["line 1: more than 1000 tags for one image"]


def test_a_tag_vocabulary_over_the_limit_names_tags_top(tmp_path, options):
    _images(tmp_path / "d")
    (tmp_path / "d" / "tags.csv").write_text("".join(f"{i},{i}a,{i}b,{i}c\n" for i in range(3)))
    with pytest.raises(DataError, match=r"9 distinct tags, over dataset.max_tags = 5 .*dataset.tags_top=N"):
        load_dataset(str(tmp_path / "d"), 32, 3, DatasetOptions(cache_dir=options.cache_dir, max_tags=5))


def test_an_image_declaring_too_many_pixels_is_skipped_before_decoding(tmp_path, options):
    _images(tmp_path / "d")
    Image.new("1", (12000, 12000)).save(tmp_path / "d" / "huge.png")  # ~17 KB on disk, 144 Mpx declared
    data = load_dataset(str(tmp_path / "d"), 32, 3, options)
    assert len(data.data) == 3 and data.info["skipped"] == {"over dataset.max_image_pixels": 1}


def test_a_gzip_idx_declaring_more_than_the_limit_is_refused_before_gunzipping(tmp_path):
    header = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", 3_600_000, 28, 28)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(1 << 20))  # 1 MB of the 2.7 GB promised: never decompressed further
    with pytest.raises(DataError, match=r"declares 2692 MB of data .* over dataset.max_decompressed_mb = 1024"):
        read_idx(path)


def test_links_that_leave_the_folder_dangle_or_loop_are_skipped_and_counted(tmp_path, options):
    folder = tmp_path / "d"
    _images(folder)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    _images(tmp_path / "elsewhere", 1)
    (folder / "0.txt").symlink_to(secret)  # a sidecar pointing outside
    (folder / "1.txt").write_text("red")
    (folder / "outside.png").symlink_to(tmp_path / "elsewhere" / "0.png")
    (folder / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    data = load_dataset(str(folder), 32, 3, options)
    assert len(data.data) == 3
    assert data.info["skipped"] == {"outside the folder": 2, "broken links": 2}  # 0.txt counts among them
    assert data.tags == [[], ["red"], []] and data.info["tags"]["sidecars_outside"] == 1
    assert "sidecars outside the folder skipped: 1" in data.info["summary"]


# ------------------------------------------------------------------ 5 the lock

def test_a_locked_run_is_refused_with_the_holders_pid(run, capsys):
    before = (run / "metrics.jsonl").read_text()
    with hold_run_lock(run):
        code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    assert code == 2 and f"in use by another ganforge process (PID {os.getpid()})" in one_line_error(err)
    assert (run / "metrics.jsonl").read_text() == before
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)  # released: the next one may
    assert code == 0, err


def test_a_refused_start_leaves_no_lock_file_behind(tmp_path, capsys):
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, *train_args(folder, tmp_path / "cache"))
    assert code == 2 and "already exists and is not empty" in one_line_error(err)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_stale_lock_file_from_a_killed_process_does_not_block(run, capsys):
    (run / "run.lock").write_text("999999\n")  # what kill -9 leaves: the file, but no flock
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    assert code == 0, err


@pytest.mark.slow
def test_two_fresh_runs_into_one_directory_one_wins(tmp_path):
    out = tmp_path / "run"
    procs = [_train_child(out, tmp_path / f"cache{i}") for i in range(2)]
    deadline = time.time() + 120
    while not ((out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text()):
        assert any(proc.poll() is None for proc in procs) and time.time() < deadline, "both stopped"
        time.sleep(0.1)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [2, 143], outputs
    loser = outputs[[p.returncode for p in procs].index(2)]
    assert "in use by another ganforge process" in loser or "already exists and is not empty" in loser


# ------------------------------------------------------------------ 6 one-line errors

def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_history(run, capsys, monkeypatch):
    import ganforge.checkpoint as checkpoint

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    history = (run / "metrics.jsonl").read_text()
    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 30)
    line = one_line_error(err)
    assert code == 2 and "No space left on device" in line and "step-000010, step-000020" in line
    assert [step for step, _ in list_checkpoints(run)] == [10, 20]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert (run / "metrics.jsonl").read_text().startswith(history)
    monkeypatch.undo()
    assert load_run(run).step == 20
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 30)
    assert code == 0, err


def test_a_full_disk_at_the_first_checkpoint_leaves_a_restartable_run(tmp_path, capsys, monkeypatch):
    import ganforge.checkpoint as checkpoint

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(out, tmp_path / "cache"))
    assert code == 2 and "none yet" in one_line_error(err)
    monkeypatch.undo()
    code, _, err = run_cli(capsys, "train", "--resume", out, "--steps", 10)
    assert code == 0, err


def test_unwritable_places_are_one_line(run, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(run / "samples" / "x.png"))

    monkeypatch.setattr("ganforge.samples.save_grid", read_only)  # where `ganforge sample` writes
    code, _, err = run_cli(capsys, "sample", run, "--n", 4)
    line = one_line_error(err)
    assert code == 2 and "Read-only file system" in line and "write elsewhere (--out)" in line


def test_eval_prints_its_result_even_where_it_cannot_keep_it(run, capsys, monkeypatch):
    import ganforge.metrics

    monkeypatch.setattr(ganforge.metrics, "evaluate", lambda *a, **k: {"step": 20, "fid": 12.5})
    metrics = RunDir(run).history_file  # where the result is kept: a folder in its way makes it unwritable
    shutil.move(metrics, run / "moved.jsonl")
    metrics.mkdir()
    code, stdout, err = run_cli(capsys, "eval", run, "--quiet")
    assert code == 0 and re.search(r"^fid +12.5$", stdout, re.M)
    assert "the result is not kept" in err


def test_empty_and_mislabelled_mnist_files_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train-images-idx3-ubyte").write_bytes(b"")
    (empty / "train-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(DataError, match="is empty; download it again"):
        load_dataset(f"mnist:{empty}", 32, 1, DatasetOptions())
    bad = tmp_path / "bad"
    bad.mkdir()
    images = np.zeros((3, 28, 28), np.uint8)
    header = lambda a: struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    (bad / "train-images-idx3-ubyte").write_bytes(header(images) + images.tobytes())
    labels = np.array([1, 2, 12], np.uint8)
    (bad / "train-labels-idx1-ubyte").write_bytes(header(labels) + labels.tobytes())
    with pytest.raises(DataError, match=r"labels outside 0-9 \(e.g. 12\)"):
        load_dataset(f"mnist:{bad}", 32, 1, DatasetOptions())


def test_a_class_folder_with_a_non_utf8_name_loads(tmp_path, options, capsys):
    root = os.fsencode(tmp_path / "d")
    for name in (b"caf\xe9", b"dogs"):
        os.makedirs(os.path.join(root, name))
        for i in range(2):
            Image.new("RGB", (40, 40), (60 * i, 0, 0)).save(os.fsdecode(os.path.join(root, name, b"%d.png" % i)))
    data = load_dataset(str(tmp_path / "d"), 32, 3, options)
    assert data.class_names == ["caf\ufffd", "dogs"] and data.labels.tolist() == [0, 0, 1, 1]
    print(data.info["summary"])  # printable and JSON-able
    json.dumps(data.class_names, ensure_ascii=False).encode()


def test_checkpoint_weights_of_another_network_are_one_line(run, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(train_args(other, tmp_path / "cache", "--set", "model.width=4", steps=10)) == 0
    target = list_checkpoints(run)[-1][1]
    shutil.rmtree(target)
    shutil.copytree(list_checkpoints(other)[-1][1], target)  # intact, but another run's
    capsys.readouterr()
    code, _, err = run_cli(capsys, "sample", run, "--n", 4, "--out", tmp_path / "g.png")
    assert code == 2 and "do not fit the run's network" in one_line_error(err)


# ---- serve and sample input (issue 21)
# `sample` with counts below 1 and damaged recipes; `serve` against malformed requests and against slow
# and vanishing clients, over real sockets on 127.0.0.1: one-line errors and 4xx answers, never a
# traceback or a 500 (benchmarks/faults.py, section 4, counts the same at a larger scale).

def _png_with_recipe(path: Path, text: str) -> Path:
    from PIL import PngImagePlugin

    from ganforge.serve.recipe import KEY

    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, text)
    Image.new("RGB", (32, 32)).save(path, pnginfo=info)
    return path


@pytest.fixture(scope="module")
def recipe(trained) -> dict:
    """The recipe of image 1 of seeds 3-4 of the trained run, as the server writes it."""
    from ganforge.serve.recipe import make_recipe
    from ganforge.serve.render import Explorer
    from ganforge.serve.request import parse_request

    return make_recipe(Explorer(load_run(trained)), parse_request({"seed": 3, "count": 2}).to_dict(), 1, 2)


@pytest.mark.parametrize("flags", [("--n", "0"), ("--n", "-5"), ("--nrow", "-2")])
def test_sample_counts_below_one_are_one_line(trained, tmp_path, capsys, flags):
    code, _, err = run_cli(capsys, "sample", trained, *flags, "--out", tmp_path / "grid.png")
    assert code == 2 and f"{' '.join(flags)} must be at least 1" in one_line_error(err)
    assert not (tmp_path / "grid.png").exists()


DAMAGED_RECIPES = {  # what the recipe text becomes, from the good recipe's JSON → what the error says
    "nested 5,000 deep": (lambda good: "[" * 5000 + "]" * 5000, "is damaged (it is nested too deeply)"),
    "a 5,000-digit index": (lambda good: good.replace('"index": 1', '"index": ' + "9" * 5000),
                            "is damaged (a number of 5,000 digits"),
    "index a string": (lambda good: good.replace('"index": 1', '"index": "0"'),
                       "has index '0', not a whole number from 0"),
    "stage x": (lambda good: good.replace('"stage": 2', '"stage": "x"'), "has stage 'x', not 1 or 2"),
    "stage 3": (lambda good: good.replace('"stage": 2', '"stage": 3'), "has stage 3, not 1 or 2"),
    "not an object": (lambda good: "[1, 2]", "is damaged (not a JSON object)"),
    "seed out of range": (lambda good: good.replace('"seed": 3', '"seed": -3'),
                          "the recipe's request is damaged (seed must be from 0"),
}


@pytest.mark.parametrize("case", DAMAGED_RECIPES)
def test_a_damaged_recipe_is_one_line(recipe, tmp_path, capsys, case):
    damage, message = DAMAGED_RECIPES[case]
    good = json.dumps(recipe)
    image = _png_with_recipe(tmp_path / "image.png", good)
    assert run_cli(capsys, "sample", "--recipe", image, "--out", tmp_path / "good.png")[0] == 0
    damaged = _png_with_recipe(tmp_path / "damaged.png", damage(good))
    code, _, err = run_cli(capsys, "sample", "--recipe", damaged, "--out", tmp_path / "out.png")
    assert code == 2 and message in one_line_error(err) and not (tmp_path / "out.png").exists()


@pytest.fixture(scope="module")
def explorer(trained):
    """`serve` on the trained run (id 'run'), with a 1 s request deadline so the slow-client tests are quick."""
    from serve_helpers import running_server

    with running_server([trained]) as (server, url):
        server.request_timeout = 1.0
        yield server, url


def _exchange(port: int, raw: bytes) -> tuple[int, str]:
    """Send raw bytes, read the answer to its end: (status, its JSON error message)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def _post(host: str, body: bytes, length: str | None = None) -> bytes:
    return (f"POST /api/generate HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length or len(body)}\r\n\r\n"
            .encode() + body)


MALFORMED_REQUESTS = {  # host → raw request; the status and message part it must get
    "JSON nested 10,000 deep": (lambda host: _post(host, b"[" * 10_000 + b"]" * 10_000), 400, "nested too deeply"),
    "a 5,000-digit body": (lambda host: _post(host, b"9" * 5000), 400, "a number of 5,000 digits"),
    "a 5,000-digit seed": (lambda host: _post(host, b'{"run": "run", "seed": ' + b"9" * 5000 + b"}"), 400,
                           "a number of 5,000 digits"),
    "Content-Length: abc": (lambda host: _post(host, b"{}", length="abc"), 400, "(got 'abc')"),
    "a 5,000-digit sample step": (lambda host: f"GET /api/runs/run/samples/{'9' * 5000} HTTP/1.1\r\nHost: {host}"
                                               f"\r\n\r\n".encode(), 404, "has no sample grid at step 999"),
    "a superscript digit as the step": (lambda host: b"GET /api/runs/run/samples/\xb2 HTTP/1.1\r\nHost: "
                                                     + host.encode() + b"\r\n\r\n", 404, "has no sample grid"),
    "body not UTF-8": (lambda host: _post(host, b'{"run": "\xff"}'), 400, "not JSON this server reads"),
    "a garbage request line": (lambda host: b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
    "an unknown method": (lambda host: f"BREW / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), 405, "use GET or POST"),
    "a 70 kB header": (lambda host: f"GET / HTTP/1.1\r\nHost: {host}\r\nX: {'a' * 70_000}\r\n\r\n".encode(), 431,
                       "Line too long"),
}


@pytest.mark.parametrize("case", MALFORMED_REQUESTS)
def test_a_malformed_request_is_a_4xx_with_one_line(explorer, capsys, case):
    build, status, message = MALFORMED_REQUESTS[case]
    port = explorer[0].server_address[1]
    answer = _exchange(port, build(f"127.0.0.1:{port}"))
    assert answer[0] == status and message in answer[1] and "\n" not in answer[1], answer
    assert capsys.readouterr().err == ""  # no traceback, no "error in POST" line of a 500


def _threads_settle(at_most: int, within: float = 5.0) -> int:
    """The thread count once it is at most `at_most` (or after `within` seconds)."""
    deadline = time.monotonic() + within
    while threading.active_count() > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return threading.active_count()


def test_half_open_sockets_hold_a_bounded_number_of_threads(explorer, capsys):
    server, url = explorer
    port, before = server.server_address[1], threading.active_count()
    half = f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100\r\n".encode()
    sockets = []
    try:
        for _ in range(200):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            sockets[-1].sendall(half)
        time.sleep(0.5)  # the server takes them in
        assert before < threading.active_count() <= before + server.max_connections
        started = time.monotonic()
        with urllib.request.urlopen(url + "/api/runs", timeout=30) as response:  # a normal request still answers
            assert response.status == 200 and json.loads(response.read())["runs"][0]["id"] == "run"
        assert time.monotonic() - started < server.request_timeout  # the stalest half-open one made room
        for sock in sockets:  # each is dropped, or closed at its deadline, without an answer
            sock.settimeout(server.request_timeout + 5)
            assert sock.recv(100) == b""
    finally:
        for sock in sockets:
            sock.close()
    assert _threads_settle(before) <= before  # none left behind (another test's thread may end meanwhile)
    assert capsys.readouterr().err == ""


def test_a_request_trickling_in_is_closed_at_its_deadline(explorer):
    server, _ = explorer
    port = server.server_address[1]
    for first in (b"GET / HTTP/1.1\r\n", b"POST /api/generate HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"):
        with socket.create_connection(("127.0.0.1", port), timeout=0.1) as sock:
            started = time.monotonic()
            sock.sendall(first)
            closed = False
            while not closed and time.monotonic() - started < 5:
                try:  # a header line (or body byte) every 0.1 s: each read comes well within any socket timeout
                    sock.sendall(b"X")
                    closed = sock.recv(100) == b""
                except TimeoutError:
                    pass
                except OSError:  # reset: closed as well
                    closed = True
            assert closed and time.monotonic() - started < server.request_timeout + 1, first


def test_clients_that_leave_leave_no_traceback(explorer, capsys):
    server, _ = explorer
    port, before = server.server_address[1], threading.active_count()
    host = f"127.0.0.1:{port}"
    reset = struct.pack("ii", 1, 0)  # SO_LINGER 0: close() resets the connection
    for i in range(200):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # half a request, or a whole one whose answer nobody reads
        sock.sendall(_post(host, b'{"run": "run"', length="100") if i % 2 else
                     f"GET /api/runs/run/samples/20 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
        sock.close()
    assert _threads_settle(before) <= before
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err and err == ""
# ---- data, metrics and compare input (issue 21)
# Each case as a user meets it: `ganforge data inspect`, `eval` or `compare` on a folder or study built
# here, tiny on disk; what it must print instead of a traceback, or with no warning leaking from PIL.

def _ganforge_child(*argv) -> subprocess.CompletedProcess:
    """`python -m ganforge ...` in a child process: what reaches its stderr, PIL's warnings included."""
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, argv)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


def _png_header(path: Path, width: int, height: int) -> None:
    """A 1-bit PNG declaring width×height, with only its first rows of (zero) pixels: a decompression
    bomb as the header shows it, 100 bytes on disk."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(bytes(1 + (width + 7) // 8) * 4, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_png_bombs_are_counted_over_max_image_pixels_and_pil_warns_nothing(tmp_path):
    folder = tmp_path / "d"
    _images(folder)
    _png_header(folder / "bomb.png", 50_000, 50_000)   # 2.5 G pixels: PIL itself refuses it at open
    _png_header(folder / "large.png", 12_000, 12_000)  # 144 M: PIL only warns
    done = _ganforge_child("data", "inspect", folder, "--cache-dir", tmp_path / "cache")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "3 images loaded, 2 skipped (2 over dataset.max_image_pixels)" in done.stdout


def test_bad_tag_lines_are_skipped_and_counted_and_a_huge_tag_is_never_printed(tmp_path, capsys):
    folder = tmp_path / "d"
    _images(folder, 4)
    (folder / "tags.csv").write_text("id,tags\n0,red\n,blue\n1,sky:1.5\n2," + "y" * 10_000_000 + "\n3,sky:"
                                     + "1" * 5000 + "\n" + "z" * 1_000_000 + ",red\n")
    code, out, err = run_cli(capsys, "data", "inspect", folder, "--cache-dir", tmp_path / "cache")
    assert code == 0 and err == "" and len(out) < 3000  # the 10 MB tag and the 1 MB id: cut, never printed
    assert "malformed tag lines skipped: 3 (line 3, line 4, line 5)" in out
    assert ("malformed, skipped: 3 (line 3: no image id before the tags; line 4: count 'sky:1.5' is not a whole "
            "number; line 5: a tag of 10,000,000 characters, over dataset.max_tag_chars = 200)") in out
    assert "tags (2): red 1, sky 1" in out  # line 6's 5,000-digit count is a count, not a traceback
    (folder / "tags.csv").write_text(",red\n,blue\n")
    code, _, err = run_cli(capsys, "data", "inspect", folder, "--cache-dir", tmp_path / "cache")
    assert code == 2 and "line 1: no image id before the tags" in one_line_error(err)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    from ganforge.metrics.classifier import ClassifierNet, save_classifier

    torch.manual_seed(0)
    net = ClassifierNet([str(d) for d in range(10)], channels=3, input_size=16, widths=(4, 8, 8), feature_dim=16)
    path = tmp_path_factory.mktemp("clf") / "tiny.safetensors"
    save_classifier(net.eval(), path)
    return path


def test_eval_warns_below_the_samples_fid_and_kid_need_and_refuses_what_cannot_be_computed(tmp_path, capsys,
                                                                                           tiny_classifier):
    _images(tmp_path / "four", 4)
    _images(tmp_path / "three", 3)
    _images(tmp_path / "one", 1)
    _png_header(tmp_path / "four" / "+bomb.png", 50_000, 50_000)  # sorted first: eval sizes the folder past it
    common = ["--features", f"classifier:{tiny_classifier}", "--quiet", "--cache-dir", tmp_path / "cache"]
    code, out, err = run_cli(capsys, "eval", tmp_path / "four", "--ref", tmp_path / "three", "--metrics", "fid,kid",
                             *common)
    assert code == 0 and re.search(r"^fid +\S+$", out, re.M), err
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("ganforge: warning: ") for w in warnings)
    assert "fid from 4 vs 3 images is biased by the counts: with fewer than 17 a side" in warnings[0]
    assert "kid from 4 vs 3 images: fewer than its subset size (1,000)" in warnings[1]
    code, _, err = run_cli(capsys, "eval", tmp_path / "four", "--ref", tmp_path / "one", "--metrics", "fid", *common)
    assert code == 2 and "fid needs at least 2 images a side, and the reference has 1" in one_line_error(err)
    code, _, err = run_cli(capsys, "eval", tmp_path / "four", "--ref", tmp_path / "three", "--n", -3, *common)
    assert code == 2 and "--n -3 must be at least 1" in one_line_error(err)
# ---- run directory: nothing deleted, history kept (issue 21)

def _tree(folder: Path) -> dict:
    """Every file below `folder` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_files(folder: Path) -> dict:
    """What a user keeps in a folder: a notes file and a folder of pictures."""
    (folder / "notes.txt").write_text("what I tried\n")
    (folder / "pictures").mkdir()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(folder / "pictures" / "mine.png")
    return {name: data for name, data in _tree(folder).items() if name.startswith(("notes.txt", "pictures"))}


def test_a_folder_with_a_config_and_anything_else_is_refused_and_left_as_it_was(tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text("steps: 20\n")  # the user's own config, beside their files
    _user_files(exp)
    before = _tree(exp)
    code, _, err = run_cli(capsys, *train_args(exp, tmp_path / "cache", "--config", exp / "config.yaml"))
    line = one_line_error(err)
    assert code == 2 and "holds no ganforge run" in line and "never deletes" in line and "--out" in line
    assert _tree(exp) == before  # run.lock included: a refused start leaves nothing behind


def test_restarting_a_run_in_place_removes_only_what_a_run_writes(run, tmp_path, capsys):
    shutil.rmtree(run / "checkpoints")  # nothing to continue from: `train --out RUN` starts it again
    history = (run / "metrics.jsonl").read_text()
    mine = _user_files(run)
    code, stdout, err = run_cli(capsys, *train_args(run, tmp_path / "cache", steps=10))
    assert code == 0, err
    assert "starting it again in place from step 0" in stdout
    assert {name: data for name, data in _tree(run).items() if name in mine} == mine
    assert (run / "metrics.before-step000000.jsonl").read_text() == history
    assert [row["step"] for row in RunDir(run).read_history()] == [5, 10] and load_run(run).step == 10


def test_resuming_a_run_without_checkpoints_keeps_its_history_and_grids(run, capsys):
    shutil.rmtree(run / "checkpoints")
    history = (run / "metrics.jsonl").read_text()
    grids = _tree(run / "samples")
    code, stdout, err = run_cli(capsys, "train", "--resume", run, "--steps", 10)
    assert code == 0, err
    said = [line for line in stdout.splitlines() if "starting it again in place" in line]
    assert len(said) == 1 and "metrics.before-step000000.jsonl" in said[0] and "samples/" in said[0]
    assert (run / "metrics.before-step000000.jsonl").read_text() == history
    assert set(grids) <= set(_tree(run / "samples"))  # steps 10..20 from before, 0..10 written again
    assert (run / "samples" / "step-000020.png").read_bytes() == grids["step-000020.png"]

    shutil.rmtree(run / "checkpoints")  # a second restart keeps the first backup too
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 5)
    assert code == 0, err
    assert (run / "metrics.before-step000000.jsonl").read_text() == history
    assert [json.loads(line)["step"] for line in (run / "metrics.before-step000000-2.jsonl").read_text().splitlines()
            ] == [5, 10]


def test_resume_without_run_json_is_one_line_not_an_unchecked_config(run, capsys):
    (run / "run.json").unlink()
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    line = one_line_error(err)
    assert code == 2 and "run.json is missing" in line and "cannot be checked" in line and "restore" in line
    assert list_checkpoints(run)[-1][0] == 20  # nothing trained, nothing written


def test_steps_and_budget_given_at_resume_are_kept_for_later_resumes(run, capsys):
    code, stdout, err = run_cli(capsys, "train", "--resume", run, "--steps", 25, "--minutes", 60, "--device", "cpu")
    assert code == 0, err
    assert "config.yaml: steps = 25, train.minutes = 60.0 (kept for later resumes)" in stdout
    config = load_run(run).config  # config.yaml and the SHA-256 in run.json agree
    assert (config.steps, config.train.minutes, config.device) == (25, 60.0, "auto")  # --device: this time only
    code, stdout, err = run_cli(capsys, "train", "--resume", run)
    assert code == 0 and "already at step 25 ≥ steps = 25" in stdout, err


def test_a_stop_while_resume_changes_the_config_leaves_a_run_that_reads(run, capsys, monkeypatch):
    import ganforge.rundir as rundir

    original = rundir.write_atomic

    def stopped_at_config(target, write):
        if Path(target).name == "config.yaml":  # run.json has the new SHA-256, config.yaml is still the old one
            raise KeyboardInterrupt
        original(target, write)

    monkeypatch.setattr(rundir, "write_atomic", stopped_at_config)
    code, _, _ = run_cli(capsys, "train", "--resume", run, "--steps", 30)
    assert code == 130
    monkeypatch.undo()
    code, stdout, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    assert code == 0 and "steps = 25" in stdout, err
    assert load_run(run).step == 25 and "config_sha256_replaced" not in (run / "run.json").read_text()


@pytest.mark.parametrize("when", ["importing", "holding the lock"])
def test_sigterm_during_start_up_exits_143_and_leaves_the_run_intact(run, capsys, when):
    before = (run / "metrics.jsonl").read_text()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", "--resume", str(run), "--steps", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if when == "importing":
        time.sleep(0.2)
    else:  # the lock holds the child's PID once it has it: data and networks are being built
        deadline = time.time() + 60
        while (run / "run.lock").read_text().strip() != str(proc.pid):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output
    assert (run / "metrics.jsonl").read_text().startswith(before) and load_run(run).step >= 20
    code, _, err = run_cli(capsys, "train", "--resume", run, "--steps", 25)
    assert code == 0, err


TIMING = ("img_per_s", "wall_time")


def _rows(run_dir: Path) -> dict[int, dict]:
    return {row["step"]: {k: v for k, v in row.items() if k not in TIMING}
            for row in RunDir(run_dir).read_history() if "d_loss" in row}


BALANCING = ["--set", "balance.policy=accuracy", "--set", "balance.every=5", "--set", "balance.band=0"]


@pytest.mark.parametrize("how", ["stopped off the log cadence", "checkpoint off the log cadence",
                                 "stopped off the log cadence while balancing"])
def test_rows_after_a_resume_are_the_uninterrupted_runs(tmp_path, capsys, how):
    cache = tmp_path / "cache"
    every = ["--set", "train.log_every=4"] if how == "checkpoint off the log cadence" else []
    every += BALANCING if how.endswith("while balancing") else []
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(train_args(straight, cache, *every, steps=30)) == 0
    if how.startswith("stopped off the log cadence"):  # its last step, 17, is logged and checkpointed mid-row
        assert main(train_args(resumed, cache, *every, steps=17)) == 0
        extra = {17}
    else:  # what kill -9 after step 20 leaves: the resume starts from step 10, between rows 8 and 12
        assert main(train_args(resumed, cache, *every, steps=20)) == 0
        shutil.rmtree(resumed / "checkpoints" / "step-000020")
        extra = set()
    code, _, err = run_cli(capsys, "train", "--resume", resumed, "--steps", 30)
    assert code == 0, err
    a, b = _rows(straight), _rows(resumed)
    assert set(b) - set(a) == extra and set(a) <= set(b)
    assert {step: b[step] for step in a} == a  # every numeric field, bit for bit
