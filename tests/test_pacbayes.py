"""rethinkbench.measures.pacbayes: closed-form values, properties, the optimizer on a tiny network,
and the errors bad input gets."""
import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from rethinkbench.base.errors import UsageError
from rethinkbench.base.threads import intra_op_threads
from rethinkbench.measures import pacbayes as PB


@pytest.fixture(autouse=True)
def one_thread():
    with intra_op_threads(1):   # tiny tensors: thread hand-offs would cost more than the work
        yield


# ----------------------------------------------------------------------------- kl and its inverse

def test_kl_bernoulli_closed_form():
    assert PB.kl_bernoulli(0.5, 0.5) == 0.0
    assert PB.kl_bernoulli(0.0, 0.5) == pytest.approx(math.log(2))
    assert PB.kl_bernoulli(0.1, 0.2) == pytest.approx(0.1 * math.log(0.5) + 0.9 * math.log(0.9 / 0.8))
    assert PB.kl_bernoulli(0.3, 0.0) == math.inf


def test_kl_inverse_known_values():
    assert PB.kl_inverse(0.2, 0.0) == pytest.approx(0.2)
    assert PB.kl_inverse(0.0, 0.1) == pytest.approx(1 - math.exp(-0.1), abs=1e-12)   # 0.0952
    assert PB.kl_inverse(1.0, 0.3) == 1.0
    assert PB.kl_inverse(0.4, math.inf) == 1.0
    # kl(0.028 || p) = ln(2/0.01)/150,000 solved independently: p = 0.02941 (the paper's n, delta').
    assert PB.sample_convergence_bound(0.028, 150_000, 0.01) == pytest.approx(0.02941, abs=5e-5)
    # tighter than the square-root (Pinsker) form q + sqrt(c/2), never below q
    assert 0.05 < PB.kl_inverse(0.05, 0.1) < 0.05 + math.sqrt(0.05)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 0.999), st.floats(1e-6, 5.0), st.floats(1e-6, 5.0))
def test_kl_inverse_inverts_and_is_monotone(q, c1, c2):
    p = PB.kl_inverse(q, c1)
    assert q <= p <= 1.0
    assume(p < 1 - 1e-6)    # beyond that, float64 cannot resolve 1 - p (q near 1, large c)
    assert PB.kl_bernoulli(q, p) == pytest.approx(c1, rel=1e-6, abs=1e-9)
    lo, hi = sorted((c1, c2))
    assert PB.kl_inverse(q, lo) <= PB.kl_inverse(q, hi)


# ----------------------------------------------------------------------------- KL and the budget

def test_gaussian_kl_matches_the_formula_and_torch():
    g = torch.Generator().manual_seed(0)
    mean, prior_mean = torch.randn(50, generator=g), torch.randn(50, generator=g)
    var, lam = torch.rand(50, generator=g) + 0.1, 0.7
    want = 0.5 * float(((var + (mean - prior_mean) ** 2) / lam - 1 + math.log(lam) - var.log()).sum())
    assert PB.gaussian_kl(mean, var, prior_mean, lam) == pytest.approx(want, rel=1e-6)   # want: float32
    q = torch.distributions.Normal(mean.double(), var.double().sqrt())
    p = torch.distributions.Normal(prior_mean.double(), math.sqrt(lam))
    assert PB.gaussian_kl(mean, var, prior_mean, lam) == pytest.approx(float(torch.distributions.kl_divergence(q, p).sum()))
    assert PB.gaussian_kl(prior_mean, torch.full((50,), lam), prior_mean, lam) == pytest.approx(0.0, abs=1e-12)


def test_budget_and_grid():
    assert PB.prior_variance(100, b=100, c=0.1) == pytest.approx(0.1 / math.e)
    m, delta = 55_000, 0.025
    want = (5144 + 2 * math.log(400) + math.log(math.pi ** 2 * m / (6 * delta))) / (m - 1)
    assert PB.bound_budget(5144, m, 400, delta) == pytest.approx(want)
    # The paper's R-600 figure: KL 201,131 at m = 55,000 gives sqrt(B_RE/2) ~ 1.352.
    assert math.sqrt(PB.bound_budget(201_131, 55_000, 600) / 2) == pytest.approx(1.352, abs=2e-3)


# ----------------------------------------------------------------------------- the posterior

def _net(seed, hidden=8, d=6):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def _data(n=64, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 1, d, generator=g)
    y = (x.flatten(1)[:, 0] > 0).long()
    return x, y


def test_trivial_posterior_bound():
    """Q = P (mean at the init, s = lambda_j): KL = 0, so the bound is kl^-1(q, B_RE) with the
    Monte Carlo q, computed here by hand."""
    net = _net(0)
    x, y = _data()
    post = PB.GaussianPosterior(net, net, x)
    j = 300
    lam = PB.prior_variance(j)
    with torch.no_grad():
        for r in post.rho:
            r.fill_(0.5 * math.log(lam))
        post.eta.fill_(0.5 * math.log(lam))
    out = PB.evaluate(post, x, y, passes=3, seed=1)
    assert out.kl == pytest.approx(0.0, abs=1e-6)
    assert out.prior_index == j
    budget = (2 * math.log(j) + math.log(math.pi ** 2 * 64 / (6 * 0.025))) / 63
    assert out.budget == pytest.approx(budget, rel=1e-6)
    q = PB.kl_inverse(out.train_error, math.log(2 / 0.01) / (3 * 64))
    assert out.train_error_upper == pytest.approx(q)
    assert out.bound == pytest.approx(PB.kl_inverse(q, budget))
    assert out.mcallester_term == pytest.approx(math.sqrt(budget / 2))


def test_per_example_draws_have_the_right_distribution():
    """One Linear layer: the local reparameterization's draws for one input have the mean and
    variance of a * w with w ~ N(mean, s)."""
    lin = nn.Linear(3, 2)
    net = nn.Sequential(lin)
    post = PB.GaussianPosterior(net, net, torch.zeros(1, 3))
    with torch.no_grad():
        post.rho[0].fill_(math.log(0.5))     # s = 0.25 on the weights
        post.rho[1].fill_(math.log(0.1))     # s = 0.01 on the biases
    a = torch.tensor([[1.0, -2.0, 0.5]]).expand(20_000, 3)
    out = post(a, torch.Generator().manual_seed(0)).detach()
    mu = lin(a[:1]).detach()[0]
    assert out.mean(0) == pytest.approx(mu.tolist(), abs=0.02)
    assert out.var(0) == pytest.approx([0.25 * 5.25 + 0.01] * 2, rel=0.05)


def test_mean_network_is_the_trained_network():
    net = _net(1)
    x, _ = _data()
    post = PB.GaussianPosterior(net, _net(2), x)
    assert torch.allclose(post(x), net(x), atol=1e-6)


def test_optimizer_lowers_the_bound_and_is_deterministic():
    x, y = _data(n=200)
    init = _net(3, hidden=16)
    net = _net(3, hidden=16)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    weights = [p.detach().clone() for p in net.parameters()]
    before = PB.pac_bayes_bound(net, init, x, y, steps=0, passes=4, seed=0)
    after = PB.pac_bayes_bound(net, init, x, y, steps=100, passes=4, lr=1e-3, scale_lr=1e-2, seed=0,
                               record_every=50)
    assert after.bound < before.bound
    assert [h["step"] for h in after.history] == [50, 100]
    one, two = (PB.pac_bayes_bound(net, init, x, y, steps=20, passes=1, seed=5) for _ in range(2))
    assert one.bound == two.bound and one.kl == two.kl
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters()))   # the network is untouched


def test_paper_start_uses_s_equal_abs_w():
    net = _net(4)
    x, y = _data()
    post = PB.GaussianPosterior(net, _net(5), x)
    s = (2 * post.rho[0]).exp()
    assert torch.allclose(s, net[1].weight.detach().abs().clamp_min(1e-8), rtol=1e-5)
    assert float((2 * post.eta.detach()).exp()) == pytest.approx(math.exp(-6), rel=1e-6)


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, match", [
    (lambda: PB.kl_inverse(1.5, 0.1), "probability"),
    (lambda: PB.kl_inverse(0.1, -1.0), "budget"),
    (lambda: PB.sample_convergence_bound(0.1, 0, 0.01), "draws"),
    (lambda: PB.sample_convergence_bound(0.1, 10, 1.0), "delta_prime"),
    (lambda: PB.bound_budget(10.0, 100, 5, delta=0.0), "delta"),
    (lambda: PB.bound_budget(10.0, 1, 5), "m must"),
    (lambda: PB.bound_budget(-1.0, 100, 5), "KL"),
    (lambda: PB.prior_variance(0), "j must"),
    (lambda: PB.gaussian_kl(torch.zeros(3), torch.ones(2), torch.zeros(3), 1.0), "one shape"),
    (lambda: PB.gaussian_kl(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.zeros(2), 1.0), "variance"),
    (lambda: PB.gaussian_kl(torch.zeros(2), torch.ones(2), torch.zeros(2), 0.0), "prior_var"),
])
def test_scalar_errors(call, match):
    with pytest.raises(UsageError, match=match):
        call()


def test_input_errors():
    net = _net(0)
    x, y = _data()
    with pytest.raises(UsageError, match="binary"):
        PB.pac_bayes_bound(net, net, x, y + 1, steps=0, passes=1)
    with pytest.raises(UsageError, match="shape"):
        PB.pac_bayes_bound(net, net, x, y[:10], steps=0, passes=1)
    with pytest.raises(UsageError, match="integer class labels"):
        PB.pac_bayes_bound(net, net, x, y.float(), steps=0, passes=1)
    with pytest.raises(UsageError, match="delta must be in"):
        PB.pac_bayes_bound(net, net, x, y, steps=0, passes=1, delta=1.0)
    with pytest.raises(UsageError, match="delta_prime"):
        PB.pac_bayes_bound(net, net, x, y, steps=0, passes=1, delta_prime=0.0)
    with pytest.raises(UsageError, match="passes"):
        PB.pac_bayes_bound(net, net, x, y, steps=0, passes=0)
    with pytest.raises(UsageError, match="steps"):
        PB.pac_bayes_bound(net, net, x, y, steps=-1, passes=1)
    with pytest.raises(UsageError, match="unknown init"):
        PB.pac_bayes_bound(net, net, x, y, steps=0, passes=1, init="zeros")
    with pytest.raises(UsageError, match="x_test and y_test"):
        PB.pac_bayes_bound(net, net, x, y, x, None, steps=0, passes=1)
    with pytest.raises(UsageError, match="2 output logits"):
        three = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
        PB.GaussianPosterior(three, three, x)
    with pytest.raises(UsageError, match="same architecture"):
        PB.GaussianPosterior(net, _net(0, hidden=9), x)
    with pytest.raises(UsageError, match="Conv2d"):
        conv = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(12, 2))
        PB.GaussianPosterior(conv, conv, x)
