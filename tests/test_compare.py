"""`rethinkbench compare`: what is and is not a regression between two results files."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import report_samples as samples
from report_samples import with_changes
from rethinkbench.report.compare import REGRESSION, ResultsError, compare, load_results


@pytest.fixture(scope="module")
def baseline():
    # Every run trained (not cached) so that all of them take part in the timing check.
    results = samples.sample_results(claims=3, items_per_claim=2, runs_per_item=2, epochs=3)
    for run in results["runs"].values():
        run["cached"] = False
    return results


def first_item(results):
    return results["claims"][0]["items"][0]


def regression_rows(comparison):
    return [row for row in comparison.rows if row.status == REGRESSION]


def test_identical_results_pass(baseline):
    comparison = compare(baseline, baseline)
    assert comparison.ok
    assert not regression_rows(comparison)
    table = comparison.format_table()
    assert table.splitlines()[-1] == "OK: no regressions"
    assert comparison.counts["claims"] == 3 and comparison.counts["items"] == 6


def _flip_item(claim, verdict, outcome, seed_sensitive):
    def flip(results):
        results["claims"][claim]["verdict"] = verdict
        item = results["claims"][claim]["items"][0]
        item.update(verdict=verdict, outcome=outcome)
        if seed_sensitive:
            item["seed_sensitive"] = True
    return flip


def test_a_seed_sensitive_item_that_flips_is_reported_not_failed(baseline):
    comparison = compare(baseline, with_changes(baseline, _flip_item(1, "not_reproduced", "xfailed", True)))
    assert comparison.ok
    changed = [row for row in comparison.rows if row.status == "changed"]
    assert {(row.check, row.current) for row in changed} == {("claim", "not_reproduced"), ("item", "not_reproduced")}
    assert all(row.note.startswith("seed-sensitive verdict") for row in changed)
    # Marked in the baseline only, the other direction: the same.
    sensitive_before = with_changes(baseline, lambda r: r["claims"][1]["items"][0].update(seed_sensitive=True))
    assert compare(sensitive_before, with_changes(baseline, _flip_item(1, "not_reproduced", "xfailed", False))).ok


def test_a_seed_sensitive_item_that_errors_still_fails(baseline):
    def error(results):
        _flip_item(1, "error", "error", True)(results)
        results["claims"][1]["items"][0]["reason"] = "RuntimeError: boom"
    assert not compare(baseline, with_changes(baseline, error)).ok


def test_a_claim_that_no_longer_reproduces_fails(baseline):
    def flip(results):
        results["claims"][1]["verdict"] = "not_reproduced"
        results["claims"][1]["items"][0]["verdict"] = "not_reproduced"
        results["claims"][1]["items"][0]["outcome"] = "failed"

    comparison = compare(baseline, with_changes(baseline, flip))
    assert not comparison.ok
    assert {(row.check, row.current) for row in regression_rows(comparison)} == {
        ("claim", "not_reproduced"), ("item", "not_reproduced")}
    table = comparison.format_table()
    assert "REGRESSION" in table and "Z-sample-2" in table
    assert table.splitlines()[-1] == "FAILED: 2 regression(s)"


@pytest.mark.parametrize("now", ["skipped", "error", "partial"])
def test_reproduced_to_anything_else_is_a_regression(baseline, now):
    current = with_changes(baseline, lambda r: r["claims"][0].update(verdict=now))
    assert not compare(baseline, current).ok


def test_a_claim_that_now_reproduces_is_an_improvement(baseline):
    old = with_changes(baseline, lambda r: first_item(r).update(verdict="not_reproduced"))
    comparison = compare(old, baseline)
    assert comparison.ok
    assert [row.note for row in comparison.rows if row.status == "improved"] == ["now reproduced"]
    assert "improved" in comparison.format_table()


def test_other_verdict_changes_are_reported_not_failed(baseline):
    old = with_changes(baseline, lambda r: first_item(r).update(verdict="skipped"))
    new = with_changes(baseline, lambda r: first_item(r).update(verdict="not_reproduced"))
    comparison = compare(old, new)
    assert comparison.ok
    assert [row.status for row in comparison.rows if row.check == "item"
            and row.status != "ok"] == ["changed"]


def set_measure(name, value):
    def change(results):
        first_item(results)["measured"][name]["value"] = value
    return change


@pytest.mark.parametrize("name, value, regressed", [
    ("final_train_acc", 1.0 - 0.019, False),   # {"abs": 0.02}
    ("final_train_acc", 1.0 - 0.02, False),    # exactly at the tolerance is allowed
    ("final_train_acc", 1.0 - 0.021, True),
    ("final_train_acc", None, True),            # a number that disappeared
    ("steps_to_fit", "rel +24%", False),       # {"rel": 0.25}
    ("steps_to_fit", "rel -26%", True),
    ("test_acc_ratio", 100.0, False),           # no tolerance: information only
])
def test_measurements_are_checked_against_the_baseline_tolerance(baseline, name, value,
                                                                 regressed):
    if isinstance(value, str):
        base = first_item(baseline)["measured"][name]["value"]
        value = base * (1 + int(value.split()[1].rstrip("%")) / 100)
    comparison = compare(baseline, with_changes(baseline, set_measure(name, value)))
    assert comparison.ok is not regressed
    row = next(row for row in comparison.rows if row.subject.endswith(f"› {name}")
               and row.subject.startswith("Z-sample-1 › test_Z_sample_1[cpu-mlp1x512"))
    if name == "test_acc_ratio":
        assert row.status == "info" and "no tolerance" in row.note


def test_the_tolerance_comes_from_the_baseline_not_the_current_file(baseline):
    def loosen(results):
        first_item(results)["measured"]["final_train_acc"].update(value=0.5,
                                                                  tolerance={"abs": 1.0})
    assert not compare(baseline, with_changes(baseline, loosen)).ok


@given(drift=st.floats(-1.0, 1.0, allow_nan=False), tolerance=st.floats(0.0, 1.0))
@settings(max_examples=60, deadline=None)
def test_an_absolute_tolerance_fails_exactly_when_exceeded(drift, tolerance):
    """Null hypothesis: the verdict of the measurement check differs from |drift| > tolerance."""
    def item(value, tol):
        return {"schema": 1, "claims": [{"id": "c", "verdict": "reproduced", "items": [{
            "nodeid": "t", "verdict": "reproduced",
            "measured": {"m": {"value": value, "tolerance": tol}}}]}], "runs": {}}
    comparison = compare(item(0.5, {"abs": tolerance}), item(0.5 + drift, None))
    moved = abs((0.5 + drift) - 0.5)
    assert comparison.ok is (moved <= tolerance + 1e-12)


def test_missing_items_and_claims_are_regressions_new_ones_are_not(baseline):
    def drop_and_add(results):
        results["claims"][0]["items"].pop()
        del results["claims"][2]
        results["claims"].append({"id": "Z-new", "verdict": "reproduced", "items": []})
        results["claims"][1]["items"].append({"nodeid": "claims/x.py::test_new",
                                              "verdict": "reproduced"})

    comparison = compare(baseline, with_changes(baseline, drop_and_add))
    regressions = regression_rows(comparison)
    assert [(row.check, row.current) for row in regressions] == [("item", "missing"),
                                                                  ("claim", "missing")]
    assert {row.subject for row in comparison.rows if row.status == "new"} == {
        "Z-new", "Z-sample-2 › test_new"}


def test_a_renamed_test_is_matched_by_its_params(baseline):
    def rename(results):
        first_item(results)["nodeid"] = "claims/test_moved.py::test_renamed[cpu]"

    comparison = compare(baseline, with_changes(baseline, rename))
    assert comparison.ok
    assert any("matched by params" in row.note for row in comparison.rows)


def scale_train_seconds(factor, *, device_kind=None, cached=None):
    def change(results):
        for run in results["runs"].values():
            run["train_seconds"] *= factor
            if device_kind is not None:
                run["device_kind"] = device_kind
            if cached is not None:
                run["cached"] = cached
    return change


def timing_rows(comparison):
    return [row for row in comparison.rows if row.check == "timing"]


def test_training_slower_than_the_factor_fails(baseline):
    comparison = compare(baseline, with_changes(baseline, scale_train_seconds(2.5)))
    assert not comparison.ok
    (row,) = timing_rows(comparison)
    assert row.status == REGRESSION and row.note.startswith("2.50x slower (limit 2x)")
    assert compare(baseline, with_changes(baseline, scale_train_seconds(2.5)),
                   timing_factor=3.0).ok


def test_slower_within_the_factor_is_reported_not_failed(baseline):
    comparison = compare(baseline, with_changes(baseline, scale_train_seconds(1.5)))
    assert comparison.ok
    (row,) = timing_rows(comparison)
    assert row.status == "ok" and "1.50x slower" in row.note
    assert "1.50x slower" in comparison.format_table()


def test_much_faster_training_is_an_improvement(baseline):
    (row,) = timing_rows(compare(baseline, with_changes(baseline, scale_train_seconds(0.25))))
    assert row.status == "improved" and "0.25x faster" in row.note


def with_probe(seconds):
    return lambda results: results["provenance"].update(speed_probe_seconds=seconds)


def test_a_slower_machine_by_the_speed_probe_is_not_slower_code(baseline):
    # The same CPU model on a VM 2.2x slower: raw 2.5x, 1.14x once the machine is divided out.
    before = with_changes(baseline, with_probe(0.08))
    now = with_changes(with_changes(before, scale_train_seconds(2.5)), with_probe(0.176))
    comparison = compare(before, now)
    assert comparison.ok
    (row,) = timing_rows(comparison)
    assert row.status == "ok" and row.note.startswith("1.14x slower (limit 2x); raw 2.50x, machine 2.20x by the speed probe")


def test_slower_code_on_a_machine_of_the_same_speed_still_fails(baseline):
    before = with_changes(baseline, with_probe(0.08))
    comparison = compare(before, with_changes(with_changes(before, scale_train_seconds(2.5)), with_probe(0.0808)))
    (row,) = timing_rows(comparison)
    assert not comparison.ok and row.status == REGRESSION and row.note.startswith("2.48x slower (limit 2x)")


def test_a_machine_that_probes_faster_never_makes_a_slowdown(baseline):
    # The probe may excuse a slowdown, never make one: raw 1.6x stays 1.6x on a "faster" machine.
    before = with_changes(baseline, with_probe(0.08))
    comparison = compare(before, with_changes(with_changes(before, scale_train_seconds(1.6)), with_probe(0.04)))
    (row,) = timing_rows(comparison)
    assert comparison.ok and row.note.startswith(
        "1.60x slower (limit 2x); raw 1.60x, machine 0.50x by the speed probe (faster: not applied)")


@pytest.mark.parametrize("probe_before, probe_now", [(None, 0.1), (0.1, None), (0.0, 0.1)])
def test_without_a_probe_in_both_files_the_raw_ratio_is_checked_and_said(baseline, probe_before, probe_now):
    before = with_changes(baseline, with_probe(probe_before)) if probe_before is not None else baseline
    now = with_changes(before, scale_train_seconds(2.5))
    now["provenance"].pop("speed_probe_seconds", None)
    if probe_now is not None:
        now["provenance"]["speed_probe_seconds"] = probe_now
    if probe_before == 0.0:   # not a usable probe: the schema refuses it before compare reads it
        with pytest.raises(ResultsError, match="speed_probe_seconds"):
            compare(before, now)
        return
    (row,) = timing_rows(compare(before, now))
    assert row.status == REGRESSION and row.note.endswith("raw: no speed probe in both files")


def test_timings_on_different_device_kinds_are_never_compared(baseline):
    current = with_changes(baseline, scale_train_seconds(50, device_kind="cuda:NVIDIA H100"))
    comparison = compare(baseline, current)
    assert comparison.ok
    (row,) = timing_rows(comparison)
    assert row.note == "timing not compared: different device kinds"
    assert "timing not compared: different device kinds" in comparison.format_table()


def test_cached_runs_are_left_out_of_the_timing(baseline):
    current = with_changes(baseline, scale_train_seconds(50, cached=True))
    comparison = compare(baseline, current)
    assert comparison.ok
    (row,) = timing_rows(comparison)
    assert "no run was trained (not cached) in both files" in row.note


def test_a_different_scale_is_flagged(baseline):
    comparison = compare(baseline, with_changes(baseline, lambda r: r.update(scale="paper")))
    assert [row.subject for row in comparison.rows if row.status == "warning"] == ["scale"]


def test_an_unusable_tolerance_in_the_baseline_is_an_error(baseline):
    broken = with_changes(baseline, lambda r: first_item(r)["measured"]["final_train_acc"]
                          .update(tolerance={"absolute": 0.1}))
    with pytest.raises(ResultsError) as error:
        compare(broken, baseline)
    assert str(error.value) == ("baseline: claims[0].items[0].measured.final_train_acc.tolerance: "
                                'expected only the keys "abs", "rel", "log10", "se", got the key \'absolute\'')


@pytest.mark.parametrize("factor", [0.5, float("nan"), float("inf"), True])
def test_a_bad_timing_factor_is_refused(baseline, factor):
    with pytest.raises(ValueError, match="timing_factor"):
        compare(baseline, baseline, timing_factor=factor)


def test_dicts_without_a_schema_are_refused(baseline):
    with pytest.raises(ResultsError, match="current: no 'schema' field"):
        compare(baseline, {"claims": []})


# load_results: every unusable file gives one clear error naming the path.

def test_load_results_reads_a_results_file(tmp_path, baseline):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(baseline), encoding="utf-8")
    assert load_results(path) == baseline


@pytest.mark.parametrize("content, message", [
    (None, "no such results file"),
    ("{not json", "invalid JSON at line 1, column 2"),
    ("[]", "expected a JSON object at the top level, got list"),
    ('{"claims": []}', "no 'schema' field"),
    ('{"schema": 2, "claims": []}', "schema 2 is not supported"),
    ('{"schema": "1", "claims": []}', "schema '1' is not supported"),
    ('{"schema": 1}', "(top level): the required field 'claims' is missing"),
    ('{"schema": 1, "claims": {}}', "claims: expected a list, got an object"),
    ('{"schema": 1, "claims": [{"title": "no id"}]}', "claims[0]: the required field 'id' is missing"),
    ('{"schema": 1, "claims": [], "runs": []}', "runs: expected an object, got a list of 0"),
])
def test_load_results_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultsError) as error:
        load_results(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert error.value.path == path
    assert isinstance(error.value, ValueError)


def test_load_results_refuses_a_directory_and_binary_data(tmp_path):
    with pytest.raises(ResultsError, match="is a directory"):
        load_results(tmp_path)
    binary = tmp_path / "results.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ResultsError, match="not UTF-8"):
        load_results(binary)


def test_the_table_lists_changes_and_counts_the_rest(baseline):
    drifted = with_changes(baseline, set_measure("final_train_acc", 0.99))
    table = compare(baseline, drifted).format_table()
    lines = [line.split() for line in table.splitlines() if line.startswith(("ok ", "info "))]
    assert len(lines) == 2
    assert lines[0][:2] == ["ok", "measure"] and "within" in lines[0]
    assert lines[1][:2] == ["ok", "timing"] and "(same speed)" in " ".join(lines[1])
    full = compare(baseline, drifted).format_table(show_unchanged=True)
    assert "unchanged row(s) not listed" in table and " 0 unchanged row(s)" in full
    assert len(full.splitlines()) > len(table.splitlines()) + 20


# An "error" in the current file: the tool failed, so CI fails, whatever the baseline said.

def errored(claim_index=0, item_index=0, reason="UsageError: unknown model 'mlp9'"):
    def change(results):
        claim = results["claims"][claim_index]
        claim["items"][item_index].update(outcome="error", verdict="error", reason=reason)
        claim["verdict"] = "error"
    return change


@pytest.mark.parametrize("before", ["reproduced", "not_reproduced", "skipped", "error"])
def test_an_error_now_is_a_regression_whatever_the_baseline_said(baseline, before):
    def set_before(results):
        item = first_item(results)
        if before == "error":
            errored(reason="DataError: MNIST not found")(results)
        else:
            item.update(verdict=before, outcome={"reproduced": "passed", "skipped": "skipped",
                                                 "not_reproduced": "failed"}[before])
            results["claims"][0]["verdict"] = before
    old = with_changes(baseline, set_before)
    comparison = compare(old, with_changes(baseline, errored()))
    assert not comparison.ok
    rows = {(row.check, row.baseline, row.current) for row in regression_rows(comparison)}
    assert rows == {("claim", before, "error"), ("item", before, "error")}
    for row in regression_rows(comparison):
        assert row.note == ("error: a failure of rethinkbench or its setup, not of the paper "
                            "(UsageError: unknown model 'mlp9')")
    table = comparison.format_table()
    assert "not of the paper (UsageError: unknown model 'mlp9')" in table
    assert table.splitlines()[-1] == "FAILED: 2 regression(s)"


def test_a_new_item_or_claim_in_error_is_a_regression(baseline):
    def add(results):
        results["claims"][0]["items"].append({"nodeid": "claims/x.py::test_new", "outcome": "error",
                                              "verdict": "error", "reason": "KeyError: 'lr'"})
        results["claims"][0]["verdict"] = "error"
        results["claims"].append({"id": "Z-new", "verdict": "error", "items": [
            {"nodeid": "claims/y.py::test_y", "outcome": "error", "verdict": "error",
             "reason": "RuntimeError: boom\n  a second line"}]})

    comparison = compare(baseline, with_changes(baseline, add))
    notes = {row.subject: row.note for row in regression_rows(comparison)}
    assert notes == {
        "Z-sample-1": "error: a failure of rethinkbench or its setup, not of the paper "
                      "(KeyError: 'lr')",
        "Z-sample-1 › test_new": "error: a failure of rethinkbench or its setup, not of the "
                                 "paper (KeyError: 'lr'); not in the baseline",
        "Z-new": "error: a failure of rethinkbench or its setup, not of the paper "
                 "(RuntimeError: boom); not in the baseline",
    }


def test_compare_exits_1_on_an_error_and_2_on_bad_input(tmp_path, baseline, capsys):
    from rethinkbench.cli import main

    paths = {}
    for name, results in [("base", baseline), ("error", with_changes(baseline, errored())),
                          ("strings", with_changes(baseline, set_measure("final_train_acc",
                                                                         "0.99")))]:
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(results), encoding="utf-8")
    assert main(["compare", str(paths["base"]), str(paths["base"])]) == 0
    assert main(["compare", str(paths["base"]), str(paths["error"])]) == 1
    assert "not of the paper" in capsys.readouterr().out
    assert main(["compare", str(paths["base"]), str(paths["strings"])]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"rethinkbench compare: error: {paths['strings']}: "
                           "claims[0].items[0].measured.final_train_acc.value: expected a number "
                           "or null, got '0.99' (a string)")


# Timing: a check that cannot be made says why, in a row.

def test_runs_without_train_seconds_are_named_in_a_row(baseline):
    current = with_changes(baseline, lambda r: [run.update(train_seconds=None)
                                                for run in r["runs"].values()])
    comparison = compare(baseline, current)
    assert comparison.ok
    (row,) = timing_rows(comparison)
    assert row.subject == f"{len(baseline['runs'])} run(s)"
    assert row.note == "timing not compared: no train_seconds above zero in both files"
    assert row.note in comparison.format_table()


def test_runs_of_unknown_device_kind_are_named_in_a_row(baseline):
    def unknown(results):
        results["provenance"]["device_kind"] = None
        for run in results["runs"].values():
            run["device_kind"] = None
    comparison = compare(baseline, with_changes(baseline, unknown))
    (row,) = timing_rows(comparison)
    assert row.note == "timing not compared: device kind unknown"
    assert row.note in comparison.format_table()


def test_no_common_run_is_named_in_a_row(baseline):
    comparison = compare(baseline, with_changes(baseline, lambda r: r.update(runs={})))
    (row,) = timing_rows(comparison)
    assert row.note == "timing not compared: no run key in both files"
    assert row.note in comparison.format_table()


def test_cached_runs_left_out_of_a_timing_are_counted(baseline):
    first_key = next(iter(baseline["runs"]))
    current = with_changes(baseline, lambda r: r["runs"][first_key].update(cached=True))
    (row,) = timing_rows(compare(baseline, current))
    assert row.status == "ok" and row.note.endswith("; 1 run(s) cached in either file left out")


def test_an_sd_of_null_is_read(baseline):
    def single_seed(results):
        first_item(results)["measured"]["final_train_acc"].update(sd=None, n=1, values=[1.0])
    current = with_changes(baseline, single_seed)
    assert compare(baseline, current).ok and compare(current, baseline).ok
