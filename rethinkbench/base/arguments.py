"""Argument checks shared by every layer: each returns the value as the type it promises, or raises
UsageError naming the argument, the bad value and what is allowed.

A bool is never a number here: True is an int to Python, but never a count or a rate a user meant.
The predicates (is_int, is_number) accept Python's int and float only: they guard values stored as
given (a RunConfig field goes into a JSON run key, which numpy's int64 cannot enter). The
converters (count, positive, ...) also take numpy's scalars, since they return a Python int or
float.
"""
from __future__ import annotations

import math
import numbers

from rethinkbench.base.errors import UsageError


def is_int(v) -> bool:
    """A Python int, not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """A finite Python int or float, not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def count(name: str, v, minimum: int = 1) -> int:
    """`v` (any integer type) as an int >= `minimum`."""
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def positive(name: str, v) -> float:
    """`v` as a finite float > 0."""
    if not (_real(v) and v > 0):
        raise UsageError(f"{name} must be a finite number > 0, got {v!r}")
    return float(v)


def non_negative(name: str, v) -> float:
    """`v` as a finite float >= 0."""
    if not (_real(v) and v >= 0):
        raise UsageError(f"{name} must be a finite number >= 0, got {v!r}")
    return float(v)


def probability(name: str, v) -> float:
    """`v` as a float in [0, 1]."""
    if not (_real(v) and 0.0 <= v <= 1.0):
        raise UsageError(f"{name} must be a probability in [0, 1], got {v!r}")
    return float(v)


def open_unit(name: str, v) -> float:
    """`v` as a float in (0, 1): a confidence level such as delta."""
    if not (_real(v) and 0.0 < v < 1.0):
        raise UsageError(f"{name} must be in (0, 1), got {v!r}")
    return float(v)
