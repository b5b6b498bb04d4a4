"""Everything a run needs to continue exactly where it stopped, saved and restored whole."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import BatchSampler
from .checkpoint import load_checkpoint, save_checkpoint


@dataclass
class TrainState:
    step: int  # generator steps completed
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sampler: BatchSampler
    scaler: torch.amp.GradScaler | None = None  # fp16 mixed precision only

    def _parts(self):
        return {"G": self.G, "D": self.D}, {"d": self.opt_d, "g": self.opt_g}

    def save(self, run_dir: Path, keep: int, name: str | None = None, extra: dict | None = None) -> Path:
        modules, optimizers = self._parts()
        return save_checkpoint(run_dir, self.step, modules, optimizers,
                               extra={"sampler": self.sampler.state_dict(), **self._scaler_state(), **(extra or {})},
                               keep=keep, name=name)

    def _scaler_state(self) -> dict:
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load(self, checkpoint: Path, device: torch.device) -> None:
        modules, optimizers = self._parts()
        meta = load_checkpoint(checkpoint, modules, optimizers, device)
        self.step = meta["step"]
        self.sampler.load_state_dict(meta["sampler"])
        if self.scaler is not None and "scaler" in meta:  # a run resumed with fp16 after fp32 starts a fresh scale
            self.scaler.load_state_dict(meta["scaler"])
