"""A new user's first hour (issue 21): smoke scale is honest (a claim's rejection there is
"inconclusive", never a failed session), Ctrl-C marks its partial results and keeps the last
complete ones, results.json records the selection so that `compare` on a subset compares only
what both sessions ran, and a rejection reads as one line in the terminal.

Inner sessions run in-process through pytester (as in test_error_verdict.py); nothing here trains.
"""
from __future__ import annotations

import importlib
import json

import pytest
# Imported here, before any pytester snapshot of sys.modules: torchvision first imported inside an
# in-process inner session would be dropped from sys.modules after it, and importing it again
# registers torch's operator libraries twice.
from torchvision.datasets import cifar as tv_cifar
from torchvision.datasets import mnist as tv_mnist

from rethinkbench.report.compare import IMPROVED, REGRESSION, compare
from rethinkbench.report.results_io import check_results
from rethinkbench.report.rows import CHANGED, NOT_RUN

pytestmark = pytest.mark.usefixtures("warm")


@pytest.fixture(scope="module")
def warm():
    """Import what an inner session imports lazily (see test_plugin.py)."""
    for name in ("rethinkbench.report", "rethinkbench.report.render", "rethinkbench.report.figures",
                 "rethinkbench.suite.session", "rethinkbench.base.provenance", "rethinkbench.engine.train",
                 "jsonschema", "jsonschema.exceptions"):
        importlib.import_module(name)


CONFTEST = 'pytest_plugins = ["rethinkbench.pytest_plugin"]\n'

CLAIMS = '''
import os
import pytest
from rethinkbench.suite.evidence import ClaimInfo


def info(cid):
    return ClaimInfo(id=cid, title=f"title {cid}", statement="s", source="tests")


@pytest.mark.claim(info("T-pass"))
def test_pass(claim):
    claim.measure("x", [1.5])
    claim.check(True, "x = 1.5")


@pytest.mark.claim(info("T-check"))
def test_check(claim):
    claim.measure("p", [0.5])
    claim.check(False, "Mann-Whitney p = 0.500 > 0.05 (n=1)")


@pytest.mark.claim(info("T-known"))
def test_known(claim):
    claim.check(False, "x = 0.5", known_failure="too small")


@pytest.mark.claim(info("T-mixed"))
@pytest.mark.parametrize("ok", [True, False])
def test_mixed(claim, ok):
    if os.environ.get("RB_TEST_INTERRUPT") and not ok:
        raise KeyboardInterrupt
    claim.check(ok, "ratio 0.9 < 1")


@pytest.mark.claim(info("T-error"))
def test_error(claim):
    raise RuntimeError("the harness broke")
'''


@pytest.fixture
def pt(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner_first_hour=CLAIMS)
    return pytester


def run(pt, *args):
    # no_reraise_ctrlc: an inner KeyboardInterrupt is the inner session's, not this one's.
    res = pt.runpytest("--cache-dir", str(pt.path / "cache"), "--report-dir", str(pt.path / "rep"), *args,
                       no_reraise_ctrlc=True)
    results = json.loads((pt.path / "rep" / "results.json").read_text())
    check_results(results)   # every new field follows the schema
    return res, results


def by_id(results) -> dict:
    return {c["id"]: c for c in results["claims"]}


def test_a_rejection_at_smoke_scale_is_inconclusive_and_does_not_fail_the_session(pt):
    res, results = run(pt, "--scale", "smoke")
    # T-error still fails the session; the three rejections are xfails to pytest.
    res.assert_outcomes(passed=2, failed=1, xfailed=3)
    claims = by_id(results)
    (check,) = claims["T-check"]["items"]
    assert (check["outcome"], check["verdict"]) == ("inconclusive", "inconclusive")
    assert check["reason"] == ("inconclusive at smoke scale: T-check rejected: Mann-Whitney p = "
                               "0.500 > 0.05 (n=1)")
    assert claims["T-known"]["items"][0]["verdict"] == "inconclusive"
    assert claims["T-check"]["verdict"] == "inconclusive"
    assert claims["T-mixed"]["verdict"] == "inconclusive"   # one reproduced, one inconclusive
    assert claims["T-error"]["verdict"] == "error"           # an error is an error at any scale
    out = res.stdout.str()
    assert "smoke scale tests the plumbing" in out
    res.stdout.fnmatch_lines(["T-check *smoke*inconclusive at smoke scale (0/1)",
                              "inconclusive at smoke scale: T-check rejected: Mann-Whitney p = 0.500 > 0.05 (n=1)"])
    assert "not_reproduced" not in out
    html = (pt.path / "rep" / "index.html").read_text()
    assert "Smoke scale: smoke scale tests the plumbing" in html

    # Without the error the session passes: exit 0.
    res, _ = run(pt, "--scale", "smoke", "-k", "not T-error")
    assert res.ret == 0


def test_at_cpu_scale_a_rejection_is_still_a_rejection_in_one_line(pt):
    res, results = run(pt, "--scale", "cpu", "-k", "T-check or T-known")
    res.assert_outcomes(failed=1, xfailed=1)
    claims = by_id(results)
    assert [claims[c]["verdict"] for c in ("T-check", "T-known")] == ["not_reproduced"] * 2
    out = res.stdout.str()
    res.stdout.fnmatch_lines(["T-check *cpu*not reproduced (0/1)",
                              "not reproduced: T-check rejected: Mann-Whitney p = 0.500 > 0.05 (n=1)",
                              "T-known not reproduced: x = 0.5 [[]too small[]]"])
    assert "not_reproduced" not in out and "smoke scale tests the plumbing" not in out
    # pytest's own failure section: the rejection is one line, no source, no Evidence repr.
    failures = out.split("= FAILURES =")[1].split("rethinkbench claims")[0]
    assert "Evidence(" not in failures and "def test_check" not in failures


def test_ctrl_c_marks_the_results_and_keeps_the_previous_complete_ones(pt, monkeypatch):
    res, complete = run(pt, "--scale", "cpu")
    assert "interrupted" not in complete
    assert len(complete["selection"]["items"]) == 6
    monkeypatch.setenv("RB_TEST_INTERRUPT", "1")
    for attempt in range(2):   # a second interrupted session must not replace the kept one
        res, partial = run(pt, "--scale", "cpu")
        assert res.ret == pytest.ExitCode.INTERRUPTED
        assert partial["interrupted"] is True
        assert partial["progress"] == {"selected": 6, "finished": 4}
        rep = pt.path / "rep"
        assert json.loads((rep / "results.previous.json").read_text()) == complete
        assert (rep / "index.previous.html").exists()
        assert "Interrupted session: 4 of 6 selected tests finished" in (rep / "index.html").read_text()
        res.stdout.fnmatch_lines([f"rethinkbench: INTERRUPTED: 4 of 6 selected tests finished; "
                                  f"results.json and index.html are partial (marked interrupted); the "
                                  f"last complete results are kept as {rep / 'results.previous.json'} "
                                  f"and {rep / 'index.previous.html'}"])


def test_compare_on_a_subset_compares_only_what_both_selected(pt):
    _, full = run(pt, "--scale", "cpu")
    _, subset = run(pt, "--scale", "cpu", "-k", "T-pass or T-mixed and True")
    assert subset["selection"]["keyword"] == "T-pass or T-mixed and True"
    assert subset["selection"]["items"] == ["test_inner_first_hour.py::test_pass",
                                            "test_inner_first_hour.py::test_mixed[True]"]
    comparison = compare(full, subset)
    assert comparison.ok, comparison.format_table()
    status = {row.subject: row.status for row in comparison.rows}
    assert status["T-check"] == NOT_RUN and status["T-error"] == NOT_RUN
    assert status["T-mixed › test_mixed[False]"] == NOT_RUN
    # T-mixed was partial in full (its failing item) and is reproduced on the subset only because
    # that item did not run: not an improvement.
    assert status["T-mixed"] not in (IMPROVED, REGRESSION)
    table = comparison.format_table()
    assert "3 claim(s) and 1 item(s) ran in only one of the two sessions" in table
    # The other way round: the full run is not "new" for what the subset did not select.
    back = compare(subset, full)
    assert {row.subject: row.status for row in back.rows}["T-check"] == NOT_RUN


def test_compare_reads_inconclusive_as_no_evidence():
    def results(verdict):
        return {"schema": 1, "claims": [{"id": "T", "verdict": verdict, "items": [
            {"nodeid": "t.py::test_t", "outcome": {"reproduced": "passed"}.get(verdict, verdict),
             "verdict": verdict}]}], "runs": {}}

    for before, now in (("reproduced", "inconclusive"), ("inconclusive", "reproduced")):
        comparison = compare(results(before), results(now))
        assert comparison.ok
        assert {row.status for row in comparison.rows if row.check in ("claim", "item")} == {CHANGED}


@pytest.mark.parametrize("name, cls", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"),
                                       ("cifar10", "CIFAR10")])
def test_a_missing_builtin_dataset_is_one_usage_error_at_configure_time(pt, tmp_path, monkeypatch,
                                                                         name, cls):
    """Missing files are downloaded at configure time (DESIGN.md: "downloaded there if absent");
    without network that is one usage error naming the root, the files and how to fetch them, and
    the failed download leaves no folder behind."""
    import urllib.error

    import rethinkbench.harness.data as data
    import rethinkbench.harness.datafiles as datafiles

    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args[0] if args else kwargs.get("url"))
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    for module in (tv_mnist, tv_cifar):
        monkeypatch.setattr(module, "download_and_extract_archive", no_network)
    monkeypatch.setattr(datafiles, "FASHION_MNIST_DEBIAN", tmp_path / "no-debian-package")
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", tmp_path / "no-debian-package")
    empty = tmp_path / "empty-root"
    res = pt.runpytest("--scale", "smoke", "--dataset", name, f"--data-root={empty}",
                       "--cache-dir", str(pt.path / "cache"), "--report-dir", str(pt.path / "rep"))
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in res.stderr.lines if line.strip()]
    assert line.startswith(f"ERROR: --dataset {name}: not found under --data-root {empty} (")
    assert f"torchvision.datasets.{cls}('{empty}', download=True)" in line
    assert "(the download failed: " in line
    assert attempts, "a missing dataset is downloaded first"
    assert not empty.exists(), "a failed download leaves no folder behind"


def test_a_present_builtin_dataset_passes_the_check(fake_cifar10):
    from rethinkbench.harness.datafiles import missing_dataset

    root, _ = fake_cifar10
    assert missing_dataset("cifar10", root) is None
    assert missing_dataset("mnist5k", root) is None   # ships inside a package
    assert "7 files missing from" in missing_dataset("cifar10", root.parent / "elsewhere")


def test_the_imagenet_skip_names_every_option_it_needs(pytester):
    """At cpu scale the ImageNet rows skip saying both --gpu and --imagenet-root PATH."""
    from pathlib import Path

    pytester.makeconftest(CONFTEST)
    source = Path(__file__).parent.parent / "claims" / "test_zhang_imagenet.py"
    pytester.makepyfile(test_inner_imagenet=source.read_text(encoding="utf-8"))
    res = pytester.runpytest("--scale", "cpu", "-rs", "--cache-dir", str(pytester.path / "cache"),
                             "--report-dir", str(pytester.path / "rep"))
    res.assert_outcomes(skipped=4)
    res.stdout.fnmatch_lines(["*SKIPPED*runs at scale paper only; this session is --scale cpu "
                              "(use --gpu --imagenet-root PATH)*"])
