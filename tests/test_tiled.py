"""Unit and property tests of rethinkbench.theory.tiled: the tiled Cholesky against the dense one."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rethinkbench.theory import linalg

from rethinkbench.theory import tiled
from rethinkbench.base.errors import UsageError
from rethinkbench.theory.tiled import NotPositiveDefinite, TiledSPD

F64 = torch.float64

# Every matrix here is tiny: a second intra-op thread only adds a barrier per op, and on a busy
# 2-core machine that barrier is what the test would measure (a 30 x 30 fit: 1 ms on one thread,
# 10 s on two while another process holds both cores).
pytestmark = pytest.mark.usefixtures("single_thread")


def _spd(n, seed, *, shift=1.0):
    """A random SPD matrix B B^T / n + shift I: condition number ~ (1 + 4 / shift) at most."""
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(n, n, generator=g, dtype=F64)
    M = B @ B.T / n
    return (M + M.T) / 2 + shift * torch.eye(n, dtype=F64)   # exactly symmetric


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-300))


def test_tile_bounds_cover_n_with_a_short_last_tile():
    assert tiled.tile_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert tiled.tile_bounds(8, 4) == [(0, 4), (4, 8)]
    assert tiled.tile_bounds(3, 50) == [(0, 3)]
    # (n^2 + n b) / 2 when b divides n: 8 x 8 in tiles of 4 is 3 tiles of 16
    assert tiled.tiled_bytes(8, 4) == 3 * 16 * 8
    assert tiled.tiled_bytes(60_000, 2048) == pytest.approx((60_000**2 + 60_000 * 2048) / 2 * 8, rel=1e-3)


def test_storage_is_the_lower_tile_columns_only():
    A = _spd(10, 0)
    T = TiledSPD.from_dense(A, 4)
    assert [tuple(c.shape) for c in T.cols] == [(10, 4), (6, 4), (2, 2)]
    assert T.nbytes == tiled.tiled_bytes(10, 4) < A.numel() * 8
    assert torch.equal(T.tile_view(2, 1), A[8:10, 4:8])
    assert torch.equal(T.to_dense(), A)            # A is symmetric: the lower half says it all
    with pytest.raises(UsageError, match="lower triangle"):
        T.tile_view(0, 1)


@pytest.mark.parametrize("n, tile", [(1, 1), (7, 3), (12, 4), (13, 4), (30, 1), (20, 64)])
def test_tiled_cholesky_and_solve_equal_dense(n, tile):
    A = _spd(n, n + tile)
    Y = torch.randn(n, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    L = torch.linalg.cholesky(A)
    T = TiledSPD.from_dense(A, tile)
    assert T.norm1() == pytest.approx(float(A.abs().sum(dim=0).max()), rel=1e-14)
    T.cholesky_()
    assert T.state == "factor"
    assert _rel(T.to_dense(), L) <= 1e-12
    X = T.solve(Y)
    assert _rel(X, torch.cholesky_solve(Y, L)) <= 1e-12
    assert _rel(T.solve_lower(Y), torch.linalg.solve_triangular(L, Y, upper=False)) <= 1e-12
    assert _rel(T.upper_matvec(X), L.T @ X) <= 1e-12
    assert T.solve(Y[:, 0]).shape == (n,)                # a vector right-hand side stays a vector
    assert torch.equal(Y, torch.randn(n, 3, generator=torch.Generator().manual_seed(1), dtype=F64))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 40), st.integers(1, 45), st.integers(0, 2**31 - 1),
       st.floats(1e-3, 10.0), st.integers(1, 4))
def test_tiled_equals_dense_on_random_spd_matrices(n, tile, seed, shift, k):
    """Property: for any SPD A (condition <= 1 + 4/shift <= ~4e3), any tile size (dividing n or
    not, larger than n or 1), the tiled factor, solution, L^T x and 1-norm equal LAPACK's dense
    ones to 1e-10 relative."""
    A = _spd(n, seed, shift=shift)
    Y = torch.randn(n, k, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    T = TiledSPD.from_dense(A, tile)
    assert T.norm1() == pytest.approx(float(A.abs().sum(dim=0).max()), rel=1e-12)
    T.cholesky_()
    L = torch.linalg.cholesky(A)
    assert _rel(T.to_dense(), L) <= 1e-10
    X = T.solve(Y)
    assert _rel(X, torch.cholesky_solve(Y, L)) <= 1e-10
    assert _rel(A @ X, Y) <= 1e-10
    assert float(T.upper_matvec(X).square().sum()) == pytest.approx(float((X * (A @ X)).sum()), rel=1e-10)


def test_cholesky_reads_only_the_lower_triangle_of_a_diagonal_tile():
    A = _spd(9, 3)
    T = TiledSPD.from_dense(A, 4)
    for j, (s, e) in enumerate(T.bounds):        # garbage above the diagonal of each diagonal tile
        diag = T.cols[j][:e - s]
        diag.add_(torch.triu(torch.full_like(diag, 1e6), 1))
    T.cholesky_()
    assert _rel(T.to_dense(), torch.linalg.cholesky(A)) <= 1e-12


def test_small_chunks_change_nothing(monkeypatch):
    A = _spd(23, 5)
    ref = TiledSPD.from_dense(A, 5).cholesky_().to_dense()
    monkeypatch.setattr(linalg, "CPU_CHUNK_BYTES", 1)        # one row per trsm / norm1 chunk
    T = TiledSPD.from_dense(A, 5)
    assert T.norm1() == pytest.approx(float(A.abs().sum(dim=0).max()), rel=1e-14)
    assert _rel(T.cholesky_().to_dense(), ref) <= 1e-14     # trsm on one row rounds its own way


@pytest.mark.parametrize("bad, tile", [(0, 4), (5, 4), (6, 4), (9, 4), (9, 10)])
def test_not_positive_definite_names_the_diagonal_entry_and_its_tile(bad, tile):
    A = torch.eye(10, dtype=F64)
    A[bad, bad] = -1.0
    T = TiledSPD.from_dense(A, tile)
    with pytest.raises(NotPositiveDefinite, match=rf"diagonal entry {bad} \(0-based; diagonal tile "
                                                  rf"{bad // tile} of {-(-10 // tile)}"):
        T.cholesky_()
    assert T.state == "failed"
    with pytest.raises(UsageError, match="failed"):
        T.solve(torch.ones(10, dtype=F64))
    with pytest.raises(UsageError, match="failed"):
        T.cholesky_()


def test_a_singular_matrix_and_a_nan_are_not_positive_definite():
    v = torch.arange(1.0, 7.0, dtype=F64)[:, None]
    with pytest.raises(NotPositiveDefinite, match="diagonal entry 1 "):
        TiledSPD.from_dense(v @ v.T, 2).cholesky_()             # rank one: the 2nd pivot is 0
    A = torch.eye(6, dtype=F64)
    A[4, 4] = float("nan")
    with pytest.raises(NotPositiveDefinite, match="diagonal entry 4 "):
        TiledSPD.from_dense(A, 3).cholesky_()


def test_bad_inputs_are_usage_errors():
    A = _spd(6, 0)
    for tile in (0, -2, 2.5, True, "4", None):
        with pytest.raises(UsageError, match="tile must be a positive int"):
            TiledSPD.from_dense(A, tile)
    with pytest.raises(UsageError, match="square"):
        TiledSPD.from_dense(torch.ones(3, 4, dtype=F64), 2)
    with pytest.raises(UsageError, match="floating point"):
        TiledSPD.from_dense(torch.eye(3, dtype=torch.int64), 2)
    T = TiledSPD.from_dense(A, 4)
    with pytest.raises(UsageError, match="call cholesky_ first"):
        T.solve(torch.ones(6, dtype=F64))
    T.cholesky_()
    with pytest.raises(UsageError, match="6 rows"):
        T.solve(torch.ones(5, dtype=F64))
    with pytest.raises(UsageError, match="unfactored"):
        T.norm1()


def test_add_diagonal_is_a_ridge():
    A = _spd(7, 2)
    T = TiledSPD.from_dense(A, 3).add_diagonal_(0.5).cholesky_()
    Y = torch.ones(7, 1, dtype=F64)
    assert _rel((A + 0.5 * torch.eye(7, dtype=F64)) @ T.solve(Y), Y) <= 1e-12
