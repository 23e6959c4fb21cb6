"""The session's end: results.json, the HTML report, the terminal's claim table and the lines that
say where they are."""
from __future__ import annotations

import pytest

from rethinkbench.report import write_report
from rethinkbench.report.verdicts import SMOKE_NOTE
from rethinkbench.suite.plugin.keys import PLAN_KEY, REPORT_KEY, SESSION_KEY, STATE_KEY, TRACKER_KEY
from rethinkbench.suite.plugin.planmode import print_plan
from rethinkbench.suite.session import PREVIOUS


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # xdist worker: the controller writes the results
        return
    if PLAN_KEY in session.config.stash:   # --plan trained nothing: no results to write
        return
    rs = session.config.stash[SESSION_KEY]
    tracker = session.config.stash[TRACKER_KEY]
    rs.selection = _selection(session.config, tracker)
    rs.finished = sum(nodeid in tracker.reported for nodeid in tracker.collected)
    # Ctrl-C, or -x / --maxfail: the results hold only the tests that finished, and say so.
    rs.interrupted = rs.finished < len(tracker.collected) and (
        exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop or session.shouldfail))
    unreported = tracker.unreported(session)
    if unreported:
        # A test that ran nowhere (a worker died, a report could not be sent) must not vanish from
        # the results while the session looks green: the results name it and the exit status fails.
        rs.unreported = unreported
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not rs.has_claims:
        return
    state = session.config.stash[STATE_KEY]
    path = rs.write(state.report_dir)
    session.config.stash[REPORT_KEY] = [f"rethinkbench: results in {path}"]
    if rs.interrupted:
        session.config.stash[REPORT_KEY].insert(0, _interrupted_line(rs, state.report_dir))
    try:
        html = write_report(path, state.report_dir)
        session.config.stash[REPORT_KEY].append(f"rethinkbench: report in {html}")
    except Exception as exc:  # the report must never hide the results
        session.config.stash[REPORT_KEY].append(f"rethinkbench: could not render the report: {exc!r}")


def _selection(config, tracker) -> dict:
    """results.json's `selection`: what this session was asked to run, so that `compare` checks
    only what both files selected (a subset is not a regression of everything it left out)."""
    opt = config.option
    return {"args": [str(a) for a in config.invocation_params.args],
            "paths": [str(a) for a in config.args],
            "keyword": getattr(opt, "keyword", "") or "", "markers": getattr(opt, "markexpr", "") or "",
            "items": list(tracker.collected)}


def _interrupted_line(rs, report_dir) -> str:
    previous = report_dir / PREVIOUS[0]
    kept = (f"the last complete results are kept as {previous} and {report_dir / PREVIOUS[1]}"
            if previous.exists() else "no complete results were there to keep")
    return (f"rethinkbench: INTERRUPTED: {rs.finished} of {len(rs.selection['items'])} selected tests "
            f"finished; results.json and index.html are partial (marked interrupted); {kept}")


def pytest_terminal_summary(terminalreporter, config):
    plan = config.stash.get(PLAN_KEY, None)
    if plan is not None:
        print_plan(terminalreporter, config, plan)
        return
    rs = config.stash[SESSION_KEY]
    for nodeid in getattr(rs, "unreported", []):
        terminalreporter.write_line(f"rethinkbench: ERROR: {nodeid} never reported a result (its "
                                    f"worker died or its report could not be sent)", red=True)
    if not rs.has_claims:
        return
    tr = terminalreporter
    tr.section("rethinkbench claims")
    if rs.scale == "smoke":
        tr.write_line(f"rethinkbench: {SMOKE_NOTE}", yellow=True)
    for line in rs.table_lines():
        tr.write_line(line)
    tr.write_line(f"runs: {rs.trained} trained, {rs.cached} from the cache "
                  f"({config.stash[STATE_KEY].cache.dir})")


def pytest_unconfigure(config):
    lines = config.stash.get(REPORT_KEY, None)
    if lines:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:  # last lines of the run: where the results and the report are
            for line in lines:
                tr.write_line(line)
