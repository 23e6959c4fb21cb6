"""Configure-time checks of the pytest plugin (PluginState): an unusable --report-dir or --cache-dir,
or a --clear-cache of a directory that is not the cache's, is a usage error (exit 4) before anything
trains, naming the option, the path and the OS error.

Inner sessions run in-process (`pt.runpytest`) and stop at configure time: nothing is collected or
trained, so they take milliseconds.
"""
from __future__ import annotations

import errno
import os
import tempfile

import pytest

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR
OPTIONS = ["--report-dir", "--cache-dir"]
not_root = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                              reason="root writes into read-only directories")


@pytest.fixture
def pt(pytester):
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    return pytester


def good_dirs(pt, but=None):
    """Writable --report-dir and --cache-dir under the test's folder, except the option `but`."""
    out = []
    for opt, name in (("--report-dir", "rep"), ("--cache-dir", "cache")):
        if opt != but:
            out += [opt, str(pt.path / name)]
    return out


def assert_usage_error(res, option, path, os_error):
    assert res.ret == USAGE_ERROR
    err = " ".join(res.stderr.str().split())
    assert f"{option} {path} is not a directory this session can create and write: " in err, err
    assert os_error in err, err


@pytest.mark.parametrize("option", OPTIONS)
def test_a_path_under_dev_null(pt, option):
    res = pt.runpytest(option, "/dev/null/x", *good_dirs(pt, but=option))
    assert_usage_error(res, option, "/dev/null/x", "[Errno")


@pytest.mark.parametrize("option", OPTIONS)
def test_a_path_that_is_an_existing_file(pt, option):
    target = pt.path / "results.txt"
    target.write_text("a user's file")
    res = pt.runpytest(option, str(target), *good_dirs(pt, but=option))
    assert_usage_error(res, option, target, "[Errno")
    assert target.read_text() == "a user's file"


@not_root
@pytest.mark.parametrize("option", OPTIONS)
def test_a_path_under_a_read_only_directory(pt, option):
    locked = pt.path / "read-only"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        res = pt.runpytest(option, str(locked / "out"), *good_dirs(pt, but=option))
    finally:
        locked.chmod(0o700)
    assert_usage_error(res, option, locked / "out", "Permission denied")


@pytest.mark.parametrize("option", OPTIONS)
def test_an_existing_directory_that_cannot_be_written(pt, option, monkeypatch):
    """A read-only file system (simulated: root writes anywhere else, so a chmod proves nothing
    here): the directory exists, the probe file cannot be created in it."""
    target = pt.path / "mounted-read-only"
    real_mkstemp = tempfile.mkstemp

    def read_only_fs(*args, dir=None, **kwargs):
        if dir is not None and os.fspath(dir) == str(target):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    if option == "--cache-dir":
        from rethinkbench.engine.cache import ResultsCache
        ResultsCache(target).ensure_dir()   # an existing, marked cache
    else:
        target.mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", read_only_fs)
    res = pt.runpytest(option, str(target), *good_dirs(pt, but=option))
    assert_usage_error(res, option, target, "Read-only file system")


def test_no_cache_does_not_check_or_create_the_cache_dir(pt):
    res = pt.runpytest("--no-cache", "--cache-dir", "/dev/null/x", "--report-dir", str(pt.path / "rep"))
    res.assert_outcomes(passed=1)


def test_good_dirs_are_created_marked_and_left_clean(pt):
    """Created at configure time (a --collect-only run too, as PluginState's docstring says); the
    probe files are gone again."""
    res = pt.runpytest("--collect-only", "--report-dir", str(pt.path / "a" / "rep"),
                       "--cache-dir", str(pt.path / "b" / "cache"))
    assert res.ret != USAGE_ERROR and "1 test collected" in res.stdout.str()
    assert sorted(p.name for p in (pt.path / "a" / "rep").iterdir()) == []
    assert sorted(p.name for p in (pt.path / "b" / "cache").iterdir()) == [".gitignore", "CACHEDIR.TAG"]


def test_clear_cache_of_a_directory_that_is_not_a_cache_is_a_usage_error(pt):
    mine = pt.path / "my-project"
    mine.mkdir()
    (mine / "0123456789abcdef0123.json").write_text("{}")
    (mine / "notes.txt").write_text("mine")
    res = pt.runpytest("--clear-cache", "--cache-dir", str(mine), "--report-dir", str(pt.path / "rep"))
    assert res.ret == USAGE_ERROR
    err = " ".join(res.stderr.str().split())
    assert f"--clear-cache: refusing to clear {mine}: it has no CACHEDIR.TAG marker" in err
    assert f"rm -r {mine}" in err
    assert sorted(p.name for p in mine.iterdir()) == ["0123456789abcdef0123.json", "notes.txt"]


def test_clear_cache_of_a_marked_cache_removes_its_entries(pt):
    from rethinkbench.engine.cache import ResultsCache

    cache = ResultsCache(pt.path / "cache")
    cache.ensure_dir()
    (cache.dir / "0123456789abcdef0123.json").write_text("{}")
    (cache.dir / "notes.txt").write_text("kept")
    res = pt.runpytest("--clear-cache", *good_dirs(pt))
    res.assert_outcomes(passed=1)
    assert sorted(p.name for p in cache.dir.iterdir()) == [".gitignore", "CACHEDIR.TAG", "notes.txt"]


def test_help_works_with_unusable_dirs(pt):
    res = pt.runpytest("--help", "--report-dir", "/dev/null/x", "--cache-dir", "/dev/null/y")
    assert res.ret == 0 and "--report-dir" in res.stdout.str()
