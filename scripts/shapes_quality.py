"""How well a run on the built-in `shapes` draws them, read by the renderer's exact rules (the README's figures).

    .venv/bin/python scripts/shapes_quality.py runs/<shapes run> [--checkpoint STEP] [--n 1000]

Prints the share of samples whose shape, colour, size and background all read back, and the share of
the 448 attribute combinations that appear. For a two-stage run it does so for stage 1 and stage 2
and adds how often stage 2 reads the same as the stage-1 image it refined. The run's EMA generator is
used when it has one; a conditional run draws its conditions like the training data.
"""
import argparse
import json

import torch

from ganforge import load_run
from ganforge.metrics.shapes import shapes_quality, stage_agreement
from ganforge.models.stacked import stage_images
from ganforge.report.grids import to_uint8


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="latest", help="'latest' or a step")
    args = parser.parse_args()
    run = load_run(args.run, checkpoint=args.checkpoint)
    G = run.sampling_generator
    draw = torch.Generator().manual_seed(args.seed)
    stages = ([], [])
    for start in range(0, args.n, 250):
        z = torch.randn(min(250, args.n - start), run.z_dim, generator=draw)
        y = run.conditions.prior(len(z), draw) if run.conditions else None
        pair = stage_images(G, z, y)
        if pair is None:
            pair = (None, G(z) if y is None else G(z, y))
        for kept, images in zip(stages, pair):
            if images is not None:
                kept.append(to_uint8(images))
    result = {"run": args.run, "step": run.step, "ema": run.ema_generator is not None}
    final = torch.cat(stages[1])
    result.update(shapes_quality(final))
    if stages[0]:
        first = torch.cat(stages[0])
        result["stage1"] = shapes_quality(first)
        result["stage_agreement"] = stage_agreement(first, final)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
