"""Measurements of Arpit, Krueger et al. (2017): per-example difficulty and the critical sample ratio.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rethinkbench.base.errors import UsageError
from rethinkbench.base.seeding import generator


# ----------------------------------------------------------------------------- A-easy-examples

def dispersion(correct: np.ndarray) -> dict:
    """Per-example correctness across S independent runs (array S x N of 0/1).

    If every example were equally hard (the null for random data), each example's error count
    over S runs would be Binomial(S, q) with q the mean error rate, so the variance of the counts
    would be S·q·(1−q): the dispersion index var/(S q (1−q)) ≈ 1. Consistently easy and hard
    examples spread the counts: index ≫ 1. Returns the index, a χ² goodness-of-fit p-value of the
    count histogram against Binomial(S, q) (bins with expected count < 5 pooled), q, and the
    histogram itself.
    """
    from scipy import stats   # scipy's import takes ~0.3 s: only when this statistic is asked for

    correct = np.asarray(correct, dtype=float)
    if correct.ndim != 2 or correct.size == 0 or not np.isin(correct, (0.0, 1.0)).all():
        # NaN (a plan's placeholder, a missing record) would be cast to garbage counts below.
        bad = correct[~np.isin(correct, (0.0, 1.0))][:3].tolist() if correct.size else []
        raise UsageError(f"dispersion() takes a non-empty (runs x examples) array of 0/1, got shape "
                         f"{correct.shape}" + (f" with values {bad}" if bad else ""))
    s = correct.shape[0]
    errors = (1 - correct).sum(axis=0)                 # per example, 0..S
    q = errors.mean() / s
    var_binom = s * q * (1 - q)
    index = float(errors.var(ddof=1) / var_binom) if var_binom > 0 else float("inf")
    observed = np.bincount(errors.astype(int), minlength=s + 1).astype(float)
    expected = stats.binom.pmf(np.arange(s + 1), s, q) * len(errors)
    obs_b, exp_b = _pool(observed, expected)
    if len(obs_b) > 2:
        chi2 = float(((obs_b - exp_b) ** 2 / exp_b).sum())
        p = float(stats.chi2.sf(chi2, len(obs_b) - 2))    # one parameter (q) estimated
    else:
        chi2, p = 0.0, 1.0
    return {"dispersion_index": index, "chi2": chi2, "chi2_p": p, "mean_error": float(q),
            "histogram": observed.astype(int).tolist()}


def _pool(obs: np.ndarray, exp: np.ndarray, minimum: float = 5.0):
    """Merge adjacent bins until each expected count is ≥ minimum (the usual χ² validity rule)."""
    ob, eb, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(obs, exp):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= minimum:
            ob.append(acc_o)
            eb.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0 and eb:
        ob[-1] += acc_o
        eb[-1] += acc_e
    return np.array(ob), np.array(eb)


# ----------------------------------------------------------------------------- A-csr

@torch.no_grad()
def _pred(model, x):
    return model(x).argmax(1)


def critical_sample_ratio(model: torch.nn.Module, x: torch.Tensor, radius: float, *, steps: int = 20,
                          alpha: float | None = None, beta: float | None = None, seed: int = 0,
                          batch: int = 256) -> dict:
    """Fraction of points x whose predicted class changes somewhere in the ℓ∞ ball of `radius`
    (in the model's input units), found by the Langevin adversarial search of Arpit et al. (2017,
    Alg. 1): start at a uniform point of the ball, then repeat x̃ ← clip(x̃ + α·sign(∇ loss) +
    β·N(0, 1)) ascending the cross-entropy of the originally predicted class, stopping for a
    point as soon as its class changes. α = 0.25·r and β = 0.2·r by default (the paper's ratios as
    we read them; unconfirmed).
    """
    alpha = 0.25 * radius if alpha is None else alpha
    beta = 0.2 * radius if beta is None else beta
    gen = generator(seed, "csr", device=x.device)
    was_training = model.training
    model.eval()
    flipped = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        y0 = _pred(model, xb)
        lo, hi = xb - radius, xb + radius
        xt = xb + (torch.rand(xb.shape, generator=gen, device=x.device) * 2 - 1) * radius
        found = _pred(model, xt) != y0
        for _ in range(steps):
            xt = xt.detach().requires_grad_(True)
            loss = F.cross_entropy(model(xt), y0, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xt)
            noise = torch.randn(xb.shape, generator=gen, device=x.device)
            step = alpha * grad.sign() + beta * noise
            xt = torch.max(torch.min(xt.detach() + step, hi), lo)
            xt = torch.where(found.view(-1, 1, 1, 1), xb, xt)   # a found point stays found
            found |= _pred(model, xt) != y0
        flipped.append(found)
    model.train(was_training)
    found = torch.cat(flipped)
    return {"csr": found.float().mean().item(), "n": int(found.numel()), "radius": radius,
            "alpha": alpha, "beta": beta, "steps": steps}
