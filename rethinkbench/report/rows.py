"""One row of a comparison (compare.py, timing.py): its status, what was checked, both values, and
the small text helpers both use to show a value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Row statuses, in the order the table lists them.
REGRESSION = "REGRESSION"
WARNING = "warning"
IMPROVED = "improved"
NEW = "new"
CHANGED = "changed"
NOT_RUN = "not run"
INFO = "info"
OK = "ok"
STATUS_ORDER = (REGRESSION, WARNING, IMPROVED, NEW, CHANGED, NOT_RUN, INFO, OK)


@dataclass(frozen=True)
class Row:
    """One line of the comparison: what was checked, the two values, and the outcome."""

    status: str        # REGRESSION | warning | improved | new | changed | info | ok
    check: str         # setup | claim | item | measure | timing
    subject: str       # claim id, "claim id › test[params]", "… › measurement", device kind
    baseline: str
    current: str
    note: str = ""
    changed: bool = True   # False: same verdict or same value in both files

    @property
    def regression(self) -> bool:
        return self.status == REGRESSION

    @property
    def unchanged(self) -> bool:
        """Nothing to read here: a fine row whose values are the same in both files."""
        return not self.changed and self.status in (OK, INFO)


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return text(value)


def delta_text(before: Any, now: Any, prefix: str) -> str:
    if is_number(before) and is_number(now):
        return f"{prefix}; moved {now - before:+.4g}"
    return prefix


def text(value: Any) -> str:
    return "-" if value is None else str(value)


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def middle_ellipsis(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[:keep // 2] + "…" + text[-(keep - keep // 2):]
