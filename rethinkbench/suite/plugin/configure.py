"""pytest_configure: markers, the session's state and results, the collectors, --plan; the report
header; and the benchmark table's shape (a claim times its runs once each)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from rethinkbench.engine.plan import Plan, load_priors
from rethinkbench.suite.plugin.keys import CLAIM_ITEMS_KEY, PLAN_KEY, SESSION_KEY, STATE_KEY, TRACKER_KEY
from rethinkbench.suite.plugin.outcomes import Collector
from rethinkbench.suite.plugin.state import PluginState
from rethinkbench.suite.plugin.tracker import ItemTracker
from rethinkbench.suite.session import ResultsSession


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.stash[CLAIM_ITEMS_KEY] = set()
    _compact_benchmark_table(config)
    config.addinivalue_line("markers", "claim(info): this test checks the claim described by the "
                                       "rethinkbench.suite.evidence.ClaimInfo `info`")
    config.addinivalue_line("markers", "models(default=[...], cpu=[...], paper=[...], smoke=[...]): "
                                       "parametrize the test's `model` argument with the scale's list")
    config.addinivalue_line("markers", "scales(*names, needs=''): run only at these scales (smoke, "
                                       "cpu, paper); skipped elsewhere with the reason, naming the "
                                       "options in `needs` too (e.g. '--imagenet-root PATH')")
    config.addinivalue_line("markers", "long(cost): a claim too long for the default cpu session: "
                                       "at cpu scale it runs only with --long, and is skipped "
                                       "otherwise with a reason naming --long and `cost`")
    config.addinivalue_line("markers", "requires(*features): the claim needs a model that takes "
                                       "`dropout` ('dropout') or a dataset with uncropped images "
                                       "('raw_images'); skipped, with the reason, for a plugin without")
    state = PluginState(config)
    config.stash[STATE_KEY] = state
    config.stash[SESSION_KEY] = ResultsSession(state.scale.name, state.dataset, state.device,
                                               model=state.model, lr=state.lr,
                                               plugins=_plugins_info(state),
                                               not_comparable=state.not_comparable)
    config.pluginmanager.register(Collector(config.stash[SESSION_KEY]), "rethinkbench-collector")
    if config.option.plan:
        if getattr(config.option, "numprocesses", None):   # xdist workers would each hold a part
            raise pytest.UsageError("--plan runs in one process (it trains nothing): drop -n/--numprocesses")
        baselines = sorted((Path(config.rootpath) / "reports" / "baselines").glob("*.json"))
        state.plan = Plan(None if config.option.no_cache else state.cache, priors=load_priors(baselines))
        if state.data_shape is not None:   # the session's dataset: its size without loading it
            shape, n_train, n_test, classes = state.data_shape
            state.plan.data_sizes[state.dataset] = (n_train, n_test)
            state.plan.in_shapes[state.dataset] = tuple(shape)
            state.plan.num_classes[state.dataset] = classes
        config.stash[PLAN_KEY] = state.plan
    config.stash[TRACKER_KEY] = ItemTracker()
    config.pluginmanager.register(config.stash[TRACKER_KEY], "rethinkbench-item-tracker")


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_benchmark_group_stats(config, benchmarks, group_by):
    """No benchmark table when every timing is a claim's training run (a claim times nothing
    itself: its runs' seconds go to results.json and the report), unless --timing-table asks for
    it. `benchmarks/` and any mixed session keep pytest-benchmark's own grouping and table."""
    claims = config.stash.get(CLAIM_ITEMS_KEY, set())
    if config.option.timing_table or not all(b["fullname"] in claims for b in benchmarks):
        return None
    return []


def _plugins_info(state) -> dict:
    """results.json's `plugins`: the model and dataset plugins of the session (built-ins omitted)."""
    return {kind: p.to_dict() for kind, p in (("model", state.model_plugin), ("dataset", state.dataset_plugin))
            if p is not None and not p.builtin}


def pytest_report_header(config):
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    data = state.dataset_plugin.describe() if state.dataset_plugin is not None else state.dataset
    lines = [f"rethinkbench: scale {state.scale.name}, device {state.device}, dataset {data}, "
             f"model {state.describe_model()}" + (f", lr {state.lr:g}" if state.lr is not None else "")]
    if state.not_comparable:
        lines.append(f"rethinkbench: the paper's numbers are not comparable: {state.not_comparable}")
    return lines


def _compact_benchmark_table(config):
    """Every training run is timed once (one round), so min = max = mean: show one column, not
    eleven, unless the user chose columns. Runs before pytest-benchmark's (trylast) configure.

    Only public surfaces: the `--benchmark-columns` option as pytest parsed it, and the command
    line (pytest-benchmark's own default list is not public and moved between 5.2 and 5.3)."""
    if not config.pluginmanager.hasplugin("benchmark"):
        return
    given = list(config.invocation_params.args) + os.environ.get("PYTEST_ADDOPTS", "").split()
    if any(a == "--benchmark-columns" or a.startswith("--benchmark-columns=") for a in given):
        return
    if hasattr(config.option, "benchmark_columns"):   # its default: a list (4.x) or None (5.3)
        config.option.benchmark_columns = ["min", "rounds"]
