"""rethinkbench/base/arguments.py: the shared argument checks return the promised type or raise a
UsageError naming the argument and the bad value; a bool is never a number."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rethinkbench.base import arguments as A
from rethinkbench.base.errors import UsageError


@given(st.integers(-10**6, 10**6), st.integers(-5, 5))
def test_count_takes_exactly_the_integers_at_or_above_the_minimum(v, minimum):
    if v >= minimum:
        assert A.count("n", v, minimum) == v and type(A.count("n", np.int64(v), minimum)) is int
    else:
        with pytest.raises(UsageError, match=f"n must be an integer >= {minimum}, got {v}"):
            A.count("n", v, minimum)


@pytest.mark.parametrize("check, good, bad", [
    (A.positive, [1e-300, 2, np.float32(0.5)], [0, -1.0, math.inf, math.nan, True, "1", None]),
    (A.non_negative, [0, 0.0, 3, np.float64(2.5)], [-1e-9, math.inf, math.nan, False, "0"]),
    (A.probability, [0, 1, 0.5, np.float32(0.25)], [-0.1, 1.1, math.nan, True, "0.5"]),
    (A.open_unit, [1e-9, 0.5, 0.999], [0, 1, 0.0, 1.0, math.nan, True]),
])
def test_the_float_checks_accept_what_they_name_and_nothing_else(check, good, bad):
    for v in good:
        out = check("x", v)
        assert type(out) is float and out == float(v)
    for v in bad:
        with pytest.raises(UsageError, match=r"^x must be .*, got "):
            check("x", v)


def test_count_refuses_bools_floats_and_strings():
    for v in (True, 1.0, "3", None, np.float64(2)):
        with pytest.raises(UsageError, match=r"steps must be an integer >= 0, got "):
            A.count("steps", v, 0)


def test_the_predicates_take_python_numbers_only():
    # What they guard is stored as given (RunConfig fields enter a JSON key): numpy's int64 cannot.
    assert A.is_int(3) and not A.is_int(True) and not A.is_int(np.int64(3)) and not A.is_int(3.0)
    assert A.is_number(3) and A.is_number(2.5) and A.is_number(np.float64(2.5))   # a float subclass
    assert not any(A.is_number(v) for v in (True, math.inf, math.nan, np.float32(1), "1"))
