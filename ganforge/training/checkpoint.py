"""Checkpoints that load without unpickling and are never seen half-written.

One folder per checkpoint, `checkpoints/step-NNNNNN/`:
  model.safetensors   network weights and buffers, keys "G.<name>", "D.<name>"
  state.safetensors   every other tensor: optimizer moments, RNG states
  state.json          everything else: step, optimizer hyper-parameters, data cursor
The folder is written under a temporary name and renamed into place, so a crash or Ctrl-C during a
save leaves the previous checkpoints intact.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import GanforgeError

FORMAT = 1
_STEP_DIR = re.compile(r"^step-(\d{6,})$")


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return sorted(found)


def find_checkpoint(run_dir: Path, which: str = "latest") -> Path:
    """'latest', 'best' (by FID, when the run evaluated during training), a step number, or a folder name."""
    if which == "best":
        best = Path(run_dir) / "checkpoints" / "best"
        if not best.is_dir():
            raise GanforgeError(f"{run_dir} has no best checkpoint; it is kept when training evaluates FID "
                                "(set eval.every)")
        return best
    found = list_checkpoints(run_dir)
    if not found:
        raise GanforgeError(f"{run_dir} has no checkpoint; train it first (ganforge train --out {run_dir})")
    if which == "latest":
        return found[-1][1]
    for step, path in found:
        if which in (str(step), path.name):
            return path
    steps = ", ".join(str(s) for s, _ in found)
    raise GanforgeError(f"{run_dir} has no checkpoint '{which}'; available steps: {steps}")


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
    """Write checkpoint `step` atomically and keep only the `keep` most recent step-NNNNNN ones.

    `name` saves under another folder name (e.g. "best"), which the pruning never touches."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / (name or step_dir_name(step))
    tmp = folder / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    weights = {f"{name}.{key}": value.detach().contiguous().cpu()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    save_file(weights, tmp / "model.safetensors")

    tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda{i}"] = s
    opt_meta = {name: _flatten_optimizer(f"opt.{name}", opt.state_dict(), tensors) for name, opt in optimizers.items()}
    save_file({k: v.cpu() for k, v in tensors.items()}, tmp / "state.safetensors")
    (tmp / "state.json").write_text(json.dumps({"format": FORMAT, "step": step, "optimizers": opt_meta, **extra}, indent=1))

    if final.exists():  # saving the same step again (e.g. a resumed run that ends where it began)
        shutil.rmtree(final)
    os.replace(tmp, final)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_weights(checkpoint: Path, modules: dict[str, torch.nn.Module], device: torch.device | str = "cpu") -> None:
    weights = load_file(Path(checkpoint) / "model.safetensors", device=str(device))
    for name, module in modules.items():
        prefix = name + "."
        own = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if not own:
            raise GanforgeError(f"checkpoint {checkpoint} holds no weights for '{name}'")
        module.load_state_dict(own)


def load_checkpoint(checkpoint: Path, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], device: torch.device) -> dict:
    """Restore weights, optimizer states and RNG states; return the JSON part (step, cursors, ...)."""
    checkpoint = Path(checkpoint)
    meta = json.loads((checkpoint / "state.json").read_text())
    if meta.get("format") != FORMAT:
        raise GanforgeError(f"checkpoint {checkpoint} has format {meta.get('format')}, this ganforge reads {FORMAT}")
    load_weights(checkpoint, modules, device)
    tensors = load_file(checkpoint / "state.safetensors")
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(f"opt.{name}", meta["optimizers"][name], tensors))
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return meta
