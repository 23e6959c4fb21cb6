"""Zhang et al. 2017, §5: what SGD does on a linear model, where implicit regularization is exact.

For least squares min_w 1/2 ||Xw - y||^2 with d > n (more parameters than points), every SGD step
w <- w - lr * (<x_i, w> - y_i) * x_i adds a multiple of a data point, so from w0 = 0 the iterate stays
in the row space of X: w = X^T alpha. If it interpolates, X X^T alpha = y, so w = X^T (X X^T)^-1 y =
pinv(X) y, the minimum-l2-norm interpolant. From w0 != 0 it converges instead to
pinv(X) y + (I - P) w0, P the projection onto the row space: the component of the start outside the
row space is never touched. The Hessian X^T X of the loss does not depend on w, so it is the same at
every one of these global minima.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rethinkbench.base.errors import UsageError
from rethinkbench.theory.linalg import cpu_single_thread


@dataclass
class SGDResult:
    w: torch.Tensor
    epochs: int
    steps: int
    relative_residual: float      # ||Xw - y|| / ||y|| at the end
    converged: bool
    residual_history: list[float]  # relative residual after each epoch


def sgd_least_squares(X: torch.Tensor, y: torch.Tensor, *, w0: torch.Tensor | None = None,
                      lr: float | None = None, max_epochs: int = 10_000, tol: float = 1e-13,
                      generator: torch.Generator | None = None) -> SGDResult:
    """Plain single-example SGD on 1/2 sum_i (<x_i, w> - y_i)^2, a fresh random order each epoch.

    The update is the textbook one, applied to w itself (nothing here keeps w in the row space by
    construction). lr defaults to 1 / max_i ||x_i||^2, which is stable (and, for rows of equal norm,
    the randomized Kaczmarz method). Stops when ||Xw - y|| <= tol * ||y|| or after max_epochs.
    Computes in X's dtype and on X's device (use float64 for the 1e-10 checks).
    """
    if X.ndim != 2 or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise UsageError(f"X must be (n, d) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}")
    n, d = X.shape
    w = torch.zeros(d, dtype=X.dtype, device=X.device) if w0 is None else w0.to(X).clone()
    if w.shape != (d,):
        raise UsageError(f"w0 must have shape ({d},), got {tuple(w0.shape)}")
    if lr is None:
        lr = 1.0 / float((X * X).sum(dim=1).max())
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    y = y.to(X)
    ynorm = float(y.norm()) or 1.0
    rows, targets = X.unbind(0), y.tolist()           # per-step indexing costs more than the step
    history = []
    steps = 0
    rel = float((X @ w - y).norm()) / ynorm
    epoch = 0
    with cpu_single_thread(X.device):
        while rel > tol and epoch < max_epochs:
            epoch += 1
            order = torch.randperm(n, generator=generator, device=generator.device).tolist()
            for i in order:                              # the update, one example at a time
                w.sub_(rows[i], alpha=lr * (float(rows[i] @ w) - targets[i]))
            steps += n
            rel = float((X @ w - y).norm()) / ynorm
            history.append(rel)
    return SGDResult(w, epoch, steps, rel, rel <= tol, history)


def min_norm_solution(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """pinv(X) y, the minimum-l2-norm least-squares solution (SVD-based, X's dtype and device)."""
    with cpu_single_thread(X.device):   # small problems; see cpu_single_thread
        return torch.linalg.pinv(X) @ y.to(X)


def _row_space_basis(X: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows spanning the row space of X (numerical rank by SVD, LAPACK's threshold)."""
    with cpu_single_thread(X.device):
        _, s, vh = torch.linalg.svd(X, full_matrices=False)
    rank = int((s > s[0] * max(X.shape) * torch.finfo(X.dtype).eps).sum()) if s.numel() else 0
    return vh[:rank]


def null_space_component(X: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(I - P) w, P the orthogonal projection onto the row space of X: the part of w that SGD on X
    never changes."""
    v = _row_space_basis(X)
    return w - v.T @ (v @ w)


def row_space_distance(X: torch.Tensor, w: torch.Tensor) -> float:
    """||(I - P) w|| / ||w||: 0 when w is in the row space of X."""
    return float(null_space_component(X, w).norm()) / (float(w.norm()) or 1.0)


def least_squares_hessian(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The Hessian at w of L(w) = 1/(2n) ||Xw - y||^2, by automatic differentiation (not the
    formula X^T X / n, which would make "the same at every w" true by construction)."""
    def loss(v):
        return 0.5 * ((X @ v - y) ** 2).mean()
    return torch.autograd.functional.hessian(loss, w.detach().clone(), vectorize=True)
