"""Display strings for the report: numbers, percentages, seconds, tolerances, anchors and CSS
tokens (verdict labels: verdicts.py). Pure functions of a value; the template makes no decisions about numbers."""

from __future__ import annotations

import json
import math
from typing import Any


def format_number(value: Any, unit: str = "", *, signed: bool = False, none: str = "—") -> str:
    """A measurement as a reader wants it: 4 significant digits, thousands separators for counts,
    the unit after it (`%` attached, others after a space)."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        text = "NaN"
    elif isinstance(value, float) and math.isinf(value):
        text = "∞" if value > 0 else "−∞"
    elif isinstance(value, int) or abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif value != 0 and abs(value) < 1e-3:
        text = f"{value:.3e}"
    else:
        text = f"{value:.4g}"
    if signed and is_number(value) and value > 0:
        text = "+" + text
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def format_percent(fraction: Any) -> str:
    """Accuracies are stored as fractions in [0, 1]; runs show them in percent."""
    if not is_number(fraction):
        return "—"
    return f"{100 * fraction:.2f}%"


def format_seconds(seconds: Any) -> str:
    if not is_number(seconds):
        return "—"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def tolerance_text(tolerance: Any, unit: str) -> str:
    if not isinstance(tolerance, dict) or not tolerance:
        return "—"
    parts = []
    if tolerance.get("abs") == 0 and not tolerance.get("rel"):
        return "exact"
    if is_number(tolerance.get("abs")):
        parts.append("± " + format_number(tolerance["abs"], unit))
    if is_number(tolerance.get("rel")):
        parts.append(f"± {100 * tolerance['rel']:.3g}% (relative)")
    if is_number(tolerance.get("log10")):
        parts.append(f"× or ÷ {10 ** tolerance['log10']:.3g}")
    if is_number(tolerance.get("se")):   # the kinds: rethinkbench/report/tolerance.py
        parts.append(f"± {tolerance['se']:g} standard errors")
    return " or ".join(parts) if parts else str(tolerance)


def sign_css(value: Any) -> str:
    if not is_number(value) or value == 0:
        return "zero"
    return "positive" if value > 0 else "negative"


def param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format_number(value)
    return json.dumps(value, default=str)


def date_text(value: Any) -> str:
    if not value:
        return "—"
    # "2026-11-26T23:59:00+00:00" -> "2026-11-26 23:59:00 UTC": easier to read, same content.
    text = str(value).replace("T", " ", 1)
    return text[:-6] + " UTC" if text.endswith("+00:00") else text


def first_line(text: str, limit: int) -> str:
    line = text.strip().split("\n", 1)[0] if text else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def text(value: Any, empty: str = "—") -> str:
    return empty if value is None or value == "" else str(value)


def anchor(text: str) -> str:
    """An HTML id: ids cannot contain whitespace; everything else is allowed (and escaped)."""
    return "-".join(str(text).split())


def css_token(text: Any) -> str:
    """A class-name fragment from a verdict or kind; unexpected characters become '-'."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text))


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))

