"""ItemTracker: which collected tests delivered a final report, on the controller (plain run or
pytest-xdist), so that a test whose worker died is named, never silently missing."""
from __future__ import annotations

import pytest


class ItemTracker:
    """Which collected tests delivered a final report, on the controller (plain run or xdist).

    With pytest-xdist the controller collects nothing itself: each worker tells it which test ids
    it collected (`pytest_xdist_node_collection_finished`, a public xdist hook)."""

    def __init__(self):
        self.collected: dict[str, None] = {}   # ordered set of node ids
        self.reported: set[str] = set()

    def pytest_collection_finish(self, session):
        if not hasattr(session.config, "workerinput"):
            self.collected.update(dict.fromkeys(item.nodeid for item in session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.collected.update(dict.fromkeys(ids))

    def pytest_runtest_logreport(self, report):
        # The report that decides an item: its call, or a setup that did not pass (skip, error).
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.reported.add(report.nodeid)

    def unreported(self, session) -> list[str]:
        if session.config.option.collectonly:
            return []
        if session.shouldstop or session.shouldfail or session.exitstatus == pytest.ExitCode.INTERRUPTED:
            return []   # -x, --maxfail, Ctrl-C: tests left unrun on purpose
        return [nodeid for nodeid in self.collected if nodeid not in self.reported]
