"""Regression check between two stored ``results.json`` files (CI's question: did anything break?).

Reads only stored results (``docs/results-schema.md``), never retrains. What counts as a regression:

- a claim or item verdict ``error`` in the current file, whatever the baseline said: an error is a
  failure of rethinkbench or of its setup (missing data, a usage error, a crash), never evidence
  about the paper, and CI must not pass while the tool is broken;
- a claim or item verdict that was ``reproduced`` in the baseline and is not now;
- a claim or item of the baseline that is missing now;
- a measurement that moved further than the tolerance declared *in the baseline*
  (``{"abs": x}``: ``|cur - base| > x``; ``{"rel": r}``: ``|cur - base| > r * |base|``);
- training slower than the baseline by more than ``timing_factor``: the summed ``train_seconds`` of
  the runs trained (not cached) in both files, matched by run key, and only between runs of the
  same ``device_kind`` (seconds on different hardware say nothing about the code).

Everything else (improvements, new items, measurements without a tolerance, timings within the
factor) is reported and never fails. A timing check that cannot be made (no run trained in both
files, different or unknown device kinds) says so in a row of its own.

Both files are first validated against ``rethinkbench/report/results.schema.json``: a value of the wrong
type (a number stored as a string, an unknown verdict) is a :class:`ResultsError`, never a row.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rethinkbench.report.tolerance import within

SUPPORTED_SCHEMA = 1
SCHEMA_FILE = "results.schema.json"   # in this package; docs/results-schema.md describes it

# Row statuses, in the order the table lists them.
REGRESSION = "REGRESSION"
WARNING = "warning"
IMPROVED = "improved"
NEW = "new"
CHANGED = "changed"
INFO = "info"
OK = "ok"
_STATUS_ORDER = (REGRESSION, WARNING, IMPROVED, NEW, CHANGED, INFO, OK)

_REPRODUCED = "reproduced"
_ERROR = "error"
_ERROR_NOTE = "error: a failure of rethinkbench or its setup, not of the paper"


class ResultsError(ValueError):
    """Results that cannot be used: missing or unreadable file, invalid JSON, wrong ``schema``,
    or a malformed field. The message names the file (or ``baseline``/``current``) and the value."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)


def load_results(path: str | os.PathLike) -> dict:
    """Read and check a ``results.json``; :class:`ResultsError` naming ``path`` if unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file", path) from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, expected a results.json file", path) from None
    except UnicodeDecodeError as error:
        raise ResultsError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                           "expected a results.json file", path) from None
    except OSError as error:
        raise ResultsError(f"{path}: cannot be read ({error.strerror or error})", path) from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: "
                           f"{error.msg}", path) from None
    try:
        check_results(results, source=str(path))
    except ResultsError as error:
        raise ResultsError(str(error), path) from None
    return results


def check_results(results: Any, *, source: str = "results") -> None:
    """Check ``results`` against the results schema; ``source`` names it in errors.

    The first checks say whether this is a rethinkbench results file at all, and in which schema
    version; then every value the report and the comparison read must have its documented type.
    A :class:`ResultsError` names the JSON path of the bad value and what was expected."""
    if not isinstance(results, dict):
        raise ResultsError(f"{source}: expected a JSON object at the top level, "
                           f"got {type(results).__name__}")
    if "schema" not in results:
        raise ResultsError(f"{source}: no 'schema' field, so not a rethinkbench results file "
                           f"(this rethinkbench reads schema {SUPPORTED_SCHEMA})")
    schema = results["schema"]
    if isinstance(schema, bool) or schema != SUPPORTED_SCHEMA:
        raise ResultsError(f"{source}: schema {schema!r} is not supported "
                           f"(this rethinkbench reads schema {SUPPORTED_SCHEMA})")
    from jsonschema.exceptions import best_match

    errors = list(_validator().iter_errors(results))
    if errors:
        error = best_match(errors)
        more = len(errors) - 1
        raise ResultsError(f"{source}: {_violation_text(error)}"
                           + (f" ({more} more problem{'s' if more != 1 else ''} in this file)"
                              if more else ""))


def results_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a results.json, as shipped in this package."""
    return json.loads(resources.files("rethinkbench.report").joinpath(SCHEMA_FILE)
                      .read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator():
    # Imported here: jsonschema loads only when results are actually read.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(results_schema())


_JSON_TYPES = {"number": "a number", "integer": "an integer", "string": "a string",
               "boolean": "true or false", "null": "null", "object": "an object",
               "array": "a list"}


def _violation_text(error) -> str:
    """``claims[3].items[0].measured.test_acc.value: expected a number or null, got '0.97'
    (a string)`` from a jsonschema ValidationError."""
    where = _json_path(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"{where}: the required field {missing[0]!r} is missing"
    if "propertyNames" in error.relative_schema_path:   # the instance is the bad key itself
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{where}: expected only the keys {allowed}, got the key {error.instance!r}"
    # A subschema's description says best what it wants (the root's describes the whole file).
    described = error.schema.get("description") if error.schema is not _validator().schema else None
    return f"{where}: expected {described or _expected(error)}, got {_value_text(error.instance)}"


def _expected(error) -> str:
    value = error.validator_value
    if error.validator == "type":
        names = [value] if isinstance(value, str) else value
        return " or ".join(_JSON_TYPES.get(name, name) for name in names)
    if error.validator == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in value)
    if error.validator == "const":
        return json.dumps(value)
    if error.validator == "minimum":
        return f"a number >= {value}"
    return error.message


def _json_path(path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def _value_text(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    kind = {str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    return f"{_short_repr(value)} ({kind})" if value is not None else "null"


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


@dataclass
class Comparison:
    """The outcome of :func:`compare`: ``ok`` is False when any row is a regression."""

    rows: list[Row]
    timing_factor: float
    baseline_label: str = "baseline"
    current_label: str = "current"
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Row]:
        return [row for row in self.rows if row.regression]

    @property
    def ok(self) -> bool:
        return not self.regressions

    def format_table(self, *, show_unchanged: bool = False) -> str:
        """A plain-text table, regressions first. Rows where nothing changed (same verdict, same
        value) are only counted unless ``show_unchanged``. Ends with a one-line verdict."""
        ordered = sorted(self.rows, key=lambda row: _STATUS_ORDER.index(row.status))
        hidden = [] if show_unchanged else [row for row in ordered if row.unchanged]
        shown = ordered if show_unchanged else [row for row in ordered if not row.unchanged]
        lines = [f"rethinkbench compare: {self.baseline_label}  ->  {self.current_label}"]
        if shown:
            header = ("status", "check", "subject", "baseline", "current", "note")
            cells = [header] + [(row.status, row.check, _middle_ellipsis(row.subject, 100),
                                 _middle_ellipsis(row.baseline, 28),
                                 _middle_ellipsis(row.current, 28), row.note) for row in shown]
            widths = [max(len(cell[i]) for cell in cells) for i in range(len(header) - 1)]
            for cell in cells:
                padded = [text.ljust(width) for text, width in zip(cell, widths)]
                lines.append("  ".join(padded + [cell[-1]]).rstrip())
        counts = {status: sum(row.status == status for row in self.rows)
                  for status in _STATUS_ORDER}
        compared = ", ".join(f"{what} {number}" for what, number in self.counts.items())
        lines.append("")
        lines.append(
            f"compared {compared or 'nothing'}; {counts[REGRESSION]} regression(s), "
            f"{counts[IMPROVED]} improvement(s), {counts[NEW]} new, "
            f"{len(hidden)} unchanged row(s) not listed")
        if self.ok:
            lines.append("OK: no regressions")
        else:
            lines.append(f"FAILED: {counts[REGRESSION]} regression(s)")
        return "\n".join(lines)


def compare(baseline: dict, current: dict, *, timing_factor: float = 2.0) -> Comparison:
    """Compare two results dicts (see the module docstring for what counts as a regression)."""
    if (isinstance(timing_factor, bool) or not isinstance(timing_factor, (int, float))
            or not math.isfinite(timing_factor) or timing_factor < 1.0):
        raise ValueError(f"timing_factor must be a finite number >= 1.0 (how many times slower "
                         f"training may get), got {timing_factor!r}")
    check_results(baseline, source="baseline")
    check_results(current, source="current")
    rows: list[Row] = []
    rows += _setup_rows(baseline, current)
    claim_rows, counts = _claim_rows(baseline, current)
    rows += claim_rows
    timing_rows, timed_runs = _timing_rows(baseline, current, timing_factor)
    rows += timing_rows
    counts["timed runs"] = timed_runs
    return Comparison(rows=rows, timing_factor=float(timing_factor),
                      baseline_label=_describe(baseline), current_label=_describe(current),
                      counts=counts)


def _setup_rows(baseline: dict, current: dict) -> list[Row]:
    rows = []
    for name in ("scale", "dataset", "model"):
        before, now = baseline.get(name), current.get(name)
        if before != now:
            rows.append(Row(WARNING, "setup", name, _text(before), _text(now),
                            f"different {name}: the numbers are not expected to agree"))
    for nodeid in current.get("unreported", []):
        rows.append(Row(REGRESSION, "item", nodeid, "-", "unreported",
                        "collected but never reported a result (a crashed worker?): a failure of "
                        "rethinkbench, not of the paper"))
    return rows


def _claim_rows(baseline: dict, current: dict) -> tuple[list[Row], dict[str, int]]:
    rows: list[Row] = []
    counts = {"claims": 0, "items": 0, "measurements": 0}
    current_claims = _first_by_id(current["claims"])
    for claim_id, before in _first_by_id(baseline["claims"]).items():
        now = current_claims.pop(claim_id, None)
        if now is None:
            rows.append(Row(REGRESSION, "claim", claim_id, _text(before.get("verdict")),
                            "missing", f"not in current ({len(before.get('items', []))} items)"))
            continue
        counts["claims"] += 1
        rows.append(_verdict_row("claim", claim_id, before.get("verdict"), now.get("verdict"),
                                 _error_reason(now.get("items", []))))
        for item_before, item_now, note in _match_items(before.get("items", []),
                                                        now.get("items", [])):
            subject = _item_subject(claim_id, item_before or item_now)
            if item_now is None:
                rows.append(Row(REGRESSION, "item", subject, _text(item_before.get("verdict")),
                                "missing", "in the baseline, not in current"))
                continue
            if item_before is None:
                rows.append(_new_row("item", subject, item_now.get("verdict"),
                                     _error_reason([item_now])))
                continue
            counts["items"] += 1
            row = _verdict_row("item", subject, item_before.get("verdict"),
                               item_now.get("verdict"), _error_reason([item_now]))
            if note:
                row = Row(row.status, row.check, row.subject, row.baseline, row.current,
                          "; ".join(filter(None, [row.note, note])))
            rows.append(row)
            measured_before = _mapping(item_before.get("measured"))
            measured_now = _mapping(item_now.get("measured"))
            counts["measurements"] += len(measured_before.keys() & measured_now.keys())
            rows += _measurement_rows(subject, measured_before, measured_now)
    for claim_id, now in current_claims.items():
        rows.append(_new_row("claim", claim_id, now.get("verdict"),
                             _error_reason(now.get("items", []))))
    return rows, counts


def _verdict_row(check: str, subject: str, before: Any, now: Any, reason: str = "") -> Row:
    if now == _ERROR:   # whatever the baseline said, even "error": the tool failed, not the paper
        return Row(REGRESSION, check, subject, _text(before), _text(now), _error_note(reason),
                   changed=before != now)
    if before == now:
        return Row(OK, check, subject, _text(before), _text(now), changed=False)
    if before == _REPRODUCED:
        return Row(REGRESSION, check, subject, _text(before), _text(now), "no longer reproduced")
    if now == _REPRODUCED:
        return Row(IMPROVED, check, subject, _text(before), _text(now), "now reproduced")
    return Row(CHANGED, check, subject, _text(before), _text(now), "verdict changed")


def _new_row(check: str, subject: str, now: Any, reason: str) -> Row:
    if now == _ERROR:
        return Row(REGRESSION, check, subject, "-", _text(now),
                   _error_note(reason) + "; not in the baseline")
    return Row(NEW, check, subject, "-", _text(now), "not in the baseline")


def _error_reason(items: list[dict]) -> str:
    """The reason of the first errored item: what broke, for the note of an error row."""
    return next((str(item.get("reason") or "") for item in items
                 if item.get("verdict") == _ERROR), "")


def _error_note(reason: str) -> str:
    first = reason.strip().split("\n", 1)[0] if reason else ""
    return f"{_ERROR_NOTE} ({_middle_ellipsis(first, 120)})" if first else _ERROR_NOTE


def _match_items(before_items: list[dict], now_items: list[dict]
                 ) -> Iterator[tuple[dict | None, dict | None, str]]:
    """Pairs (baseline item, current item, note), None on the side that lacks the item.

    By nodeid first; then each baseline item still unmatched takes the one unmatched current item
    with the same params, if exactly one has them (a renamed or moved test)."""
    unmatched = dict(enumerate(now_items))     # index -> current item, not yet paired
    index_of_nodeid: dict[str, int] = {}
    for index, item in unmatched.items():
        if item.get("nodeid"):
            index_of_nodeid.setdefault(item["nodeid"], index)
    matches: list[tuple[dict, str] | None] = [None] * len(before_items)
    for position, item in enumerate(before_items):
        index = index_of_nodeid.get(item.get("nodeid"))
        if index is not None and index in unmatched:
            matches[position] = (unmatched.pop(index), "")
    for position, item in enumerate(before_items):
        if matches[position] is None:
            key = _canonical(item.get("params"))
            same = [index for index, other in unmatched.items()
                    if _canonical(other.get("params")) == key]
            if len(same) == 1:
                matches[position] = (unmatched.pop(same[0]), "matched by params (nodeid changed)")
    for item, match in zip(before_items, matches):
        yield (item, *match) if match else (item, None, "")
    for item in unmatched.values():
        yield None, item, ""


def _measurement_rows(subject: str, before: Mapping, now: Mapping) -> list[Row]:
    rows = []
    # Both files passed check_results: every measurement is an object and every tolerance usable.
    for name, measure_before in before.items():
        where = f"{subject} › {name}"
        tolerance = measure_before.get("tolerance")
        value_before = measure_before.get("value")
        measure_now = now.get(name)
        if measure_now is None:
            status = REGRESSION if tolerance else INFO
            rows.append(Row(status, "measure", where, _number_text(value_before), "missing",
                            "measurement not recorded now"))
            continue
        rows.append(_measurement_row(where, measure_before, measure_now.get("value"), tolerance))
    for name, measure_now in now.items():
        if name not in before:
            rows.append(Row(NEW, "measure", f"{subject} › {name}", "-",
                            _number_text(measure_now.get("value")), "not in the baseline"))
    return rows


def _measurement_row(where: str, measure_before: dict, now: Any, tolerance: dict | None) -> Row:
    before = measure_before.get("value")
    shown = (where, _number_text(before), _number_text(now))
    before_missing, now_missing = _is_missing(before), _is_missing(now)
    same = (before_missing and now_missing) or before == now
    if not tolerance:
        return Row(INFO, "measure", *shown, _delta_text(before, now, "no tolerance: not checked"),
                   changed=not same)
    if before_missing and now_missing:
        return Row(OK, "measure", *shown, "no value in either", changed=False)
    if before_missing:
        return Row(CHANGED, "measure", *shown, "no value in the baseline, so nothing to check")
    if now_missing:
        return Row(REGRESSION, "measure", *shown, "had a value, has none now")
    if not (_is_number(before) and _is_number(now)):
        if before == now:
            return Row(OK, "measure", *shown, "unchanged", changed=False)
        return Row(REGRESSION, "measure", *shown, "non-numeric value changed")
    ok, note = within(tolerance, measure_before, now)   # the kinds and their rule: tolerance.py
    return Row(OK if ok else REGRESSION, "measure", *shown, note, changed=now != before)


def _timing_rows(baseline: dict, current: dict, factor: float) -> tuple[list[Row], int]:
    """Summed train seconds of the runs trained in both files, one row per device kind, and one
    row for each reason some runs in both files could not be compared (so a skipped timing check
    is never silent)."""
    runs_before, runs_now = baseline.get("runs", {}), current.get("runs", {})
    common = [key for key in runs_before if key in runs_now]
    if not common:
        return [Row(INFO, "timing", "train seconds", "-", "-",
                    "timing not compared: no run key in both files")], 0
    by_kind: dict[str, list[tuple[str, float, float]]] = {}
    kinds_differ: list[tuple[str, str]] = []
    cached, untimed = 0, 0
    for key in common:
        before, now = runs_before[key], runs_now[key]
        # Only runs actually trained this time in both sessions: a cached run's seconds are
        # those of an older session, possibly on another machine.
        if before.get("cached") is not False or now.get("cached") is not False:
            cached += 1
            continue
        seconds_before, seconds_now = before.get("train_seconds"), now.get("train_seconds")
        if not (_is_number(seconds_before) and _is_number(seconds_now)) or seconds_before <= 0:
            untimed += 1
            continue
        kind_before = before.get("device_kind") or _provenance_kind(baseline)
        kind_now = now.get("device_kind") or _provenance_kind(current)
        if not kind_before or kind_before != kind_now:
            kinds_differ.append((_text(kind_before), _text(kind_now)))
            continue
        by_kind.setdefault(kind_before, []).append((key, seconds_before, seconds_now))
    rows = []
    if kinds_differ:
        before_kinds = ", ".join(sorted({b for b, _ in kinds_differ}))
        now_kinds = ", ".join(sorted({n for _, n in kinds_differ}))
        unknown = any(b == "-" or n == "-" for b, n in kinds_differ)
        rows.append(Row(INFO, "timing", f"{len(kinds_differ)} run(s)", before_kinds, now_kinds,
                        "timing not compared: " + ("device kind unknown" if unknown
                                                   else "different device kinds")))
    if untimed:
        rows.append(Row(INFO, "timing", f"{untimed} run(s)", "-", "-",
                        "timing not compared: no train_seconds above zero in both files"))
    if not by_kind and cached:
        rows.append(Row(INFO, "timing", "train seconds", "-", "-",
                        "timing not compared: no run was trained (not cached) in both files"))
    for kind, triples in by_kind.items():
        total_before = sum(before for _, before, _ in triples)
        total_now = sum(now for _, _, now in triples)
        ratio = total_now / total_before
        key, before, now = max(triples, key=lambda triple: triple[2] / triple[1])
        slowest = f"; slowest run {key[:12]} {now / before:.2f}x"
        speed = "slower" if ratio > 1.005 else "faster" if ratio < 0.995 else "(same speed)"
        note = f"{ratio:.2f}x {speed} (limit {factor:g}x){slowest}"
        if cached:
            note += f"; {cached} run(s) cached in either file left out"
        if ratio > factor:
            status = REGRESSION
        elif ratio < 1.0 / factor:
            status = IMPROVED
        else:
            status = OK
        rows.append(Row(status, "timing", f"{len(triples)} run(s) trained in both on {kind}",
                        f"{total_before:.1f} s", f"{total_now:.1f} s", note))
    return rows, sum(len(triples) for triples in by_kind.values())


def _provenance_kind(results: dict) -> str | None:
    provenance = results.get("provenance")
    return provenance.get("device_kind") if isinstance(provenance, dict) else None


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _first_by_id(claims: list[dict]) -> dict[str, dict]:
    by_id: dict[str, dict] = {}
    for claim in claims:
        by_id.setdefault(claim["id"], claim)
    return by_id


def _item_subject(claim_id: str, item: dict) -> str:
    nodeid = item.get("nodeid")
    if nodeid:
        # "claims/test_fit.py::test_fits[cpu-…]" -> "test_fits[cpu-…]": the file adds length, the
        # claim id already says where it lives.
        return f"{claim_id} › {nodeid.rsplit('::', 1)[-1]}"
    return f"{claim_id} › {_canonical(item.get('params'))}"


def _describe(results: dict) -> str:
    provenance = results.get("provenance") if isinstance(results.get("provenance"), dict) else {}
    commit = provenance.get("git_commit")
    parts = [f"{results.get('scale', '?')}/{results.get('dataset', '?')}",
             str(results.get("created", "?"))[:19]]
    if commit:
        parts.append(str(commit)[:10] + ("+dirty" if provenance.get("git_dirty") else ""))
    return " ".join(parts)


def _canonical(params: Any) -> str:
    return json.dumps(params if params is not None else {}, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return _text(value)


def _delta_text(before: Any, now: Any, prefix: str) -> str:
    if _is_number(before) and _is_number(now):
        return f"{prefix}; moved {now - before:+.4g}"
    return prefix


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _middle_ellipsis(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[:keep // 2] + "…" + text[-(keep - keep // 2):]


__all__ = ["SUPPORTED_SCHEMA", "Comparison", "ResultsError", "Row", "check_results", "compare",
           "load_results"]
