"""How many processes `pytest claims/` trains in: by default one pytest-xdist worker per core on
CPU (one per GPU with --gpu), each run on one intra-op thread (rethinkbench/base/threads.py).

A run's numbers do not depend on this choice: `-n 0`, `-n 2` and the default give the same
histories, so the results cache is shared between them. Only the time changes: two single-thread
processes train 1.27-1.32x the steps per second of one two-thread process on a 2-core machine.

The default applies only to a session that selects the claims folder (`pytest claims/...` or a
file inside it) and gives no `-n` itself; `-n 0` runs everything in one process. `--plan`,
`--collect-only` and `--executor` (which spreads the runs itself) stay in one process. Uses pytest-xdist's public `-n auto` and its
`pytest_xdist_auto_num_workers` hook.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CLAIMS_DIR = "claims"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def _selects_claims(config) -> bool:
    claims = (Path(config.rootpath) / CLAIMS_DIR).resolve()
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == claims or claims in path.parents:
            return True
    return False


def wants_default_workers(config) -> bool:
    """Whether this session gets `-n auto`: it selects claims/, gives no -n, is not --plan or
    --collect-only, and is not itself an xdist worker."""
    if getattr(config.option, "numprocesses", 0) is not None:
        return False   # no xdist (no such option), or the user chose -n
    if config.option.plan or config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    if getattr(config.option, "executor", None):   # --executor spreads the runs itself
        return False
    return _selects_claims(config)


DEFAULT_WORKERS_ENV = "RETHINKBENCH_DEFAULT_WORKERS"   # set by the controller, inherited by its workers


@pytest.hookimpl(tryfirst=True)   # before pytest-xdist's own (tryfirst) cmdline_main reads -n
def pytest_cmdline_main(config):
    chosen = config.pluginmanager.hasplugin("xdist") and wants_default_workers(config)
    if chosen:
        config.option.numprocesses = "auto"
        os.environ[DEFAULT_WORKERS_ENV] = "1"
    if (chosen or os.environ.get(DEFAULT_WORKERS_ENV)) and hasattr(config.option, "benchmark_disable"):
        # pytest-benchmark turns itself off under xdist anyway, with a warning in every process;
        # say it up front (--benchmark-disable). Each run's seconds still reach results.json.
        config.option.benchmark_disable = True
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    if config.option.gpu:
        import torch   # only here: the GPU count for --gpu; the plugin itself stays torch-light

        return max(1, torch.cuda.device_count())
    return available_cores()
