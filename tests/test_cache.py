"""The results cache (rethinkbench/engine/cache.py): pytest-cacheprovider semantics. An unreadable entry is
a miss with a CacheWarning, a failed write is a warning, an interrupted write leaves nothing, failed
runs are never stored; clear() deletes only in a directory marked as the cache's, and only its own
files. The cross-process lock is tested in test_cache_lock.py."""
from __future__ import annotations

import json
import os
import shutil
import warnings

import pytest
import torch

import rethinkbench as rb
from rethinkbench.engine import cache as cache_mod
from rethinkbench.engine.cache import CacheWarning, ResultsCache, cached_train
from rethinkbench.engine.train import RunResult


def make_result(seed=0, acc=1.0, **cfg_kw) -> RunResult:
    """A finished-looking RunResult without training (the cache only stores and compares dicts)."""
    cfg = rb.RunConfig(model="mlp1x512", width=0.25, n_train=200, seed=seed, **cfg_kw)
    history = [{"epoch": 1, "step": 2, "train_loss": 2.3, "train_acc": 0.2, "test_acc": 0.1, "seconds": 0.1,
                "lr": 0.01},
               {"epoch": 2, "step": 4, "train_loss": 0.1, "train_acc": 0.99, "test_acc": 0.5, "seconds": 0.2,
                "lr": 0.01, "train_acc_full": acc}]
    return RunResult(config=cfg, history=history, epochs_to_fit=2 if acc == 1.0 else None,
                     steps_to_fit=4 if acc == 1.0 else None, final_train_acc=acc, final_test_acc=0.5,
                     best_test_acc=0.5, wall_seconds=0.25, provenance={"device": "cpu"},
                     per_example_correct=[1, 0, 1])


def same_numbers(a: RunResult, b: RunResult) -> bool:
    da, db = a.to_dict(), b.to_dict()
    return da == db


@pytest.fixture
def cache(tmp_path):
    return ResultsCache(tmp_path / "cache")


def temp_files(directory):
    return [p.name for p in directory.iterdir() if p.name.startswith(".tmp")] if directory.exists() else []


def test_put_get_roundtrip(cache):
    res = make_result()
    assert cache.get(res.config) is None and cache.misses == 1
    path = cache.put(res)
    assert path == cache.path(res.config) and path.exists()
    assert not res.cached, "put must not mark the stored result"
    hit = cache.get(res.config)
    assert hit is not None and hit.cached is True
    assert same_numbers(hit, res) and hit.config == res.config
    assert cache.hits == 1 and len(cache) == 1
    assert temp_files(cache.dir) == []


def test_entries_are_json_named_by_the_config_key(cache):
    res = make_result()
    cache.put(res)
    blob = json.loads(cache.path(res.config).read_text())
    assert cache.path(res.config).name == f"{res.config.key()}.json"
    assert blob["result"]["config"] == res.config.to_dict()


def test_directory_is_created_with_a_gitignore(tmp_path):
    c = ResultsCache(tmp_path / "deep" / "er" / "cache")
    assert not c.dir.exists()
    c.put(make_result())
    gitignore = c.dir / ".gitignore"
    assert gitignore.exists() and "*" in gitignore.read_text().split()
    assert not [p for p in c.dir.parent.iterdir() if p.name.startswith(".tmp")], "stray temp dir"
    # the Cache Directory Tagging spec's signature, then our own line: the dir is provably ours
    tag = (c.dir / "CACHEDIR.TAG").read_text().splitlines()
    assert tag[0] == "Signature: 8a477f597d28d172789f06886806bc55"
    assert any("rethinkbench" in line for line in tag[1:]) and c.is_marked()


def test_ensure_dir_onto_a_file_raises_and_leaves_no_temp_dir(tmp_path):
    (tmp_path / "cache").write_text("a user's file")
    c = ResultsCache(tmp_path / "cache")
    with pytest.raises(OSError):
        c.ensure_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert (tmp_path / "cache").read_text() == "a user's file"


@pytest.mark.parametrize("garbage", [
    b"\xff\xfe\x00garbage\x80", b"", b"{\"harness\": \"1\", \"result\": {\"con", b"null", b"[]", b"42",
    b"\"a string\"", b"{}", b"{\"harness\": \"1\", \"result\": []}",
    b"{\"harness\": \"1\", \"result\": {\"config\": null}}",
], ids=["binary", "empty", "truncated", "null", "list", "number", "string", "empty-object",
        "result-list", "config-null"])
def test_corrupt_entry_is_a_miss_with_a_warning(cache, garbage):
    res = make_result()
    cache.put(res)
    cache.path(res.config).write_bytes(garbage)
    with pytest.warns(CacheWarning, match="unreadable cache entry"):
        assert cache.get(res.config) is None
    assert cache.misses == 1 and cache.hits == 0
    cache.put(res)   # and the entry can be rewritten
    assert cache.get(res.config).cached


def test_entry_of_a_matching_config_with_missing_fields_is_a_miss(cache):
    res = make_result()
    blob = {"harness": "1", "result": {"config": res.config.to_dict(), "history": []}}
    cache.ensure_dir()
    cache.path(res.config).write_text(json.dumps(blob))
    with pytest.warns(CacheWarning):
        assert cache.get(res.config) is None


@pytest.mark.parametrize("field, value, shown", [
    ("epochs_to_fit", "12", "str '12'"),
    ("steps_to_fit", True, "bool True"),
    ("history", {}, "dict {}"),
    ("history", [1, 2], "list [1, 2]"),
    ("final_train_acc", "1.0", "str '1.0'"),
    ("final_test_acc", None, "NoneType None"),
    ("wall_seconds", [0.25], "list [0.25]"),
    ("provenance", [], "list []"),
    ("per_example_correct", "101", "str '101'"),
    ("collapsed", "no", "str 'no'"),
])
def test_entry_with_a_field_of_the_wrong_type_is_a_miss(cache, field, value, shown):
    """A hand-edited or foreign entry must not be a hit that breaks the claim reading it."""
    res = make_result()
    cache.put(res)
    blob = json.loads(cache.path(res.config).read_text())
    blob["result"][field] = value
    cache.path(res.config).write_text(json.dumps(blob))
    with pytest.warns(CacheWarning, match="unreadable cache entry") as record:
        assert cache.get(res.config) is None
    assert f"field {field!r} is {shown}, expected" in str(record[0].message)
    assert cache.misses == 1 and cache.hits == 0


def test_entry_fields_may_be_null_where_the_result_allows_it(cache):
    res = make_result(acc=0.5)   # never fitted: epochs_to_fit and steps_to_fit are None
    res.per_example_correct = None
    cache.put(res)
    assert cache.get(res.config) is not None


def test_entry_of_another_config_under_the_same_name_is_a_miss(cache):
    a, b = make_result(seed=0), make_result(seed=1)
    cache.put(a)
    cache.path(a.config).replace(cache.path(b.config))   # b's name, a's content
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        assert cache.get(b.config) is None
    assert cache.get(a.config) is None and cache.hits == 0


def test_entry_of_another_harness_version_is_a_miss(cache, monkeypatch):
    res = make_result()
    cache.put(res)
    monkeypatch.setattr(cache_mod, "HARNESS_VERSION", "999")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        assert cache.get(res.config) is None


def test_interrupted_write_leaves_no_entry_and_no_temp_file(cache, monkeypatch):
    res = make_result()
    cache.ensure_dir()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.put(res)
    monkeypatch.undo()
    assert not cache.path(res.config).exists()
    assert temp_files(cache.dir) == [] and len(cache) == 0


def test_write_interrupted_half_way_through_the_file(cache, monkeypatch):
    old = make_result(acc=1.0)
    cache.put(old)
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: HalfWriter(real_fdopen(fd, *a, **k)))
    new = make_result(acc=0.5)
    with pytest.raises(KeyboardInterrupt):
        cache.put(new)
    monkeypatch.undo()
    assert temp_files(cache.dir) == []
    hit = cache.get(old.config)   # the old entry is intact
    assert hit is not None and hit.final_train_acc == 1.0


def test_failed_replace_is_a_warning_and_leaves_nothing(cache, monkeypatch):
    res = make_result()

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing)
    with pytest.warns(CacheWarning, match="could not write cache entry"):
        assert cache.put(res) is None
    monkeypatch.undo()
    assert temp_files(cache.dir) == [] and len(cache) == 0


def test_failing_json_dumps_leaves_nothing(cache, monkeypatch):
    res = make_result()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod.json, "dumps", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.put(res)
    monkeypatch.undo()
    assert not cache.path(res.config).exists() and temp_files(cache.dir) == []


def test_unwritable_directory_is_a_warning_not_a_crash(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    c = ResultsCache(blocker / "cache")
    with pytest.warns(CacheWarning, match="could not write"):
        assert c.put(make_result()) is None
    assert c.get(make_result().config) is None and len(c) == 0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_directory_is_a_warning_not_a_crash(tmp_path):
    c = ResultsCache(tmp_path / "cache")
    c.put(make_result(seed=0))
    c.dir.chmod(0o500)
    try:
        with pytest.warns(CacheWarning):
            assert c.put(make_result(seed=1)) is None
    finally:
        c.dir.chmod(0o700)


def test_clear_counts_entries_and_removes_temp_files(cache):
    assert cache.clear() == 0   # no directory yet
    for s in range(3):
        cache.put(make_result(seed=s))
    (cache.dir / ".tmp-leftover.json").write_text("{")
    assert len(cache) == 3
    assert cache.clear() == 3
    assert len(cache) == 0 and temp_files(cache.dir) == []
    assert (cache.dir / ".gitignore").exists()
    assert cache.clear() == 0


def test_disabled_cache_never_writes(tmp_path):
    c = ResultsCache(tmp_path / "cache", enabled=False)
    res = make_result()
    assert c.put(res) is None and c.get(res.config) is None
    assert not c.dir.exists()
    calls = []
    train = lambda cfg: calls.append(cfg) or make_result()
    cached_train(res.config, c, train)
    cached_train(res.config, c, train)
    assert len(calls) == 2 and not c.dir.exists()


def test_cached_train_trains_once(cache):
    calls = []

    def train(cfg, **kw):
        calls.append(kw)
        return make_result()

    cfg = make_result().config
    first = cached_train(cfg, cache, train, data_root="x")
    second = cached_train(cfg, cache, train, data_root="x")
    assert len(calls) == 1 and calls[0] == {"data_root": "x"}
    assert not first.cached and second.cached and same_numbers(first, second)
    assert cached_train(cfg, None, train).cached is False and len(calls) == 2


def test_a_failing_run_is_not_cached(cache):
    gen = torch.Generator().manual_seed(0)
    data = rb.Dataset(torch.randn(16, 1, 4, 4, generator=gen), torch.arange(16) % 2, torch.zeros(4, 1, 4, 4),
                      torch.zeros(4, dtype=torch.int64), num_classes=2)
    # (NaN pixels are refused by rb.Dataset itself; an absurd lr makes a real run diverge)
    diverging = rb.RunConfig(dataset="custom:diverge", width=0.25, max_epochs=2, batch_size=8, lr=1e20)
    with pytest.raises(rb.TrainingDiverged):
        cached_train(diverging, cache, rb.train, dataset=data)
    assert len(cache) == 0 and not cache.path(diverging).exists()

    cfg = rb.RunConfig(dataset="custom:ok", width=0.25, max_epochs=2, batch_size=8)

    def interrupted(cfg, **kw):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_train(cfg, cache, interrupted)
    assert len(cache) == 0
    # the next attempt trains (nothing was stored) and then is stored
    res = cached_train(cfg, cache, rb.train, dataset=data)
    assert not res.cached and len(cache) == 1
    assert cached_train(cfg, cache, rb.train, dataset=data).cached


def test_kept_model_round_trips_through_the_cache(cache):
    """A-csr needs trained networks: a result trained with keep_model stores its weights beside the
    JSON, and get(with_model=True) rebuilds a network that predicts exactly what the trained one did."""
    cfg = rb.RunConfig(model="mlp1x512", width=0.25, n_train=100, max_epochs=2, stop_at_fit=False)
    trained = rb.train(cfg, keep_model=True)
    cache.put(trained)
    assert cache.model_path(cfg).exists()
    loaded = cache.get(cfg, with_model=True)
    assert loaded.cached and loaded.model is not None
    x = rb.load_dataset("mnist5k").x_test[:64]
    with torch.no_grad():
        assert torch.equal(trained.model(x), loaded.model(x))


def test_with_model_is_a_miss_when_only_the_json_was_stored(cache):
    res = make_result()
    cache.put(res)
    assert cache.get(res.config) is not None
    assert cache.get(res.config, with_model=True) is None


def test_clear_removes_saved_weights_too(cache):
    cfg = rb.RunConfig(model="mlp1x512", width=0.25, n_train=50, max_epochs=1, stop_at_fit=False)
    cache.put(rb.train(cfg, keep_model=True))
    assert cache.clear() == 1
    assert not cache.model_path(cfg).exists()


# ----------------------------------------------------------------------------- safe clear

def test_clear_refuses_a_directory_without_the_marker(tmp_path):
    """A wrong --cache-dir (a home, a project) must not lose a user's files."""
    user_dir = tmp_path / "project"
    user_dir.mkdir()
    own_looking = ["0123456789abcdef0123.json", "data.json", "weights.pt"]
    for name in own_looking:
        (user_dir / name).write_text("{}")
    with pytest.raises(rb.UsageError) as exc:
        ResultsCache(user_dir).clear()
    msg = str(exc.value)
    assert f"refusing to clear {user_dir}" in msg and "CACHEDIR.TAG" in msg
    assert f"remove it by hand (rm -r {user_dir})" in msg   # how to clear an older, unmarked cache
    assert sorted(p.name for p in user_dir.iterdir()) == sorted(own_looking)


def test_clear_refuses_another_tools_tagged_cache(tmp_path):
    d = tmp_path / "other-cache"
    d.mkdir()
    (d / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n# made by othertool\n")
    (d / "0123456789abcdef0123.json").write_text("{}")
    with pytest.raises(rb.UsageError, match="refusing to clear"):
        ResultsCache(d).clear()
    assert (d / "0123456789abcdef0123.json").exists()


def test_clear_refuses_a_path_that_is_a_file(tmp_path):
    f = tmp_path / "results.json"
    f.write_text("{}")
    with pytest.raises(rb.UsageError, match=f"refusing to clear the cache at {f}: it is not a directory"):
        ResultsCache(f).clear()
    assert f.read_text() == "{}"


def test_clear_of_a_missing_directory_clears_nothing(tmp_path):
    c = ResultsCache(tmp_path / "never-made")
    assert c.clear() == 0 and not c.dir.exists()


def test_clear_removes_only_the_caches_own_files(cache):
    res = make_result()
    cache.put(res)
    with cache.locked([res.config]):
        pass
    key = res.config.key()
    own = [f"{key}.json", f"{key}.pt", f"{key}.lock", ".tmp-abc.json", ".tmp-probe-x"]
    (cache.dir / f"{key}.pt").write_bytes(b"weights")
    (cache.dir / ".tmp-abc.json").write_text("{")
    (cache.dir / ".tmp-probe-x").write_text("")
    foreign = ["notes.txt", "results.json", "0123456789ABCDEF0123.json", "0123456789abcdef01234.json",
               f"{key}.json.bak", f"{key}.txt", "sub"]
    for name in foreign[:-1]:
        (cache.dir / name).write_text("a user's file")
    (cache.dir / "sub").mkdir()
    (cache.dir / "sub" / f"{key}.json").write_text("{}")
    assert all((cache.dir / name).exists() for name in own)
    assert cache.clear() == 1   # one entry (its weights, lock and temp files are not counted)
    left = sorted(p.name for p in cache.dir.iterdir())
    assert left == sorted([".gitignore", "CACHEDIR.TAG", *foreign])
    assert (cache.dir / "sub" / f"{key}.json").exists()
    assert len(cache) == 0


def test_an_older_unmarked_cache_removed_by_hand_comes_back_marked(tmp_path):
    """The refusal's advice works: once the old directory is gone, the cache makes a marked one."""
    old = tmp_path / "cache"
    old.mkdir()
    (old / ".gitignore").write_text("*\n")
    c = ResultsCache(old)
    with pytest.raises(rb.UsageError):
        c.clear()
    shutil.rmtree(old)
    c.put(make_result())
    assert c.is_marked() and c.clear() == 1


# ----------------------------------------------------------------------------- locks (one process)

def test_locked_creates_one_lock_file_per_key(cache):
    a, b = make_result(seed=0).config, make_result(seed=1).config
    with cache.locked([b, a, b]):
        assert sorted(p.name for p in cache.dir.glob("*.lock")) == sorted(
            [f"{a.key()}.lock", f"{b.key()}.lock"])
    assert cache.is_marked()   # the lock made the directory, the cache's usual way


def test_locks_are_taken_in_sorted_key_order(cache, monkeypatch):
    """Sorted, so two processes asking for overlapping sets can never wait on each other."""
    import filelock

    order = []

    class Recording(filelock.FileLock):
        def acquire(self, *args, **kwargs):
            order.append(os.path.basename(self.lock_file))
            return super().acquire(*args, **kwargs)

    monkeypatch.setattr(filelock, "FileLock", Recording)
    cfgs = [make_result(seed=s).config for s in range(5)]
    with cache.locked(cfgs):
        pass
    assert order == sorted(f"{c.key()}.lock" for c in cfgs)


def test_disabled_cache_takes_no_locks(tmp_path):
    c = ResultsCache(tmp_path / "cache", enabled=False)
    with c.locked([make_result().config]):
        pass
    assert not c.dir.exists()


def test_a_lock_that_cannot_be_taken_is_a_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    c = ResultsCache(blocker / "cache")
    ran = []
    with pytest.warns(CacheWarning, match="could not lock the cache at"):
        with c.locked([make_result().config]):
            ran.append(True)
    assert ran == [True]
