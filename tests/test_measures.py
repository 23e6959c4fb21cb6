"""Margins and norm measures (rethinkbench/measures/) on tiny networks with closed-form values."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from rethinkbench.base.errors import UsageError
from rethinkbench.harness.models import build_model
from rethinkbench.measures import margins as M
from rethinkbench.measures import norms as N


def two_layer(w1, w2, b1=None):
    net = nn.Sequential(nn.Linear(len(w1[0]), len(w1), bias=b1 is not None), nn.ReLU(),
                        nn.Linear(len(w2[0]), len(w2), bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1, dtype=torch.float64))
        if b1 is not None:
            net[0].bias.copy_(torch.tensor(b1, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor(w2, dtype=torch.float64))
    return net


X2 = torch.ones(1, 2, dtype=torch.float64)


# ----------------------------------------------------------------------------- margins

def test_margins_closed_form():
    out = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [2.0, 2.0, -1.0]])
    np.testing.assert_allclose(M.margins_of(out, torch.tensor([0, 2, 1])).numpy(), [1.0, -4.0, 0.0])


def test_margins_of_a_model_and_percentile():
    net = two_layer([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[3.0, 1.0], [0.0, 2.0]], dtype=torch.float64)
    np.testing.assert_allclose(M.margins(net, x, torch.tensor([0, 0])), [2.0, -2.0])
    assert M.margin_percentile(np.arange(101.0), 5) == 5.0


def test_margin_errors():
    out = torch.zeros(2, 3)
    with pytest.raises(UsageError, match=r"labels must lie in \[0, 2\]"):
        M.margins_of(out, torch.tensor([0, 3]))
    with pytest.raises(UsageError, match="one label per output row"):
        M.margins_of(out, torch.tensor([0]))
    with pytest.raises(UsageError, match="K >= 2"):
        M.margins_of(torch.zeros(2, 1), torch.tensor([0, 0]))
    with pytest.raises(UsageError, match="at least one margin"):
        M.margin_percentile([])
    with pytest.raises(UsageError, match=r"percentile q must be in \[0, 100\], got 101"):
        M.margin_percentile([1.0], 101)
    with pytest.raises(UsageError, match="spectral_complexity must be positive, got 0"):
        M.normalized_margins([1.0], 0, 1.0, 1)


def test_normalized_margins_and_data_norm():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert M.data_norm(x) == 5.0
    np.testing.assert_allclose(M.normalized_margins([2.0, 4.0], 4.0, 5.0, 2), [0.2, 0.4])


def test_separation_auc_against_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    assert M.separation_auc(a, b) == pytest.approx(brute)
    assert M.separation_auc([2.0, 3.0], [0.0, 1.0]) == 1.0
    with pytest.raises(UsageError, match="values on both sides, got 0 and 1"):
        M.separation_auc([], [1.0])


def test_measured_runs_keep_their_networks():
    """The runs the B/N claims read keep their trained networks whichever claim asks first."""
    from rethinkbench.suite import protocols
    assert all(o["keep_model"] for p in protocols.MEASURE_LEVELS for o in protocols.label_noise("mlp1x512", p, [0, 1]))
    assert all("keep_model" not in o for o in protocols.label_noise("mlp1x512", 0.2, [0]))
    assert all(o["keep_model"] and o["n_train"] == 500 for o in protocols.capacity("mlp1x512", 0.8, 500, 4000, [0, 1]))
    assert all(o["n_train"] is None for o in protocols.capacity("mlp1x512", 0.8, 4000, 4000, [0]))
    assert all("keep_model" not in o for o in protocols.label_noise("mlp3x512", 1.0, [0]))
    assert all("keep_model" not in o for o in protocols.randomization("mlp1x512", "random_labels", [0], weight_decay=1e-4))


# ----------------------------------------------------------------------------- norms

def test_layer_norms_and_spectral_complexity_closed_form():
    net = two_layer([[3.0, 0.0], [0.0, 1.0]], [[2.0, 0.0]])
    rows = N.layer_norms(net, X2)
    assert [r["spectral"] for r in rows] == pytest.approx([3.0, 2.0])
    assert [r["frobenius"] for r in rows] == pytest.approx([math.sqrt(10), 2.0])
    assert [r["two_one"] for r in rows] == pytest.approx([4.0, 2.0])
    assert N.lipschitz(net, X2) == pytest.approx(6.0)
    want = 6.0 * ((4 / 3) ** (2 / 3) + 1.0) ** 1.5
    assert N.spectral_complexity(net, X2) == pytest.approx(want)
    # Reference = the network itself: every ||A - M||_{2,1} is 0.
    assert N.spectral_complexity(net, X2, reference=net) == 0.0


def test_path_sums_and_neyshabur_measures_closed_form():
    net = two_layer([[1.0, 2.0], [3.0, -4.0]], [[1.0, -1.0]], b1=[5.0, 5.0])   # biases are left out
    assert N.path_sum(net, X2, 1) == pytest.approx(10.0)      # 1*(1+2) + 1*(3+4)
    assert N.path_sum(net, X2, 2) == pytest.approx(30.0)      # 1*(1+4) + 1*(9+16)
    m = N.neyshabur_measures(net, X2, gamma=2.0)
    assert m["l2"] == pytest.approx(4 * 30.0 * 4 * 2.0 / 4)
    assert m["l1_path"] == pytest.approx((4 * 10.0) ** 2 / 4)
    assert m["l2_path"] == pytest.approx((4 * 2) * (4 * 1) * 30.0 / 4)
    s1 = float(torch.linalg.matrix_norm(torch.tensor([[1.0, 2.0], [3.0, -4.0]]), ord=2))
    assert m["spectral"] == pytest.approx(2 * s1 ** 2 * 1 * 2.0 / 4)
    with pytest.raises(UsageError, match="gamma must be positive.*got -1"):
        N.neyshabur_measures(net, X2, gamma=-1.0)
    with pytest.raises(UsageError, match="exponent p must be positive, got 0"):
        N.path_sum(net, X2, 0)


def explicit_conv_matrix(conv, in_shape):
    """The matrix of x -> conv(x) (no bias), column j = the conv of the j-th basis image."""
    n = math.prod(in_shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    with torch.no_grad():
        out = nn.functional.conv2d(basis, conv.weight.double(), None, conv.stride, conv.padding)
    return out.reshape(n, -1).T


@pytest.mark.parametrize("stride,padding,k", [(1, 1, 3), (2, 1, 3), (1, 0, 2), (2, 2, 5)])
def test_conv_operator_norm_equals_explicit_matrix(stride, padding, k):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, k, stride=stride, padding=padding)
    in_shape = (2, 6, 6)
    want = float(torch.linalg.matrix_norm(explicit_conv_matrix(conv, in_shape), ord=2))
    assert N.conv_operator_norm(conv, in_shape) == pytest.approx(want, rel=1e-6)
    # ... and generally not the norm of the reshaped kernel.
    if (stride, padding, k) == (1, 1, 3):
        kernel = float(torch.linalg.matrix_norm(conv.weight.detach().double().reshape(3, -1), ord=2))
        assert abs(kernel - want) > 1e-3 * want


@settings(max_examples=25, deadline=None)
@given(c=st.floats(0.05, 20.0), seed=st.integers(0, 2 ** 16))
def test_rescaling_a_relu_layer_leaves_function_and_normalized_margin(c, seed):
    """ReLU is positively homogeneous: W1, b1 times c and W2 over c give the same function, and
    R_A (each factor sigma_i and each ratio ||A_i||_{2,1}/sigma_i rescales or cancels) is unchanged."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=g)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    scaled = nn.Sequential(*[nn.Linear(m.in_features, m.out_features) if isinstance(m, nn.Linear) else nn.ReLU()
                             for m in net]).double()
    scaled.load_state_dict(net.state_dict())
    with torch.no_grad():
        scaled[2].weight.mul_(c)
        scaled[2].bias.mul_(c)
        scaled[4].weight.div_(c)
    torch.testing.assert_close(scaled(x), net(x), rtol=1e-9, atol=1e-9)
    n = len(x)
    norm = lambda m: M.normalized_margins(M.margins(m, x, y), N.spectral_complexity(m, x), M.data_norm(x), n)
    np.testing.assert_allclose(norm(scaled), norm(net), rtol=1e-8)


def test_maxpool_lipschitz_factor():
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.MaxPool2d(3, 2, padding=1), nn.Flatten())
    with torch.no_grad():
        net[0].weight.fill_(2.0)
    assert N.lipschitz(net, torch.ones(1, 1, 5, 5)) == pytest.approx(2.0 * 2.0)   # sqrt(ceil(3/2)^2)


def test_builtin_mlp_is_supported():
    net = build_model("mlp1x512", (1, 4, 4), 10, width=0.01)
    x = torch.randn(3, 1, 4, 4)
    assert len(N.layer_norms(net, x)) == 2
    assert N.spectral_complexity(net, x) > 0
    assert set(N.neyshabur_measures(net, x, 1.0)) == {"l2", "l1_path", "l2_path", "spectral"}


@pytest.mark.parametrize("name,module_type", [("alexnet_small", "LocalResponseNorm"),
                                              ("inception_small", "BatchNorm2d")])
def test_conv_builtins_have_layer_norms_but_no_chain_product(name, module_type):
    torch.manual_seed(0)
    net = build_model(name, (1, 12, 12), 10, width=0.0625)
    x = torch.randn(2, 1, 12, 12)
    rows = N.layer_norms(net, x)
    assert rows and all(r["spectral"] > 0 and r["frobenius"] > 0 for r in rows)
    with pytest.raises(UsageError, match=f"is a {module_type}"):
        N.spectral_complexity(net, x)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.b(self.a(x) + x)


def test_unsupported_networks_are_named():
    with pytest.raises(UsageError, match="Residual is not a chain of modules: b"):
        N.lipschitz(Residual(), torch.ones(1, 3))
    bn = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    with pytest.raises(UsageError, match=r"Sequential\.1 is a BatchNorm1d with parameters"):
        N.layer_norms(bn, torch.ones(2, 3))
    maxpool = nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d(2), nn.Flatten())
    with pytest.raises(UsageError, match="is a MaxPool2d"):
        N.path_sum(maxpool, torch.ones(1, 1, 4, 4), 1)
    net = two_layer([[1.0, 0.0]], [[1.0]])
    with pytest.raises(UsageError, match="same architecture"):
        N.spectral_complexity(net, X2, reference=two_layer([[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0]]))
    with pytest.raises(UsageError, match="example batch"):
        N.layer_norms(net, torch.ones(0, 2))


def test_initial_model_is_the_runs_initialization():
    from rethinkbench.engine.config import RunConfig
    from rethinkbench.engine.train import initial_model, train
    cfg = RunConfig(dataset="mnist5k", model="mlp1x512", width=0.02, n_train=64, max_epochs=1,
                    max_steps=1, lr=1e-30, seed=3)
    res = train(cfg, keep_model=True)   # one step of lr 1e-30 leaves the float32 initialization as it was
    init = initial_model(cfg, (1, 28, 28), 10)
    for (k, a), b in zip(res.model.state_dict().items(), init.state_dict().values()):
        torch.testing.assert_close(a.cpu(), b, msg=k)


# ----------------------------------------------------------------------------- per-epoch tracking

def _tiny(**kw):
    from rethinkbench.engine.config import RunConfig
    return RunConfig(dataset="mnist5k", model="mlp1x512", width=0.05, n_train=128, max_epochs=3,
                     stop_at_fit=False, **kw)


def test_track_spectral_leaves_other_runs_as_they_were():
    from rethinkbench.engine.config import RunConfig
    plain, tracked = _tiny(), _tiny(track_spectral=True)
    assert "track_spectral" not in plain.to_dict()            # so its key and cache entry are unchanged
    assert tracked.key() != plain.key()
    assert RunConfig.from_dict(tracked.to_dict()) == tracked
    assert RunConfig.from_dict(plain.to_dict()) == plain
    with pytest.raises(UsageError, match="track_spectral must be True or False, got 1"):
        _tiny(track_spectral=1)


def test_track_spectral_records_every_epoch_without_changing_training():
    from rethinkbench.engine.train import train
    from rethinkbench.measures.tracking import FIELDS
    a, b = train(_tiny()), train(_tiny(track_spectral=True))
    assert len(a.history) == len(b.history) == 3
    for ha, hb in zip(a.history, b.history):
        assert {k: v for k, v in ha.items() if k != "seconds"} == {k: v for k, v in hb.items()
                                                                   if k != "seconds" and k not in FIELDS}
        assert all(k not in ha for k in FIELDS)
        assert hb["lipschitz"] > 0 and hb["spectral_complexity"] >= hb["lipschitz"]
    assert b.final_train_acc == a.final_train_acc


def test_track_spectral_refuses_an_unsupported_network_before_training():
    from rethinkbench.engine.train import train
    cfg = _tiny(track_spectral=True).replace(model="inception_small", width=0.0625, n_train=64)
    with pytest.raises(UsageError, match="is a BatchNorm2d"):
        train(cfg)


# ----------------------------------------------------------------------------- sharpness

def test_expected_sharpness_is_zero_without_noise_and_the_model_is_untouched():
    from rethinkbench.measures.sharpness import expected_sharpness
    net = two_layer([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.tensor([[3.0, 1.0], [0.0, 2.0], [1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0])
    s = expected_sharpness(net, x, y, sigma=0.0, samples=3)
    assert s == {"loss": pytest.approx(1 / 3), "perturbed_loss": pytest.approx(1 / 3), "sharpness": pytest.approx(0.0)}
    big = expected_sharpness(net, x, y, sigma=10.0, samples=50, seed=1, loss="cross_entropy")
    assert big["sharpness"] > 0
    assert big == expected_sharpness(net, x, y, sigma=10.0, samples=50, seed=1, loss="cross_entropy")
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_kl_term_closed_form_and_errors():
    from rethinkbench.measures.sharpness import expected_sharpness, kl_term
    net = two_layer([[3.0, 0.0], [0.0, 4.0]], [[1.0, 0.0]])      # ||w||^2 = 9 + 16 + 1
    assert kl_term(net, sigma=2.0) == pytest.approx(26 / 8)
    assert kl_term(net, sigma=2.0, reference=net) == 0.0
    with pytest.raises(UsageError, match="sigma must be > 0 for the KL term, got 0"):
        kl_term(net, 0.0)
    with pytest.raises(UsageError, match="same architecture"):
        kl_term(net, 1.0, reference=two_layer([[1.0]], [[1.0]]))
    x, y = torch.ones(1, 2, dtype=torch.float64), torch.tensor([0])
    with pytest.raises(UsageError, match="unknown loss 'mse'"):
        expected_sharpness(net, x, y, 0.1, loss="mse")
    with pytest.raises(UsageError, match="samples must be an integer >= 1, got 0"):
        expected_sharpness(net, x, y, 0.1, samples=0)
    with pytest.raises(UsageError, match="sigma must be >= 0, got -1"):
        expected_sharpness(net, x, y, -1.0)


def test_perturbation_std_and_its_kl_closed_form():
    from rethinkbench.measures.sharpness import kl_term, perturbation_std
    net = two_layer([[3.0, 0.0], [0.0, -4.0]], [[1.0, 0.0]])
    std = perturbation_std(net, 0.5)            # the Fig. 2 caption: alpha (10 |w_i| + 1)
    torch.testing.assert_close(std["0.weight"], torch.tensor([[15.5, 0.5], [0.5, 20.5]], dtype=torch.float64))
    torch.testing.assert_close(std["2.weight"], torch.tensor([[5.5, 0.5]], dtype=torch.float64))
    # sum_i w_i^2 / (2 sigma_i^2) at alpha = 1: sigma = 31, 41 and 11 for the weights 3, -4, 1
    assert kl_term(net, perturbation_std(net, 1.0)) == pytest.approx(9 / (2 * 31 ** 2) + 16 / (2 * 41 ** 2) + 1 / (2 * 11 ** 2))
    # relative = 0 is spherical noise of std alpha: ||w||^2 / (2 alpha^2)
    assert kl_term(net, perturbation_std(net, 2.0, relative=0.0)) == pytest.approx(kl_term(net, 2.0)) == pytest.approx(26 / 8)


@settings(max_examples=25, deadline=None)
@given(w=st.lists(st.floats(-3, 3, allow_nan=False), min_size=6, max_size=6),
       alpha=st.floats(1e-3, 1e3), relative=st.floats(0, 20))
def test_kl_scales_as_one_over_alpha_squared_and_ignores_signs(w, alpha, relative):
    """sigma_i is linear in alpha, so KL(alpha) alpha^2 = KL(1) (what kl_at_sharpness relies on);
    and it depends on |w_i| only, so flipping every sign leaves it unchanged."""
    from rethinkbench.measures.sharpness import kl_term, perturbation_std
    net = two_layer([w[0:2], w[2:4]], [w[4:6]])
    neg = two_layer([[-v for v in w[0:2]], [-v for v in w[2:4]]], [[-v for v in w[4:6]]])
    kl1 = kl_term(net, perturbation_std(net, 1.0, relative))
    assert kl_term(net, perturbation_std(net, alpha, relative)) * alpha ** 2 == pytest.approx(kl1, rel=1e-9, abs=1e-12)
    assert kl_term(neg, perturbation_std(neg, alpha, relative)) == pytest.approx(kl_term(net, perturbation_std(net, alpha, relative)))


def test_sharpness_is_zero_at_alpha_zero_and_the_curve_is_kl_over_alpha_squared():
    from rethinkbench.measures.sharpness import expected_sharpness, kl_term, perturbation_std, sharpness_kl_curve
    net = two_layer([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[3.0, 1.0], [0.0, 2.0], [1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0])
    assert expected_sharpness(net, x, y, perturbation_std(net, 0.0), samples=3)["sharpness"] == 0.0
    curve = sharpness_kl_curve(net, x, y, [0.01, 0.1, 1.0, 10.0], samples=20)
    kl1 = kl_term(net, perturbation_std(net, 1.0))
    assert [c["kl"] for c in curve] == pytest.approx([kl1 * 1e4, kl1 * 1e2, kl1, kl1 * 1e-2])
    assert curve[0]["sharpness"] == 0.0 and curve[-1]["sharpness"] > 0.1    # tiny noise flips nothing
    assert curve == sharpness_kl_curve(net, x, y, [0.01, 0.1, 1.0, 10.0], samples=20)   # fixed seed
    stopped = sharpness_kl_curve(net, x, y, [0.01, 0.1, 1.0, 10.0, 100.0], samples=20, stop_above=0.05)
    assert stopped[-1]["sharpness"] > 0.05 and all(c["sharpness"] <= 0.05 for c in stopped[:-1])


def test_kl_at_sharpness_interpolates_in_log_alpha():
    from rethinkbench.measures.sharpness import kl_at_sharpness
    curve = [{"alpha": 1.0, "sharpness": 0.0, "kl": 100.0}, {"alpha": 4.0, "sharpness": 0.2, "kl": 100 / 16},
             {"alpha": 16.0, "sharpness": 0.6, "kl": 100 / 256}]
    assert kl_at_sharpness(curve, 0.1) == pytest.approx(25.0)     # alpha* = 2, KL = 100 / 2^2
    assert kl_at_sharpness(curve, 0.2) == pytest.approx(100 / 16)
    assert kl_at_sharpness(curve, 0.4) == pytest.approx(100 / 64)  # alpha* = 8
    assert math.isnan(kl_at_sharpness(curve, 0.7))               # never reached on the grid
    assert math.isnan(kl_at_sharpness(curve[1:], 0.1))           # reached before the grid starts


def test_max_sharpness_is_at_least_the_linearized_box_maximum():
    """For a linear softmax model the cross-entropy is convex in w, so one sign-gradient step to the
    box's corner raises it by at least sum_i box_i |g_i| (the linearization's maximum)."""
    from rethinkbench.measures.sharpness import max_sharpness
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4)).double()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randint(0, 4, (20,))
    loss = torch.nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    eps = 0.01
    rise = sum(float((eps * (p.detach().abs() + 1) * g.abs()).sum()) for p, g in zip(net.parameters(), grads))
    value = max_sharpness(net, x, y, eps=eps, steps=1)
    assert value >= 100 * rise / (1 + float(loss.detach())) * (1 - 1e-9) > 0
    assert max_sharpness(net, x, y, eps=1e-6) < value
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_sharpness_usage_errors():
    from rethinkbench.measures.sharpness import (expected_sharpness, kl_at_sharpness, kl_term, max_sharpness,
                                                 perturbation_std, sharpness_kl_curve)
    net = two_layer([[3.0, 0.0], [0.0, 4.0]], [[1.0, 0.0]])
    x, y = torch.ones(1, 2, dtype=torch.float64), torch.tensor([0])
    with pytest.raises(UsageError, match="alpha must be a finite number >= 0, got -1"):
        perturbation_std(net, -1.0)
    with pytest.raises(UsageError, match="relative must be a finite number >= 0"):
        perturbation_std(net, 1.0, relative=-2)
    with pytest.raises(UsageError, match=r"sigma must be > 0 for the KL term, got a minimum std of 0"):
        kl_term(net, perturbation_std(net, 0.0))
    with pytest.raises(UsageError, match=r"no std of the right shape for parameter\(s\) \['2.weight'\]"):
        kl_term(net, {"0.weight": torch.ones(2, 2)})
    with pytest.raises(UsageError, match="strictly increasing grid of positive numbers"):
        sharpness_kl_curve(net, x, y, [0.1, 0.01])
    with pytest.raises(UsageError, match="strictly increasing grid of positive numbers"):
        sharpness_kl_curve(net, x, y, [])
    with pytest.raises(UsageError, match="unknown loss 'hinge'"):
        sharpness_kl_curve(net, x, y, [0.1], loss="hinge")
    with pytest.raises(UsageError, match="eps must be > 0, got 0"):
        kl_at_sharpness([{"alpha": 1.0, "sharpness": 0.0, "kl": 1.0}], 0)
    with pytest.raises(UsageError, match="needs a non-empty curve"):
        kl_at_sharpness([], 0.1)
    with pytest.raises(UsageError, match="eps must be > 0, got -0.1"):
        max_sharpness(net, x, y, eps=-0.1)
    with pytest.raises(UsageError, match="steps must be an integer >= 1, got 0"):
        max_sharpness(net, x, y, steps=0)
    with pytest.raises(UsageError, match="sigma must be >= 0, got 'big'"):
        expected_sharpness(net, x, y, "big")
