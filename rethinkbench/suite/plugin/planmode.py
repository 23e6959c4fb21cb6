"""--plan: claim tests run only to record the runs they ask for (placeholder results), then the
plan's table (runs, cached, estimated time) is printed instead of results."""
from __future__ import annotations

import inspect
import json
import warnings

import pytest

from rethinkbench.engine.plan import CostTable
from rethinkbench.suite.plugin.keys import PLAN_KEY, STATE_KEY


def print_plan(tr, config, plan) -> None:
    state = config.stash[STATE_KEY]
    tr.section("rethinkbench plan")
    if plan.runs:
        tr.write_line(f"timing a few steps of each network on {state.device} ...")
        plan.estimate(CostTable(state.device, plan.in_shapes))
    for line in plan.lines(state.device):
        tr.write_line(line)
    path = config.option.plan_json
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan.to_dict(state.device), indent=1))
        tr.write_line(f"rethinkbench: the plan as JSON in {path}")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Under --plan a claim test runs only to say which runs it needs: `run` records them and hands
    back placeholder results, whatever the test then does with them is ignored, and a test that
    trains nothing (theory, kernels) is not executed at all."""
    plan = pyfuncitem.config.stash.get(PLAN_KEY, None)
    if plan is None:
        return None
    if "run" not in pyfuncitem.fixturenames:
        plan.not_executed.append(pyfuncitem.nodeid)
        return True
    plan.executed.append(pyfuncitem.nodeid)
    args = {name: pyfuncitem.funcargs[name] for name in inspect.signature(pyfuncitem.obj).parameters
            if name in pyfuncitem.funcargs}
    try:
        # What a claim computes from placeholder results (NaN accuracies, zero counts) means
        # nothing, and neither do the warnings it raises on them: not shown as if they were.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pyfuncitem.obj(**args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:   # placeholder results make claims fail or skip: not a finding
        pass
    return True


def pytest_report_teststatus(report, config):
    """Under --plan a claim test neither passed nor failed: the summary line counts the tests
    "planned" (executed for their runs) and "without runs" (not executed), never "passed"."""
    plan = config.stash.get(PLAN_KEY, None)
    if plan is None or report.when != "call" or not report.passed:
        return None
    if report.nodeid in plan.executed:
        return "planned", "p", "PLANNED"
    return "without runs", "-", "WITHOUT RUNS"
