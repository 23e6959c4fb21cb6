"""Classification margins of a trained network (Bartlett et al. 2017; Neyshabur et al. 2017).

The margin of an example (x, y) is F(x)_y - max_{j != y} F(x)_j: positive when the network
classifies it correctly, and the further from 0 the more confidently. Both follow-up papers read
the margin distribution on the *training* set of a network that fits it: Bartlett et al. divide it
by the spectral complexity (measures/norms.py), Neyshabur et al. take its 5th percentile as the
margin gamma of their norm measures (a robust minimum: the smallest margin is one example's).
"""
from __future__ import annotations

import numpy as np
import torch

from rethinkbench.base.errors import UsageError

NEYSHABUR_PERCENTILE = 5.0   # "the 5th percentile of the margins" (Neyshabur et al. 2017, §2)


@torch.no_grad()
def logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """F(x) for every row of `x`, in eval mode (dropout off, BatchNorm on running statistics),
    in batches so that a full training set fits in memory. The model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def margins_of(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example margins F(x)_y - max_{j != y} F(x)_j of precomputed outputs `out` (N x K)."""
    if out.dim() != 2 or out.shape[1] < 2:
        raise UsageError(f"margins need outputs of shape (N, K) with K >= 2 classes, got {tuple(out.shape)}")
    y = torch.as_tensor(y, device=out.device).long()
    if y.shape != (out.shape[0],):
        raise UsageError(f"margins need one label per output row: {out.shape[0]} rows, labels of shape {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= out.shape[1]):
        raise UsageError(f"labels must lie in [0, {out.shape[1] - 1}], got range [{int(y.min())}, {int(y.max())}]")
    true = out.gather(1, y[:, None]).squeeze(1)
    others = out.scatter(1, y[:, None], float("-inf"))   # the true class can never be the runner-up
    return (true - others.max(dim=1).values).detach()


def margins(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Per-example margins of `model` on (x, y), as a float64 numpy array."""
    return margins_of(logits(model, x, batch_size), y).double().cpu().numpy()


def margin_percentile(m, q: float = NEYSHABUR_PERCENTILE) -> float:
    """The q-th percentile of margins `m` (Neyshabur et al.'s gamma at q = 5)."""
    m = np.asarray(m, dtype=float)
    if m.size == 0:
        raise UsageError("margin_percentile needs at least one margin, got none")
    if not 0.0 <= q <= 100.0:
        raise UsageError(f"percentile q must be in [0, 100], got {q!r}")
    return float(np.percentile(m, q))


def data_norm(x: torch.Tensor) -> float:
    """||X||_2 of Bartlett et al.: the Frobenius norm of the data matrix, sqrt(sum_i ||x_i||^2)."""
    return float(torch.linalg.vector_norm(x.double().reshape(len(x), -1)))


def normalized_margins(m, spectral_complexity: float, x_norm: float, n: int) -> np.ndarray:
    """Bartlett et al.'s normalized margins: m / (R_A * ||X||_2 / n)."""
    for name, v in (("spectral_complexity", spectral_complexity), ("x_norm", x_norm), ("n", n)):
        if not v > 0:
            raise UsageError(f"normalized_margins: {name} must be positive, got {v!r}")
    return np.asarray(m, dtype=float) / (spectral_complexity * x_norm / n)


def separation_auc(a, b) -> float:
    """How well values `a` stand above values `b`: P(a_i > b_j) + P(a_i = b_j) / 2 over all pairs
    (the Mann-Whitney AUC; 1 = every a above every b, 0.5 = no separation). Sorts, O(n log n)."""
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    if a.size == 0 or b.size == 0:
        raise UsageError(f"separation_auc needs values on both sides, got {a.size} and {b.size}")
    below = np.searchsorted(b, a, side="left")
    equal = np.searchsorted(b, a, side="right") - below
    return float((below + equal / 2).sum() / (a.size * b.size))
