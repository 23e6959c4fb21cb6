"""Every training run a claim asks for is timed once by pytest-benchmark, so the plugin shows its
table with two columns (min, rounds) instead of eleven, unless the user chose the columns; and it
does so through public surfaces only, which work on pytest-benchmark 4.0 (default: a list) as on
5.3 (default: None)."""
from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

CLAIM = """
import pytest
from rethinkbench.evidence import ClaimInfo


@pytest.mark.claim(ClaimInfo(id="B-one", title="t", statement="s", source="tests"))
def test_one(claim, run):
    r = run(model="mlp1x512", n_train=64, max_epochs=1, stop_at_fit=False)
    claim.measure("acc", r.final_train_acc)
"""


@pytest.fixture
def pt(pytester):
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.makepyfile(test_claim=CLAIM)
    return pytester


def _header(res) -> str:
    return next(line for line in res.stdout.lines if line.startswith("Name (time in"))


@pytest.mark.parametrize("extra, shown, hidden", [
    ((), ["Min", "Rounds"], ["Median", "StdDev", "OPS"]),
    (("--benchmark-columns=mean,max",), ["Mean", "Max"], ["Min", "Rounds"]),
])
def test_benchmark_table_columns(pt, extra, shown, hidden):
    res = pt.runpytest_subprocess("--scale", "smoke", "-p", "no:cacheprovider", "--cache-dir",
                                  str(pt.path / "c"), "--report-dir", str(pt.path / "r"), *extra)
    header = _header(res)
    assert all(c in header for c in shown) and not any(c in header for c in hidden), header
