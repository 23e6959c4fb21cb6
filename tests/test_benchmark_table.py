"""Every training run a claim asks for is timed once by pytest-benchmark, so the plugin shows its
table with two columns (min, rounds) instead of eleven, unless the user chose the columns; and it
does so through public surfaces only, which work on pytest-benchmark 4.0 (default: a list) as on
5.3 (default: None)."""
from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")

CLAIM = """
import pytest
from rethinkbench.suite.evidence import ClaimInfo


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
    (("--timing-table",), ["Min", "Rounds"], ["Median", "StdDev", "OPS"]),
    (("--timing-table", "--benchmark-columns=mean,max"), ["Mean", "Max"], ["Min", "Rounds"]),
])
def test_benchmark_table_columns(pt, extra, shown, hidden):
    res = pt.runpytest_subprocess("--scale", "smoke", "-p", "no:cacheprovider", "--cache-dir",
                                  str(pt.path / "c"), "--report-dir", str(pt.path / "r"), *extra)
    header = _header(res)
    assert all(c in header for c in shown) and not any(c in header for c in hidden), header


def test_claim_timings_print_no_table_by_default_but_are_still_captured(pt):
    """A claim times nothing itself: pytest-benchmark's table (and legend) stays off unless
    --timing-table asks for it, while --benchmark-json still gets the run's timing."""
    res = pt.runpytest_subprocess("--scale", "smoke", "-p", "no:cacheprovider", "--cache-dir",
                                  str(pt.path / "c"), "--report-dir", str(pt.path / "r"),
                                  f"--benchmark-json={pt.path / 'b.json'}")
    assert res.ret == 0, res.stdout.str()
    assert not any(line.startswith("Name (time in") or line.startswith("Legend:") for line in res.stdout.lines)
    import json
    data = json.loads((pt.path / "b.json").read_text())
    assert [b["group"] for b in data["benchmarks"]] == ["B-one"]


def test_a_plain_benchmark_keeps_its_table(pytester):
    """benchmarks/-style tests (the benchmark fixture used directly) are not claims: table shown."""
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.makepyfile(test_bench="def test_speed(benchmark):\n    benchmark(sum, range(10))\n")
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--report-dir", str(pytester.path / "r"))
    assert res.ret == 0, res.stdout.str()
    assert any(line.startswith("Name (time in") for line in res.stdout.lines)
