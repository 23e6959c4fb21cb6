"""engine/graphs.py: the CUDA-graphed training step.

Without CUDA the static-buffer path runs eagerly (`capture=False`): it must train exactly like the
plain loop (same updates, same sums, the short last batch included). With CUDA (the device check,
scripts/gpu_check.sh) a captured and replayed step must agree with the eager one.
"""
from __future__ import annotations

import contextlib
import copy
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


def test_static_buffer_path_trains_adam_exactly_like_the_plain_loop(make_dataset):
    """RunConfig(optimizer="adam") (DD-model-wise at paper scale): the lr-tensor Adam of the graph
    path takes the same steps as the plain loop's Adam."""
    ds, cfg, net_plain = _setup(make_dataset)
    cfg = cfg.replace(optimizer="adam", lr=1e-3)
    _, _, net_static = _setup(make_dataset)
    plain = _epochs(net_plain, make_optimizer(net_plain, cfg), ds, cfg, None)
    opt, lr = make_graph_optimizer(net_static, cfg, "cpu")
    assert isinstance(opt, torch.optim.Adam)
    static = _epochs(net_static, opt, ds, cfg, GraphedStep(net_static, opt, lr, capture=False))
    for (l1, c1, s1, t1), (l2, c2, s2, t2) in zip(plain, static):
        assert (c1, s1, t1) == (c2, s2, t2)
        assert math.isclose(l1, l2, rel_tol=1e-6)
    for a, b in zip(net_plain.parameters(), net_static.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


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



# ----------------------------------------------------------------------------- issue 17, items 4 and 8

class _FakeCuda:
    """Stand-ins for the torch.cuda calls GraphedStep makes, so that its capture logic runs on CPU
    up to the CUDA calls: they record which device was current at each call (torch.cuda.device
    sets it), and a "capture" runs the step's Python (kernels on CPU) with `capturing` set."""

    def __init__(self, monkeypatch):
        self.current, self.capturing, self.seen = 0, False, []
        fake = self

        class Device:
            def __init__(self, device):
                self.index = torch.device(device).index

            def __enter__(self):
                self.before, fake.current = fake.current, self.index

            def __exit__(self, *exc):
                fake.current = self.before

        class Stream:
            def __init__(self, device=None):
                fake.seen.append(("stream", fake.current))

            def wait_stream(self, other):
                pass

        class Graph:
            def replay(self):
                fake.seen.append(("replay", fake.current))

        @contextlib.contextmanager
        def graph(g):
            fake.seen.append(("capture", fake.current))
            fake.capturing = True
            try:
                yield
            finally:
                fake.capturing = False

        for name, value in dict(device=Device, Stream=Stream, CUDAGraph=Graph, graph=graph,
                                stream=lambda s: contextlib.nullcontext(),
                                current_stream=lambda device=None: Stream()).items():
            monkeypatch.setattr(torch.cuda, name, value)


def _cpu_step_as_if_on(net, cfg, device: str, name=None):
    opt, lr = make_graph_optimizer(net, cfg, "cpu")
    step = GraphedStep(net, opt, lr, capture=False, name=name or cfg.model)
    step.device, step.capture = torch.device(device), True   # the capture path, its kernels on CPU
    return step


def test_warm_up_capture_and_replay_run_with_the_models_device_current(make_dataset, monkeypatch):
    """On cuda:1 (an xdist worker's GPU) the side stream, the capture and the replays must be made
    with cuda:1 current, not the process's default cuda:0 (pytorch/pytorch#87794)."""
    fake = _FakeCuda(monkeypatch)
    ds, cfg, net = _setup(make_dataset, n=64)
    step = _cpu_step_as_if_on(net, cfg, "cuda:1")
    xb, yb = ds.x_train[:32], ds.y_train[:32]
    for _ in range(WARMUP_STEPS + 2):
        step(xb, yb, 0.05)
    kinds = [k for k, _ in fake.seen]
    assert kinds.count("capture") == 1 and kinds.count("replay") == 2 and "stream" in kinds
    assert {device for _, device in fake.seen} == {1}
    assert fake.current == 0   # restored after each call


class _SyncsInForward(torch.nn.Module):
    """A plugin-style model whose forward reads a value on the host: fine eagerly, not capturable."""

    def __init__(self, fake):
        super().__init__()
        self.fake = fake
        self.lin = torch.nn.Linear(64, 10)

    def forward(self, x):
        if self.fake.capturing:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        return self.lin(x.flatten(1))


def test_a_model_that_cannot_be_captured_trains_on_eagerly_with_a_warning_naming_it(make_dataset, monkeypatch):
    fake = _FakeCuda(monkeypatch)
    ds, cfg, _ = _setup(make_dataset, n=64)
    torch.manual_seed(0)
    net = _SyncsInForward(fake)
    ref = copy.deepcopy(net)
    step = _cpu_step_as_if_on(net, cfg, "cuda:0", name="mypkg.nets:syncing")
    ref_opt = make_optimizer(ref, cfg)
    xb, yb = ds.x_train[:32], ds.y_train[:32]
    with pytest.warns(RuntimeWarning, match=r"model 'mypkg.nets:syncing'.*cannot be captured.*eagerly"):
        for _ in range(WARMUP_STEPS + 3):
            step(xb, yb, cfg.effective_lr)
    for _ in range(WARMUP_STEPS + 3):   # the same steps, plain loop
        loss = torch.nn.functional.cross_entropy(ref(xb), yb)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()
    assert step.graph is None and not step.capture and step.replays == 0
    for a, b in zip(net.parameters(), ref.parameters()):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_out_of_memory_during_capture_is_not_taken_for_an_uncapturable_model(make_dataset, monkeypatch):
    fake = _FakeCuda(monkeypatch)
    ds, cfg, net = _setup(make_dataset, n=64)
    step = _cpu_step_as_if_on(net, cfg, "cuda:0")

    @contextlib.contextmanager
    def oom_graph(g):
        raise torch.OutOfMemoryError("CUDA out of memory")
        yield

    monkeypatch.setattr(torch.cuda, "graph", oom_graph)
    with pytest.raises(torch.OutOfMemoryError):
        for _ in range(WARMUP_STEPS + 1):
            step(ds.x_train[:32], ds.y_train[:32], 0.05)


def test_a_kept_model_carries_no_gradients(make_dataset):
    """keep_model: the last step's .grad tensors would pin the CUDA graph's pool; on CPU too the
    returned network must hold weights only."""
    ds = make_dataset(n=40, shape=(1, 8, 8))
    res = rb.train(rb.RunConfig(dataset="custom:keep", width=0.1, max_epochs=1), dataset=ds, keep_model=True)
    assert all(p.grad is None for p in res.model.parameters())


needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2,
                                    reason="needs two CUDA devices (run by scripts/gpu_check.sh where there are)")


@needs_two_gpus
def test_train_on_the_second_gpu_captures_there(make_dataset):
    ds = make_dataset(n=300, shape=(1, 8, 8))
    res = rb.train(rb.RunConfig(dataset="custom:cuda1", width=0.1, max_epochs=2, device="cuda:1"), dataset=ds)
    assert len(res.history) == 2 and math.isfinite(res.history[-1]["train_loss"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by scripts/gpu_check.sh)")
def test_a_host_syncing_model_falls_back_to_eager_on_cuda(make_dataset):
    class ItemInForward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)

        def forward(self, x):
            scale = float(x.abs().max().item()) or 1.0   # a host sync: not capturable
            return self.lin(x.flatten(1) / scale)

    ds, cfg, _ = _setup(make_dataset, "cuda", n=64)
    net = ItemInForward().cuda()
    opt, lr = make_graph_optimizer(net, cfg, "cuda")
    step = GraphedStep(net, opt, lr, name="item-in-forward")
    with pytest.warns(RuntimeWarning, match="item-in-forward"):
        for _ in range(WARMUP_STEPS + 3):
            step(ds.x_train[:32], ds.y_train[:32], cfg.effective_lr)
    torch.cuda.synchronize()
    assert step.graph is None and all(torch.isfinite(p).all() for p in net.parameters())
