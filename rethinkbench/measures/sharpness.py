"""Expected sharpness and its PAC-Bayes KL term (Neyshabur, Bhojanapalli, McAllester & Srebro
2017, §3, Figs. 2-3): sharpness alone is not scale-invariant, and only with the KL term does it
bound generalization.

- expected sharpness: E_nu[L(w + nu)] - L(w) on the training set, nu a zero-mean Gaussian on every
  parameter (weights and biases), estimated by Monte Carlo with a fixed seed; L is the training
  error (0-1, the bounded loss the PAC-Bayes bound is about) or the cross-entropy. The noise is
  either spherical, N(0, sigma^2 I) (the paper's eq. 4), or scaled to each parameter's magnitude:
  sigma_i = alpha (10 |w_i| + 1), the perturbation of the paper's Fig. 2 caption
  (`perturbation_std`; the paper's §3 text gives the general form alpha |w_i| + beta).
- the KL term of a posterior N(w, diag sigma_i^2) against the prior N(w0, diag sigma_i^2) (w0 = 0,
  or the initialization): sum_i (w_i - w0_i)^2 / (2 sigma_i^2), a weighted l2 norm whose weights
  are the inverse perturbation variances (the Fig. 2 caption's words); ||w - w0||^2 / (2 sigma^2)
  for spherical noise.
- `sharpness_kl_curve`: both over a grid of alpha, the paper's bi-criteria plot (sharpness against
  KL as the perturbation scale varies); since sigma_i is linear in alpha, KL(alpha) = KL(1) / alpha^2
  exactly, so `kl_at_sharpness` reads off, by interpolation in log alpha, the KL at which a network
  first reaches a given expected sharpness (the paper: "to get a fixed value of expected sharpness
  such as eps = 0.05, networks trained with random labels require higher norm").
- `max_sharpness`: Keskar et al.'s sharpness, the paper's Fig. 2 left panel: the largest relative
  rise of the training cross-entropy, 100 (max_nu L(w + nu) - L(w)) / (1 + L(w)), over the box
  |nu_i| <= eps (|w_i| + 1) with eps = 5e-4 (the caption's value), found here by a few steps of
  projected sign-gradient ascent (Keskar et al. used L-BFGS-B: ours is a lower bound on the max).
The bound's constants (4 sqrt((KL + ln(2m/delta)) / m)) are not used here.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from rethinkbench.base.arguments import count, is_number, non_negative
from rethinkbench.base.errors import UsageError
from rethinkbench.measures.margins import logits

LOSSES = ("error", "cross_entropy")
RELATIVE = 10.0       # sigma_i = alpha (RELATIVE |w_i| + 1): the Fig. 2 caption's perturbation
KESKAR_EPS = 5e-4     # the Fig. 2 caption's box for max sharpness: eps (|w_i| + 1)


def _loss(model, x, y, loss: str) -> float:
    out = logits(model, x)
    if loss == "error":
        return float((out.argmax(1) != y).double().mean())
    return float(F.cross_entropy(out.double(), y))


def perturbation_std(model: torch.nn.Module, alpha: float, relative: float = RELATIVE) -> dict:
    """{parameter name: tensor of sigma_i = alpha (relative |w_i| + 1)}: the magnitude-scaled noise
    of the paper's Fig. 2 (relative = 0 is spherical noise of std alpha)."""
    alpha, relative = non_negative("alpha", alpha), non_negative("relative", relative)
    return {name: alpha * (relative * p.detach().abs() + 1) for name, p in model.named_parameters()}


def _stds(model, sigma, what: str, positive: bool) -> dict:
    """sigma (a number, or {name: tensor} from perturbation_std) as {name: std tensor or number},
    checked against the model's parameters."""
    params = dict(model.named_parameters())
    if isinstance(sigma, dict):
        missing = [n for n, p in params.items() if n not in sigma or tuple(torch.as_tensor(sigma[n]).shape) not in
                   ((), tuple(p.shape))]
        if missing:
            raise UsageError(f"sigma has no std of the right shape for parameter(s) {missing[:3]} "
                             f"(build it with perturbation_std(model, alpha))")
        low = min(float(torch.as_tensor(sigma[n]).min()) for n in params) if params else 1.0
        if not (low > 0 if positive else low >= 0):
            raise UsageError(f"sigma must be {'> 0' if positive else '>= 0'}{what}, got a minimum std of {low!r}")
        return {n: sigma[n] for n in params}
    if not (is_number(sigma) and (sigma > 0 if positive else sigma >= 0)):
        raise UsageError(f"sigma must be {'> 0' if positive else '>= 0'}{what}, got {sigma!r}")
    return {n: float(sigma) for n in params}


def expected_sharpness(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, sigma,
                       samples: int = 10, seed: int = 0, loss: str = "error") -> dict:
    """{"loss", "perturbed_loss", "sharpness"}: L(w), the mean of L(w + nu) over `samples` draws,
    and their difference. `sigma`: a number (spherical noise) or perturbation_std's per-parameter
    stds. The model is not modified."""
    if loss not in LOSSES:
        raise UsageError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    stds = _stds(model, sigma, "", positive=False)
    count("samples", samples)
    base = _loss(model, x, y, loss)
    perturbed = _perturbed_loss(model, x, y, stds, samples, seed, loss)
    return {"loss": base, "perturbed_loss": perturbed, "sharpness": perturbed - base}


def _perturbed_loss(model, x, y, stds: dict, samples: int, seed: int, loss: str) -> float:
    """The mean of L(w + nu) over `samples` draws of nu ~ N(0, diag stds^2), from `seed`."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    noisy = copy.deepcopy(model)
    params = list(model.named_parameters())
    total = 0.0
    for _ in range(samples):
        with torch.no_grad():
            for (name, p), q in zip(params, noisy.parameters()):
                s = stds[name]
                s = s.to(p.device, p.dtype) if torch.is_tensor(s) else s
                q.copy_(p + s * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
        total += _loss(noisy, x, y, loss)
    return total / samples


def kl_term(model: torch.nn.Module, sigma, reference: torch.nn.Module | None = None) -> float:
    """KL(N(w, diag sigma_i^2) || N(w0, diag sigma_i^2)) = sum_i (w_i - w0_i)^2 / (2 sigma_i^2); w0 = 0
    or `reference`'s parameters (same architecture, matched by name). `sigma`: a number (spherical:
    ||w - w0||^2 / (2 sigma^2)) or perturbation_std's per-parameter stds."""
    stds = _stds(model, sigma, " for the KL term", positive=True)
    ref = dict(reference.named_parameters()) if reference is not None else {}
    total = 0.0
    for name, p in model.named_parameters():
        w = p.detach().double()
        if reference is not None:
            if name not in ref or ref[name].shape != p.shape:
                raise UsageError(f"reference network has no parameter {name!r} of shape {tuple(p.shape)}: "
                                 f"it must have the same architecture")
            w = w - ref[name].detach().double().to(w.device)
        s = stds[name]
        s = s.detach().double().to(w.device) if torch.is_tensor(s) else s
        total += float((w * w / (2 * s * s)).sum())
    return total


def sharpness_kl_curve(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, alphas, samples: int = 5,
                       seed: int = 0, loss: str = "error", relative: float = RELATIVE,
                       stop_above: float | None = None) -> list[dict]:
    """[{"alpha", "sharpness", "kl"}] over the increasing grid `alphas`, the noise of parameter i
    N(0, (alpha (relative |w_i| + 1))^2) and the prior centred at 0. `stop_above`: stop after the
    first alpha whose sharpness exceeds it (larger alphas only add noise to a curve already past
    every level read off it)."""
    alphas = [float(a) for a in alphas]
    if not alphas or any(a <= 0 for a in alphas) or any(b <= a for a, b in zip(alphas, alphas[1:])):
        raise UsageError(f"alphas must be a non-empty, strictly increasing grid of positive numbers, got {alphas!r}")
    if loss not in LOSSES:
        raise UsageError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    count("samples", samples)
    base, out = _loss(model, x, y, loss), []     # L(w) once: every alpha shares it
    for a in alphas:
        std = perturbation_std(model, a, relative)
        s = _perturbed_loss(model, x, y, std, samples, seed, loss) - base
        out.append({"alpha": a, "sharpness": s, "kl": kl_term(model, std)})
        if stop_above is not None and s > stop_above:
            break
    return out


def kl_at_sharpness(curve: list[dict], eps: float) -> float:
    """The KL at which the curve first reaches expected sharpness `eps`: alpha* interpolated linearly
    in log alpha between the last grid point below eps and the first at or above it, and
    KL(alpha*) = KL(alpha) (alpha / alpha*)^2 (exact: sigma_i is linear in alpha). nan when the grid
    does not bracket eps (already reached at its smallest alpha, or never reached)."""
    if not eps > 0:
        raise UsageError(f"eps must be > 0, got {eps!r}")
    if not curve:
        raise UsageError("kl_at_sharpness needs a non-empty curve (sharpness_kl_curve)")
    for lo, hi in zip(curve, curve[1:]):
        if lo["sharpness"] < eps <= hi["sharpness"]:
            t = (eps - lo["sharpness"]) / (hi["sharpness"] - lo["sharpness"])
            a = float(np.exp((1 - t) * np.log(lo["alpha"]) + t * np.log(hi["alpha"])))
            return lo["kl"] * (lo["alpha"] / a) ** 2
    return float("nan")


def max_sharpness(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = KESKAR_EPS,
                  steps: int = 3) -> float:
    """Keskar et al.'s sharpness (in %): 100 (max_nu L(w + nu) - L(w)) / (1 + L(w)), L the training
    cross-entropy, over the box |nu_i| <= eps (|w_i| + 1), by `steps` steps of projected
    sign-gradient ascent from nu = 0 (each step 2 box / steps, so the walk can cross the box). The
    model is not modified."""
    if not eps > 0:
        raise UsageError(f"eps must be > 0, got {eps!r}")
    count("steps", steps)
    base = _loss(model, x, y, "cross_entropy")
    noisy = copy.deepcopy(model)
    noisy.eval()
    params = [p.detach() for p in model.parameters()]
    boxes = [eps * (p.abs() + 1) for p in params]
    nus = [torch.zeros_like(p) for p in params]
    best = base
    for _ in range(steps):
        with torch.no_grad():
            for q, p, nu in zip(noisy.parameters(), params, nus):
                q.copy_(p + nu)
        noisy.zero_grad(set_to_none=True)
        out = torch.cat([noisy(x[i:i + 1000]) for i in range(0, len(x), 1000)])
        F.cross_entropy(out, y).backward()
        with torch.no_grad():
            for q, nu, box in zip(noisy.parameters(), nus, boxes):
                nu.add_(2 * box / steps * q.grad.sign())
                nu.copy_(torch.maximum(torch.minimum(nu, box), -box))
            for q, p, nu in zip(noisy.parameters(), params, nus):
                q.copy_(p + nu)
        best = max(best, _loss(noisy, x, y, "cross_entropy"))
    return 100 * (best - base) / (1 + base)
