"""The interface between the training step and an objective.

The step (training/step.py) runs D's and G's phases; in each it hands the objective a `Scores`: D's
scores on the phase's real and fake batches (and, for a matching-aware conditional D, on real images
shown with wrong conditions), each computed the first time the objective asks for it. The objective
returns the phase's loss terms by name (`d_terms`, `g_terms`): the step sums and back-propagates them
and logs each by its name. Most objectives need only `d_loss(real, fake)` and `g_loss(fake)`; one that
pairs real and fake scores in G's loss too (a relativistic loss) overrides `g_terms`. Penalties on D's
input gradient and weight clipping are not the objective's code: they are switched on by config keys
(loss.gp_weight, r1_weight, r2_weight, clip; see penalties.py), which an objective's `defaults` may
set, as it sets its optimizer, learning rates, betas and critic schedule; `ganforge.losses.resolve`
copies them into keys the user left null.
"""
from __future__ import annotations

from functools import cached_property
from typing import Callable, ClassVar

import torch

from ..config import LossConfig


class Scores:
    """D's scores on one phase's batches, computed on first use (a G phase that never asks for D(real)
    never runs it). In G's phase D(real) is computed without a graph: it does not depend on G, and D's
    own weights take no gradient there. Where `score` returns (scores, class logits) — a D with an
    auxiliary classifier — the class logits of the same pass are kept in `classes` ("real", "fake")."""

    def __init__(self, score: Callable[..., torch.Tensor], real: torch.Tensor | Callable[[], torch.Tensor],
                 fake: torch.Tensor, real_needs_grad: bool = True, wrong_condition: torch.Tensor | None = None,
                 mismatch_weight: float = 0.0):
        """`real` may be a function giving the real batch as D sees it, called only if D(real) is asked for
        (its augmentation then draws random numbers only when needed)."""
        self._score, self._real, self._fake = score, real, fake
        self._real_needs_grad, self._wrong_condition = real_needs_grad, wrong_condition
        self.mismatch_weight = mismatch_weight
        self.classes: dict[str, torch.Tensor] = {}

    def _kept(self, out, which: str) -> torch.Tensor:
        if isinstance(out, tuple):
            out, self.classes[which] = out
        return out

    @classmethod
    def known(cls, real: torch.Tensor, fake: torch.Tensor) -> "Scores":
        """Scores already computed (D's scores as it stands, logged on a step whose D sat out)."""
        scores = cls(lambda x, cond=None: x, real, fake)
        scores.__dict__.update(real=real, fake=fake)
        return scores

    @cached_property
    def real(self) -> torch.Tensor:
        real = self._real() if callable(self._real) else self._real
        with torch.set_grad_enabled(self._real_needs_grad and torch.is_grad_enabled()):
            return self._kept(self._score(real), "real")

    @cached_property
    def fake(self) -> torch.Tensor:
        return self._kept(self._score(self._fake), "fake")

    def classes_of(self, which: str) -> torch.Tensor:
        """The auxiliary classifier's logits on the real or fake batch (from the pass that scored it)."""
        getattr(self, which)
        return self.classes[which]

    @cached_property
    def wrong(self) -> torch.Tensor:
        """D on the real images with mismatched conditions (only when conditioning.mismatch_weight > 0)."""
        real = self._real() if callable(self._real) else self._real
        return self._kept(self._score(real, self._wrong_condition), "wrong")


class Objective:
    name: ClassVar[str]
    # Dotted config keys → default values, e.g. {"optim.name": "adam", "optim.lr_d": 2e-4, ...}.
    defaults: ClassVar[dict]

    def __init__(self, loss: LossConfig):
        self.loss = loss

    @classmethod
    def defaults_for(cls, resolution: int) -> dict:
        """The defaults at this resolution (where a paper's setting depends on it, as R3GAN's γ)."""
        return cls.defaults

    def d_terms(self, scores: Scores) -> dict[str, torch.Tensor]:
        """D's loss terms by name; their sum is logged as d_loss. With a matching-aware D (GAN-CLS, Reed et
        al. 2016) real images with wrong conditions are pushed down exactly like fakes, weighted
        conditioning.mismatch_weight."""
        terms = {"d_loss": self.d_loss(scores.real, scores.fake)}
        if scores.mismatch_weight > 0:
            terms["d_wrong"] = scores.mismatch_weight * self.d_wrong_loss(scores.wrong)
        return terms

    def g_terms(self, scores: Scores) -> dict[str, torch.Tensor]:
        """G's loss terms by name; their sum is logged as g_loss."""
        return {"g_loss": self.g_loss(scores.fake)}

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_wrong_loss(self, wrong_logits: torch.Tensor) -> torch.Tensor:
        """D's loss on (real image, wrong condition) pairs, pushed down as d_loss pushes down fakes."""
        raise NotImplementedError

    def d_output(self, logits: torch.Tensor) -> torch.Tensor:
        """What is logged as D(x) and D(G(z)): a probability for BCE objectives, else the raw score."""
        return logits

    def d_accuracy(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The mean of D's accuracy on real and on fake samples: a score above the decision threshold
        says "real". A 0-dim tensor on the logits' device, so logging it costs no host sync. A D that
        scores real and fake alike gets ½ whatever the threshold."""
        threshold = self.decision_threshold(real_logits, fake_logits)
        real_right = (real_logits > threshold).float().mean()
        fake_right = (fake_logits <= threshold).float().mean()
        return (real_right + fake_right) / 2

    def decision_threshold(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> float | torch.Tensor:
        """The score above which D says "real": 0 is probability ½ for BCE logits and the centre of the
        hinge margin [−1, 1]."""
        return 0.0
