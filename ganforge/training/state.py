"""Everything a run needs to continue exactly where it stopped, saved and restored whole."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import BatchSampler
from ..models.ema import EMA, for_sampling
from .balance import BalancePolicy
from ..checkpoint import load_checkpoint, save_checkpoint
from .schedules import LearningRateSchedule


@dataclass
class TrainState:
    step: int  # generator steps completed
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sampler: BatchSampler
    scaler: torch.amp.GradScaler | None = None  # fp16 mixed precision only
    balance: BalancePolicy | None = None  # the D/G balance policy (its plan survives a resume)
    ema: EMA | None = None  # the moving average of G's weights (model.ema_decay > 0)
    lr_schedule: LearningRateSchedule | None = None  # its scale, lowered by divergence rollbacks
    # The log row in progress at a checkpoint, {"sums", "steps", "d_steps"} (the loop keeps it current):
    # a resumed run's next row covers the same steps as an uninterrupted run's.
    log_row: dict | None = None

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """What samples and metrics use (models.ema.for_sampling)."""
        return for_sampling(self.G, self.ema.module if self.ema is not None else None)

    def _parts(self):
        modules = {"G": self.G, "D": self.D}
        if self.ema is not None:
            modules["G_ema"] = self.ema.module
        return modules, {"d": self.opt_d, "g": self.opt_g}

    def save(self, run_dir: Path, keep: int, name: str | None = None, extra: dict | None = None) -> Path:
        modules, optimizers = self._parts()
        return save_checkpoint(run_dir, self.step, modules, optimizers,
                               extra={**self._extra_state(), **(extra or {})}, keep=keep, name=name)

    def _extra_state(self) -> dict:
        """The JSON-able state of the parts that have one."""
        state = {"sampler": self.sampler.state_dict()}
        if self.log_row is not None:
            state["log_row"] = self.log_row
        for key, part in (("scaler", self.scaler), ("balance", self.balance), ("ema", self.ema)):
            if part is not None:
                state[key] = part.state_dict()
        if self.lr_schedule is not None and self.lr_schedule.scale != 1.0:  # other runs' checkpoints stay as they were
            state["lr_schedule"] = self.lr_schedule.state_dict()
        return state

    def load(self, checkpoint: Path, device: torch.device) -> None:
        modules, optimizers = self._parts()
        meta = load_checkpoint(checkpoint, modules, optimizers, device)
        self.step = meta["step"]
        self.sampler.load_state_dict(meta["sampler"])
        self.log_row = meta.get("log_row")  # None before it was kept: the next row starts afresh
        if self.scaler is not None and "scaler" in meta:  # a run resumed with fp16 after fp32 starts a fresh scale
            self.scaler.load_state_dict(meta["scaler"])
        if self.balance is not None:  # a checkpoint from before balancing existed starts the policy afresh
            self.balance.load_state_dict(meta.get("balance", {}))
        if self.ema is not None:
            self.ema.load_state_dict(meta["ema"])
        if self.lr_schedule is not None:  # after a rollback: the lowered rates; else (and before rollbacks existed) 1
            self.lr_schedule.load_state_dict(meta.get("lr_schedule", {}))
