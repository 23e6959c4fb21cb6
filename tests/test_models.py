"""The paper's models (rethinkbench/harness/models.py): exact parameter counts, shapes, LRN, bad input."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rethinkbench as rb
from rethinkbench.harness.models import LocalResponseNorm

pytestmark = pytest.mark.usefixtures("single_thread")

# Zhang et al., Appendix A / CLAIMS.md §1: exact, at width 1 on a 28x28x3 input.
# resnet18 is Nakkiran et al.'s (Deep double descent), k = 64: kuangliu/pytorch-cifar's
# PreActResNet18, 11,171,146 (also counted layer by layer in test_resnet18_widths_are_nakkirans).
PAPER_COUNTS = {"mlp1x512": 1_209_866, "mlp3x512": 1_735_178, "alexnet_small": 1_387_786,
                "inception_small": 1_649_402, "inception_small_nobn": 1_649_402, "resnet18": 11_171_146}


def test_every_model_has_a_paper_count():
    assert set(PAPER_COUNTS) == set(rb.MODELS)


@pytest.mark.parametrize("name, count", PAPER_COUNTS.items())
def test_parameter_counts_are_the_papers(name, count):
    net = rb.build_model(name, in_shape=(3, 28, 28), num_classes=10)
    assert rb.count_parameters(net) == count


def _preact_resnet18_count(k: int, c_in: int = 3, classes: int = 10) -> int:
    """Parameters of a pre-activation ResNet18 with stages k, 2k, 4k, 8k, counted by hand: 3x3
    convs without bias, BN with weight and bias, a 1x1 shortcut conv where the shape changes."""
    total, cin = 9 * c_in * k, k
    for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
        c = mult * k
        total += 2 * cin + 9 * cin * c + 2 * c + 9 * c * c          # block 1: BN, conv, BN, conv
        total += cin * c if (stride != 1 or cin != c) else 0         # its shortcut
        total += 2 * c + 9 * c * c + 2 * c + 9 * c * c               # block 2
        cin = c
    return total + 8 * k * classes + classes


@pytest.mark.parametrize("k", [1, 2, 5, 16, 64])
def test_resnet18_widths_are_nakkirans(k):
    """Width k/64 gives Nakkiran et al.'s ResNet18 of width k: stages of k, 2k, 4k, 8k channels."""
    net = rb.build_model("resnet18", in_shape=(3, 28, 28), num_classes=10, width=k / 64)
    assert rb.count_parameters(net) == _preact_resnet18_count(k)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert sorted({m.out_channels for m in convs}) == sorted({k, 2 * k, 4 * k, 8 * k})


def test_resnet18_trains_a_step_at_tiny_width():
    net = rb.build_model("resnet18", in_shape=(1, 28, 28), num_classes=10, width=1 / 64)
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    before = [p.detach().clone() for p in net.parameters()]
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    torch.optim.Adam(net.parameters(), lr=1e-3).step()
    assert all(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_resnet18_refuses_dropout():
    with pytest.raises(rb.UsageError, match="resnet18 has no dropout"):
        rb.build_model("resnet18", width=1 / 64, dropout=0.5)


@pytest.mark.parametrize("name", ["mlp1x512", "alexnet_small", "inception_small"])
def test_dropout_adds_no_parameters(name):
    plain = rb.build_model(name, width=0.25)
    dropped = rb.build_model(name, width=0.25, dropout=0.5)
    assert rb.count_parameters(plain) == rb.count_parameters(dropped)
    assert any(isinstance(m, torch.nn.Dropout) for m in dropped.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())


def test_inception_without_batchnorm_has_no_batchnorm():
    nobn = rb.build_model("inception_small_nobn", width=0.125)
    bn = rb.build_model("inception_small", width=0.125)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nobn.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules())


@pytest.mark.parametrize("name", rb.MODELS)
@pytest.mark.parametrize("in_shape", [(1, 28, 28), (3, 28, 28)])
@pytest.mark.parametrize("width", [0.25, 0.125])
def test_output_shapes(name, in_shape, width):
    net = rb.build_model(name, in_shape=in_shape, num_classes=7, width=width).eval()
    with torch.no_grad():
        out = net(torch.randn(3, *in_shape))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", rb.MODELS)
def test_narrower_models_are_smaller(name):
    counts = [rb.count_parameters(rb.build_model(name, in_shape=(1, 28, 28), width=w))
              for w in (1.0, 0.25, 0.125)]
    assert counts[0] > counts[1] > counts[2]


def test_width_scales_the_mlp_hidden_units_exactly():
    # 784 inputs -> 128 hidden -> 10 outputs, with biases
    net = rb.build_model("mlp1x512", in_shape=(1, 28, 28), width=0.25)
    assert rb.count_parameters(net) == 784 * 128 + 128 + 128 * 10 + 10


# ----------------------------------------------------------------------------- LRN

@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 10), channels=st.integers(1, 20), alpha=st.floats(1e-4, 1.0),
       beta=st.floats(0.1, 1.5), k=st.floats(0.5, 3.0), seed=st.integers(0, 2**31 - 1))
def test_local_response_norm_equals_torchs_with_gradients(size, channels, alpha, beta, k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(2, channels, 5, 4, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    upstream = torch.randn(2, channels, 5, 4, generator=gen, dtype=torch.float64)
    ours = LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)(x)
    ref = torch.nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)(x)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    (g_ours,) = torch.autograd.grad(ours, x, upstream)
    (g_ref,) = torch.autograd.grad(ref, x, upstream)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)


def test_alexnet_uses_the_papers_lrn_settings():
    net = rb.build_model("alexnet_small")
    lrns = [m for m in net.modules() if isinstance(m, LocalResponseNorm)]
    assert len(lrns) == 2
    x = torch.randn(2, 64, 7, 7, dtype=torch.float64)
    ref = torch.nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0)
    for m in lrns:
        torch.testing.assert_close(m(x), ref(x))


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name", ["resnet34", "MLP1x512", "", "mlp2x512"])
def test_unknown_model_is_a_usage_error_naming_it(name):
    with pytest.raises(rb.UsageError, match="unknown model") as exc:
        rb.build_model(name)
    assert repr(name) in str(exc.value) and "inception_small" in str(exc.value)


@pytest.mark.parametrize("width", [0, -0.5, True, "1", None, float("nan")])
def test_bad_width_is_a_usage_error(width):
    with pytest.raises(rb.UsageError, match="width") as exc:
        rb.build_model("mlp1x512", width=width)
    assert repr(width) in str(exc.value)


@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5, float("nan")])
def test_bad_dropout_is_a_usage_error(dropout):
    with pytest.raises(rb.UsageError, match="dropout") as exc:
        rb.build_model("mlp1x512", dropout=dropout)
    assert repr(dropout) in str(exc.value)


@pytest.mark.parametrize("in_shape", [(28, 28), (1, 3, 28, 28)])
def test_bad_in_shape_is_a_usage_error(in_shape):
    with pytest.raises(rb.UsageError, match="in_shape"):
        rb.build_model("mlp1x512", in_shape=in_shape)
