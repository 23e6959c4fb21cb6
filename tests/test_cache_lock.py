"""The results cache's per-key cross-process lock (ResultsCache.locked) and how cached_train and the
plugin's Runner.many use it: two processes sharing one cache train a missing run once.

No sleeps synchronize anything here: the lock itself and a pipe do. The cross-process test starts
one extra Python (importing rethinkbench takes about two seconds of it).
"""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from rethinkbench.engine.cache import ResultsCache, cached_train
from rethinkbench.engine.train import RunResult

from test_cache import make_result

# The second process: it looks the run up, misses, says so on stdout, then waits for the key's lock
# (held by the test's process, which is "training" the run) and must find the stored result.
SECOND_PROCESS = r"""
import json, sys
from rethinkbench.engine.cache import ResultsCache, cached_train
from rethinkbench.engine.config import RunConfig

cache_dir, cfg_json, calls = sys.argv[1:4]


class Announcing(ResultsCache):
    def locked(self, cfgs):
        print("missed; waiting for the lock", flush=True)   # cached_train locks only after a miss
        return super().locked(cfgs)


def fake_train(cfg):
    with open(calls, "a") as f:
        f.write("second\n")
    raise SystemExit("the second process trained a run the first one was training")


res = cached_train(RunConfig.from_dict(json.loads(cfg_json)), Announcing(cache_dir), fake_train)
print(json.dumps({"cached": res.cached, "final_train_acc": res.final_train_acc}), flush=True)
"""


def test_a_second_process_waits_for_the_lock_and_reads_the_first_ones_result(tmp_path):
    cache = ResultsCache(tmp_path / "cache")
    calls = tmp_path / "train-calls.txt"
    result = make_result(acc=0.75)
    second = []

    def fake_train(cfg):
        with calls.open("a") as f:
            f.write("first\n")
        # This process holds the key's lock now. Start the second one and let it miss; it cannot
        # get the lock before this returns and cached_train has stored the result.
        proc = subprocess.Popen([sys.executable, "-c", SECOND_PROCESS, str(cache.dir),
                                 json.dumps(cfg.to_dict()), str(calls)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        second.append(proc)
        line = proc.stdout.readline()   # blocks until the second process has missed
        assert line == "missed; waiting for the lock\n", proc.communicate(timeout=60)[1]
        return result

    first = cached_train(result.config, cache, fake_train)
    out, err = second[0].communicate(timeout=60)
    assert second[0].returncode == 0, err
    assert not first.cached
    assert json.loads(out) == {"cached": True, "final_train_acc": 0.75}
    assert calls.read_text() == "first\n", "the run was trained twice"


# ----------------------------------------------------------------------------- Runner.many

class WatchedCache(ResultsCache):
    """Records when the locks are held; `meanwhile` is stored "by another process" while this one
    waits for its locks (the moment the second lookup must catch)."""

    def __init__(self, directory, events, meanwhile=(), enabled=True):
        super().__init__(directory, enabled=enabled)
        self.events, self.meanwhile = events, list(meanwhile)

    def locked(self, cfgs):
        cfgs = list(cfgs)
        self.events.append(("wait", sorted(c.seed for c in cfgs)))
        for r in self.meanwhile:
            self.put(r)
        inner = super().locked(cfgs)
        events = self.events

        class Held:
            def __enter__(self):
                inner.__enter__()
                events.append(("locked",))

            def __exit__(self, *exc):
                events.append(("released",))
                return inner.__exit__(*exc)

        return Held()


def finished(cfg, acc=1.0) -> RunResult:
    return RunResult(config=cfg, history=[], epochs_to_fit=1, steps_to_fit=1, final_train_acc=acc,
                     final_test_acc=0.5, best_test_acc=0.5, wall_seconds=0.1)


def make_runner(cache, events, monkeypatch):
    from rethinkbench.suite.runner import Runner
    from rethinkbench.suite.scales import get_scale

    state = SimpleNamespace(scale=get_scale("smoke"), dataset="mnist5k", cache=cache)
    runner = Runner(SimpleNamespace(node=SimpleNamespace(stash={})), state)

    def fake_timed_train(cfgs):   # what _timed_train does, minus the training
        events.append(("train", sorted(c.seed for c in cfgs)))
        out = [finished(c) for c in cfgs]
        for r in out:
            cache.put(r)
        return out

    monkeypatch.setattr(runner, "_timed_train", fake_timed_train)
    return runner


def test_runner_trains_under_the_lock_only_what_is_still_missing(tmp_path, monkeypatch):
    events = []
    probe = make_runner(ResultsCache(tmp_path / "unused"), [], monkeypatch)
    cfgs = [probe.config(model="mlp1x512", seed=s) for s in range(3)]
    cache = WatchedCache(tmp_path / "cache", events, meanwhile=[finished(cfgs[1], acc=0.9)])
    cache.put(finished(cfgs[0], acc=0.8))   # already cached before the session asked
    runner = make_runner(cache, events, monkeypatch)

    results = runner.many([dict(model="mlp1x512", seed=s) for s in range(3)])

    assert events == [("wait", [1, 2]), ("locked",), ("train", [2]), ("released",)]
    assert [r.cached for r in results] == [True, True, False]
    assert [r.final_train_acc for r in results] == [0.8, 0.9, 1.0]
    assert sorted(p.name for p in cache.dir.glob("*.lock")) == sorted(
        f"{c.key()}.lock" for c in cfgs[1:])


def test_runner_takes_no_lock_when_everything_is_cached(tmp_path, monkeypatch):
    events = []
    cache = WatchedCache(tmp_path / "cache", events)
    runner = make_runner(cache, events, monkeypatch)
    runner.many([dict(seed=0)])
    events.clear()
    assert [r.cached for r in runner.many([dict(seed=0), dict(seed=0)])] == [True, True]
    assert events == []


def test_runner_without_the_cache_takes_no_locks(tmp_path, monkeypatch):
    events = []
    cache = WatchedCache(tmp_path / "cache", events, enabled=False)
    runner = make_runner(cache, events, monkeypatch)
    results = runner.many([dict(seed=0), dict(seed=1)])
    assert [r.cached for r in results] == [False, False]
    assert ("train", [0, 1]) in events
    assert not cache.dir.exists(), "--no-cache created lock files"


@pytest.mark.parametrize("raised", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_training_releases_the_locks(tmp_path, monkeypatch, raised):
    events = []
    cache = WatchedCache(tmp_path / "cache", events)
    runner = make_runner(cache, events, monkeypatch)

    def failing(cfgs):
        raise raised

    monkeypatch.setattr(runner, "_timed_train", failing)
    with pytest.raises(type(raised)):
        runner.many([dict(seed=0)])
    assert events[-1] == ("released",)
    # and the lock is free again: a fresh lock on the same key is taken at once
    from filelock import FileLock

    cfg = runner.config(seed=0)
    with FileLock(cache.lock_path(cfg)).acquire(timeout=0):
        pass
