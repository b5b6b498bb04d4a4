"""The Python API behind `ganforge.train`, `ganforge.evaluate` and `ganforge.save_grid` (exported lazily
from ganforge/__init__.py): what `ganforge train`, `eval` and `sample` do, for notebooks and scripts.

    run = ganforge.train("shapes-tags", steps=200, out="runs/x", set={"model.width": 16})
    images = run.sample(16, seed=0, psi=0.7, tags="red, star")      # uint8 (16, C, H, W)
    ganforge.save_grid(images, "grid.png")
    ganforge.evaluate(run, metrics="fid", n=2000)

Configs are built by the config machinery (config.py) the CLI uses: a preset, a YAML file, a Config or a
dict, then keyword overrides of top-level keys (a section as a dict merges into it) and `set` of dotted
keys, in that order (later wins), as `--preset`/`--config`, the flags and `--set` do.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

# What a resumed run may change: how long and where it runs, not what it is.
RESUMABLE = {"steps", "device", "train"}


def folder_note(preset: str) -> str:
    """What a folder with no recipe named trains with (cli_common.recipe_for_folder's preset), said once."""
    from .config import preset_summary

    return (f"an image folder with no recipe named: training with --preset {preset} — {preset_summary(preset)}. "
            f"Give --preset, --config or --objective to choose another.")


def _nested(key: str, value) -> dict:
    """'model.width', 16 → {'model': {'width': 16}}."""
    head, _, rest = key.partition(".")
    return {head: _nested(rest, value) if rest else value}


def updates_of(set: dict | None = None, **overrides) -> list[dict]:
    """Keyword overrides and dotted `set` keys as the nested updates config.merge applies, in that order."""
    return [{key: value} for key, value in overrides.items()] + [_nested(key, value)
                                                               for key, value in (set or {}).items()]


def _base(config) -> dict:
    """The config dict a train(config=…) starts from: a Config, a dict, a preset name or a YAML path."""
    from .config import Config, load_preset, load_yaml, preset_names

    if config is None:
        return {}
    if isinstance(config, Config):
        return config.to_dict()
    if isinstance(config, dict):
        return config
    if isinstance(config, (str, Path)):
        if str(config) in preset_names():
            return load_preset(str(config))
        if Path(config).suffix.lower() in (".yaml", ".yml") or Path(config).is_file():
            return load_yaml(config)
        raise ConfigError(f"config {str(config)!r} is neither a preset ({', '.join(preset_names())}) nor a YAML "
                          f"file; give one of those, a Config or a dict")
    raise ConfigError(f"config must be a preset name, a YAML path, a Config or a dict, got {type(config).__name__}")


def build(config=None, set: dict | None = None, **overrides):
    """The Config train(config, set=…, **overrides) trains: `_base(config)` with the updates merged. With no
    config and no objective, an image folder gets the measured folder preset, as on the command line."""
    from .cli_common import recipe_for_folder
    from .config import from_dict, load_preset, merge

    updates = updates_of(set, **overrides)
    data = _base(config)
    asked_objective = "objective" in overrides or any("objective" in update for update in updates)
    preset = recipe_for_folder(updates) if config is None and not asked_objective else None
    if preset:
        print(folder_note(preset), flush=True)
        data = load_preset(preset)
    for update in updates:
        data = merge(data, update)
    return from_dict(data)


def resumed_config(run_dir: str | Path, updates: list[dict]):
    """The config a run continues with: its own config.yaml with `updates` of steps, device and train.*
    only (anything else would change what the run is)."""
    from .config import from_dict, merge
    from .rundir import read_config

    for update in updates:
        bad = {str(key) for key in update} - RESUMABLE
        if bad:
            raise ConfigError(f"cannot change {', '.join(sorted(bad))} when resuming "
                              f"(only steps, device and train.*); start a new run instead")
    data = read_config(Path(run_dir)).to_dict()
    for update in updates:
        data = merge(data, update)
    return from_dict(data)


def train(config=None, *, resume: str | Path | None = None, set: dict | None = None, **overrides):
    """Train a run (the trainer `ganforge train` uses) and return it loaded (`load_run`). config: a preset
    name, a YAML path, a Config or a dict; overrides: top-level keys (steps=20, data="shapes",
    out="runs/x", a section as a dict: model={"width": 16}); set: dotted keys ({"model.width": 16}).
    resume: continue that run directory to steps=… (only steps, device and train.* may change). A run
    stopped early (Ctrl-C, train.minutes) is returned as far as it got."""
    from .run import load_run
    from .training.trainer import train as run_trainer

    if resume is not None:
        if config is not None:
            raise ConfigError("resume= continues a run with its own config; drop config")
        result = run_trainer(resumed_config(resume, updates_of(set, **overrides)), Path(resume), resume=True)
    else:
        result = run_trainer(build(config, set, **overrides))
    return load_run(result.run_dir)


def save_grid(images, path: str | Path, nrow: int | None = None) -> Path:
    """Write images (uint8, or G's float output in [-1, 1]; N×C×H×W, C = 1 or 3) as one grid picture, nrow a
    row (default: square), in the format of the suffix (.png, .jpg, …), making its folder; returns the path."""
    import torch
    from PIL import Image

    from .report.grids import save_grid as write_grid, to_uint8

    path = Path(path)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"save_grid takes images N×C×H×W with C = 1 or 3 (run.sample's), got {shape}")
    if path.suffix.lower() not in Image.registered_extensions():
        raise ConfigError(f"{path} needs an image extension such as .png")
    if images.dtype != torch.uint8:
        if not images.is_floating_point():
            raise ConfigError(f"save_grid takes uint8 images or floats in [-1, 1], got {images.dtype}")
        images = to_uint8(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_grid(images.cpu(), path, nrow=nrow)
    return path


def evaluate(source, ref=None, metrics: str | list[str] | None = None, n: int | None = None, *, keep: bool = True,
             **options) -> dict:
    """What `ganforge eval` computes (metrics.evaluate): `source` a run directory or Run, an image folder, a
    dataset spec or a uint8 tensor, against `ref` (default: a run's training data); metrics default to the
    data kind's own (fid for images), n to 2,000 on a CPU and 10,000 on a GPU (metrics.sizing). options:
    metrics.evaluate's (features, n_ref, device, seed, checkpoint, batch_size, cache_dir, weights_path,
    progress, floor, settings, …). keep: a run's
    result is added to its history (metrics.jsonl) as `ganforge eval` does; where that cannot be written,
    the result still comes back, with a warning saying so."""
    from . import metrics as metrics_module  # looked up at call time: tests replace metrics.evaluate
    from .rundir import RunDir
    from .run import Run

    result = metrics_module.evaluate(source, ref=ref, metrics=metrics or "", n=n, **options)
    if keep and "step" in result:  # a run: keep the result in its directory (the run directory is the interface)
        paths = RunDir(source.path if isinstance(source, Run) else source)
        try:
            paths.record_eval(result["step"], result)
        except OSError as err:  # a run directory that cannot be written must not cost the result
            result.setdefault("warnings", []).append(
                f"the result is not kept in {paths.history_file} ({err.strerror}); make the run directory "
                f"writable to keep it")
    return result
