"""Expected sharpness and its PAC-Bayes KL term (Neyshabur, Bhojanapalli, McAllester & Srebro
2017, §3): sharpness alone is not scale-invariant, and only with the KL term does it bound
generalization.

- expected sharpness: E_nu[L(w + nu)] - L(w) on the training set, nu ~ N(0, sigma^2 I) on every
  parameter (weights and biases), estimated by Monte Carlo with a fixed seed; L is the training
  error (0-1) or the cross-entropy.
- the KL term of a posterior N(w, sigma^2 I) against the prior N(w0, sigma^2 I) (w0 = 0, or the
  initialization): ||w - w0||^2 / (2 sigma^2).
The paper's Fig. 2 plots the two against each other over sigma; the bound's constants
(4 sqrt((KL + ln(2m/delta)) / m)) are not used here. This module is not yet read by a claim.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from rethinkbench.base.errors import UsageError
from rethinkbench.measures.margins import logits

LOSSES = ("error", "cross_entropy")


def _loss(model, x, y, loss: str) -> float:
    out = logits(model, x)
    if loss == "error":
        return float((out.argmax(1) != y).double().mean())
    return float(F.cross_entropy(out.double(), y))


def expected_sharpness(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float,
                       samples: int = 10, seed: int = 0, loss: str = "error") -> dict:
    """{"loss", "perturbed_loss", "sharpness"}: L(w), the mean of L(w + nu) over `samples` draws,
    and their difference. The model is not modified."""
    if loss not in LOSSES:
        raise UsageError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    if not sigma >= 0:
        raise UsageError(f"sigma must be >= 0, got {sigma!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise UsageError(f"samples must be a positive integer, got {samples!r}")
    base = _loss(model, x, y, loss)
    g = torch.Generator(device="cpu").manual_seed(seed)
    noisy = copy.deepcopy(model)
    params = list(model.parameters())
    total = 0.0
    for _ in range(samples):
        with torch.no_grad():
            for p, q in zip(params, noisy.parameters()):
                q.copy_(p + sigma * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
        total += _loss(noisy, x, y, loss)
    return {"loss": base, "perturbed_loss": total / samples, "sharpness": total / samples - base}


def kl_term(model: torch.nn.Module, sigma: float, reference: torch.nn.Module | None = None) -> float:
    """KL(N(w, sigma^2 I) || N(w0, sigma^2 I)) = ||w - w0||^2 / (2 sigma^2); w0 = 0 or `reference`'s
    parameters (same architecture, matched by name)."""
    if not sigma > 0:
        raise UsageError(f"sigma must be > 0 for the KL term, got {sigma!r}")
    ref = dict(reference.named_parameters()) if reference is not None else {}
    sq = 0.0
    for name, p in model.named_parameters():
        w = p.detach().double()
        if reference is not None:
            if name not in ref or ref[name].shape != p.shape:
                raise UsageError(f"reference network has no parameter {name!r} of shape {tuple(p.shape)}: "
                                 f"it must have the same architecture")
            w = w - ref[name].detach().double().to(w.device)
        sq += float((w * w).sum())
    return sq / (2 * sigma ** 2)
