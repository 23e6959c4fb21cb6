"""A blockwise (tiled) Cholesky solver for symmetric positive definite systems too big to hold dense.

The kernel of Zhang et al. §5 on all 60,000 MNIST digits is a 60,000 x 60,000 float64 matrix:
28.8 GB dense, more than the RAM of a 24 GiB machine. It is symmetric, so only its lower triangle
is stored, tile by tile:

* tile `b` splits 0..n into blocks [s_j, e_j) of b rows (the last one shorter when b does not
  divide n); tile column j is ONE contiguous (n - s_j, e_j - s_j) tensor holding rows s_j..n-1 of
  columns s_j..e_j-1, i.e. the diagonal tile on top of every tile below it. Keeping a tile column
  contiguous turns each trailing update into one large matrix product instead of one per tile.
  Storage is sum_j (n - s_j)(e_j - s_j) * 8 bytes ~ (n^2 + n b) / 2 * 8: 14.9 GB at n = 60,000,
  b = 2,048;
* `cholesky_` factors in place, right-looking: for each tile column k, Cholesky of the diagonal
  tile (torch.linalg.cholesky_ex), the panel below it becomes P L_kk^-T
  (torch.linalg.solve_triangular, in row chunks, so the workspace is one chunk), then every later
  tile column j loses P_j P_j^T (addmm_ in place), the same arithmetic as LAPACK's blocked potrf;
* `solve` is forward then back substitution tile by tile, `upper_matvec` is L^T x (for the RKHS
  norm ||L^T alpha||^2), `norm1` the 1-norm of the symmetric matrix (for the condition estimate).

Runs on any device torch does; the math is the dense path's (`rethinkbench.theory.kernels`), only
ordered by tiles, so results agree to rounding (tested to ~1e-10 relative).
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import torch

from rethinkbench.base.errors import UsageError
from rethinkbench.theory.linalg import chunk_rows

log = logging.getLogger(__name__)

DEFAULT_TILE = 2048   # fp64 GEMM on the 2-core CPU: ~38 GFLOP/s at 1024^2, ~44 at 2048^2, ~47 at 4096^2


class NotPositiveDefinite(UsageError):
    """The matrix is not (numerically) positive definite; the message names the diagonal entry."""


def check_tile(tile) -> int:
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise UsageError(f"tile must be a positive int (rows per tile), got {tile!r}")
    return tile


def tile_bounds(n: int, tile: int) -> list[tuple[int, int]]:
    """[(s_0, e_0), (s_1, e_1), ...]: blocks of `tile` rows covering 0..n, the last one shorter."""
    check_tile(tile)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a positive int, got {n!r}")
    return [(s, min(s + tile, n)) for s in range(0, n, tile)]


def tiled_bytes(n: int, tile: int, itemsize: int = 8) -> int:
    """Bytes the lower tile columns of an n x n matrix take."""
    return sum((n - s) * (e - s) for s, e in tile_bounds(n, tile)) * itemsize


class TiledSPD:
    """The lower triangle of a symmetric n x n matrix in tile columns (see the module docstring).

    Build with `TiledSPD.build(n, tile, fill)` where `fill(s, e, out)` writes rows s..n-1 of columns
    s..e-1 into `out` (the diagonal tile in full, both triangles), or `TiledSPD.from_dense(A, tile)`.
    After `cholesky_()` the tiles hold the factor L (A = L L^T) and `solve` works.
    """

    def __init__(self, n: int, tile: int, cols: list[torch.Tensor]):
        self.n, self.tile, self.cols = n, tile, cols
        self.bounds = tile_bounds(n, tile)
        self.state = "matrix"          # "matrix" -> "factor", or "failed" after a failed cholesky_

    # ------------------------------------------------------------------ building and inspecting

    @classmethod
    def build(cls, n: int, tile: int, fill: Callable[[int, int, torch.Tensor], object], *,
              device="cpu", dtype=torch.float64) -> "TiledSPD":
        bounds = tile_bounds(n, tile)
        cols = []
        for s, e in bounds:
            col = torch.empty(n - s, e - s, dtype=dtype, device=device)
            fill(s, e, col)
            cols.append(col)
        return cls(n, tile, cols)

    @classmethod
    def from_dense(cls, A: torch.Tensor, tile: int) -> "TiledSPD":
        """A copy of the lower tile columns of the square matrix A (A is left as it is)."""
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise UsageError(f"A must be a non-empty square matrix, got shape {tuple(A.shape)}")
        if not A.dtype.is_floating_point:
            raise UsageError(f"A must be floating point, got {A.dtype}")
        return cls.build(A.shape[0], tile, lambda s, e, out: out.copy_(A[s:, s:e]),
                         device=A.device, dtype=A.dtype)

    @property
    def nbytes(self) -> int:
        return sum(c.numel() * c.element_size() for c in self.cols)

    @property
    def device(self) -> torch.device:
        return self.cols[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.cols[0].dtype

    def tile_view(self, i: int, j: int) -> torch.Tensor:
        """Tile (i, j), i >= j, as a view into tile column j."""
        if not 0 <= j <= i < len(self.bounds):
            raise UsageError(f"tile ({i}, {j}) is not in the lower triangle of "
                             f"{len(self.bounds)} x {len(self.bounds)} tiles")
        s_i, e_i = self.bounds[i]
        s_j = self.bounds[j][0]
        return self.cols[j][s_i - s_j:e_i - s_j]

    def to_dense(self) -> torch.Tensor:
        """The full matrix (symmetric before the factorization, the lower factor L after)."""
        out = torch.zeros(self.n, self.n, dtype=self.dtype, device=self.device)
        for (s, e), col in zip(self.bounds, self.cols):
            out[s:, s:e] = col
        if self.state == "matrix":
            out = torch.tril(out) + torch.tril(out, -1).mT
        return out

    def norm1(self) -> float:
        """max_j sum_i |A_ij| of the symmetric matrix: tile column j adds its column sums to
        columns s_j..e_j-1 and, by symmetry, the row sums of its off-diagonal part to rows e_j..n-1."""
        self._require("matrix", "norm1")
        sums = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        for (s, e), col in zip(self.bounds, self.cols):
            rows = chunk_rows(col.shape[1] * col.element_size(), self.device, total=col.shape[0])
            for r in range(0, col.shape[0], rows):
                chunk = col[r:r + rows].abs()
                sums[s:e] += chunk.sum(dim=0)
                below = max(r, e - s)        # rows of this chunk under the diagonal tile
                if below < r + chunk.shape[0]:
                    sums[s + below:s + r + chunk.shape[0]] += chunk[below - r:].sum(dim=1)
        return float(sums.max())

    def add_diagonal_(self, value: float) -> "TiledSPD":
        self._require("matrix", "add_diagonal_")
        for (s, e), col in zip(self.bounds, self.cols):
            col[:e - s].diagonal().add_(value)
        return self

    # ------------------------------------------------------------------ factor and solves

    def cholesky_(self) -> "TiledSPD":
        """Overwrite the tiles with L, A = L L^T (right-looking blocked Cholesky).

        Raises NotPositiveDefinite naming the first diagonal entry whose pivot is not positive (and
        its tile); the tiles are then partly overwritten (`state` "failed")."""
        self._require("matrix", "cholesky_")
        nt, t0, flops_done = len(self.bounds), time.perf_counter(), 0.0
        # A pivot below n * eps * max(diag A) is rounding noise, not information: an exactly
        # singular matrix (a repeated point) leaves a pivot of +-1e-16 whose sign depends on the
        # CPU's summation order. Refuse it on every CPU alike rather than divide by it.
        scale = max(float(col[:e - s].diagonal().abs().max()) for (s, e), col in zip(self.bounds, self.cols))
        tiny = self.n * torch.finfo(self.cols[0].dtype).eps * scale
        for k, (s, e) in enumerate(self.bounds):
            b, col = e - s, self.cols[k]
            diag, panel = col[:b], col[b:]
            L, info = torch.linalg.cholesky_ex(diag)
            bad = int(info)   # LAPACK/cuSOLVER: the order of the first minor that is not PD
            if bad == 0:      # a NaN/inf that slipped through as a "pivot", or a pivot that is noise
                pivots = L.diagonal()
                weak = (~torch.isfinite(pivots) | (pivots.square() <= tiny)).nonzero()
                bad = 1 + int(weak[0]) if len(weak) else 0
            if bad:
                self.state = "failed"
                i = s + bad - 1
                raise NotPositiveDefinite(
                    f"the {self.n} x {self.n} matrix is not numerically positive definite: the "
                    f"Cholesky pivot of diagonal entry {i} (0-based; diagonal tile {k} of {nt}, rows "
                    f"{s}..{e - 1}) is not positive after eliminating the {i} before it")
            diag.copy_(L)
            if panel.shape[0]:
                # P <- P L_kk^-T, chunk by chunk: the workspace is one chunk, not a second panel.
                rows = chunk_rows(2 * b * col.element_size(), self.device, total=panel.shape[0])
                for chunk in panel.split(rows):
                    chunk.copy_(torch.linalg.solve_triangular(L.mT, chunk, upper=True, left=False))
                for j in range(k + 1, nt):
                    s_j, e_j = self.bounds[j]
                    off = s_j - e
                    # A[s_j:, s_j:e_j] -= L[s_j:, s:e] L[s_j:e_j, s:e]^T
                    self.cols[j].addmm_(panel[off:], panel[off:off + e_j - s_j].mT, alpha=-1.0)
            flops_done += _column_flops(self.n, s, b)
            if log.isEnabledFor(logging.INFO):
                dt = time.perf_counter() - t0
                log.info("cholesky tile column %d/%d done, %.0f s, %.1f GFLOP/s", k + 1, nt, dt,
                         flops_done / max(dt, 1e-9) / 1e9)
        self.state = "factor"
        return self

    def solve(self, Y: torch.Tensor) -> torch.Tensor:
        """X with A X = Y, from the factor: L Z = Y, then L^T X = Z. Y (n,) or (n, k)."""
        return self.solve_upper(self.solve_lower(Y))

    def solve_lower(self, Y: torch.Tensor) -> torch.Tensor:
        """Z with L Z = Y (forward substitution by tiles)."""
        Z, vector = self._rhs(Y, "solve_lower")
        for (s, e), col in zip(self.bounds, self.cols):
            b = e - s
            Z[s:e] = torch.linalg.solve_triangular(col[:b], Z[s:e], upper=False)
            if e < self.n:
                Z[e:].addmm_(col[b:], Z[s:e], alpha=-1.0)
        return Z[:, 0] if vector else Z

    def solve_upper(self, Z: torch.Tensor) -> torch.Tensor:
        """X with L^T X = Z (back substitution by tiles)."""
        X, vector = self._rhs(Z, "solve_upper")
        for (s, e), col in reversed(list(zip(self.bounds, self.cols))):
            b = e - s
            if e < self.n:
                X[s:e].addmm_(col[b:].mT, X[e:], alpha=-1.0)
            X[s:e] = torch.linalg.solve_triangular(col[:b].mT, X[s:e], upper=True)
        return X[:, 0] if vector else X

    def upper_matvec(self, X: torch.Tensor) -> torch.Tensor:
        """L^T X (so that ||L^T alpha||^2 = alpha^T A alpha, the dense path's RKHS norm)."""
        X2, vector = self._rhs(X, "upper_matvec", copy=False)
        out = torch.empty_like(X2)
        for (s, e), col in zip(self.bounds, self.cols):
            b = e - s
            out[s:e] = col[:b].mT @ X2[s:e]
            if e < self.n:
                out[s:e].addmm_(col[b:].mT, X2[e:])
        return out[:, 0] if vector else out

    # ------------------------------------------------------------------ helpers

    def _rhs(self, Y: torch.Tensor, what: str, copy: bool = True):
        self._require("factor", what)
        if Y.ndim not in (1, 2) or Y.shape[0] != self.n:
            raise UsageError(f"{what}: right-hand side must have {self.n} rows (shape (n,) or (n, k)), "
                             f"got shape {tuple(Y.shape)}")
        vector = Y.ndim == 1
        Y2 = (Y[:, None] if vector else Y).to(device=self.device, dtype=self.dtype)
        return (Y2.clone() if copy else Y2), vector

    def _require(self, state: str, what: str) -> None:
        if self.state != state:
            raise UsageError(f"{what} needs {_HOLDS[state]}, but the tiles hold {_HOLDS[self.state]}"
                             + (" (call cholesky_ first)" if state == "factor" else ""))


_HOLDS = {"matrix": "the (unfactored) matrix", "factor": "its Cholesky factor",
          "failed": "a partly overwritten matrix (its Cholesky failed)"}


def _column_flops(n: int, s: int, b: int) -> float:
    """Flops of one tile column step: potrf b^3/3, trsm m b^2, the trailing update ~m^2 b."""
    m = n - s - b
    return b**3 / 3 + m * b * b + m * m * b
