"""The `compare` sub-command: variants of one config × seeds, trained and measured alike, one report.

    ganforge compare --config base.yaml --vary objective=dcgan,wgan,wgan-gp,lsgan --seeds 3 --out studies/cats
    ganforge compare --resume studies/cats          # train what is missing, then rewrite the report
    ganforge compare --report-only studies/cats     # rebuild the report from disk
    ganforge compare --config studies/mode-collapse-ring8.yaml --vary objective=dcgan,wgan --seeds 3 --jobs 2
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import CONFIG_FLAGS, TRAINING_FLAGS, Flag, add_flags, config_from_args, given

# Flags that make a plan, beside the config's: a resumed study keeps its plan in study.json.
STUDY_FLAGS = (
    Flag("--out", options={"help": "study folder (default studies/study-<timestamp>)"}),
    Flag("--vary", options={"action": "append", "default": [], "metavar": "KEY=V1,V2,...",
                            "help": "a config key and its values, parsed like --set values; a value holding commas "
                                    "goes in brackets ('loss.augment=[color,translation],[]'; [] is empty); several "
                                    "--vary flags form a grid"}),
    Flag("--also", options={"action": "append", "default": [], "metavar": "'KEY=V; KEY2=V2'",
                            "help": "one more variant beside the --vary grid (a baseline, e.g. 'model.arch=mlp; "
                                    "objective=dcgan'), its settings separated by semicolons (repeatable)"}),
    Flag("--seeds", options={"type": int, "metavar": "N",
                             "help": "train every variant with seeds 0..N-1 (default: the config's seed only)"}),
    Flag("--metrics", options={"help": "comma-separated metrics of the final evaluation (default: modes for 2-D "
                                       "points; fid,kid,is,pr for images; fid,kid,is,coverage with classifier "
                                       "features; modes for Stacked MNIST with classifier features)"}),
    Flag("--n", options={"type": int, "help": "samples per member in the final evaluation (default 10000 on a "
                                              "GPU, 2000 on a CPU)"}),
    Flag("--features", options={"help": "inception | classifier:PATH (default inception)"}),
)
_PLAN_FLAGS = CONFIG_FLAGS + TRAINING_FLAGS + STUDY_FLAGS


def _given_plan_flags(args) -> list[str]:
    """The plan flags given, less --quiet (it changes only this session's output); --out is in two tables."""
    return list(dict.fromkeys(flag.name for flag in given(args, _PLAN_FLAGS) if flag.name != "--quiet"))


def cmd_compare(args) -> int:
    from .errors import ConfigError
    from .study.plan import default_study_dir, load_study, plan_study, validate_study
    from .study.writeup import write_report
    from .study.results import collect
    from .study.runner import run_study

    existing = args.resume or args.report_only
    if args.resume and args.report_only:
        raise ConfigError("give --resume DIR or --report-only DIR, not both")
    if existing and _given_plan_flags(args):
        raise ConfigError(f"{'--resume' if args.resume else '--report-only'} uses the plan in {existing}/study.json; "
                          f"drop {', '.join(_given_plan_flags(args))}")
    if args.report_only and args.jobs != 1:
        raise ConfigError("--report-only trains nothing; drop --jobs")
    if args.report_only:
        study = load_study(Path(args.report_only))
    elif args.resume:
        study = load_study(Path(args.resume))
        study.quiet = args.quiet or None
        validate_study(study)
    else:
        root = Path(args.out) if args.out else default_study_dir()
        # The member configs start from the flags as `train` reads them; --out is the study's folder.
        base = config_from_args(argparse.Namespace(**{**vars(args), "out": None}))
        study = plan_study(root, base, args.vary, seeds=args.seeds, metrics=args.metrics, n=args.n,
                           features=args.features, minutes=args.minutes, also=args.also)
        print(f"study {root}: {len(study.members())} members; plan in {root / 'study.json'}")
        if args.n is None:
            print(f"evaluating each member on {study.n} samples (the default on this device; --n N to change)")
    interrupted = False if args.report_only else run_study(study, retry_failed=args.retry_failed,
                                                             jobs=args.jobs)
    results = collect(study)
    html_path, md_path = write_report(results)
    counts: dict[str, int] = {}
    for member in results.members:
        counts[member.state] = counts.get(member.state, 0) + 1
    print(f"report: {html_path} and {md_path} ({', '.join(f'{n} {s}' for s, n in counts.items())})")
    return 130 if interrupted else 0


def add_compare_command(sub) -> None:
    p = sub.add_parser(
        "compare", conflict_handler="resolve",  # --out below replaces train's --out (a run directory)
        help="train variants of one config over several seeds, evaluate them alike, write one report",
        description="Every member (one variant × one seed) trains on the same data and budget in its own run "
                    "directory under the study folder, is evaluated with the same metrics, and report.html "
                    "(self-contained) and report.md compare them.")
    add_flags(p, CONFIG_FLAGS)
    add_flags(p, STUDY_FLAGS)
    add_flags(p, TRAINING_FLAGS, help={
        "--minutes": "stop each member after M minutes of training, or at its steps if sooner",
        "--quiet": "no progress bars; one line per log row"})
    p.add_argument("--resume", metavar="DIR", help="continue the study in DIR: members already done are skipped")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: train failed members again")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train and evaluate up to N members at once, each in its own process with "
                        "cores/N threads (default 1); use with --quiet to keep the output readable")
    p.add_argument("--report-only", metavar="DIR", help="rebuild DIR's report from disk; train nothing")
    p.set_defaults(func=cmd_compare)
