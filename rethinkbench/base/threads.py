"""How many intra-op threads a training run uses: one, always, wherever it runs.

A CPU run's numbers depend on its intra-op thread count (oneDNN and the BLAS split reductions by
thread, so sums round differently): inception_small on random labels at smoke scale ended at train
accuracy 0.8906 on one thread and 0.9531 on two. The cache knows a run only by its config's key,
so the thread count must not vary: every run trains on RUN_THREADS threads (recorded in its
provenance as `intra_op_threads` and in `device_kind`), whether it runs alone (`-n 0`), in a
pytest-xdist worker or on a cluster node. Cores are used by running several runs at once
(`pytest claims/` starts one worker per core), which on a 2-core machine also trained 1.27-1.32x
the steps per second of one two-thread process.
"""
from __future__ import annotations

import contextlib
import functools

import torch

__all__ = ["RUN_THREADS", "intra_op_threads", "run_threads", "pinned"]

RUN_THREADS = 1


@contextlib.contextmanager
def intra_op_threads(n: int):
    """torch's intra-op thread count set to `n` inside, the caller's restored after."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def run_threads():
    """The context every training run (and the data preparation it reads) executes in."""
    return intra_op_threads(RUN_THREADS)


def pinned(fn):
    """Decorate a function that trains or prepares a run's data to run under `run_threads()`."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with run_threads():
            return fn(*args, **kwargs)
    return call
