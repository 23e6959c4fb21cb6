"""A machine-speed probe, so that `rethinkbench compare` can tell a slower machine from slower code.

Cloud VMs of one CPU model differ: the same Intel Xeon model trained the same runs up to 2x slower
on one VM than on another, and 1.17-1.22x slower on one VM from one day to the next. compare's
timing check matches runs by device kind (CPU model and thread count), which cannot see that, so a
session that trained at cpu scale also records how long this machine takes for a fixed piece of
training work that does not depend on rethinkbench's code: `speed_probe_seconds` in its
provenance. compare divides the training-time ratio by the ratio of the two probes (report/timing.py).

The work: PROBE_STEPS SGD steps of a 784-512-10 MLP (the cpu scale's mlp1x512) on a fixed batch
of 128, on one intra-op thread as every run trains; the fastest of REPEATS repeats, the one least
disturbed by other processes. About 0.1 s a repeat on the 2-core Intel Xeon.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from rethinkbench.base.threads import run_threads

PROBE_STEPS = 20
REPEATS = 5


def cpu_speed_probe(steps: int = PROBE_STEPS, repeats: int = REPEATS) -> float:
    """Seconds for `steps` SGD steps of the probe MLP on one CPU thread (the fastest of `repeats`)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 784, generator=gen), torch.randint(0, 10, (128,), generator=gen)
    best = float("inf")
    with run_threads():
        with torch.random.fork_rng(devices=[]):   # the global RNG of the caller stays as it was
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        for repeat in range(repeats + 1):     # repeat 0 warms up (allocations, kernel choice)
            start = time.perf_counter()
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                opt.step()
            if repeat:
                best = min(best, time.perf_counter() - start)
    return best
