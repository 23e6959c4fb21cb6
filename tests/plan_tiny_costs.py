"""A pytest plugin for the plan's own tests (`-p plan_tiny_costs`, with tests/ on PYTHONPATH):

- the plan times each network at 1/16 of its width (the widths in the plan itself are unchanged),
  so a paper-scale plan of full-width CIFAR-10 networks is checked on two CPU cores in seconds;
  every other step of `measure_costs` (batch, warm-up, timed steps, evaluation chunks) runs as is;
- datasets are never downloaded: a dataset missing under --data-root stays missing (the plan then
  plans it at its known size, as it does offline).
"""
from __future__ import annotations

from rethinkbench.engine import plan
from rethinkbench.harness import data

TINY_WIDTH = 1 / 16


def pytest_configure(config):
    measure, raw_splits = plan.measure_costs, data._raw_splits

    def tiny(cfg, in_shape, batch, device, k=1):
        return measure(cfg.replace(width=min(cfg.width, TINY_WIDTH)), in_shape, batch, device, k)

    plan.measure_costs = tiny
    data._raw_splits = lambda name, seed, root, download: raw_splits(name, seed, root, False)
