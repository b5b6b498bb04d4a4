"""One generator step of adversarial training: D's phase ×n, then G's phase ×m, as the balance policy plans.

`AdversarialStep` is built by setup.build and called by the trainer, the benchmarks and the tests alike.
Each phase hands the objective a `Scores` (losses/base.py) and back-propagates the sum of the terms it
returns, with a conditional D's auxiliary classifier term where conditioning.classifier_weight > 0; D's phase adds the penalties the config switches on (losses/penalties.py) and applies the
constraints (clipping) after its optimizer step. Every term goes into a `StepMetrics` by its name, on
the device: nothing in a step reads a value back to the host.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..losses.base import Objective, Scores
from ..losses.penalties import Penalty
from ..models.conditioning import ConditionSpec, mismatched
from .balance import BalancePolicy
from .state import TrainState
from .step_metrics import StepMetrics


def call(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, classes: bool = False):
    """net(x), or net(x, y) for a conditional network; with `classes`, D's (scores, class logits)."""
    if y is None:
        return net(x)
    return net(x, y, classes=True) if classes else net(x, y)


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())


class AdversarialStep:
    """The D and G phases of one generator step, on the networks and optimizers of `state`.

    G_train and D_train are what the phases call (DDP and torch.compile may wrap the plain networks);
    the penalties' double backward and G's phase run on the plain D (`state.D`), which neither compiles
    nor takes part in DDP's gradient reduction — G's phase needs gradients through D, not D's own.
    """

    def __init__(self, state: TrainState, objective: Objective, penalties: list[Penalty],
                 constraints: list[Callable[[torch.nn.Module], None]], balance: BalancePolicy,
                 augment: Callable[[torch.Tensor], torch.Tensor], G_train: torch.nn.Module,
                 D_train: torch.nn.Module, D_for_g: torch.nn.Module, batch_size: int, noise_shard: slice,
                 autocast, device: torch.device, condition_spec: ConditionSpec | None = None,
                 mismatch_weight: float = 0.0, classifier_weight: float = 0.0):
        self.state, self.objective, self.penalties, self.constraints = state, objective, penalties, constraints
        self.balance, self.augment, self.autocast, self.device = balance, augment, autocast, device
        self.G_train, self.D_train, self.D_for_g = G_train, D_train, D_for_g
        self.batch_size, self.noise_shard = batch_size, noise_shard
        self.condition_spec, self.mismatch_weight = condition_spec, mismatch_weight
        self.classifier_weight = classifier_weight

    def __call__(self, g_step: int, metrics: StepMetrics, want_grad_norms: bool) -> int:
        """Train generator step `g_step` (0-based); adds its terms into `metrics`. Returns its D steps."""
        n_d, n_g = self.balance.plan(g_step)
        for i in range(n_d):
            real, fake, y = self._d_phase(g_step, metrics, i == n_d - 1, n_d, want_grad_norms)
        sat_out = None
        if n_d == 0:  # D sits this step out; G still needs a batch's conditions, the row D as it stands
            real, y = self.state.sampler.next()
            fake = None
            with torch.no_grad(), self.autocast:
                sat_out = call(self.D_for_g, self.augment(real), y)
        self._g_phase(real, fake, y, n_g, metrics, want_grad_norms, sat_out)
        return n_d

    # ------------------------------------------------------------------ phases

    def _z(self) -> torch.Tensor:
        return torch.randn(self.batch_size, self.state.G.z_dim, device=self.device)[self.noise_shard]

    def _scores(self, D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, y, real_needs_grad: bool,
                wrong: bool) -> Scores:
        wrong_condition = mismatched(y, self.condition_spec) if wrong else None
        classes = self.classifier_weight > 0
        return Scores(lambda x, cond=y: call(D, x, cond, classes), real, fake, real_needs_grad, wrong_condition,
                      self.mismatch_weight if wrong else 0.0)

    def _classifier_term(self, scores: Scores, which: str, y) -> torch.Tensor:
        """The auxiliary classifier's loss on the real batch (D's phase: it learns the conditions) or the
        fakes (G's phase: G is rewarded for the conditions it was asked), weighted."""
        return self.classifier_weight * self.state.D.classifier.loss(scores.classes_of(which), y)

    def _d_phase(self, g_step: int, metrics: StepMetrics, last: bool, n_d: int, want_grad_norms: bool):
        """One D update. Returns (real, fake, y): on the last D step the fake keeps its graph, and G's
        phase reuses it instead of a new G forward (and the real batch, where G's loss needs D(real))."""
        st, scaler = self.state, self.state.scaler
        real, y = st.sampler.next()  # y: the batch's conditions (None without), also asked of G
        with torch.set_grad_enabled(last), self.autocast:
            fake = call(self.G_train, self._z(), y)
        grad_scale = scaler.scale(torch.ones((), device=self.device)) if scaler is not None else None
        with self.autocast:
            # DiffAugment (loss.augment): every image D sees, real or fake, with fresh random draws.
            real_seen, fake_seen = self.augment(real), self.augment(fake.detach())
            scores = self._scores(self.D_train, real_seen, fake_seen, y, True, self.mismatch_weight > 0)
            terms = self.objective.d_terms(scores)
            if self.classifier_weight > 0:
                terms["d_class"] = self._classifier_term(scores, "real", y)
            penalties = {p.name: p(st.D, real_seen, fake_seen, y, grad_scale)
                         for p in self.penalties if p.due(g_step)}
        d_loss = sum(terms.values())
        total = d_loss + sum(penalties.values()) if penalties else d_loss
        st.opt_d.zero_grad(set_to_none=True)
        self._backward(total)
        if last and want_grad_norms:
            if scaler is not None:
                scaler.unscale_(st.opt_d)
            metrics.add("d_grad_norm", grad_norm(st.D))
        self._optimizer_step(st.opt_d)
        for constrain in self.constraints:
            constrain(st.D)
        count = int(last)  # a step's D terms are the mean over its D steps: counted once
        self._log_d(metrics, Scores.known(scores.real.detach(), scores.fake.detach()), d_loss.detach(), terms,
                    n_d, count)
        penalty_sum = torch.zeros((), device=self.device)
        for name, value in penalties.items():
            value = value.detach()
            if scaler is not None:
                # Under fp16 an overflowing scale makes the penalty's input gradient inf: the scaler
                # skips that step and lowers its scale, so it is logged as 0, not taken as divergence.
                value = torch.where(torch.isfinite(value), value, 0.0)
            metrics.add(name, value)
            penalty_sum = penalty_sum + value
        metrics.add("d_penalty", penalty_sum / n_d, count)
        return real, fake, y

    def _log_d(self, metrics: StepMetrics, scores: Scores, d_loss, terms: dict, n_d: int, count: int):
        objective = self.objective
        metrics.add("d_loss", d_loss / n_d, count)
        metrics.add("d_real", objective.d_output(scores.real).float().mean() / n_d, count)
        metrics.add("d_fake", objective.d_output(scores.fake).float().mean() / n_d, count)
        if len(terms) > 1:
            for name, value in terms.items():
                if name != "d_loss":
                    metrics.add(name, value.detach() / n_d, count)
        metrics.add("d_accuracy", objective.d_accuracy(scores.real, scores.fake) / n_d, count)

    def _g_phase(self, real, fake, y, n_g: int, metrics: StepMetrics, want_grad_norms: bool,
                 sat_out: torch.Tensor | None) -> None:
        """n_g G updates; `sat_out` is D(real) when D sat this step out, so its row shows D as it stands."""
        st = self.state
        # D's parameters sit out of G's backward pass: the next D step would discard their gradients.
        st.D.requires_grad_(False)
        try:
            for j in range(n_g):
                if j > 0 or fake is None:  # only the last D step's fake can be reused: further updates draw fresh z
                    with self.autocast:
                        fake = call(self.G_train, self._z(), y)
                with self.autocast:
                    scores = self._scores(self.D_for_g, lambda: self.augment(real), self.augment(fake), y,
                                          False, False)
                    terms = self.objective.g_terms(scores)
                    if self.classifier_weight > 0:
                        terms["g_class"] = self._classifier_term(scores, "fake", y)
                g_loss = sum(terms.values())
                st.opt_g.zero_grad(set_to_none=True)
                self._backward(g_loss)
                if want_grad_norms and j == n_g - 1:
                    if st.scaler is not None:
                        st.scaler.unscale_(st.opt_g)
                    metrics.add("g_grad_norm", grad_norm(st.G))
                self._optimizer_step(st.opt_g)
                if st.ema is not None:
                    st.ema.update(st.G)
                count = int(j == n_g - 1)
                metrics.add("g_loss", g_loss.detach() / n_g, count)
                for name, value in terms.items():
                    if len(terms) > 1 and name != "g_loss":
                        metrics.add(name, value.detach() / n_g, count)
                if sat_out is not None and j == 0:
                    known = Scores.known(sat_out, scores.fake.detach())
                    self._log_d(metrics, known, self.objective.d_loss(known.real, known.fake), {}, 1, 1)
                    metrics.add("d_penalty", torch.zeros((), device=self.device))
        finally:
            st.D.requires_grad_(True)

    # ------------------------------------------------------------------ scaled backward and steps

    def _backward(self, loss: torch.Tensor) -> None:
        scaler = self.state.scaler
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """One gradient scaler serves both optimizers; it updates its scale after every step, since D
        steps several times per G step and a scaler may step each optimizer once per update."""
        scaler = self.state.scaler
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
