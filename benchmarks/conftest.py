"""Plumbing for benchmarks/: a place for the speed tests to leave their headline numbers, printed in
the terminal summary (visible without -s) after pytest-benchmark's table."""
from __future__ import annotations

import pytest

_LINES = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def speed_report(pytestconfig) -> list:
    """Append lines here; they are printed under 'rethinkbench speed' at the end of the session."""
    return pytestconfig.stash.setdefault(_LINES, [])


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(_LINES, None)
    if not lines:
        return
    terminalreporter.section("rethinkbench speed")
    for line in lines:
        terminalreporter.write_line(line)
