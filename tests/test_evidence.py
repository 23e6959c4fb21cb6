"""rethinkbench.suite.evidence: what `claim.measure` stores, how it prints, and which exceptions are the
claim's own rejection."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rethinkbench.base.errors import DataError, UsageError
from rethinkbench.suite.evidence import ClaimInfo, Evidence, format_measure, is_rejection

INFO = ClaimInfo(id="T-ev", title="t", statement="s", source="tests")


def evidence() -> Evidence:
    return Evidence(INFO)


def test_one_seed_has_no_sd():
    """With one value there is no spread to measure: sd is null, not 0.0."""
    m = evidence().measure("acc", [0.97])
    assert m == {"value": 0.97, "sd": None, "n": 1, "values": [0.97], "unit": "", "paper": None}
    assert format_measure(m) == "0.97"


def test_one_finite_value_of_two_has_no_sd():
    m = evidence().measure("epochs", [12, float("nan")], unit=" ep")
    assert (m["value"], m["sd"], m["n"], m["values"]) == (12.0, None, 2, [12, None])
    assert format_measure(m) == "12(n=2) ep"


def test_several_seeds_have_mean_and_sd():
    m = evidence().measure("acc", np.array([0.5, 0.7, 0.9]))
    assert m["value"] == pytest.approx(0.7) and m["sd"] == pytest.approx(0.2) and m["n"] == 3
    assert format_measure(m) == "0.7±0.2(n=3)"
    assert format_measure({"value": 0.5, "sd": None, "n": 1}) == "0.5"
    assert format_measure({"value": None}) == "n/a"
    assert format_measure({"value": 3}) == "3"


@pytest.mark.parametrize("value, shown", [("0.97", "'0.97' (str)"), (True, "True (bool)"),
                                          ([0.5, "x"], "'x' (str)")])
def test_a_measurement_must_be_numbers(value, shown):
    with pytest.raises(TypeError) as error:
        evidence().measure("acc", value)
    assert str(error.value) == (f"measurement 'acc' must be a number or a list of numbers (one "
                                f"per seed), got {shown}")


def test_the_paper_value_must_be_a_number():
    with pytest.raises(TypeError, match=r"measurement 'acc \(paper\)' must be a number"):
        evidence().measure("acc", 0.5, paper="~100%")


@pytest.mark.parametrize("tolerance, why", [
    ({"absolute": 0.1}, r"unknown tolerance kind\(s\) \['absolute'\]; known: abs, rel, log10, se"),
    ({"abs": "0.1"}, r"tolerance values must be numbers >= 0, got \{'abs': '0.1'\}"),
    ({"abs": -1}, r"tolerance values must be numbers >= 0"),
    ({}, r"expected an object with one or more of abs, rel, log10, se, got \{\}"),
    ({"abs": math.inf}, r"tolerance values must be numbers >= 0")])
def test_an_unusable_tolerance_is_refused_naming_why(tolerance, why):
    with pytest.raises(ValueError, match=r"measurement 'acc': tolerance .* is not usable: " + why):
        evidence().measure("acc", 0.5, tolerance=tolerance)


@pytest.mark.parametrize("tolerance", [{"abs": 0.1, "rel": 0.1}, {"log10": 1}, {"se": 4, "abs": 0.02}])
def test_tolerance_kinds_combine(tolerance):
    assert evidence().measure("acc", 0.5, tolerance=tolerance)["tolerance"] == tolerance


def test_a_multi_seed_measurement_also_allows_seed_noise():
    ev = evidence()
    assert ev.measure("acc", [0.5, 0.6, 0.7], tolerance={"abs": 0.02})["tolerance"] == {"abs": 0.02, "se": 4.0}
    assert ev.measure("one", [0.5], tolerance={"abs": 0.02})["tolerance"] == {"abs": 0.02}   # no spread
    assert ev.measure("own", [0.5, 0.6], tolerance={"se": 2})["tolerance"] == {"se": 2}      # the claim's own
    assert "tolerance" not in ev.measure("free", [0.5, 0.6])                                 # none declared


def test_only_assertions_and_check_are_rejections():
    ev = evidence()
    with pytest.raises(pytest.fail.Exception) as rejected:
        ev.check(False, "acc 0.5 < 1")
    assert str(rejected.value) == "T-ev rejected: acc 0.5 < 1"
    assert is_rejection(rejected.value)
    with pytest.raises(pytest.fail.Exception) as unexpected:
        ev.check(True, "acc 1.0", known_failure="why")
    assert is_rejection(unexpected.value)
    assert is_rejection(AssertionError("T-ev rejected: x"))
    with pytest.raises(pytest.fail.Exception) as direct:
        pytest.fail("not the claim's decision")
    for exc in (direct.value, UsageError("bad"), DataError("missing"), RuntimeError("x"),
                KeyError("lr")):
        assert not is_rejection(exc), exc


def test_a_seed_sensitive_known_failure_passes_where_it_reproduces():
    from rethinkbench.suite.evidence import SeedSensitive

    ev = evidence()
    why = SeedSensitive("p = 0.20 on one CPU, 0.03 on another")
    ev.check(True, "p = 0.03", known_failure=why)                 # no "unexpectedly reproduced"
    assert ev.to_dict()["seed_sensitive"] is True
    other = evidence()
    with pytest.raises(pytest.xfail.Exception, match=r"T-ev not reproduced: p = 0.2 \[p = 0.20 on one CPU"):
        other.check(False, "p = 0.2", known_failure=why)
    assert other.to_dict()["seed_sensitive"] is True
    strict = evidence()
    with pytest.raises(pytest.fail.Exception, match="unexpectedly reproduced"):
        strict.check(True, "p = 0.03", known_failure="p = 0.20")  # a plain reason stays strict
    assert "seed_sensitive" not in strict.to_dict()
