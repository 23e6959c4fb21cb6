"""Unit and property tests of rethinkbench.theory / rethinkbench.theory.linear (Zhang et al. §4, §5).

The properties are the claims' own (claims/test_theory.py runs them with more examples and records
the evidence); here they run with a small, bounded example count so `pytest` stays fast.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rethinkbench import theory

from rethinkbench.theory import linear
from rethinkbench.base.errors import UsageError
from rethinkbench.theory.testing import check_theorem1, point_sets

FAST = settings(max_examples=25, deadline=None, derandomize=True)


@FAST
@given(point_sets())
def test_theorem1_fits_any_targets_with_2n_plus_d_weights(data):
    check_theorem1(*data)


@FAST
@given(point_sets(max_n=8, max_d=3), st.integers(3, 7))
def test_deepened_net_is_the_same_function_with_width_n_over_k(data, depth):
    x, y = data
    net = theory.fit_any_labeling(x, y)
    deep = theory.deepen(net, depth)
    n, d = net.fit_info.n, x.shape[1]
    k = 1 if y.ndim == 1 else y.shape[1]
    stats = theory.layer_stats(deep)
    assert len(stats) == depth and theory.hidden_widths(deep) == [s["width"] for s in stats[:-1]]
    m = math.ceil(n / (depth - 2))
    assert stats[0]["width"] == 1 and stats[0]["nonzero"] <= d + 1
    for s in stats[1:-1]:
        assert s["width"] <= m + 1 + 2 * k
        assert s["nonzero"] <= (2 * k + 2) * m + 4 * k + 1
    out = deep(x)
    assert out.shape == y.shape
    scale = float(y.abs().max()) or 1.0
    assert float((out - y).abs().max()) <= 1e-6 * scale
    # and off the data too: the same piecewise-linear function everywhere
    spread = float((x.max() - x.min()).clamp(min=1.0))
    probe = x[:1] + torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None] * spread
    assert torch.allclose(deep(probe), net(probe), rtol=1e-9, atol=1e-9 * scale)


def test_theorem1_on_one_point_and_on_images():
    assert check_theorem1(torch.tensor([[3.0, -1.0]], dtype=torch.float64), torch.tensor([7.0]))["n"] == 1
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(30, 1, 4, 4, generator=g)
    labels = torch.randint(0, 5, (30,), generator=g)
    y = torch.nn.functional.one_hot(labels, 5).double()
    net = theory.fit_any_labeling(imgs, y)
    assert bool((net(imgs).argmax(1) == labels).all())
    assert net.fit_info.num_weights == 16 + 30 + 30 * 5


def test_midway_kinks_are_worse_conditioned_than_the_default():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(300, 20, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (300,), generator=g).double()
    mid = theory.fit_any_labeling(x, y, kink=0.5).fit_info
    default = theory.fit_any_labeling(x, y).fit_info
    assert default.cond1 < mid.cond1
    assert default.max_abs_error <= 1e-9


def test_duplicates_with_different_targets_name_the_indices():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [5.0, 5.0]])
    with pytest.raises(ValueError, match=r"x\[0\] == x\[2\]"):
        theory.fit_any_labeling(x, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    net = theory.fit_any_labeling(x, torch.tensor([1.0, 2.0, 1.0, 4.0]))   # same target: fine
    assert net.fit_info.n == 3 and net.fit_info.num_weights == 2 * 3 + 2
    assert torch.allclose(net(x), torch.tensor([1.0, 2.0, 1.0, 4.0], dtype=torch.float64))


@pytest.mark.parametrize("x, y, match", [
    (torch.ones(3), torch.ones(3), "x must be"),
    (torch.rand(3, 2), torch.ones(4), "3 points but y has 4"),
    (torch.rand(3, 2), torch.ones(3, 2, 1), "y must be"),
    (torch.tensor([[0.0], [float("nan")]]), torch.ones(2), "NaN"),
    (torch.rand(2, 2), torch.tensor([1.0, float("inf")]), "NaN or infinite"),
    (torch.rand(0, 2), torch.ones(0), "at least one point"),
])
def test_bad_inputs_are_clear_errors(x, y, match):
    with pytest.raises(ValueError, match=match):
        theory.fit_any_labeling(x, y)


def test_bad_options_are_clear_errors():
    x, y = torch.rand(3, 2), torch.ones(3)
    with pytest.raises(UsageError, match="kink"):
        theory.fit_any_labeling(x, y, kink=1.0)
    with pytest.raises(UsageError, match="depth"):
        theory.deepen(theory.fit_any_labeling(x, y), 2)


def test_points_too_close_for_float64_are_refused():
    x = torch.tensor([[1.0], [1.0 + 2**-52]], dtype=torch.float64)
    with pytest.raises(UsageError, match="too close|separates"):
        theory.fit_any_labeling(x, torch.tensor([0.0, 1.0]))


# ----------------------------------------------------------------------------- §5 linear models

@st.composite
def wide_problems(draw, max_n=8):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(n + 1, 3 * n + 4))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    return X, torch.randn(n, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(wide_problems(max_n=5))
def test_sgd_from_zero_stays_in_row_space_and_finds_the_min_norm_solution(problem):
    X, y, w0 = problem
    res = linear.sgd_least_squares(X, y, max_epochs=20_000)
    assert linear.row_space_distance(X, res.w) <= 1e-10
    w_star = linear.min_norm_solution(X, y)
    if res.converged:   # guaranteed for these shapes in practice; the bound needs it
        assert float((res.w - w_star).norm()) <= 1e-8 * float(w_star.norm())
    # from w0 != 0: the row-space part converges, the rest of w0 stays untouched
    res0 = linear.sgd_least_squares(X, y, w0=w0, max_epochs=20_000)
    null = linear.null_space_component(X, w0)
    if res0.converged:
        assert float((res0.w - (w_star + null)).norm()) <= 1e-8 * float((w_star + null).norm())
        assert float((res0.w - w_star).norm()) == pytest.approx(float(null.norm()), rel=1e-6)
    assert res.converged and res0.converged


def test_hessian_is_the_same_at_two_interpolants_and_differs_for_a_nonlinear_model():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(5, 12, generator=g, dtype=torch.float64)
    y = torch.randn(5, generator=g, dtype=torch.float64)
    w1 = linear.min_norm_solution(X, y)
    w2 = w1 + linear.null_space_component(X, torch.randn(12, generator=g, dtype=torch.float64))
    assert torch.allclose(X @ w2, y) and not torch.allclose(w1, w2)
    H1, H2 = linear.least_squares_hessian(X, y, w1), linear.least_squares_hessian(X, y, w2)
    assert torch.equal(H1, H2)
    assert torch.allclose(H1, X.T @ X / 5)
    # Control: the same check has power. A two-layer linear net x -> <x, u> v has the same
    # interpolant at (u, v) and (2u, v/2), and different Hessians there.
    def two_layer(theta):
        u, v = theta[:12], theta[12]
        return 0.5 * ((X @ u * v - y) ** 2).mean()
    t1, t2 = torch.cat([w1, w1.new_ones(1)]), torch.cat([2 * w1, w1.new_full((1,), 0.5)])
    assert torch.allclose(X @ t2[:12] * t2[12], y)
    h = lambda t: torch.autograd.functional.hessian(two_layer, t)   # noqa: E731
    assert not torch.allclose(h(t1), h(t2))


def test_sgd_rejects_bad_shapes():
    with pytest.raises(UsageError, match="X must be"):
        linear.sgd_least_squares(torch.ones(3, 2), torch.ones(2))
    with pytest.raises(UsageError, match="w0"):
        linear.sgd_least_squares(torch.ones(3, 2), torch.ones(3), w0=torch.ones(3))


def test_sgd_is_deterministic_given_its_generator():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(4, 9, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    a = linear.sgd_least_squares(X, y, max_epochs=3, generator=torch.Generator().manual_seed(5)).w
    b = linear.sgd_least_squares(X, y, max_epochs=3, generator=torch.Generator().manual_seed(5)).w
    assert torch.equal(a, b) and np.isfinite(a.numpy()).all()
