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


CONV = """
import pytest
from rethinkbench.suite.evidence import ClaimInfo


@pytest.mark.claim(ClaimInfo(id="X-conv", title="t", statement="s", source="tests"))
@pytest.mark.parametrize("seed", [0, 1])
def test_conv(claim, run, seed):
    r = run(model="inception_small", corruption="random_labels", seed=seed, max_epochs=1, stop_at_fit=False)
    claim.measure("train_loss", r.history[-1]["train_loss"])
"""


def test_a_cpu_scale_conv_run_has_the_same_history_under_n0_and_n2(pytester, tmp_path, monkeypatch):
    """Issue 21.1: a run's numbers are a function of its key. Before every run was pinned to one
    intra-op thread, `-n 0` trained on torch's default (two threads here) and each `-n 2` worker on
    one, and the small Inception's first-epoch loss differed (2.31392 vs 2.31402 at seed 0)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)   # the default thread count, as a user has it
    pytester.makeini("[pytest]\n")
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.makepyfile(test_conv=CONV)
    histories = {}
    for n in ("0", "2"):
        res = pytester.runpytest_subprocess("--scale", "cpu", "-p", "no:cacheprovider", "-n", n,
                                            "--cache-dir", str(tmp_path / f"cache-{n}"),
                                            "--report-dir", str(tmp_path / f"rep-{n}"), str(pytester.path))
        res.assert_outcomes(passed=2)
        runs = json.loads((tmp_path / f"rep-{n}" / "results.json").read_text())["runs"]
        histories[n] = {k: [(h["train_loss"], h["train_acc"], h["test_acc"]) for h in r["history"]]
                        for k, r in runs.items()}
        assert {r["device_kind"].rsplit(" ", 1)[1] for r in runs.values()} == {"x1"}
    assert len(histories["0"]) == 2
    assert histories["0"] == histories["2"]


def _fake_config(tmp_path, args, **options):
    from types import SimpleNamespace

    (tmp_path / "claims").mkdir(exist_ok=True)
    opt = SimpleNamespace(numprocesses=None, plan=False, collectonly=False, gpu=False, executor=None)
    for k, v in options.items():
        setattr(opt, k, v)
    return SimpleNamespace(rootpath=tmp_path, args=args, option=opt,
                           invocation_params=SimpleNamespace(dir=tmp_path))


@pytest.mark.parametrize("args, options, wanted", [
    (["claims"], {}, True),                              # the default: one worker per core
    (["claims/test_one.py::test_one"], {}, True),
    (["tests", "claims/test_one.py"], {}, True),
    (["claims"], {"numprocesses": 0}, False),            # the user's -n wins, -n 0 included
    (["claims"], {"numprocesses": 3}, False),
    (["claims"], {"plan": True}, False),                 # --plan trains nothing, in one process
    (["claims"], {"collectonly": True}, False),
    (["claims"], {"executor": "ray"}, False),            # an executor spreads the runs itself
    (["tests"], {}, False),                              # only a session that selects claims/
    (["."], {}, False),
])
def test_which_sessions_get_a_worker_per_core(tmp_path, monkeypatch, args, options, wanted):
    from rethinkbench.suite.plugin.workers import wants_default_workers

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert wants_default_workers(_fake_config(tmp_path, args, **options)) is wanted


def test_pytest_claims_starts_one_worker_per_core_and_n0_none(pytester):
    """The real thing, through pytest-xdist: `pytest claims` with no -n starts `-n auto` workers,
    as many as the plugin's pytest_xdist_auto_num_workers says (this machine's cores)."""
    from rethinkbench.suite.plugin.workers import available_cores

    pytester.makeini("[pytest]\n")
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.mkdir("claims")
    (pytester.path / "claims" / "test_one.py").write_text("def test_one():\n    pass\n")
    common = ("-p", "no:cacheprovider", "--scale", "smoke", "--cache-dir", "cache", "--report-dir", "rep")
    out = pytester.runpytest_subprocess(*common, "claims").stdout.str()
    n = available_cores()
    assert f"created: {n}/{n} worker" in out, out
    out = pytester.runpytest_subprocess(*common, "claims", "-n", "0").stdout.str()
    assert "created:" not in out, out


def test_each_gpu_worker_trains_on_its_own_device(monkeypatch, tmp_path, fake_cifar10):
    """--gpu -n 4 on two GPUs: worker gwN gets cuda:(N mod 2), and every run's config says so
    (GraphedStep then captures on that device, not on the process's current cuda:0). Runs on CPU
    up to the CUDA calls: availability and the device count are stood in for."""
    from pathlib import Path
    from types import SimpleNamespace

    import torch

    from rethinkbench.suite.plugin.state import PluginState

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    opt = SimpleNamespace(gpu=True, scale=None, dataset=None, data_root=fake_cifar10[0], model=None, lr=None,
                          cache_dir=tmp_path / "cache", no_cache=True, report_dir=tmp_path / "rep",
                          help=False, clear_cache=False, seeds=None, plan=False, collectonly=False)
    devices = []
    for worker in ("gw0", "gw1", "gw2", "gw3"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        state = PluginState(SimpleNamespace(option=opt, rootpath=Path(tmp_path)))
        assert state.scale.config(model="mlp1x512").device == state.device
        devices.append(state.device)
    assert devices == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]


def test_the_default_worker_count_is_the_cores_or_with_gpu_the_gpus(monkeypatch, tmp_path):
    """README: `pytest claims/` gets one worker per core, and with --gpu one per GPU."""
    import torch

    from rethinkbench.suite.plugin import workers

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert workers.pytest_xdist_auto_num_workers(_fake_config(tmp_path, ["claims"], gpu=True)) == 3
    assert workers.pytest_xdist_auto_num_workers(_fake_config(tmp_path, ["claims"])) == workers.available_cores()
