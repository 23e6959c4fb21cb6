"""engine/graphs.py: the CUDA-graphed training step.

Without CUDA the static-buffer path runs eagerly (`capture=False`): it must train exactly like the
plain loop (same updates, same sums, the short last batch included). With CUDA (the device check,
scripts/gpu_check.sh) a captured and replayed step must agree with the eager one.
"""
from __future__ import annotations

import importlib
import math

import pytest
import torch

import rethinkbench as rb
from rethinkbench.engine.graphs import WARMUP_STEPS, GraphedStep, make_graph_optimizer
from rethinkbench.base.seeding import generator
from rethinkbench.engine.train import make_optimizer, train_epoch

pytestmark = pytest.mark.usefixtures("single_thread")


def _setup(make_dataset, device="cpu", n=70, model="mlp1x512", **cfg_changes):
    # n = 70 at batch 32: two full batches and a short one of 6 every epoch.
    ds = make_dataset(n=n, shape=(1, 8, 8), seed=3).to(device)
    cfg = rb.RunConfig(dataset="custom:graphs", model=model, width=0.1, batch_size=32, lr=0.05,
                       weight_decay=1e-3, decay_steps=2, device=device, **cfg_changes)
    torch.manual_seed(0)
    net = rb.build_model(cfg.model, ds.in_shape, ds.num_classes, cfg.width).to(device)
    return ds, cfg, net


def _epochs(net, opt, ds, cfg, stepper, epochs=4):
    gen, step, sums = generator(0, "order"), 0, []
    for _ in range(epochs):
        loss, correct, seen, step = train_epoch(net, opt, ds, cfg, gen, step, 10**9, stepper=stepper)
        sums.append((loss.item(), correct.item(), seen, step))
    return sums


def test_static_buffer_path_trains_exactly_like_the_plain_loop(make_dataset):
    ds, cfg, net_plain = _setup(make_dataset)
    _, _, net_static = _setup(make_dataset)
    plain = _epochs(net_plain, make_optimizer(net_plain, cfg), ds, cfg, None)
    opt, lr = make_graph_optimizer(net_static, cfg, "cpu")
    stepper = GraphedStep(net_static, opt, lr, capture=False)
    static = _epochs(net_static, opt, ds, cfg, stepper)
    for (l1, c1, s1, t1), (l2, c2, s2, t2) in zip(plain, static):
        assert (c1, s1, t1) == (c2, s2, t2)
        assert math.isclose(l1, l2, rel_tol=1e-6)
    for a, b in zip(net_plain.parameters(), net_static.parameters()):
        assert torch.equal(a, b)
    # The schedule reached the step through the lr tensor: 12 steps, decay 0.95 every 2 steps.
    assert lr.item() == pytest.approx(cfg.effective_lr * 0.95 ** (11 // 2))
    assert stepper.calls == 12 and stepper.replays == 0


def test_capture_needs_cuda():
    net = torch.nn.Linear(2, 2)
    opt, lr = make_graph_optimizer(net, rb.RunConfig(), "cpu")
    with pytest.raises(ValueError, match="CUDA graph capture needs a CUDA device, got cpu"):
        GraphedStep(net, opt, lr, capture=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by scripts/gpu_check.sh)")
@pytest.mark.parametrize("model", ["mlp1x512", "inception_small"])
def test_replayed_graph_agrees_with_eager_steps_on_cuda(make_dataset, model):
    """Null hypothesis: replaying the captured step computes the same update as running it eagerly.
    bf16 autocast and cuDNN's algorithm choice allow small differences: losses within 2% relative
    after 4 epochs, correct counts within 3 of 70."""
    shape = dict(model=model)
    ds, cfg, net_eager = _setup(make_dataset, "cuda", **shape)
    _, _, net_graph = _setup(make_dataset, "cuda", **shape)
    results = []
    for net, capture in ((net_eager, False), (net_graph, True)):
        opt, lr = make_graph_optimizer(net, cfg, "cuda")
        stepper = GraphedStep(net, opt, lr, autocast_dtype=torch.bfloat16, capture=capture)
        results.append((_epochs(net, opt, ds, cfg, stepper), stepper))
    (eager, _), (graph, stepper) = results
    assert stepper.replays == 4 * 2 - WARMUP_STEPS   # full batches after the warm-up; short ones eager
    for (l1, c1, *_), (l2, c2, *_) in zip(eager, graph):
        assert l2 == pytest.approx(l1, rel=0.02)
        assert abs(c1 - c2) <= 3


def test_train_on_cpu_does_not_use_the_graph_path(make_dataset, monkeypatch):
    # The CPU baseline depends on the plain loop: train() must not build a GraphedStep there.
    built = []
    train_module = importlib.import_module("rethinkbench.engine.train")   # rb.train is the function
    monkeypatch.setattr(train_module, "GraphedStep", lambda *a, **k: built.append(1))
    ds = make_dataset(n=40, shape=(1, 8, 8))
    rb.train(rb.RunConfig(dataset="custom:cpu-plain", width=0.1, max_epochs=1), dataset=ds)
    assert built == []

