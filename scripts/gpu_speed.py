"""Per-step cost of the training step, eager vs graphed, and cohort throughput (issue 9's numbers).

    python scripts/gpu_speed.py --device cuda --out $OUT/speed.json      # on the GPU machine
    python scripts/gpu_speed.py --device cpu --steps 3 --models mlp1x512 --width 0.1   # logic check

For each model: ms per step of the eager step and of the CUDA-graphed step (`GraphedStep` with
capture off / on, the same code `train()` runs), batch 128, full width unless --width; then the
run-steps per second of the stacked step of K members vs one solo (graphed) run's step, each step
timed alone (no data, evaluation or capture in the window). cuDNN's autotuner is on, as in train().
Timing: CUDA events around the timed steps only, after a warm-up (the graph's capture included).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time

import torch

import rethinkbench as rb
from rethinkbench.engine.graphs import GraphedStep, make_graph_optimizer
from rethinkbench.engine.loop import cudnn_benchmark


def _timer(device):
    if device.type == "cuda":
        def timed(fn, n):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end) / n
    else:
        def timed(fn, n):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - t0) * 1000 / n
    return timed


def step_ms(model_name, width, device, steps, capture, batch=128, in_shape=(1, 28, 28)):
    """ms per training step, GraphedStep (eager or captured) as train() runs it."""
    cfg = rb.RunConfig(model=model_name, width=width, device=device.type)
    torch.manual_seed(0)
    net = rb.build_model(model_name, in_shape, 10, width).to(device)
    if device.type == "cuda" and not model_name.startswith("mlp"):
        net = net.to(memory_format=torch.channels_last)
    x = torch.randn(batch, *in_shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    opt, lr = make_graph_optimizer(net, cfg, device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    step = GraphedStep(net, opt, lr, autocast_dtype=amp, capture=capture)
    one = lambda: step(x, y, cfg.effective_lr)
    for _ in range(6):
        one()
    return _timer(device)(one, steps)


def cohort_steps_per_s(model_name, width, device, k, steps, batch=128, in_shape=(1, 28, 28)):
    """Run-steps per second of the stacked step of a k-member cohort (k = 1: one solo run's step,
    CUDA-graphed on CUDA as `train()` runs it), timed alone: no data gathering, evaluation, host
    sync or capture inside the timed window (issue 17: at n = 1024 those filled most of it)."""
    from rethinkbench.engine.stacked import StackedModel, has_batchnorm

    cfg = rb.RunConfig(model=model_name, width=width, device=device.type)
    if k == 1:
        return 1000.0 / step_ms(model_name, width, device, steps, capture=device.type == "cuda",
                                batch=batch, in_shape=in_shape)
    torch.manual_seed(0)
    nets = [rb.build_model(model_name, in_shape, 10, width).to(device) for _ in range(k)]
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    if has_batchnorm(nets[0]):
        amp = contextlib.nullcontext   # as train_cohort: bf16 fails on BatchNorm under vmap
    stacked = StackedModel(nets, cfg.momentum, cfg.weight_decay, amp)
    xs = torch.randn(k, batch, *in_shape, device=device)
    ys = torch.randint(0, 10, (k, batch), device=device)
    one = lambda: stacked(xs, ys, cfg.effective_lr)
    for _ in range(5):
        one()
    ms = _timer(device)(one, steps)
    return k * 1000.0 / ms


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--models", default="mlp1x512,mlp3x512,alexnet_small,inception_small")
    p.add_argument("--cohorts", default="mlp1x512:1,16;inception_small:1,4")
    p.add_argument("--cohort-steps", type=int, default=50, help="timed stacked steps per cohort")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    device = torch.device(a.device)
    out = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
           "torch": str(torch.__version__), "width": a.width, "batch": 128, "step_ms": {}, "cohort": {}}
    graph_ok = device.type == "cuda"

    def save():   # after every number: a step cut short by its timeout keeps what it measured
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=1)

    # cuDNN's autotuner on, as train() has it: planned, trained and timed conv steps agree.
    with cudnn_benchmark(graph_ok):
        for m in a.models.split(","):
            eager = step_ms(m, a.width, device, a.steps, capture=False)
            graph = step_ms(m, a.width, device, a.steps, capture=True) if graph_ok else None
            out["step_ms"][m] = {"eager": eager, "graph": graph}
            save()
            print(f"{m:18s} eager {eager:8.3f} ms/step   graph "
                  f"{'n/a' if graph is None else f'{graph:8.3f}'} ms/step", flush=True)
        for spec in filter(None, a.cohorts.split(";")):
            m, ks = spec.split(":")
            for k in map(int, ks.split(",")):
                rate = cohort_steps_per_s(m, a.width, device, k, a.cohort_steps)
                out["cohort"][f"{m}:K{k}"] = rate
                save()
                print(f"{m:18s} cohort K={k:<3d} {rate:10.0f} run-steps/s (the stacked step alone)",
                      flush=True)

if __name__ == "__main__":
    main()
