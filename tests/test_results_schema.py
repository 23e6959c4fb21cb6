"""rethinkbench/report/results.schema.json: every results.json the suite writes passes it, and a value of
the wrong type where the report or compare read one is a ResultsError naming the file, the JSON
path and what was expected."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import report_samples as samples
from report_samples import with_changes
from rethinkbench.report.results_io import ResultsError, check_results, load_results, results_schema

ROOT = Path(__file__).resolve().parents[1]
BASELINES = sorted((ROOT / "reports" / "baselines").glob("*.json"))
RUN = "run0000" + "f" * 28   # the first run key of samples.sample_results
ITEM = "claims[0].items[0]"
TOLERANCE = ("expected one or more of abs, rel, log10, se with numbers >= 0 (rethinkbench/report/tolerance.py "
             "says what each allows), or null")
MEASURE = f"{ITEM}.measured.final_train_acc"


@pytest.fixture(scope="module")
def sample():
    return samples.sample_results(claims=2, items_per_claim=2, runs_per_item=1, epochs=3)


def test_the_schema_is_valid_json_schema_2020_12():
    schema = results_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_schema_ships_as_package_data():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "report/results.schema.json" in pyproject["tool"]["setuptools"]["package-data"]["rethinkbench"]
    assert any(d.startswith("jsonschema>=") for d in pyproject["project"]["dependencies"])


@pytest.mark.parametrize("path", BASELINES, ids=[p.name for p in BASELINES])
def test_committed_baselines_follow_the_schema(path):
    load_results(path)


def test_the_sample_results_follow_the_schema():
    for results in (samples.realistic_results(), samples.hostile_results(),
                    samples.sample_results(outcomes=["passed", "failed", "xfailed", "skipped",
                                                     "error"])):
        check_results(results)


def test_minimal_results_follow_the_schema():
    # Absent fields are allowed (a hand-trimmed file still loads); only their types are checked.
    check_results({"schema": 1, "claims": [{"id": "c", "items": [{}]}]})
    check_results({"schema": 1, "claims": [], "runs": {"r": {"config": {}}}})


def measure(**fields):
    return lambda r: r["claims"][0]["items"][0]["measured"]["final_train_acc"].update(fields)


def item(**fields):
    return lambda r: r["claims"][0]["items"][0].update(fields)


def run(**fields):
    return lambda r: r["runs"][RUN].update(fields)


VERDICTS = '"reproduced", "not_reproduced", "partial", "inconclusive", "skipped", "error"'


@pytest.mark.parametrize("change, message", [
    (measure(value="0.97"), f"{MEASURE}.value: expected a number or null, got '0.97' (a string)"),
    (measure(value=True), f"{MEASURE}.value: expected a number or null, got True (a boolean)"),
    (measure(sd="0.1"), f"{MEASURE}.sd: expected a number or null, got '0.1' (a string)"),
    (measure(sd=-0.1), f"{MEASURE}.sd: expected a number >= 0, got -0.1 (a number)"),
    (measure(n=2.5), f"{MEASURE}.n: expected an integer or null, got 2.5 (a number)"),
    (measure(values=[1.0, "1.0"]), f"{MEASURE}.values[1]: expected a number or null, got '1.0' "
                                   "(a string)"),
    (measure(values=1.0), f"{MEASURE}.values: expected a list, got 1.0 (a number)"),
    (measure(paper="99%"), f"{MEASURE}.paper: expected a number or null, got '99%' (a string)"),
    (measure(tolerance={"abs": "0.02"}), f"{MEASURE}.tolerance.abs: expected a number, got '0.02' "
                                         "(a string)"),
    (measure(tolerance={"rel": -1}), f"{MEASURE}.tolerance.rel: expected a number >= 0, got -1 "
                                     "(a number)"),
    (measure(tolerance={}), f"{MEASURE}.tolerance: {TOLERANCE}, got an object"),
    (measure(tolerance=0.02), f"{MEASURE}.tolerance: {TOLERANCE}, got 0.02 (a number)"),
    (lambda r: r["claims"][0]["items"][0]["measured"].update(bare=3),
     f"{ITEM}.measured.bare: expected an object, got 3 (a number)"),
    (lambda r: r["claims"][0].update(verdict="passed"),
     f"claims[0].verdict: expected one of {VERDICTS}, got 'passed' (a string)"),
    (item(verdict="partial"), f'{ITEM}.verdict: expected one of "reproduced", "not_reproduced", '
                              "\"inconclusive\", \"skipped\", \"error\", got 'partial' (a string)"),
    (item(outcome="ok"), f'{ITEM}.outcome: expected one of "passed", "failed", "xfailed", '
                         "\"xpassed\", \"inconclusive\", \"skipped\", \"error\", got 'ok' (a string)"),
    (item(outcome="error"), f"{ITEM}.verdict: expected 'error' (an item whose outcome is error has "
                            "the verdict error), got 'reproduced' (a string)"),
    (lambda r: (item(verdict="error")(r), r["claims"][0].update(verdict="error")),
     f"{ITEM}.outcome: expected 'error' (an item whose verdict is error has "
                            "the outcome error), got 'passed' (a string)"),
    (item(outcome="error", verdict="error"),
     "claims[0].verdict: expected 'error' (a claim with an errored item is an error, never "
     "partial or not reproduced), got 'reproduced' (a string)"),
    (item(duration="12.3"), f"{ITEM}.duration: expected a number or null, got '12.3' (a string)"),
    (item(runs=[1]), f"{ITEM}.runs[0]: expected a string, got 1 (a number)"),
    (run(train_seconds="8.2"), f"runs.{RUN}.train_seconds: expected a number or null, got '8.2' "
                               "(a string)"),
    (run(cached="false"), f"runs.{RUN}.cached: expected true or false, got 'false' (a string)"),
    (run(device_kind=3), f"runs.{RUN}.device_kind: expected a string or null, got 3 (a number)"),
    (run(epochs_to_fit=2.5), f"runs.{RUN}.epochs_to_fit: expected an integer or null, got 2.5 "
                             "(a number)"),
    (lambda r: r["runs"][RUN]["history"][0].update(train_acc="0.5"),
     f"runs.{RUN}.history[0].train_acc: expected a number or null, got '0.5' (a string)"),
    (lambda r: r["provenance"].update(device_kind=5),
     "provenance.device_kind: expected a string or null, got 5 (a number)"),
    (lambda r: r.update(total_seconds="412.3"),
     "total_seconds: expected a number or null, got '412.3' (a string)"),
    (lambda r: r.update(claims={}), "claims: expected a list, got an object"),
    (lambda r: r["claims"].append({"title": "no id"}), "claims[2]: the required field 'id' is "
                                                       "missing"),
])
def test_a_wrong_value_is_named_by_its_path(sample, change, message):
    with pytest.raises(ResultsError) as error:
        check_results(with_changes(sample, change), source="current.json")
    assert str(error.value) == f"current.json: {message}"


def test_odd_keys_are_quoted_in_the_path(sample):
    def change(results):
        results["claims"][0]["items"][0]["measured"]["test acc (%)"] = {"value": "97"}
    with pytest.raises(ResultsError, match=r'measured\["test acc \(%\)"\]\.value: expected'):
        check_results(with_changes(sample, change))


def test_numbers_stored_as_strings_are_one_short_error(tmp_path):
    """Every number of the measurements and runs as a string: one ResultsError naming the file,
    the first bad value and how many more there are, in one line (not hundreds of rows)."""
    results = samples.sample_results(claims=3, items_per_claim=2, runs_per_item=2, epochs=3)

    def stringify(value):
        if isinstance(value, dict):
            return {k: stringify(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stringify(v) for v in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    for claim in results["claims"]:
        for entry in claim["items"]:
            entry["measured"] = stringify(entry["measured"])
    results["runs"] = stringify(results["runs"])
    path = tmp_path / "current.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(ResultsError) as error:
        load_results(path)
    text = str(error.value)
    assert "\n" not in text and error.value.path == path
    assert text.startswith(f"{path}: ")
    assert ": expected a number or null, got '" in text
    assert text.endswith(" more problems in this file)")
    more = int(text.rsplit("(", 1)[1].split()[0])
    assert more > 100
