"""The plugin under pytest-xdist: every item's results reach the controller and results.json, runs
shared by items on different workers train once (the cache's per-key lock), and an item that never
reports is an error, not a silent drop.

These sessions run in subprocesses (xdist starts its workers as processes anyway), so each costs a
few seconds of torch imports; the claims train a 1/4-width MLP on 100 digits for 3 epochs.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

pytest.importorskip("xdist")

CONFTEST = """
import importlib
import os

train_module = importlib.import_module("rethinkbench.engine.train")   # rethinkbench.engine.train is also a function

pytest_plugins = ["rethinkbench.pytest_plugin"]

_train = train_module.train


def _counting_train(cfg, *args, **kwargs):
    # One line per training actually started, from whichever process: the test counts them.
    with open(os.environ["RB_TRAIN_LOG"], "a") as log:
        log.write(cfg.key() + "\\n")
    return _train(cfg, *args, **kwargs)


train_module.train = _counting_train
"""

CLAIMS = """
import pytest
from rethinkbench.suite.evidence import ClaimInfo

SMALL = dict(model="mlp1x512", n_train=100, max_epochs=3, stop_at_fit=False)


def info(cid):
    return ClaimInfo(id=cid, title=cid, statement=cid, source="tests")


@pytest.mark.claim(info("X-shared"))
@pytest.mark.parametrize("k", range(4))
def test_shared(claim, run, k):
    # All four items need the same run: under -n 2 two workers ask for it at once.
    r = run(**SMALL)
    claim.measure("final_train_acc", r.final_train_acc, tolerance={"abs": 0.0})
    claim.check(r.final_train_acc >= 0.0, "never fails")


@pytest.mark.claim(info("X-own"))
@pytest.mark.parametrize("seed", [0, 1])
def test_own(claim, run, seed):
    r = run(seed=seed, **SMALL)
    claim.measure("final_test_acc", r.final_test_acc, tolerance={"abs": 0.0})
    claim.check(r.final_test_acc > 2.0, "fails on purpose")
"""


def _session(pytester, monkeypatch, tmp_path, name, *args):
    log = tmp_path / f"{name}.log"
    log.write_text("")
    monkeypatch.setenv("RB_TRAIN_LOG", str(log))   # inherited by the subprocess
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims=CLAIMS)
    res = pytester.runpytest_subprocess(
        "--scale", "smoke", "-p", "no:cacheprovider", "--cache-dir", str(tmp_path / f"cache-{name}"),
        "--report-dir", str(tmp_path / f"rep-{name}"), *args, str(pytester.path))
    results = json.loads((tmp_path / f"rep-{name}" / "results.json").read_text())
    return res, results, Counter(log.read_text().split())


def _items(results):
    return {(c["id"], i["nodeid"], i["outcome"],
             json.dumps({k: m["value"] for k, m in i["measured"].items()}, sort_keys=True))
            for c in results["claims"] for i in c["items"]}


@pytest.fixture
def env_pytester(pytester, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")   # two workers on two cores: one thread each
    pytester.makeini("[pytest]\n")   # the rootdir, as pyproject.toml fixes it for claims/
    return pytester


def test_n2_on_a_fresh_cache_matches_n0_and_trains_each_run_once(env_pytester, monkeypatch, tmp_path):
    res0, results0, trained0 = _session(env_pytester, monkeypatch, tmp_path, "n0", "-n", "0")
    res2, results2, trained2 = _session(env_pytester, monkeypatch, tmp_path, "n2", "-n", "2")
    # X-own is rejected on purpose: at smoke scale inconclusive, an xfail that fails nothing.
    assert res0.ret == res2.ret == pytest.ExitCode.OK
    res2.assert_outcomes(passed=4, xfailed=2)
    assert _items(results2) == _items(results0)
    assert len(_items(results2)) == 6
    assert set(results2["runs"]) == set(results0["runs"])
    # Three distinct runs (the shared one, seeds 0 and 1 of the own one; seed 0 is the shared run).
    assert len(trained0) == 2 and set(trained0.values()) == {1}
    assert trained2 == trained0, f"a run trained twice under -n 2: {trained2}"
    assert "unreported" not in results2


CRASH = """
import os
import pytest
from rethinkbench.suite.evidence import ClaimInfo


@pytest.mark.claim(ClaimInfo(id="X-ok", title="t", statement="s", source="tests"))
def test_ok(claim):
    claim.measure("one", 1)


@pytest.mark.claim(ClaimInfo(id="X-crash", title="t", statement="s", source="tests"))
def test_worker_dies(claim):
    os._exit(1)   # the worker process vanishes without reporting
"""


def test_an_item_whose_worker_died_is_named_and_fails_the_session(env_pytester, tmp_path):
    env_pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    env_pytester.makepyfile(test_crash=CRASH)
    res = env_pytester.runpytest_subprocess("--scale", "smoke", "-p", "no:cacheprovider", "-n", "2",
                                            "--report-dir", str(tmp_path / "rep"),
                                            "--cache-dir", str(tmp_path / "cache"), str(env_pytester.path))
    assert res.ret != 0
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["unreported"] == ["test_crash.py::test_worker_dies"]
    assert "test_crash.py::test_worker_dies" in res.stdout.str()
