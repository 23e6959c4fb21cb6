"""How `pytest` runs the harness's own tests (tests/conftest.py): the whole folder on one
pytest-xdist worker per core with --dist loadgroup, anything narrower as asked, and the cluster
tests skipped, with how to run them, only under a parallel mode that would scatter them."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import DIST_KEY, cluster_skip_reason, wants_parallel_tests

ROOT = Path(__file__).resolve().parents[1]


def _config(args, *, numprocesses=None, collectonly=False, xdist=True):
    return SimpleNamespace(args=[str(a) for a in args], invocation_params=SimpleNamespace(dir=ROOT),
                           option=SimpleNamespace(numprocesses=numprocesses, collectonly=collectonly),
                           pluginmanager=SimpleNamespace(hasplugin=lambda name: xdist and name == "xdist"))


@pytest.mark.parametrize("args, parallel", [
    (["tests"], True),                                  # `pytest` (testpaths) and `pytest tests`
    ([ROOT / "tests"], True),
    (["tests/test_config.py"], False),                  # a file you name runs in one process
    (["tests/test_config.py::test_other_covers_every_field"], False),
    (["tests", "claims"], False),
    (["claims"], False),                                # claims/ has its own default (workers.py)
])
def test_only_the_whole_tests_folder_runs_in_parallel_by_default(args, parallel):
    assert wants_parallel_tests(_config(args)) is parallel


def test_an_explicit_n_collect_only_or_no_xdist_is_left_alone(monkeypatch):
    assert not wants_parallel_tests(_config(["tests"], numprocesses=0))
    assert not wants_parallel_tests(_config(["tests"], numprocesses=3))
    assert not wants_parallel_tests(_config(["tests"], collectonly=True))
    assert not wants_parallel_tests(_config(["tests"], xdist=False))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")   # a worker never starts workers of its own
    assert not wants_parallel_tests(_config(["tests"]))


def test_cluster_tests_run_in_one_process_or_under_loadgroup_and_say_why_otherwise():
    assert cluster_skip_reason(SimpleNamespace()) is None                                   # no xdist
    assert cluster_skip_reason(SimpleNamespace(workerinput={DIST_KEY: "loadgroup"})) is None
    reason = cluster_skip_reason(SimpleNamespace(workerinput={DIST_KEY: "load"}))
    assert reason == ("starts a local cluster: run the executor tests without -n, or with --dist "
                      "loadgroup (this run: --dist load)")


@pytest.mark.parametrize("cores, dist, workers, dist_after", [
    (2, "no", 2, "loadgroup"),          # the 2-core CI machine: a worker per core
    (32, "no", 8, "loadgroup"),         # at most MAX_TEST_WORKERS, however many cores
    (4, "loadfile", 4, "loadfile"),     # a --dist you name is kept
])
def test_the_whole_folder_gets_a_worker_per_core_at_most_eight(monkeypatch, cores, dist, workers, dist_after):
    import conftest

    monkeypatch.setattr(conftest, "available_cores", lambda: cores)
    config = _config(["tests"])
    config.option.dist, config.option.benchmark_disable = dist, False
    conftest.pytest_cmdline_main(config)
    assert conftest.MAX_TEST_WORKERS == 8
    assert (config.option.numprocesses, config.option.dist, config.option.benchmark_disable) == (workers, dist_after, True)


def test_the_slow_tests_are_scheduled_first_in_their_order():
    import conftest

    def item(name, marker=None):
        return SimpleNamespace(name=name, get_closest_marker=lambda m: object() if m == marker else None)

    items = [item("a"), item("e2e-1", "e2e"), item("b"), item("ray", "cluster"), item("e2e-2", "e2e")]
    conftest.pytest_collection_modifyitems(None, items)
    assert [i.name for i in items] == ["e2e-1", "ray", "e2e-2", "a", "b"]
