"""What several sub-commands share: the flags that build a config (train, config, compare), their
config keys, and the config they build. One table, so the parser, the overrides and compare's list
of plan flags cannot drift apart."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Flag:
    name: str                  # "--batch-size"
    key: str | None = None     # the dotted config key it sets; None: a source of keys (preset, file, --set)
    options: dict = field(default_factory=dict)   # argparse.add_argument keywords

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


# Every command that builds a config takes these.
CONFIG_FLAGS = (
    Flag("--preset", options={"help": "a preset shipped with ganforge (see `ganforge presets`)"}),
    Flag("--config", options={"help": "a YAML config file (overrides the preset)"}),
    Flag("--set", options={"action": "append", "default": [], "metavar": "KEY=VALUE",
                           "help": "override any config key, e.g. --set optim.lr_d=4e-4 (repeatable)"}),
    Flag("--data", "data", {"help": "image folder, or shapes | ring8 | grid25 | mnist:PATH"}),
    Flag("--objective", "objective", {"help": "dcgan | wgan | wgan-gp | lsgan | hinge | rpgan"}),
    Flag("--resolution", "resolution", {"type": int, "help": "32 | 64 | 96 | 128 | 256"}),
    Flag("--steps", "steps", {"type": int, "help": "generator steps to train to"}),
    Flag("--batch-size", "batch_size", {"type": int}),
    Flag("--seed", "seed", {"type": int}),
    Flag("--device", "device", {"help": "auto | cpu | cuda | cuda:N"}),
    Flag("--name", "name", {"help": "run name (default <objective>-<data>)"}),
    Flag("--out", "out", {"help": "run directory (default runs/<name>-<timestamp>)"}),
)
# Commands that train (train, compare) add these; each says in its own words what they do there.
TRAINING_FLAGS = (
    Flag("--minutes", "train.minutes", {"type": float, "metavar": "M"}),
    Flag("--quiet", "train.quiet", {"action": "store_true"}),
)


def add_flags(p: argparse.ArgumentParser, flags, help: dict[str, str] | None = None) -> None:
    """Add `flags` to a parser; `help` (flag name → text) words them for this command."""
    for flag in flags:
        options = dict(flag.options)
        if help and flag.name in help:
            options["help"] = help[flag.name]
        p.add_argument(flag.name, **options)


def given(args, flags) -> list[Flag]:
    """The flags among `flags` that the command line set (not left at their defaults; --seed 0 is set)."""
    return [flag for flag in flags if _is_set(getattr(args, flag.dest, None))]


def _is_set(value) -> bool:
    return value is not None and value is not False and value != []


def _nested(key: str, value) -> dict:
    """'train.minutes', 3 → {'train': {'minutes': 3}}."""
    head, _, rest = key.partition(".")
    return {head: _nested(rest, value) if rest else value}


def overrides(args) -> list[dict]:
    """The config updates the flags ask for: --set values first, then each flag with a config key."""
    from .config import parse_override

    updates = [parse_override(s) for s in args.set]
    return updates + [_nested(flag.key, getattr(args, flag.dest))
                      for flag in given(args, CONFIG_FLAGS + TRAINING_FLAGS) if flag.key is not None]


def config_from_args(args):
    from .config import build_config

    return build_config(args.preset or folder_preset(args), args.config, overrides(args))


def folder_preset(args) -> str | None:
    """The preset an image folder trains with when the command names no recipe (no --preset, --config or
    --objective): recipe_for_folder's."""
    if args.preset or args.config or getattr(args, "objective", None):
        return None
    return recipe_for_folder(overrides(args))


# The folder preset by training resolution: each chosen by measurement at its own side (README, Your own
# pictures; benchmarks/RESULTS.md); below 128 px, folder64 at the asked resolution.
FOLDER_PRESETS = {128: "folder128", 256: "folder256"}


def recipe_for_folder(updates: list[dict]) -> str | None:
    """The preset of a config with no recipe named, given its `updates`, when its data are an image folder:
    FOLDER_PRESETS' for the largest side not above the config's resolution, else folder64. None for other
    data (the plain defaults are tuned for the built-in shapes)."""
    from .config import build_config
    from .data.load import is_folder

    plain = build_config(None, None, updates)
    if not is_folder(plain.data):
        return None
    sides = [side for side in FOLDER_PRESETS if side <= plain.resolution]
    return FOLDER_PRESETS[max(sides)] if sides else "folder64"
