"""Images of one run from a checked Request: latents, truncation, conditions, interpolation, stages.

Image i of a plain request is seed + i's; latents, truncation ψ and walks follow the rules of
models/latent.py, the ones `Run.sample`, `Run.interpolate` and `ganforge sample` follow too (so a seed
is the same image on the page and in a notebook, and requests from several tabs cannot mix). A walk
blends the two conditions' learned embeddings, so class, tag and text runs all interpolate the same way.
An end may be a projection of the run (projections.py) instead of a seed: its z and condition, under
the same truncation and walk.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import torch

from ..data.kinds import data_kinds
from ..errors import GanforgeError
from ..models.latent import seeded_draw, truncate, walk
from ..models.stacked import base_generator
from ..report.grids import to_uint8
from ..run import Run
from .projections import Projected
from .request import Request, RequestError


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a network's weights and buffers (names, dtypes, shapes and bytes): what a recipe pins."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # flattened first: a 0-dim tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


@dataclass
class Rendered:
    images: torch.Tensor               # uint8 (N, C, H, W): what the run samples (stage 2 of a stacked run)
    stage1: torch.Tensor | None        # uint8 (N, C, h, w): stage 1 of a two-stage run
    labels: list[str]                  # each image's condition as words ("" for an unconditional run)


class Explorer:
    """One loaded run, rendering checked requests; forwards are serialised per run (one model, many tabs)."""

    def __init__(self, run: Run):
        if not data_kinds.get(run.info.get("data_kind", "image")).images:
            raise GanforgeError(f"{run.path} is a 2-D point run; the explorer shows image runs")
        self.run = run
        self.run_path = str(run.path.resolve())
        self.generator = run.sampling_generator
        self.generator.eval()
        self.digest = weights_digest(self.generator)
        self.two_stage = hasattr(base_generator(self.generator), "stages")
        self.projections: list[Projected] = []  # numbered by their place here; the server fills it at start-up
        self._lock = threading.Lock()

    # -- conditions ------------------------------------------------------------------------------
    def condition_value(self, condition: dict | None) -> torch.Tensor | None:
        """The run's encoding of a checked condition; RequestError when the run cannot take it."""
        conditions = self.run.conditions
        if condition is None:
            return None
        (kind, asked), = condition.items()
        if conditions is None:
            raise RequestError(f"run '{self.run.path.name}' was trained without a condition; ask for none")
        if kind != conditions.kind:
            raise RequestError(f"run '{self.run.path.name}' was trained with condition={conditions.kind}; "
                               f"ask with {conditions.kind}, not {kind}")
        if kind == "tags":
            asked = ", ".join(f"{tag}={weight!r}" for tag, weight in asked.items())
        try:
            return conditions.encode(asked)
        except GanforgeError as err:
            raise RequestError(str(err)) from None

    # -- rendering -------------------------------------------------------------------------------
    def _draw(self, seed: int, condition: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z (1, z_dim) and condition of one seed (models.latent.seeded_draw)."""
        return seeded_draw(seed, self.run.z_dim, self.run.conditions, condition)

    def _projected(self, number: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z (1, z_dim) and condition (1, …) of the run's projection `number`; RequestError when it has none such."""
        if number >= len(self.projections):
            held = (f"0 to {len(self.projections) - 1}" if self.projections
                    else "none (serve it with --projection DIR)")
            raise RequestError(f"run '{self.run.path.name}' has no projection {number}; its projections: {held}")
        found = self.projections[number]
        return found.z, None if found.condition is None else found.condition[None]

    def _inputs(self, request: Request) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
        """G's latents, condition embeddings and condition labels for every image of the request."""
        conditions = self.run.conditions
        first = self.condition_value(request.condition)
        if request.interpolate is None:
            draws = ([self._projected(request.projection)] if request.projection is not None
                     else [self._draw(request.seed + i, first) for i in range(request.count)])
            z = truncate(torch.cat([d[0] for d in draws]), request.psi)
            if conditions is None:
                return z, None, [""] * request.count
            y = torch.cat([d[1] for d in draws])
            return z, self.generator.embed(y), [conditions.describe(row) for row in y]
        end = request.interpolate
        za, ya = (self._projected(request.projection) if request.projection is not None
                  else self._draw(request.seed, first))
        zb, yb = (self._projected(end.projection) if end.projection is not None
                  else self._draw(end.seed, self.condition_value(end.condition)))
        t = torch.tensor(end.ts)
        ends = (None, None) if conditions is None else (self.generator.embed(ya), self.generator.embed(yb))
        z, e = walk(za, zb, t, *ends)
        z = truncate(z, request.psi)
        if conditions is None:
            return z, None, [""] * len(t)
        a, b = conditions.describe(ya[0]), conditions.describe(yb[0])
        return z, e, [a if s == 0 or a == b else b if s == 1 else f"{1 - s:.2f}·({a}) + {s:.2f}·({b})" for s in end.ts]

    def render(self, request: Request) -> Rendered:
        with torch.no_grad():
            z, e, labels = self._inputs(request)
            w = z if e is None else torch.cat((z, e), 1)
            G = base_generator(self.generator) if e is not None else self.generator
            with self._lock:
                if self.two_stage:
                    low, high = G.stages(w)
                else:
                    low, high = None, G(w)
        return Rendered(to_uint8(high), None if low is None else to_uint8(low), labels)
