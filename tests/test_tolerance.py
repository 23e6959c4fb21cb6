"""rethinkbench/report/tolerance.py: what each tolerance kind lets a stored measurement move."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rethinkbench.report.tolerance import tolerance_problem, within


def m(value, sd=None, n=None):
    return {"value": value, "sd": sd, "n": n}


@pytest.mark.parametrize("tolerance, before, now, ok", [
    ({"abs": 0.02}, m(0.9), 0.919, True), ({"abs": 0.02}, m(0.9), 0.921, False),
    ({"abs": 0}, m(0.3), 0.1 + 0.2, True),                      # float noise is not a change
    ({"rel": 0.1}, m(100.0), 109.0, True), ({"rel": 0.1}, m(100.0), 89.0, False),
    # A condition number near 1e10 moved 20% by another BLAS: within an order of magnitude.
    ({"log10": 1}, m(2.27e10), 1.83e10, True), ({"log10": 1}, m(2.27e10), 2.3e11, False),
    ({"log10": 1}, m(2.27e10), -1.0, False),
    # 3 seeds, sd 6: one standard error of a difference is 6 * sqrt(2/3) = 4.9.
    ({"se": 4}, m(50.0, 6.0, 3), 69.0, True), ({"se": 4}, m(50.0, 6.0, 3), 70.0, False),
    # A standard error needs a spread: without one only the other kinds can pass.
    ({"se": 4}, m(50.0, None, 1), 50.5, False), ({"se": 4, "rel": 0.02}, m(50.0, None, 1), 50.5, True),
    ({"se": 4, "abs": 1}, m(50.0, 0.0, 3), 50.9, True),
])
def test_within(tolerance, before, now, ok):
    passed, note = within(tolerance, before, now)
    assert passed is ok
    assert ("within" if ok else "beyond") in note


@given(st.floats(1e-300, 1e300), st.floats(0, 3))
def test_log10_band_is_symmetric(value, orders):
    up, down = value * 10 ** orders, value / 10 ** orders
    if math.isfinite(up) and down > 0:
        assert within({"log10": orders + 1e-9}, m(value), up)[0]
        assert within({"log10": orders + 1e-9}, m(value), down)[0]


@pytest.mark.parametrize("tolerance, problem", [
    ({"abs": 1}, None), ({"se": 3, "abs": 0.1}, None),
    ({}, "expected an object with one or more of abs, rel, log10, se, got {}"),
    ({"sd": 2}, "unknown tolerance kind(s) ['sd']; known: abs, rel, log10, se"),
    ({"rel": -0.1}, "tolerance values must be numbers >= 0, got {'rel': -0.1}"),
    ({"rel": True}, "tolerance values must be numbers >= 0, got {'rel': True}")])
def test_tolerance_problem(tolerance, problem):
    assert tolerance_problem(tolerance) == problem
