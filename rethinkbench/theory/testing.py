"""The Theorem 1 property, shared by tests/test_theory.py (few examples, fast) and
claims/test_theory.py (more examples, evidence recorded). Needs Hypothesis (a dev dependency),
imported only when a strategy is built.
"""
from __future__ import annotations

import math

import torch

from rethinkbench import theory


def point_sets(max_n: int = 10, max_d: int = 5):
    """Hypothesis strategy: (x, y) with n <= max_n distinct points in R^d, d <= max_d, and
    arbitrary real targets, scalar (n,) or vector (n, k), k <= 3.

    Points are integer grid points (distinct by construction) under an arbitrary scale in
    [1e-3, 1e3] and shift in [-1e3, 1e3]; targets are any finite float in [-1e6, 1e6].
    """
    from hypothesis import strategies as st   # hypothesis is a dev dependency: only tests build strategies

    @st.composite
    def draw_points(draw):
        d = draw(st.integers(1, max_d))
        n = draw(st.integers(1, max_n))
        grid = draw(st.lists(st.tuples(*[st.integers(-20, 20)] * d), min_size=n, max_size=n,
                             unique=True))
        scale = draw(st.floats(1e-3, 1e3))
        shift = draw(st.floats(-1e3, 1e3))
        x = torch.tensor(grid, dtype=torch.float64) * scale + shift
        k = draw(st.integers(0, 3))           # 0: a scalar target
        shape = (n,) if k == 0 else (n, k)
        vals = draw(st.lists(st.floats(-1e6, 1e6, allow_subnormal=False),
                             min_size=math.prod(shape), max_size=math.prod(shape)))
        return x, torch.tensor(vals, dtype=torch.float64).reshape(shape)

    return draw_points()


def check_theorem1(x: torch.Tensor, y: torch.Tensor, *, rel_tol: float = 1e-6) -> dict:
    """Fit (x, y) with `theory.fit_any_labeling` and assert Theorem 1's properties:

    * exact fit: max |net(x_i) - y_i| <= rel_tol * max |y| (float64);
    * exactly 2n + d weights for a scalar target (d + n + n*k for k columns);
    * A = [max(z_i - b_j, 0)] is exactly lower triangular with the positive diagonal z_i - b_i,
      and its smallest eigenvalue (LAPACK, on A itself) equals min_i (z_i - b_i).
    Returns the measured numbers.
    """
    net = theory.fit_any_labeling(x, y)
    n, d = x.shape
    k = 1 if y.ndim == 1 else y.shape[1]
    out = net(x)
    scale = float(y.abs().max())
    err = float((out - y).abs().max())
    rel = err / scale if scale > 0 else err
    assert out.shape == y.shape, f"output shape {tuple(out.shape)} != target shape {tuple(y.shape)}"
    assert rel <= rel_tol, f"relative error {rel:.3g} > {rel_tol:g} (max |y| = {scale:.3g})"
    weights = sum(p.numel() for p in net.parameters())
    assert weights == d + n + n * k == net.fit_info.num_weights, f"{weights} weights for n={n}, d={d}, k={k}"
    assert k > 1 or weights == 2 * n + d
    A = theory.theorem1_matrix(net, x)
    z = torch.sort(net.projections(x)).values
    diag = z - net.b
    assert bool((torch.triu(A, diagonal=1) == 0).all()), "A is not lower triangular"
    assert bool((diag > 0).all()) and torch.equal(torch.diagonal(A), diag), "diagonal of A != z - b"
    lam = float(torch.linalg.eigvals(A).real.min())
    eig_err = abs(lam - float(diag.min()))
    assert eig_err <= 1e-12 * max(float(diag.min()), float(A.abs().max())), (
        f"smallest eigenvalue {lam!r} != min(z - b) = {float(diag.min())!r}")
    assert net.fit_info.min_eigenvalue == float(diag.min())
    return {"n": n, "d": d, "k": k, "relative_error": rel, "weights": weights,
            "eigenvalue_error": eig_err, "cond1": net.fit_info.cond1}
