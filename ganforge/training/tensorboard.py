"""train.tensorboard: the run's rows and sample grids, also as TensorBoard events in RUN/tensorboard/.

The rows are those metrics.jsonl gets, handed over as they are written (`write_rows`: the metrics rows at
each flush, the evaluation rows as they are recorded), so TensorBoard costs the step no extra read off
the device. As a callback on the sample pictures' cadence, after them, it adds the grid just written.
Only the main rank makes one (the callbacks and the rows' files are the main rank's).
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np
from PIL import Image

from ..config import Config
from ..errors import ConfigError
from ..rundir import RunDir
from .callbacks import Cadence, Callback

INSTALL = "pip install 'ganforge[tensorboard]'"


def require_tensorboard():
    """torch's SummaryWriter class, or a one-line error naming the extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises it when the tensorboard package is missing
        raise ConfigError(f"train.tensorboard = true needs the tensorboard package: {INSTALL} "
                          f"(or set train.tensorboard=false)") from None
    return SummaryWriter


def scalars(row: dict, prefix: str = "") -> dict[str, float]:
    """The numeric values of a row by tag, nested ones (an evaluation's) as eval/fid; the step, text,
    booleans and nulls (non-finite values as metrics.jsonl keeps them) are left out."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(scalars(value, f"{prefix}{key}/"))
        elif isinstance(value, Real) and not isinstance(value, bool) and key != "step" and math.isfinite(value):
            out[prefix + key] = float(value)
    return out


class TensorBoard(Callback):
    """A SummaryWriter for a training session (a new one, a new event file, after each rollback). Each
    writer's first event hides, in TensorBoard's view, whatever was written before past the step it
    starts from — the steps a resume or rollback trains again, or everything when a run starts again in
    place — as metrics.jsonl drops those rows."""

    def __init__(self, config: Config, paths: RunDir, step: int):
        self.writer_class = require_tensorboard()
        self.cadence = Cadence(config.train.sample_every, config.steps, early=True)  # as SamplePictures
        self.paths = paths
        self.writer = None
        self.restart(step)

    def restart(self, step: int) -> None:
        """Continue from `step` (from its checkpoint): the events past it are hidden."""
        if self.writer is not None:
            self.writer.close()
        self.writer = self.writer_class(str(self.paths.tensorboard), purge_step=step + 1 if step else 0)

    def write_rows(self, rows: list[dict]) -> None:
        for row in rows:
            for tag, value in scalars(row).items():
                self.writer.add_scalar(tag, value, row["step"])

    def __call__(self, step: int) -> None:
        """The sample grid of `step`, as SamplePictures wrote it, and every event so far onto disk."""
        path = self.paths.sample_grid(step)
        if path.is_file():
            with Image.open(path) as grid:
                self.writer.add_image("samples", np.asarray(grid.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
