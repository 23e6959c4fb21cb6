"""Arpit et al. §5's regularizers (rethinkbench/harness/regularizers.py), their RunConfig fields and the
initialization option: what each does to a batch or a model, determinism, key stability, errors."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import rethinkbench as rb
from rethinkbench.engine.cohort import stackable, stacks_by_default, train_cohort
from rethinkbench.harness.models import glorot_uniform_, initialize
from rethinkbench.harness.regularizers import (ADV_RADIUS, add_hidden_noise, adversarial_examples, perturb_inputs,
                                       uses_loop_regularizers)
from rethinkbench.base.seeding import generator


def _gen(purpose="t"):
    return generator(0, purpose)


def test_perturb_inputs_is_the_identity_when_off():
    x = torch.randn(4, 1, 8, 8)
    assert perturb_inputs(x, rb.RunConfig(), _gen()) is x


@settings(max_examples=30, deadline=None)
@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**31 - 1))
def test_input_dropout_zeroes_or_rescales_every_pixel(p, seed):
    x = torch.rand(8, 1, 6, 6) + 0.5            # no pixel is 0 before dropout
    out = perturb_inputs(x, rb.RunConfig(input_dropout=p), generator(seed, "t"))
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / (1 - p))


def test_input_dropout_rate_and_noise_std_are_what_the_config_says():
    x = torch.zeros(64, 1, 32, 32)
    noisy = perturb_inputs(x, rb.RunConfig(input_noise=2.0), _gen())
    assert abs(noisy.std().item() - 2.0) < 0.03
    ones = torch.ones(64, 1, 32, 32)
    dropped = perturb_inputs(ones, rb.RunConfig(input_dropout=0.3), _gen())
    assert abs((dropped == 0).float().mean().item() - 0.3) < 0.01


def test_perturb_inputs_is_deterministic_per_generator():
    x = torch.randn(4, 1, 8, 8)
    cfg = rb.RunConfig(input_dropout=0.5, input_noise=1.0)
    assert torch.equal(perturb_inputs(x, cfg, _gen()), perturb_inputs(x, cfg, _gen()))
    assert not torch.equal(perturb_inputs(x, cfg, _gen("a")), perturb_inputs(x, cfg, _gen("b")))


def test_hidden_noise_acts_in_training_mode_only():
    torch.manual_seed(0)
    model = rb.build_model("mlp1x512", (1, 8, 8), 10, width=0.1)
    x = torch.randn(5, 1, 8, 8)
    model.eval()
    clean = model(x)
    add_hidden_noise(model, 0.3)
    assert torch.equal(model(x), clean)                   # eval: untouched
    model.train()
    assert not torch.allclose(model(x), clean)


def test_hidden_noise_refuses_a_model_without_relu_modules():
    class FunctionalRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return torch.relu(self.fc(x))

    with pytest.raises(rb.UsageError, match="hidden_noise needs nn.ReLU modules.*FunctionalRelu"):
        add_hidden_noise(FunctionalRelu(), 0.1)


def test_adversarial_examples_stay_in_the_ball_and_raise_the_loss():
    torch.manual_seed(0)
    model = rb.build_model("mlp1x512", (1, 8, 8), 10, width=0.1).eval()
    x = torch.randn(64, 1, 8, 8)
    y = model(x).argmax(1)                                 # the model's own labels: loss is low
    xa = adversarial_examples(model, x, y, _gen())
    assert (xa - x).abs().max().item() <= ADV_RADIUS + 1e-6
    loss = lambda z: nn.functional.cross_entropy(model(z), y).item()
    assert loss(xa) > loss(x)
    assert all(p.grad is None for p in model.parameters())  # parameter gradients untouched
    assert torch.equal(xa, adversarial_examples(model, x, y, _gen()))


def test_glorot_uniform_init_draws_within_the_glorot_bound_with_zero_biases():
    torch.manual_seed(0)
    model = glorot_uniform_(rb.build_model("inception_small_nobn", (1, 28, 28), 10, width=0.125))
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            assert m.weight.abs().max().item() <= math.sqrt(6 / (fan_in + fan_out)) + 1e-7
            assert m.bias is None or not m.bias.any()


def test_initialize_torch_keeps_pytorchs_defaults_and_refuses_unknown_names():
    torch.manual_seed(0)
    a = rb.build_model("mlp1x512", (1, 8, 8), 10, width=0.1)
    torch.manual_seed(0)
    b = initialize(rb.build_model("mlp1x512", (1, 8, 8), 10, width=0.1), "torch")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(rb.UsageError, match="unknown init 'he'; known: torch, glorot_uniform, kaiming_normal"):
        initialize(a, "he")


def test_kaiming_normal_init_has_the_relu_gain_and_zero_biases():
    torch.manual_seed(0)
    model = initialize(rb.build_model("mlp1x512", (1, 28, 28), 10), "kaiming_normal")
    w = model.net[1].weight
    assert abs(w.std().item() - math.sqrt(2 / 784)) < 0.002
    assert not model.net[1].bias.any()


# ----------------------------------------------------------------------------- RunConfig fields

def test_the_new_fields_leave_old_cache_keys_unchanged():
    # Keys computed before these fields existed (harness version 2): cached runs stay valid.
    assert rb.RunConfig().key() == "295b2d55ca172ff43717"
    assert rb.RunConfig(corruption="random_labels", max_epochs=3, stop_at_fit=False,
                        n_train=1000).key() == "b7be72c6f670ade2fbf7"


@pytest.mark.parametrize("change", [dict(input_dropout=0.5), dict(input_noise=1.0), dict(hidden_noise=0.1),
                                    dict(adversarial=0.5), dict(init="glorot_uniform")])
def test_each_regularizer_field_changes_the_key_and_the_label(change):
    cfg = rb.RunConfig(**change)
    assert cfg.key() != rb.RunConfig().key()
    assert cfg.label() != rb.RunConfig().label()
    assert rb.RunConfig.from_dict(cfg.to_dict()).key() == cfg.key()


def test_integer_strengths_are_stored_as_floats_so_equal_configs_share_a_key():
    assert rb.RunConfig(input_noise=1).key() == rb.RunConfig(input_noise=1.0).key()


@pytest.mark.parametrize("field,value,message", [
    ("input_dropout", 1.0, r"input_dropout must be in \[0, 1\), got 1.0"),
    ("input_dropout", -0.1, r"input_dropout must be in \[0, 1\)"),
    ("input_noise", -1, "input_noise must be a std >= 0, got -1"),
    ("hidden_noise", float("nan"), "hidden_noise must be a std >= 0"),
    ("hidden_noise", "0.1", "hidden_noise must be a std >= 0, got '0.1'"),
    ("adversarial", 1.5, r"adversarial must be a loss weight in \[0, 1\], got 1.5"),
    ("init", "xavier", "unknown init 'xavier'; known: torch, glorot_uniform, kaiming_normal"),
])
def test_bad_regularizer_values_are_usage_errors(field, value, message):
    with pytest.raises(rb.UsageError, match=message):
        rb.RunConfig(**{field: value})


# ----------------------------------------------------------------------------- training with them

SMALL = dict(n_train=200, width=0.25, max_epochs=3, stop_at_fit=False, corruption="random_labels")


@pytest.mark.parametrize("change", [dict(input_dropout=0.5), dict(input_noise=1.0), dict(hidden_noise=0.3),
                                    dict(dropout=0.5, adversarial=0.5), dict(init="glorot_uniform")])
def test_training_with_a_regularizer_is_deterministic_and_changes_the_run(change):
    base = rb.train(rb.RunConfig(**SMALL))
    a = rb.train(rb.RunConfig(**SMALL, **change))
    b = rb.train(rb.RunConfig(**SMALL, **change))
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in base.history]


def test_regularized_configs_train_solo_not_stacked():
    plain = rb.RunConfig(device="cuda")
    assert stackable(plain) and stacks_by_default(plain)
    for change in (dict(input_noise=1.0), dict(hidden_noise=0.1), dict(adversarial=0.2), dict(init="glorot_uniform"),
                   dict(optimizer="adam")):
        cfg = rb.RunConfig(device="cuda", **change)
        assert uses_loop_regularizers(cfg) or cfg.init != "torch" or cfg.optimizer != "sgd"
        assert not stackable(cfg) and not stacks_by_default(cfg)
    with pytest.raises(rb.UsageError, match="cannot stack .* train solo"):
        train_cohort([rb.RunConfig(input_noise=1.0, seed=s) for s in (0, 1)])


def test_train_many_with_stack_true_trains_an_unstackable_cohort_solo():
    cfgs = [rb.RunConfig(**SMALL, input_noise=1.0, seed=s) for s in (0, 1)]
    many = rb.train_many(cfgs, stack=True)
    solo = [rb.train(c) for c in cfgs]
    assert [r.history[-1]["train_loss"] for r in many] == [r.history[-1]["train_loss"] for r in solo]
