"""How often a conditional run gives what it is asked for (the figures in the README).

    .venv/bin/python scripts/conditional_accuracy.py runs/<shapes tags run>
    .venv/bin/python scripts/conditional_accuracy.py runs/<mnist class run> --classifier clf.safetensors
    .venv/bin/python scripts/conditional_accuracy.py runs/<emoji tags run> \
        --classifier skin.safetensors --classifier category.safetensors

Tags on `shapes`: the exact attribute reader checks every requested tag; classes: a classifier
trained by `ganforge train-classifier` names each sample's class; tags of a folder: each classifier
trained with `ganforge train-classifier --tags "A, B, …"` on one group of the folder's tags reads that
group on the samples that ask for one of its tags (its key in the output: the file's stem). The run's
EMA generator is used when it has one. Conditions are drawn like the training data's.
"""
import argparse
import json
from pathlib import Path

from ganforge import load_run
from ganforge.metrics.classifier import load_classifier
from ganforge.metrics.conditional import class_accuracy, shapes_tag_accuracy, tag_group_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--classifier", action="append", default=[],
                        help="class-conditional runs: a classifier from ganforge train-classifier; tag runs on a "
                             "folder: one per tag group, from train-classifier --tags (repeatable)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="latest", help="'latest' or a step")
    args = parser.parse_args()
    run = load_run(args.run, checkpoint=args.checkpoint)
    G = run.sampling_generator
    if run.conditions.kind == "class":
        result = {"class_accuracy": class_accuracy(G, run.conditions, load_classifier(args.classifier[0]), args.n,
                                                   args.seed)}
    elif args.classifier:
        result = {}
        for path in args.classifier:
            share, asked = tag_group_accuracy(G, run.conditions, load_classifier(path), args.n, args.seed)
            result[f"{Path(path).stem}_accuracy"], result[f"{Path(path).stem}_n"] = share, asked
    else:
        result = shapes_tag_accuracy(G, run.conditions, args.n, args.seed)
    print(json.dumps({"run": args.run, "step": run.step, "ema": run.ema_generator is not None, **result}))


if __name__ == "__main__":
    main()
