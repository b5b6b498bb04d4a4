"""Everything a training loop needs, built from a config in one place: the config resolved, the device
picked, data, networks, objective, optimizers and schedules, and the state a checkpoint saves.

`build` is the edge where options are decided; the loop (trainer.py) only runs what it is handed.
The order of the steps below is part of a run's identity: the seed is set right before the networks
are built, so a seed gives the same initial weights as it always has.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..config import Config
from ..data import BatchSampler, Dataset, load_dataset
from ..data.conditions import Conditions, build_conditions
from ..data.kinds import data_kinds
from ..errors import GanforgeError
from ..losses import build_objective, resolve
from ..losses.base import Objective
from ..losses.penalties import build_constraints, build_penalties
from ..metrics.evaluate import Settings, check_eval_choices, eval_defaults
from ..models import build_networks, describe, discriminator_norm
from ..models.conditioning import ConditionSpec
from ..models.ema import build_ema
from ..run import load_stage1
from . import distributed
from .augment import DiffAugment
from .balance import BalancePolicy, build_balance
from ..device import Acceleration, pick_device, resolve_acceleration
from .optim import build_optimizers
from .schedules import CriticSchedule, LearningRateSchedule
from .state import TrainState
from .step import AdversarialStep


@dataclass
class Parts:
    config: Config                    # resolved: every null key filled with the objective's defaults
    world: distributed.World
    device: torch.device
    accel: Acceleration
    dataset: Dataset
    data_shape: tuple[int, ...]       # one sample's: (C, H, W) or (2,)
    conditions: Conditions | None     # the data's conditions (None: unconditional)
    condition_spec: ConditionSpec | None   # their kind and width, as the networks see them
    state: TrainState                 # what checkpoints save: step, networks, optimizers, sampler, schedules
    objective: Objective
    schedule: CriticSchedule
    lr_schedule: LearningRateSchedule
    balance: BalancePolicy
    augment: DiffAugment
    # What a step calls: DDP (several ranks) and torch.compile (perf.compile) wrap the plain networks,
    # which stay in `state` for checkpoints and sampling. The gradient penalty's double backward runs on
    # the plain D (it neither compiles nor passes DDP's single-backward bookkeeping); so does G's step,
    # which needs no D weight gradients and so must not enter DDP's gradient reduction.
    G_train: torch.nn.Module
    D_train: torch.nn.Module
    D_for_g: torch.nn.Module
    step: AdversarialStep             # one generator step: D's phase ×n, G's ×m


def build(config: Config, world: distributed.World, device_name: str, resume: bool = False,
          saved_conditions: Conditions | None = None, echo: Callable = print) -> Parts:
    """The parts of a run of `config` (resolved here unless `resume`: a resumed run keeps its saved config).
    `saved_conditions`: the vocabulary a resumed run was trained with, which the data must still give."""
    cfg = config if resume else resolve(config)
    device = pick_device(device_name)
    accel = resolve_acceleration(cfg.perf, device)
    distributed.local_batch(cfg.batch_size, world)  # fails early when the batch does not split over ranks

    dataset = load_dataset(cfg.data, cfg.resolution, cfg.channels, cfg.dataset, seed=cfg.seed)
    echo(dataset.info["summary"])
    if not resume:  # the saved config names what the evaluations measure
        metrics, best = eval_defaults(dataset.kind, cfg.eval.metrics, cfg.eval.best)
        cfg = replace(cfg, eval=replace(cfg.eval, metrics=metrics, best=best))
    if cfg.eval.every:  # a typo would cost eval.every steps
        check_eval_choices(cfg.eval.metrics, cfg.eval.features, cfg.eval.best, dataset.kind, cfg.condition, cfg.data,
                           Settings(classifier=cfg.eval.classifier, tag_requests=cfg.eval.tag_requests))
    data_shape = tuple(dataset.data.shape[1:])
    conditions = _conditions(cfg, dataset, saved_conditions)
    condition_spec = ConditionSpec.of(conditions) if conditions else None
    if conditions is not None and conditions.groups:
        echo(f"tag groups ({conditions.groups_source}): "
             + "; ".join(f"{name} ({len(tags)})" for name, tags in conditions.groups.items()))

    torch.manual_seed(cfg.seed)  # identical initial weights for a given seed
    G, D = build_networks(cfg.model, dataset.kind, data_shape, discriminator_norm(cfg),
                          condition=condition_spec, conditioning=cfg.conditioning)
    if cfg.model.stage1_run and not resume:  # a resumed run has stage 1 in its own checkpoint
        echo(load_stage1(G, cfg.model.stage1_run, cfg.model.stage1_frozen, "cpu"))
    channels_last = accel.channels_last and data_kinds.get(dataset.kind).images
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    G, D = G.to(device, memory_format=memory_format), D.to(device, memory_format=memory_format)
    opt_d, opt_g = build_optimizers(G, D, cfg.optim, accel.fused_optim)
    sampler = BatchSampler(dataset, cfg.batch_size, device, cfg.seed, cfg.dataset.flip, world.rank, world.size,
                           channels_last, conditions.values if conditions else None)
    scaler = torch.amp.GradScaler(device.type) if accel.needs_scaler else None
    state = TrainState(step=0, G=G, D=D, opt_g=opt_g, opt_d=opt_d, sampler=sampler, scaler=scaler,
                       ema=build_ema(G, cfg.model))
    augment = DiffAugment(cfg.loss.augment, data_shape)
    G_train, D_train, D_for_g = distributed.wrap(G, world, device), distributed.wrap(D, world, device), D
    if accel.compile:
        G_train, D_train, D_for_g = map(_compiled, (G_train, D_train, D))
    objective = build_objective(cfg.objective, cfg.loss, cfg.resolution)
    schedule = CriticSchedule(cfg.optim.n_critic, cfg.optim.critic_burst, cfg.optim.burst_first,
                              cfg.optim.burst_every)
    lr_schedule = LearningRateSchedule(cfg.optim.lr_decay, cfg.steps, cfg.optim.decay_start,
                                       [(opt_d, cfg.optim.lr_d), (opt_g, cfg.optim.lr_g)])
    balance = build_balance(cfg.balance, schedule, cfg.train.log_every)  # asks the schedule when balancing is off
    state.balance = balance  # checkpoints carry its plan
    state.lr_schedule = lr_schedule  # and the learning-rate scale of any rollback
    step = AdversarialStep(state, objective, build_penalties(objective.loss), build_constraints(objective.loss),
                           balance, augment, G_train, D_train, D_for_g, cfg.batch_size, sampler.shard,
                           accel.autocast(device), device, condition_spec,
                           cfg.conditioning.mismatch_weight if conditions else 0.0,
                           cfg.conditioning.classifier_weight if conditions else 0.0)
    echo(describe(G, D))
    return Parts(config=cfg, world=world, device=device, accel=accel, dataset=dataset, data_shape=data_shape,
                 conditions=conditions, condition_spec=condition_spec, state=state, objective=objective,
                 schedule=schedule, lr_schedule=lr_schedule, balance=balance, augment=augment, G_train=G_train,
                 D_train=D_train, D_for_g=D_for_g, step=step)


def _conditions(cfg: Config, dataset: Dataset, saved: Conditions | None) -> Conditions | None:
    if cfg.condition == "none":
        return None
    conditions = build_conditions(dataset, cfg.condition, cfg.conditioning.text_encoder, cfg.dataset.tag_groups,
                                  cfg.dataset.tags_lowercase)
    if saved is not None:
        if saved.names != conditions.names or saved.dim != conditions.dim:
            raise GanforgeError(f"the data's {cfg.condition} vocabulary no longer matches the one the run "
                                f"was trained with ({saved.dim} vs {conditions.dim} entries); resume with the "
                                f"same data and tag options, or start a new run")
        conditions.groups, conditions.groups_source = saved.groups, saved.groups_source  # the networks' shape
    return conditions


def _compiled(module: torch.nn.Module) -> torch.nn.Module:
    """torch.compile where this platform supports it; graphs that fail to compile run eagerly."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return module
    torch._dynamo.config.suppress_errors = True  # a compile failure falls back to eager, with a warning
    return torch.compile(module)
