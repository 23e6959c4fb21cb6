"""Errors never pass for science: an exception that is not the claim's own decision is verdict
"error" end to end (results.json, the terminal table, the report, compare), never "not reproduced".

Inner sessions run in-process through pytester, as in test_plugin.py; nothing here trains. Their
test files have names no module of tests/ has (in-process, a clash is an import-file mismatch).
"""
from __future__ import annotations

import importlib
import json

import pytest

from rethinkbench.cli import main as cli_main
from rethinkbench.report.results_io import check_results

pytestmark = pytest.mark.usefixtures("warm")


@pytest.fixture(scope="module")
def warm():
    """Import what an inner session imports lazily, so pytester's sys.modules snapshot never has
    to drop and re-import it (see test_plugin.py)."""
    for name in ("rethinkbench.report", "rethinkbench.report.render", "rethinkbench.report.figures",
                 "rethinkbench.suite.session", "rethinkbench.base.provenance", "rethinkbench.engine.train",
                 "jsonschema", "jsonschema.exceptions"):
        importlib.import_module(name)


# rethinkbench.harness.data._torchvision is the one place a torchvision dataset is loaded (or downloaded):
# offline here, it fails the way it does without network.
CONFTEST = '''
import pytest
import rethinkbench.harness.data
from rethinkbench.base.errors import DataError

pytest_plugins = ["rethinkbench.pytest_plugin"]


@pytest.fixture(autouse=True, scope="session")
def offline():
    def no_network(cls_name, root, download):
        raise DataError(f"{cls_name} is not under data root {root} and could not be downloaded "
                        f"(offline test); copy it there or pass --data-root PATH")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rethinkbench.harness.data, "_torchvision", no_network)
        yield
'''

CLAIMS = '''
import pytest
from rethinkbench.base.errors import TrainingDiverged, UsageError
from rethinkbench.suite.evidence import ClaimInfo


def info(cid):
    return ClaimInfo(id=cid, title=f"title {cid}", statement="s", source="tests")


@pytest.mark.claim(info("T-usage"))
def test_usage(claim):
    claim.measure("x", [0.5, 0.7])
    raise UsageError("unknown model 'mlp9'; known: mlp1x512, mlp3x512")


@pytest.mark.claim(info("T-key"))
def test_key(claim):
    config = {}
    config["lr"]


@pytest.mark.claim(info("T-diverged"))
def test_diverged(claim):
    raise TrainingDiverged("loss is nan at epoch 3 of mlp1x512/random_labels/seed0")


@pytest.mark.claim(info("T-direct-fail"))
def test_direct_fail(claim):
    pytest.fail("a helper gave up", pytrace=False)


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")


@pytest.mark.claim(info("T-setup"))
def test_setup(claim, broken):
    pass


@pytest.mark.claim(info("T-xfail-marker"))
@pytest.mark.xfail(reason="known not to reproduce", strict=True)
def test_xfail_marker(claim):
    raise RuntimeError("crashed before measuring")


@pytest.mark.claim(info("T-check"))
def test_check(claim):
    claim.measure("x", [0.5])
    claim.check(False, "x = 0.5 < 1 (n=1)")


@pytest.mark.claim(info("T-assert"))
def test_assert(claim):
    x = 0.5
    assert x > 1, claim.rejected(f"x = {x} <= 1")


@pytest.mark.claim(info("T-known"))
def test_known(claim):
    claim.check(False, "x = 0.5", known_failure="too small a model at smoke scale")


@pytest.mark.claim(info("T-mixed"))
@pytest.mark.parametrize("broken", [False, True])
def test_mixed(claim, broken):
    if broken:
        raise KeyError("model")
'''


@pytest.fixture
def pt(pytester):
    pytester.makeconftest(CONFTEST)
    return pytester


def dirs(pt):
    return ["--cache-dir", str(pt.path / "cache"), "--report-dir", str(pt.path / "rep")]


def items_of(results) -> dict:
    return {c["id"]: c for c in results["claims"]}


def test_errors_end_to_end(pt, capsys):
    """One session over CLAIMS (each inner session costs seconds), checked at every stage."""
    pt.makepyfile(test_inner_error_claims=CLAIMS)
    # cpu: at smoke scale a rejection is inconclusive (test_smoke_honest.py); nothing here trains.
    res = pt.runpytest("--scale", "cpu", *dirs(pt))
    results = json.loads((pt.path / "rep" / "results.json").read_text())
    harness_errors_are_errors_and_rejections_are_not_reproduced(res, results)
    the_traceback_stays_in_pytest_output_not_in_results(res, results)
    the_terminal_table_says_error(res)
    the_report_shows_errors_as_errors(pt)
    for before in ("reproduced", "not_reproduced"):
        compare_fails_on_the_sessions_error_whatever_the_baseline(pt, results, before, capsys)


def harness_errors_are_errors_and_rejections_are_not_reproduced(res, results):
    res.assert_outcomes(passed=1, failed=7, errors=1, xfailed=2)
    check_results(results)   # what the plugin writes follows the schema
    claims = items_of(results)
    expected = {
        "T-usage": ("error", "UsageError: unknown model 'mlp9'; known: mlp1x512, mlp3x512"),
        "T-key": ("error", "KeyError: 'lr'"),
        "T-diverged": ("error", "TrainingDiverged: loss is nan at epoch 3 of "
                                "mlp1x512/random_labels/seed0"),
        "T-direct-fail": ("error", "a helper gave up"),
        "T-setup": ("error", "RuntimeError: fixture broke"),
        "T-xfail-marker": ("error", "RuntimeError: crashed before measuring"),
        "T-check": ("not_reproduced", "T-check rejected: x = 0.5 < 1 (n=1)"),
        "T-known": ("not_reproduced", "T-known not reproduced: x = 0.5 [too small a model at "
                                      "smoke scale]"),
    }
    for cid, (verdict, reason) in expected.items():
        (item,) = claims[cid]["items"]
        assert claims[cid]["verdict"] == verdict, cid
        assert item["verdict"] == verdict, cid
        assert item["reason"] == reason, cid
    assert {cid: claims[cid]["items"][0]["outcome"] for cid in expected} == {
        **{cid: "error" for cid, (verdict, _) in expected.items() if verdict == "error"},
        "T-check": "failed", "T-known": "xfailed"}
    (asserted,) = claims["T-assert"]["items"]
    assert (asserted["outcome"], asserted["verdict"]) == ("failed", "not_reproduced")
    assert asserted["reason"].startswith("T-assert rejected: x = 0.5 <= 1")
    # What was measured before the error is kept.
    assert claims["T-usage"]["items"][0]["measured"]["x"]["value"] == pytest.approx(0.6)
    # One errored item makes the whole claim an error, never "partial".
    assert claims["T-mixed"]["verdict"] == "error"
    assert [i["verdict"] for i in claims["T-mixed"]["items"]] == ["reproduced", "error"]


def the_traceback_stays_in_pytest_output_not_in_results(res, results):
    for claim in results["claims"]:
        for item in claim["items"]:
            reason = item["reason"]
            assert "Traceback" not in reason and len(reason.splitlines()) <= 2, reason
    out = res.stdout.str()
    assert 'raise UsageError("unknown model' in out   # pytest still shows where it was raised


def the_terminal_table_says_error(res):
    res.stdout.fnmatch_lines([
        "*rethinkbench claims*",
        "T-usage *cpu*UsageError: unknown model 'mlp9'; known: mlp1x512, mlp3x512*error (0/1)",
        "T-setup *cpu*RuntimeError: fixture broke*error (0/1)",
        "T-check *cpu *x=0.5 *not reproduced (0/1)",
        "T-mixed *cpu*KeyError: 'model'*error (1/2)",
        "7 item(s) ended in an error: a failure of rethinkbench or its setup, not evidence about "
        "the paper (tracebacks above)",
    ])


def the_report_shows_errors_as_errors(pt):
    from report_samples import parse_html

    dom = parse_html((pt.path / "rep" / "index.html").read_text(encoding="utf-8"))
    tiles = {t.find_all(cls="label")[0].text(): int(t.find_all(cls="count")[0].text())
             for t in dom.find_all("div", "tile")}
    assert tiles["error"] == 7 and tiles["not reproduced"] == 3
    section = next(s for s in dom.find_all("section", "claim") if s.attrs["id"] == "claim-T-usage")
    (article,) = section.find_all("article", "item")
    assert "v-error" in article.classes
    assert "rethinkbench or its setup failed here" in article.find_all(cls="error-note")[0].text()
    assert "UsageError: unknown model 'mlp9'" in article.find_all(cls="reason")[0].text()
    attention = dom.find_all("div", "attention")[0].text()
    assert "KeyError: 'model'" in attention   # T-mixed's headline is its error, not its pass


def compare_fails_on_the_sessions_error_whatever_the_baseline(pt, results, before, capsys):
    baseline = json.loads(json.dumps(results))
    claim = items_of(baseline)["T-usage"]
    claim["verdict"] = before
    claim["items"][0].update(verdict=before, reason="",
                             outcome="passed" if before == "reproduced" else "failed")
    (pt.path / "base.json").write_text(json.dumps(baseline))
    rc = cli_main(["compare", str(pt.path / "base.json"), str(pt.path / "rep" / "results.json")])
    out = capsys.readouterr().out
    assert rc == 1
    (row,) = [line.split(None, 5) for line in out.splitlines()
              if line.split()[:3] == ["REGRESSION", "claim", "T-usage"]]
    assert row[3:] == [before, "error", "error: a failure of rethinkbench or its setup, not of the "
                                        "paper (UsageError: unknown model 'mlp9'; known: mlp1x512, "
                                        "mlp3x512)"]


def test_a_missing_dataset_is_an_error(pt, tmp_path, monkeypatch):
    """Data that vanishes after the configure-time check (test_first_hour.py) is an error."""
    import rethinkbench.suite.plugin.state as state

    monkeypatch.setattr(state, "missing_dataset", lambda name, root: None)
    pt.makepyfile(test_inner_missing_data='''
        import pytest
        from rethinkbench.suite.evidence import ClaimInfo

        INFO = ClaimInfo(id="T-data", title="t", statement="s", source="tests")

        @pytest.mark.claim(INFO)
        def test_trains(claim, run):
            run(model="mlp1x512", n_train=20, max_epochs=1)

        @pytest.mark.claim(INFO)
        def test_reads_the_dataset(claim, dataset):
            pass
    ''')
    missing = tmp_path / "nonexistent"
    res = pt.runpytest("--scale", "smoke", "--dataset", "mnist", f"--data-root={missing}", *dirs(pt))
    res.assert_outcomes(failed=1, errors=1)
    results = json.loads((pt.path / "rep" / "results.json").read_text())
    (claim,) = results["claims"]
    assert claim["verdict"] == "error"
    trains, reads = claim["items"]
    assert (trains["outcome"], trains["verdict"]) == ("error", "error")
    assert trains["reason"].startswith(f"DataError: MNIST is not under data root {missing}")
    assert (reads["outcome"], reads["verdict"]) == ("error", "error")
    assert reads["reason"].startswith(f"could not load dataset 'mnist': DataError: MNIST is not "
                                      f"under data root {missing}")
    res.stdout.fnmatch_lines(["T-data *smoke*DataError: MNIST is not under data root*error (0/2)"])
