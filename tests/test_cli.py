"""The `rethinkbench` command line: report, compare, cache clear, --version."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import report_samples as samples
from report_samples import with_changes
from rethinkbench.cli import main


@pytest.fixture(scope="module")
def results():
    return samples.sample_results(claims=2, items_per_claim=2, runs_per_item=1, epochs=3)


def write(path, results):
    path.write_text(json.dumps(results), encoding="utf-8")
    return path


def test_report_writes_next_to_the_results_by_default(tmp_path, results, capsys):
    source = write(tmp_path / "results.json", results)
    assert main(["report", str(source)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(tmp_path / "index.html")
    assert 'id="claim-Z-sample-1"' in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_report_output_dir(tmp_path, results, capsys):
    source = write(tmp_path / "results.json", results)
    assert main(["report", str(source), "-o", str(tmp_path / "site")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "site" / "index.html")
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize("content, message", [
    (None, "no such results file"),
    ("{oops", "invalid JSON"),
    ('{"schema": 7, "claims": []}', "schema 7 is not supported"),
])
def test_report_on_bad_input_exits_2_naming_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["report", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"rethinkbench report: error: {path}: ") and message in line
    assert not (tmp_path / "index.html").exists()


def test_report_into_an_unusable_directory_exits_2(tmp_path, results, capsys):
    source = write(tmp_path / "results.json", results)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    assert main(["report", str(source), "-o", str(blocker)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"rethinkbench report: error: cannot write the report to {blocker}")


def test_compare_identical_exits_0(tmp_path, results, capsys):
    base = write(tmp_path / "base.json", results)
    assert main(["compare", str(base), str(base)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK: no regressions")


def test_compare_regression_exits_1_and_prints_the_table(tmp_path, results, capsys):
    base = write(tmp_path / "base.json", results)
    current = write(tmp_path / "current.json", with_changes(
        results, lambda r: r["claims"][0].update(verdict="not_reproduced")))
    assert main(["compare", str(base), str(current)]) == 1
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["REGRESSION", "claim", "Z-sample-1"]
               for line in out.splitlines() if line)
    assert out.rstrip().endswith("FAILED: 1 regression(s)")


def test_compare_timing_factor_option(tmp_path, results, capsys):
    def slower(r):
        for run in r["runs"].values():
            run["cached"] = False
            run["train_seconds"] *= 2.5
    base_results = with_changes(results, lambda r: [run.update(cached=False)
                                                    for run in r["runs"].values()])
    base = write(tmp_path / "base.json", base_results)
    current = write(tmp_path / "current.json", with_changes(results, slower))
    assert main(["compare", str(base), str(current)]) == 1
    assert main(["compare", str(base), str(current), "--timing-factor", "3"]) == 0
    assert "2.50x slower (limit 3x)" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["baseline", "current"])
@pytest.mark.parametrize("content, message", [
    (None, "no such results file"),
    ("not json at all", "invalid JSON at line 1, column 1"),
    ('{"schema": 0, "claims": []}', "schema 0 is not supported"),
    ('{"claims": []}', "no 'schema' field"),
])
def test_compare_bad_input_exits_2_naming_the_file(tmp_path, results, capsys, which, content,
                                                   message):
    good = write(tmp_path / "good.json", results)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    args = [str(bad), str(good)] if which == "baseline" else [str(good), str(bad)]
    assert main(["compare", *args]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"rethinkbench compare: error: {bad}: ") and message in line


@pytest.mark.parametrize("factor", ["0.5", "fast", "nan", "inf"])
def test_compare_refuses_a_bad_timing_factor(tmp_path, results, capsys, factor):
    base = write(tmp_path / "base.json", results)
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(base), str(base), "--timing-factor", factor])
    assert exit_info.value.code == 2
    assert "--timing-factor" in capsys.readouterr().err


class FakeCache:
    opened: list = []

    def __init__(self, directory):
        FakeCache.opened.append(directory)

    def clear(self):
        return 3


@pytest.fixture
def fake_cache_module(monkeypatch):
    """`rethinkbench.engine.cache` is the harness's; the CLI only needs ResultsCache(dir).clear()."""
    module = types.ModuleType("rethinkbench.engine.cache")
    module.ResultsCache = FakeCache
    FakeCache.opened = []
    monkeypatch.setitem(sys.modules, "rethinkbench.engine.cache", module)
    return FakeCache


def test_cache_clear_default_dir(fake_cache_module, capsys):
    assert main(["cache", "clear"]) == 0
    assert [str(d) for d in fake_cache_module.opened] == [".rethinkbench-cache"]
    assert capsys.readouterr().out.strip() == "removed 3 cached runs from .rethinkbench-cache"


def test_cache_clear_cache_dir(fake_cache_module, tmp_path, capsys):
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert fake_cache_module.opened == [tmp_path]
    assert str(tmp_path) in capsys.readouterr().out


def test_cache_clear_refuses_a_directory_that_is_not_a_cache(tmp_path, capsys):
    """One wrong --cache-dir must not delete a user's files: a one-line error, exit 2."""
    (tmp_path / "thesis.json").write_text("{}")
    (tmp_path / "0123456789abcdef0123.json").write_text("{}")
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith(f"rethinkbench cache clear: error: refusing to clear {tmp_path}: it has no "
                          f"CACHEDIR.TAG marker")
    assert f"rm -r {tmp_path}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0123456789abcdef0123.json", "thesis.json"]


def test_cache_clear_refuses_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["cache", "clear", "--cache-dir", str(target)]) == 2
    assert "it is not a directory" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_cache_clear_of_a_real_cache(tmp_path, capsys):
    from rethinkbench.engine.cache import ResultsCache

    cache = ResultsCache(tmp_path / "cache")
    cache.ensure_dir()
    (cache.dir / "0123456789abcdef0123.json").write_text("{}")
    (cache.dir / "my-notes.txt").write_text("kept")
    assert main(["cache", "clear", "--cache-dir", str(cache.dir)]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 cached run from {cache.dir}"
    assert sorted(p.name for p in cache.dir.iterdir()) == [".gitignore", "CACHEDIR.TAG", "my-notes.txt"]
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "missing")]) == 0
    assert "removed 0 cached runs" in capsys.readouterr().out


def test_cache_needs_an_action(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cache"])
    assert exit_info.value.code == 2


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("rethinkbench ")


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("report", "compare", "cache"):
        assert command in out


def test_exit_status_reaches_the_shell(tmp_path, results):
    """The real process: what CI sees. (One subprocess: importing the package is not free.)"""
    base = write(tmp_path / "base.json", results)
    current = write(tmp_path / "current.json", with_changes(
        results, lambda r: r["claims"].pop()))
    process = subprocess.run([sys.executable, "-m", "rethinkbench.cli", "compare", str(base),
                              str(current)], capture_output=True, text=True, timeout=120)
    assert process.returncode == 1, process.stderr
    assert "missing" in process.stdout
