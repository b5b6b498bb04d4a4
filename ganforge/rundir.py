"""The run directory — the contract between training and everything downstream — and the only code
that knows its file and folder names.

    config.yaml         the fully resolved config the run was trained with
    run.json            what the config alone does not say: data kind and shape, parameter counts
    metrics.jsonl       one JSON object per logged step, and {"step", "eval"} rows: every evaluation of
                        the run, by the trainer (eval.every) or by `ganforge eval`
    loss_curve.png      kept up to date during training
    samples/            step-NNNNNN.png: grids of one fixed z over time (stage1/: a two-stage run's
                        first stage); sample-stepN-seedS.png: what `ganforge sample` writes by default
    checkpoints/        step-NNNNNN/ folders and best/ (see CheckpointDir and checkpoint.py)
    conditions.json     conditional runs: the condition's kind and vocabulary (+ conditions.safetensors),
                        so that sampling by class, tag or text works from the directory alone
    run.lock            held (flock) by the process training the run; holds its PID
    eval/               runs evaluated before eval rows went to metrics.jsonl: step-NNNNNN-EXTRACTOR.json,
                        still read by `eval_results`

config.yaml and run.json are read whole or not at all: run.json records config.yaml's SHA-256, so a
config cut short to a still-valid prefix is an error, not a run silently on defaults. run.json is the
first file a start writes: it is what says ganforge made the run, and training deletes nothing in a
folder without it (and in one with it, only what RunDir names).

This is the bottom layer (config, errors, fileio only); `ganforge.run.load_run` builds networks on top.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import Config, from_dict
from .errors import GanforgeError
from .fileio import write_atomic

_STEP_NAME = re.compile(r"^step-(\d{6,})$")
_GRID_NAME = re.compile(r"^step-(\d+)\.png$")
_LEGACY_EVAL_NAME = re.compile(r"^step-(\d+)-[^/]*\.json$")
_DIGEST = "config_sha256"                    # run.json: config.yaml's SHA-256 ...
_REPLACED_DIGEST = "config_sha256_replaced"  # ... and, while a new config.yaml is being written, the old one's


def step_name(step: int) -> str:
    """step-NNNNNN: how a step names its checkpoint folder, sample grid and history backup."""
    return f"step-{step:06d}"


@dataclass(frozen=True)
class CheckpointDir:
    """The files of one checkpoint folder (what they hold: checkpoint.py)."""
    path: Path

    MODEL = "model.safetensors"      # network weights and buffers
    TENSORS = "state.safetensors"    # optimizer moments, RNG states
    STATE = "state.json"             # everything else: step, optimizer hyper-parameters, data cursor
    MANIFEST = "manifest.json"       # SHA-256 and size of each file above, written last
    REQUIRED = (MODEL, TENSORS, STATE)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def tensors(self) -> Path:
        return self.path / self.TENSORS

    @property
    def state(self) -> Path:
        return self.path / self.STATE

    @property
    def manifest(self) -> Path:
        return self.path / self.MANIFEST

    def read_state(self) -> dict:
        return json.loads(self.state.read_text())


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    # -- files ---------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def info(self) -> Path:
        return self.root / "run.json"

    @property
    def history_file(self) -> Path:
        """metrics.jsonl: the run's history, a row per log interval and per evaluation."""
        return self.root / "metrics.jsonl"

    @property
    def loss_curve(self) -> Path:
        return self.root / "loss_curve.png"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard's event files (train.tensorboard)."""
        return self.root / "tensorboard"

    @property
    def lock(self) -> Path:
        return self.root / "run.lock"

    @property
    def conditions_meta(self) -> Path:
        return self.root / "conditions.json"

    @property
    def conditions_tensors(self) -> Path:
        return self.root / "conditions.safetensors"

    def write_info(self, info: dict) -> None:
        write_atomic(self.info, lambda f: f.write(json.dumps(info, indent=1).encode()))

    def write_config(self, config: Config, info: dict) -> None:
        """config.yaml, and run.json (`info`) recording its SHA-256. run.json goes first and, until the new
        config.yaml is in place, also accepts the one it replaces: a stop between the writes leaves a pair
        that reads."""
        text = config.to_yaml().encode()
        info = {key: value for key, value in info.items() if not key.startswith(_DIGEST)}
        info[_DIGEST] = config_digest(text)
        replaced = self._recorded_digest()
        swapping = replaced not in (None, info[_DIGEST])
        self.write_info({**info, _REPLACED_DIGEST: replaced} if swapping else info)
        write_atomic(self.config, lambda f: f.write(text))
        if swapping:
            self.write_info(info)

    def _recorded_digest(self) -> str | None:
        try:
            return json.loads(self.info.read_text()).get(_DIGEST)
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            return None

    def is_run(self) -> bool:
        """Whether training wrote a run here that can be read (it has a config.yaml)."""
        return self.config.is_file()

    def made_by_ganforge(self) -> bool:
        """Whether ganforge train made this folder's run: its run.json, a start's first file, says so."""
        try:
            info = json.loads(self.info.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        return isinstance(info, dict) and {"ganforge_version", "created"} <= set(info)

    def clear_for_restart(self) -> Path | None:
        """Make way for the run to start again from step 0 in place: the history is kept as
        history_backup(0), the sample grids stay (each replaced when the run writes that step again), and
        only what the start writes anew goes: loss curve, conditions files, checkpoints/ (none usable).
        Returns the history's backup (None: there was no history)."""
        kept = self.truncate_history([], 0)
        for path in (self.loss_curve, self.conditions_meta, self.conditions_tensors):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.checkpoints, ignore_errors=True)
        return kept[0] if kept else None

    # -- samples -------------------------------------------------------------------------------------
    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def stage1_samples(self) -> Path:
        return self.samples / "stage1"

    def sample_grid(self, step: int, stage1: bool = False) -> Path:
        """The training sample grid of `step` (of a two-stage run's first stage with `stage1`)."""
        return (self.stage1_samples if stage1 else self.samples) / f"{step_name(step)}.png"

    def sample_grids(self, stage1: bool = False) -> dict[int, Path]:
        """The training sample grids by step."""
        folder = self.stage1_samples if stage1 else self.samples
        found = (_GRID_NAME.match(p.name) for p in sorted(folder.iterdir())) if folder.is_dir() else ()
        return {int(m.group(1)): folder / m.group(0) for m in found if m}

    def sample_file(self, step: int, seed: int) -> Path:
        """Where `ganforge sample` writes a grid when not told where."""
        return self.samples / f"sample-step{step}-seed{seed}.png"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def export_file(self, step: int, suffix: str) -> Path:
        """Where `ganforge export` writes the generator of `step` when not told where (its manifest: FILE.json)."""
        return self.exports / f"generator-step{step}{suffix}"

    # -- history (metrics.jsonl) ---------------------------------------------------------------------
    def read_history(self) -> list[dict]:
        """metrics.jsonl rows; a torn last line (a crash mid-write) or any other damaged line is ignored."""
        rows = []
        if self.history_file.is_file():
            for line in self.history_file.read_text(errors="replace").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("step"), int):
                    rows.append(row)
        return rows

    def append_history(self, rows: list[dict]) -> None:
        with self.history_file.open("a") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)

    def history_backup(self, step: int, copy: int = 1) -> Path:
        """Where the history is kept as it was before a resume, rollback or restart to `step` drops the rows
        past it: metrics.before-stepNNNNNN.jsonl, and -2, -3, … for later copies to the same step."""
        return self.root / f"metrics.before-step{step:06d}{'' if copy == 1 else f'-{copy}'}.jsonl"

    def truncate_history(self, kept: list[dict], step: int) -> tuple[Path, int] | None:
        """Make metrics.jsonl exactly `kept` (the rows up to `step`), after copying the file as it was to
        `history_backup(step)` so nothing written is lost. Returns (backup, lines dropped), or None when
        the file already held just those rows."""
        if not self.history_file.is_file():
            return None
        lines = [line for line in self.history_file.read_text(errors="replace").splitlines() if line.strip()]
        if len(lines) == len(kept):
            return None
        # A step backed up before (a second restart, a resume to the same step) keeps that copy too.
        backup = next(path for n in itertools.count(1) if not (path := self.history_backup(step, n)).exists())
        shutil.copy2(self.history_file, backup)
        text = "".join(json.dumps(row) + "\n" for row in kept).encode()
        write_atomic(self.history_file, lambda f: f.write(text))
        return backup, len(lines) - len(kept)

    # -- evaluation results --------------------------------------------------------------------------
    @staticmethod
    def eval_row(step: int, result: dict) -> dict:
        """The one schema of an evaluation result: a history row {"step": N, "eval": {metric: value, ...}}."""
        return {"step": step, "eval": result}

    def record_eval(self, step: int, result: dict) -> dict:
        """Keep an evaluation of the run at `step` (appended to the history); returns the row."""
        row = self.eval_row(step, result)
        self.append_history([row])
        return row

    @staticmethod
    def eval_rows(history: list[dict]) -> list[dict]:
        """The evaluation rows of a history."""
        return [row for row in history if isinstance(row.get("eval"), dict)]

    def eval_results(self, history: list[dict] | None = None) -> list[dict]:
        """Every evaluation kept for the run, as eval rows in step order: those in the history (or in
        `history`, when already read) and those older runs kept in eval/*.json."""
        rows = self.eval_rows(self.read_history() if history is None else history)
        return sorted(rows + self._legacy_eval_rows(), key=lambda row: row["step"])

    def _legacy_eval_rows(self) -> list[dict]:
        folder = self.root / "eval"
        rows = []
        for path in sorted(folder.glob("step-*.json")) if folder.is_dir() else ():
            try:
                result = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a damaged old result is no evaluation: the others still show
            if _LEGACY_EVAL_NAME.match(path.name) and isinstance(result, dict) and isinstance(result.get("step"), int):
                rows.append(self.eval_row(result["step"], result))
        return rows

    # -- checkpoints ---------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, step_or_name: int | str) -> CheckpointDir:
        """checkpoints/step-NNNNNN for a step, or checkpoints/NAME (e.g. "best")."""
        name = step_name(step_or_name) if isinstance(step_or_name, int) else step_or_name
        return CheckpointDir(self.checkpoints / name)

    @property
    def best(self) -> CheckpointDir:
        """The checkpoint of the best FID while training evaluated (eval.every)."""
        return self.checkpoint("best")

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of every step-NNNNNN checkpoint, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir()
                 if (m := _STEP_NAME.match(p.name)) and p.is_dir()]
        return sorted(found)


def config_digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def read_info(run_dir: Path) -> dict:
    """run.json, checked whole: a file that is missing, cut short or lacks what loading needs is an error."""
    path = RunDir(run_dir).info
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict) or not {"data_kind", "data_shape"} <= set(info):
            raise ValueError("data_kind or data_shape missing")
    except OSError as err:
        raise GanforgeError(f"cannot read {path} ({err.strerror}); a run directory needs the {path.name} that "
                            f"ganforge train wrote: restore it from a backup") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise GanforgeError(f"{path} is damaged ({str(err).splitlines()[0][:100]}); restore it from a "
                            f"backup of the run directory") from None
    return info


def read_config(run_dir: Path) -> Config:
    """The run's config; ConfigError-free only when config.yaml is exactly what training wrote (where
    run.json recorded its hash: runs from before that are read as they are)."""
    paths = RunDir(run_dir)
    if not paths.is_run():
        raise GanforgeError(f"{run_dir} is not a ganforge run (no {paths.config.name}); give a folder made by "
                            f"ganforge train")
    if not paths.info.exists():  # a start writes it first: without it config.yaml cannot be checked
        raise GanforgeError(f"{paths.info} is missing, so {paths.config.name} cannot be checked against the config "
                            f"the run was trained with; restore {paths.info.name} from a backup of the run directory")
    raw = paths.config.read_bytes()
    info = read_info(run_dir)
    recorded = info.get(_DIGEST)  # None: a run from before it was recorded, read as it is
    if recorded is not None and config_digest(raw) not in (recorded, info.get(_REPLACED_DIGEST)):
        raise GanforgeError(f"{paths.config} is not the config the run was trained with (cut short, damaged or "
                            f"edited: its SHA-256 differs from {paths.info.name}'s); restore it from a backup — "
                            f"change steps or train.* with flags on --resume instead of editing it")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise GanforgeError(f"{paths.config} is damaged, not valid YAML ({str(err).splitlines()[0]}); restore it "
                            f"from a backup") from None
    if not isinstance(data, dict):
        raise GanforgeError(f"{paths.config} is damaged: it holds no mapping of config keys; restore it from a backup")
    try:
        return from_dict(data)
    except GanforgeError as err:
        raise GanforgeError(f"{paths.config}: {err}") from None
