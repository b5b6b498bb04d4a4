"""Checkpoints that load without unpickling and are never seen half-written.

One folder per checkpoint (where, and its file names: RunDir.checkpoint and CheckpointDir in rundir.py):
  weights             network weights and buffers, keys "G.<name>", "D.<name>"
  other tensors       optimizer moments, RNG states
  state (JSON)        everything else: step, optimizer hyper-parameters, data cursor
  manifest (JSON)     SHA-256 and size of each file above, written last
The folder is written under a temporary name and renamed into place, so a crash, Ctrl-C or a full
disk during a save leaves the previous checkpoints intact. Loading verifies the manifest, so a
truncated, zeroed or bit-flipped file is noticed; 'latest' is the newest checkpoint that verifies
(each damaged newer one is reported in one line on stderr). A checkpoint written before manifests
existed cannot be verified bit for bit: it is accepted when its three files are present and parse.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .errors import GanforgeError
from .fileio import atomic_dir, sha256_of
from .rundir import CheckpointDir, RunDir

FORMAT = 1
MANIFEST = CheckpointDir.MANIFEST


class DamagedCheckpoint(GanforgeError):
    """A checkpoint folder whose files are missing, cut short or altered since they were written."""


def warn(message: str) -> None:
    """A one-line warning on stderr (stdout may be a pipe of results)."""
    print(f"ganforge: warning: {message}", file=sys.stderr, flush=True)


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    return RunDir(run_dir).list_checkpoints()


def read_state(checkpoint: Path) -> dict:
    """A checkpoint's JSON part: step, optimizer hyper-parameters, cursors, and what `extra` added."""
    return CheckpointDir(Path(checkpoint)).read_state()


def best_value(run_dir: Path, figure: str) -> float | None:
    """The value of `figure` (eval.best) at the run's best checkpoint; None when it has none (training
    never evaluated) or kept it by another figure."""
    best = RunDir(run_dir).best
    return read_state(best.path)["best"].get(figure) if best.state.is_file() else None


def find_checkpoint(run_dir: Path, which: str = "latest", on_damaged=warn) -> Path:
    """'latest' (the newest intact one), 'best' (by eval.best, FID unless set, when the run evaluated during training), a step
    number, or a folder name. Every checkpoint returned has verified; a named one that does not is an
    error (never silently another), while 'latest' reports each damaged newer one via `on_damaged`."""
    if which == "best":
        best = RunDir(run_dir).best.path
        if not best.is_dir():
            raise GanforgeError(f"{run_dir} has no best checkpoint; it is kept when training evaluates FID "
                                "(set eval.every)")
        return _verified(best, "choose another with --checkpoint (e.g. latest)")
    found = list_checkpoints(run_dir)
    if not found:
        raise GanforgeError(f"{run_dir} has no checkpoint; train it first (ganforge train --out {run_dir}, "
                            f"or ganforge train --resume {run_dir} to start it again with its own config)")
    if which == "latest":
        return newest_intact(run_dir, found, on_damaged)
    for step, path in found:
        if which in (str(step), path.name):
            return _verified(path, "choose another step with --checkpoint (or latest)")
    steps = ", ".join(str(s) for s, _ in found)
    raise GanforgeError(f"{run_dir} has no checkpoint '{which}'; available steps: {steps}")


def newest_intact(run_dir: Path, found: list[tuple[int, Path]], on_damaged=warn) -> Path:
    """The newest of `found` that verifies; each newer damaged one is reported in one line."""
    damaged = []
    for _, path in reversed(found):
        try:
            verify_checkpoint(path)
        except DamagedCheckpoint as err:
            damaged.append(str(err))
            continue
        for message in damaged:
            on_damaged(f"{message}; using {path.name}, the newest intact checkpoint")
        return path
    raise DamagedCheckpoint(f"every checkpoint of {run_dir} is damaged (newest: {damaged[0]}); restore "
                            f"{RunDir(run_dir).checkpoints.name}/ from a backup, or start the run again with "
                            f"ganforge train --resume {run_dir} after removing {RunDir(run_dir).checkpoints}")


def _verified(path: Path, fix: str) -> Path:
    try:
        verify_checkpoint(path)
    except DamagedCheckpoint as err:
        raise DamagedCheckpoint(f"{err}; {fix}") from None
    return path


def _write_manifest(folder: Path) -> None:
    files = {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in sorted(folder.iterdir())}
    CheckpointDir(folder).manifest.write_text(json.dumps({"format": FORMAT, "files": files}, indent=1))


def verify_checkpoint(folder: Path) -> None:
    """Raise DamagedCheckpoint (naming the folder and what is wrong) unless every file is as written."""
    folder = Path(folder)
    manifest_path = CheckpointDir(folder).manifest
    if not manifest_path.is_file():
        return _verify_unhashed(folder)
    try:
        listed = json.loads(manifest_path.read_text())["files"]
        listed = {str(name): (str(entry["sha256"]), int(entry["bytes"])) for name, entry in listed.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged ({MANIFEST} is unreadable)") from None
    for name in CheckpointDir.REQUIRED:
        if name not in listed:
            raise DamagedCheckpoint(f"checkpoint {folder} is damaged ({MANIFEST} does not list {name})")
    for name, (sha256, size) in listed.items():
        path = folder / name
        try:
            actual_size = path.stat().st_size
            if actual_size != size:
                raise DamagedCheckpoint(f"checkpoint {folder} is damaged ({name} has {actual_size} bytes, "
                                        f"{size} were written)")
            if sha256_of(path) != sha256:
                raise DamagedCheckpoint(f"checkpoint {folder} is damaged ({name} differs from what was written)")
        except OSError as err:
            raise DamagedCheckpoint(f"checkpoint {folder} is damaged ({name}: {err.strerror})") from None


def _verify_unhashed(folder: Path) -> None:
    """A checkpoint from before manifests: accepted when its files are present and parse."""
    try:
        meta = read_state(folder)
        meta["step"]
        if "manifest" in meta:
            raise DamagedCheckpoint(f"checkpoint {folder} is damaged ({MANIFEST} is missing)")
        for path in (CheckpointDir(folder).model, CheckpointDir(folder).tensors):
            with safe_open(str(path), framework="pt") as f:
                f.keys()
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0][:120] or type(err).__name__
        raise DamagedCheckpoint(f"checkpoint {folder} is damaged (it has no {MANIFEST} and does not parse: "
                                f"{reason})") from None


def _flatten_optimizer(prefix: str, state_dict: dict, tensors: dict) -> dict:
    """Optimizer state → tensors (into `tensors`) + a JSON-able remainder."""
    meta: dict = {"param_groups": state_dict["param_groups"], "scalars": {}}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{name}"] = value.detach().contiguous()
            else:
                meta["scalars"][f"{index}.{name}"] = value
    return meta


def _unflatten_optimizer(prefix: str, meta: dict, tensors: dict) -> dict:
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: Path, step: int, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], extra: dict, keep: int,
                    name: str | None = None) -> Path:
    """Write checkpoint `step` atomically and keep only the `keep` most recent numbered ones.

    `name` saves under another folder name (e.g. "best"), which the pruning never touches."""
    paths = RunDir(run_dir)
    folder = paths.checkpoints
    folder.mkdir(parents=True, exist_ok=True)
    final = paths.checkpoint(name or step).path

    weights = {f"{name}.{key}": value.detach().contiguous().cpu()
               for name, module in modules.items() for key, value in module.state_dict().items()}

    tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda{i}"] = s
    opt_meta = {name: _flatten_optimizer(f"opt.{name}", opt.state_dict(), tensors) for name, opt in optimizers.items()}
    try:
        # Saving the same step again (e.g. a resumed run that ends where it began) replaces it whole.
        with atomic_dir(final) as tmp:  # a failed write is deleted, freeing what it took
            staged = CheckpointDir(tmp)
            save_file(weights, staged.model)
            save_file({k: v.cpu() for k, v in tensors.items()}, staged.tensors)
            # "manifest" marks a checkpoint that had one: deleting it then reads as damage, not as an old checkpoint.
            staged.state.write_text(json.dumps({"format": FORMAT, "step": step, "manifest": MANIFEST,
                                                "optimizers": opt_meta, **extra}, indent=1))
            _write_manifest(tmp)
    except (OSError, SafetensorError) as err:  # safetensors reports a full disk as its own error
        kept = [p.name for _, p in list_checkpoints(run_dir)]
        reason = getattr(err, "strerror", None) or str(err).rsplit(": ", 1)[-1]
        raise GanforgeError(f"cannot write checkpoint {final} ({reason}); the earlier checkpoints "
                            f"({', '.join(kept) or 'none yet'}) and {paths.history_file.name} are intact — free space or "
                            f"make {folder} writable, then continue with ganforge train --resume {run_dir}") from None

    for _, old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _read_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    try:
        return load_file(path, device=str(device))
    except (OSError, SafetensorError) as err:
        raise DamagedCheckpoint(f"{path} is not a readable safetensors file ({str(err).splitlines()[0][:120]}); "
                                f"choose another checkpoint with --checkpoint") from None


def load_weights(checkpoint: Path, modules: dict[str, torch.nn.Module], device: torch.device | str = "cpu") -> None:
    weights = _read_tensors(CheckpointDir(Path(checkpoint)).model, device)
    for name, module in modules.items():
        prefix = name + "."
        own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if not own:
            raise GanforgeError(f"checkpoint {checkpoint} holds no weights for '{name}'")
        try:
            module.load_state_dict(own)
        except RuntimeError as err:
            detail = " ".join(str(err).split())[:160]
            raise GanforgeError(f"checkpoint {checkpoint}'s weights for '{name}' do not fit the run's network "
                                f"({detail}); it belongs to another run or config") from None


def _moments_in_their_parameters_layout(optimizer: torch.optim.Optimizer) -> None:
    """Moments are saved contiguous; a fused Adam walks a parameter and its moments in memory order, so a
    channels_last parameter with NCHW moments would pair the wrong elements (torch 2.13, CPU: measured)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for name, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def load_checkpoint(checkpoint: Path, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], device: torch.device) -> dict:
    """Restore weights, optimizer states and RNG states; return the JSON part (step, cursors, ...)."""
    checkpoint = Path(checkpoint)
    meta = read_state(checkpoint)
    if meta.get("format") != FORMAT:
        raise GanforgeError(f"checkpoint {checkpoint} has format {meta.get('format')}, this ganforge reads {FORMAT}")
    load_weights(checkpoint, modules, device)
    tensors = _read_tensors(CheckpointDir(checkpoint).tensors)
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(f"opt.{name}", meta["optimizers"][name], tensors))
        _moments_in_their_parameters_layout(opt)
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return meta
