"""Unit and property tests of rethinkbench.theory.kernels / rethinkbench.theory.features (Zhang et al. §5)."""
import math
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rethinkbench.theory import features

from rethinkbench.theory import kernels

from rethinkbench.theory import linalg

from rethinkbench.theory import tiled
from rethinkbench.base.errors import UsageError

# Every matrix here is tiny: a second intra-op thread only adds a barrier per op, and on a busy
# 2-core machine that barrier is what the test would measure (a 30 x 30 fit: 1 ms on one thread,
# 10 s on two while another process holds both cores).
pytestmark = pytest.mark.usefixtures("single_thread")


def _direct_kernel(X, Z, gamma):
    return torch.exp(-gamma * torch.cdist(X.double(), Z.double()).square())


def test_gaussian_kernel_matches_the_definition_and_chunking_changes_nothing(monkeypatch):
    g = torch.Generator().manual_seed(0)
    X, Z = torch.rand(37, 11, generator=g), torch.rand(23, 11, generator=g)
    K = kernels.gaussian_kernel(X, Z, gamma=0.7)
    assert K.dtype == torch.float64 and K.shape == (37, 23)
    assert torch.allclose(K, _direct_kernel(X, Z, 0.7), rtol=0, atol=1e-13)
    monkeypatch.setattr(linalg, "CPU_CHUNK_BYTES", 1)          # one row per chunk
    assert torch.equal(kernels.gaussian_kernel(X, Z, gamma=0.7), K)
    S = kernels.gaussian_kernel(X, gamma=0.7)
    assert torch.allclose(S, S.T, atol=1e-15) and torch.allclose(S.diagonal(), torch.ones(37, dtype=torch.float64))


def test_chunk_rows_respects_the_budget(monkeypatch):
    monkeypatch.setattr(linalg, "CPU_CHUNK_BYTES", 1000)
    assert linalg.chunk_rows(100, "cpu") == 10
    assert linalg.chunk_rows(100, "cpu", total=4) == 4
    assert linalg.chunk_rows(10**9, "cpu") == 1


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(1, 25), st.integers(1, 6), st.integers(1, 3), st.floats(0.05, 5.0),
       st.integers(0, 2**31 - 1), st.booleans())
def test_kernel_interpolant_fits_its_targets(n, d, k, gamma, seed, overwrite):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64) * 3
    Y = torch.randn(n, k, generator=g, dtype=torch.float64)
    K = _direct_kernel(X, X, gamma)
    cond = float(torch.linalg.cond(K, 1))
    assume(cond < 1e10)          # beyond that float64 has too few digits left to check against
    fit = kernels.fit_kernel_interpolant(X, Y, gamma=gamma, overwrite=overwrite)
    assert fit.method == "cholesky"
    scale = float((K.abs() @ fit.alpha.abs()).max())    # round-off scale of K @ alpha
    assert float((K @ fit.alpha - Y).abs().max()) <= 1e-12 * cond * float(Y.abs().max())
    assert float((fit.predict(X) - K @ fit.alpha).abs().max()) <= 1e-13 * scale
    assert float((fit.predict_train() - K @ fit.alpha).abs().max()) <= 1e-13 * scale
    assert (fit.K is None) == overwrite
    quad = float(torch.einsum("ik,ij,jk->", fit.alpha, K, fit.alpha))
    assert fit.rkhs_norm**2 == pytest.approx(quad, abs=1e-12 * scale * float(fit.alpha.abs().sum()))
    # the condition estimate is a lower bound that is rarely far off
    assert 0.1 * cond <= fit.cond1 <= cond * (1 + 1e-6)


def test_indefinite_system_falls_back_to_lu():
    K0 = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)
    Y = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    alpha, method, quad, cond = kernels.solve_kernel_system(K0.clone(), Y, overwrite=False)
    assert method == "lu" and torch.allclose(K0 @ alpha, Y)
    alpha2, method2, *_ = kernels.solve_kernel_system(K0.clone(), Y, rebuild=K0.clone)
    assert method2 == "lu" and torch.allclose(alpha2, alpha)
    with pytest.raises(UsageError, match="rebuild"):
        kernels.solve_kernel_system(K0.clone(), Y)


def test_ridge_is_added_to_the_diagonal():
    K0 = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    Y = torch.eye(2, dtype=torch.float64)
    alpha, *_ = kernels.solve_kernel_system(K0.clone(), Y, ridge=0.5)
    assert torch.allclose((K0 + 0.5 * torch.eye(2, dtype=torch.float64)) @ alpha, Y)


def test_kernel_classification_on_separable_toy_data():
    g = torch.Generator().manual_seed(1)
    centers = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    y = torch.randint(0, 2, (60,), generator=g)
    x = centers[y] + 0.3 * torch.randn(60, 2, generator=g)
    res = kernels.kernel_classification(x[:40], y[:40], x[40:], y[40:], num_classes=2, gamma=0.5)
    assert res.train_error == 0.0 and res.test_error == 0.0
    assert res.max_train_residual < 1e-8
    assert res.rkhs_norm == pytest.approx(res.rkhs_norm_check, rel=1e-8)


def test_bad_kernel_arguments():
    with pytest.raises(UsageError, match="gamma"):
        kernels.gaussian_kernel(torch.ones(2, 2), gamma=0)
    with pytest.raises(UsageError, match="features"):
        kernels.gaussian_kernel(torch.ones(2, 2), torch.ones(2, 3), gamma=1.0)
    with pytest.raises(UsageError, match="unknown dataset"):
        kernels.load_pixels("imagenet")


def test_gabor_bank_is_admissible():
    bank = features.gabor_bank()
    assert bank.shape[0] == len(features.GABOR_WAVELENGTHS) * features.GABOR_ORIENTATIONS
    assert bank.shape[-1] % 2 == 1
    assert float(bank.sum(dim=(1, 2)).abs().max()) < 1e-6          # no DC response


def test_gabor_features_equal_direct_convolution():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 1, 28, 28, generator=g)
    f = features.gabor_features(x)
    assert f.shape == (5, (1 + 16) * 14 * 14)
    bank = features.gabor_bank().to(torch.complex128)
    s = bank.shape[-1]
    conv = lambda w: F.conv2d(x.double(), w.flip(-1, -2)[:, None], padding=s // 2)   # noqa: E731
    mod = torch.sqrt(conv(bank.real) ** 2 + conv(bank.imag) ** 2)
    ref = F.avg_pool2d(torch.cat([x.double(), mod], dim=1), 2).flatten(1)
    assert torch.allclose(f.double(), ref, atol=1e-5)


def test_gabor_features_of_colour_images_and_bad_shapes():
    f = features.gabor_features(torch.rand(2, 3, 8, 8), wavelengths=(2.0,), orientations=2)
    assert f.shape == (2, 3 * 3 * 4 * 4)
    with pytest.raises(UsageError, match=r"\(N, C, H, W\)"):
        features.gabor_features(torch.rand(2, 8, 8))


def test_matched_gamma_keeps_gamma_times_median():
    x = torch.rand(50, 4, generator=torch.Generator().manual_seed(3))
    m1, m2 = features.median_sq_distance(x), features.median_sq_distance(3 * x)
    assert m2 == pytest.approx(9 * m1)
    assert features.matched_gamma(0.02, m1, m2) == pytest.approx(0.02 / 9)


def test_random_conv_gram_equals_explicit_features():
    g = torch.Generator().manual_seed(4)
    xtr, xte = torch.rand(6, 3, 10, 10, generator=g), torch.rand(4, 3, 10, 10, generator=g)
    ktr, kte = features.random_conv_gram(xtr, xte, num_filters=7, block=3,
                                         generator=torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    filters = torch.cat([features.random_filters(3, 3, generator=gen),
                         features.random_filters(3, 3, generator=gen),
                         features.random_filters(1, 3, generator=gen)])
    ptr = features.random_conv_features(xtr, filters).double() / math.sqrt(28)
    pte = features.random_conv_features(xte, filters).double() / math.sqrt(28)
    assert torch.allclose(ktr, ptr @ ptr.T, rtol=1e-5) and torch.allclose(kte, pte @ ptr.T, rtol=1e-5)
    assert features.random_conv_features(xtr, filters).shape == (6, 4 * 7)


# ----------------------------------------------------------------------------- the tiled solver

def _toy_digits(n, n_test, seed=5):
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(4, 12, generator=g) * 3
    y = torch.randint(0, 4, (n + n_test,), generator=g)
    x = centers[y] + 0.5 * torch.rand(n + n_test, 12, generator=g)
    return x[:n], y[:n], x[n:], y[n:]


@pytest.mark.parametrize("n, tile", [(45, 7), (48, 16), (30, 64)])
def test_tiled_solver_equals_dense_end_to_end(n, tile):
    """The tiled path computes what the dense one does: alpha, RKHS norm, condition estimate,
    predictions and errors, to ~1e-10 relative, with n a multiple of the tile or not."""
    xtr, ytr, xte, yte = _toy_digits(n, 20)
    dense = kernels.kernel_classification(xtr, ytr, xte, yte, num_classes=4, gamma=0.3, solver="dense")
    til = kernels.kernel_classification(xtr, ytr, xte, yte, num_classes=4, gamma=0.3,
                                        solver="tiled", tile=tile)
    assert (dense.solver, til.solver, dense.tile, til.tile) == ("dense", "tiled", None, tile)
    assert dense.method == til.method == "cholesky"
    assert dense.cond1 > 1e3                      # a system where round-off could show
    assert til.rkhs_norm == pytest.approx(dense.rkhs_norm, rel=1e-10)
    assert til.rkhs_norm_check == pytest.approx(dense.rkhs_norm_check, rel=1e-10)
    assert til.cond1 == pytest.approx(dense.cond1, rel=1e-10)
    assert (til.train_error, til.test_error) == (dense.train_error, dense.test_error)
    assert til.max_train_residual < 1e-8 and dense.max_train_residual < 1e-8
    assert til.kernel_gb < dense.kernel_gb or n <= tile
    assert set(til.seconds) == set(dense.seconds) == {"kernel", "factor", "solve", "predict"}
    Y = F.one_hot(ytr, 4).double()
    fd = kernels.fit_kernel_interpolant(xtr, Y, gamma=0.3, solver="dense")
    ft = kernels.fit_kernel_interpolant(xtr, Y, gamma=0.3, solver="tiled", tile=tile)
    rel = float((ft.alpha - fd.alpha).abs().max() / fd.alpha.abs().max())
    assert rel <= 1e-10
    assert float((ft.predict(xte) - fd.predict(xte)).abs().max()) <= 1e-10 * float(fd.predict(xte).abs().max())


def test_choose_solver_dense_when_it_fits_else_tiled():
    GB = 10**9
    # the paper's 60k MNIST: 28.8 GB dense fits an 80 GB GPU, not a 24 GiB machine (14.9 GB tiled does)
    assert kernels.choose_solver(60_000, "cuda", available=79 * GB) == "dense"
    assert kernels.choose_solver(60_000, "cpu", available=24 * 2**30) == "tiled"
    assert kernels.choose_solver(4_000, "cpu", available=24 * 2**30) == "dense"
    assert kernels.choose_solver(60_000, "cpu", "dense", available=1) == "dense"   # forced
    assert kernels.choose_solver(10, "cpu", "tiled", available=10**12) == "tiled"
    with pytest.raises(UsageError, match=r"60000 x 60000 float64 kernel needs 28.8 GB dense or 14.9 GB"):
        kernels.choose_solver(60_000, "cpu", available=8 * GB)
    with pytest.raises(UsageError, match="unknown kernel solver 'blockwise'"):
        kernels.choose_solver(10, "cpu", "blockwise")
    with pytest.raises(UsageError, match="tile must be a positive int"):
        kernels.choose_solver(10, "cpu", tile=0)


def test_auto_solver_goes_tiled_when_memory_is_short(monkeypatch):
    xtr, ytr, xte, yte = _toy_digits(30, 10)
    monkeypatch.setattr(kernels, "available_memory_bytes", lambda device: 30 * 30 * 8)   # 80% < n^2
    res = kernels.kernel_classification(xtr, ytr, xte, yte, num_classes=4, gamma=0.3, tile=8)
    assert res.solver == "tiled" and res.tile == 8 and res.train_error == 0.0
    monkeypatch.setattr(kernels, "available_memory_bytes", lambda device: 10**12)
    res = kernels.kernel_classification(xtr, ytr, xte, yte, num_classes=4, gamma=0.3, tile=8)
    assert res.solver == "dense" and res.tile is None
    assert res.peak_rss_gb is None or res.peak_rss_gb > 0


def test_tiled_solver_refuses_a_singular_kernel_with_a_clear_error():
    x = torch.rand(6, 3, generator=torch.Generator().manual_seed(0))
    x = torch.cat([x, x[2:3]])                     # a repeated point: K is singular
    Y = torch.eye(7, dtype=torch.float64)[:, :2]
    with pytest.raises(tiled.NotPositiveDefinite, match=r"diagonal entry 6 .*no LU fallback.*solver='dense'"):
        kernels.fit_kernel_interpolant(x, Y, gamma=1.0, solver="tiled", tile=3)


def test_bad_solver_arguments():
    x, Y = torch.rand(5, 2), torch.ones(5, 1, dtype=torch.float64)
    with pytest.raises(UsageError, match="tile must be a positive int"):
        kernels.fit_kernel_interpolant(x, Y, gamma=1.0, solver="tiled", tile=-1)
    with pytest.raises(UsageError, match="unknown kernel solver"):
        kernels.fit_kernel_interpolant(x, Y, gamma=1.0, solver="Tiled")
    with pytest.raises(UsageError, match="gamma"):
        kernels.fit_kernel_interpolant(x, Y, gamma=-1.0, solver="tiled")


def test_available_memory_is_positive_and_at_most_the_machine():
    import os
    avail = linalg.available_memory_bytes("cpu")
    assert 0 < avail <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(1, 30), st.integers(1, 35), st.integers(1, 6), st.floats(0.05, 5.0),
       st.integers(0, 2**31 - 1))
def test_tiled_fit_equals_dense_fit(n, tile, d, gamma, seed):
    """Property: on any well-conditioned Gaussian kernel system, any tile size, the tiled fit's
    alpha, RKHS norm and condition estimate are the dense Cholesky fit's to 1e-10 relative."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=torch.float64) * 3
    Y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    assume(float(torch.linalg.cond(_direct_kernel(X, X, gamma), 1)) < 1e6)
    dense = kernels.fit_kernel_interpolant(X, Y, gamma=gamma, solver="dense")
    til = kernels.fit_kernel_interpolant(X, Y, gamma=gamma, solver="tiled", tile=tile)
    assert dense.method == til.method == "cholesky"
    assert float((til.alpha - dense.alpha).abs().max()) <= 1e-10 * float(dense.alpha.abs().max())
    assert til.rkhs_norm == pytest.approx(dense.rkhs_norm, rel=1e-10)
    assert til.cond1 == pytest.approx(dense.cond1, rel=1e-10)
    assert til.kernel_bytes == tiled.tiled_bytes(n, tile) and til.K is None


# ----------------------------------------------------------------------------- issue 17, item 5

_PEAK_SCRIPT = """
import resource, sys, torch
from rethinkbench.theory import kernels
n = int(sys.argv[1])
X = torch.rand(n, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
K = kernels.gaussian_kernel(X, gamma=0.5)
K.diagonal().add_(1e-3)
Y = torch.nn.functional.one_hot(torch.arange(n) % 10, 10).double()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
alpha, method, quad, cond = kernels.solve_kernel_system(K, Y, overwrite=True)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
K = kernels.gaussian_kernel(X, gamma=0.5)
K.diagonal().add_(1e-3)
print(grown / (n * n * 8), method, float((K @ alpha - Y).abs().max()))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads ru_maxrss in KiB, as Linux reports it")
def test_the_in_place_dense_solve_adds_no_second_matrix_to_peak_memory():
    """At 60k a second n x n float64 matrix is 28.8 GB: the dense path must factor and solve in
    K's own memory. Before issue 17's fix the peak grew by 1.15 matrices at n = 3000 (|K| copy,
    column-major proxy of the factor, cholesky_solve's clone); now by 0.23 (LAPACK's workspace,
    the 1-norm's row chunks). Rejected above half a matrix. A fresh process: ru_maxrss is a peak."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, "3000"], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    grown, method, residual = float(out[0]), out[1], float(out[2])
    assert method == "cholesky" and residual < 1e-8
    assert grown < 0.5, f"peak memory grew by {grown:.2f} kernel matrices"


def test_the_one_norm_is_summed_in_chunks_and_exact():
    K = torch.randn(70, 70, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert kernels._norm1(K) == pytest.approx(float(K.abs().sum(0).max()), rel=1e-14)
    assert kernels._norm1(K) == pytest.approx(float(torch.linalg.matrix_norm(K, ord=1)), rel=1e-14)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by scripts/gpu_check.sh)")
def test_the_dense_solve_on_cuda_stays_within_one_matrix_and_a_quarter():
    n = 8000
    X = torch.rand(n, 50, dtype=torch.float64, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    K = kernels.gaussian_kernel(X, gamma=0.5)
    K.diagonal().add_(1e-3)
    Y = F.one_hot(torch.arange(n, device="cuda") % 10, 10).double()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    alpha, method, *_ = kernels.solve_kernel_system(K, Y, overwrite=True)
    torch.cuda.synchronize()
    extra = (torch.cuda.max_memory_allocated() - base) / (n * n * 8)
    assert method == "cholesky"
    assert extra < 0.25, f"the solve allocated {extra:.2f} kernel matrices beyond K"
