"""Regression check between two stored ``results.json`` files (CI's question: did anything break?).

Reads only stored results (``docs/results-schema.md``), never retrains. What counts as a regression:

- a claim or item verdict ``error`` in the current file, whatever the baseline said: an error is a
  failure of rethinkbench or of its setup (missing data, a usage error, a crash), never evidence
  about the paper, and CI must not pass while the tool is broken;
- a claim or item verdict that was ``reproduced`` in the baseline and is not now;
- a claim or item of the baseline that is missing now, unless the current session did not select
  it (its ``selection``: ``-k``, paths) or was interrupted before it: then it is listed as "not
  run", and a claim's verdicts are compared over the items both sessions ran (leaving out a
  claim's failing items is not an improvement);
- never a change to or from ``inconclusive`` (smoke scale: no evidence either way), nor a flip of
  an item marked ``seed_sensitive`` in either file (a known failure whose verdict another CPU's
  rounding flips: suite.evidence.SeedSensitive), nor of a claim whose only flipped items are such;
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

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# load_results and ResultsError are read here too: `compare` is the CLI's and CI's entry.
from rethinkbench.report.results_io import SUPPORTED_SCHEMA, ResultsError, check_results, load_results
from rethinkbench.report.rows import (CHANGED, IMPROVED, INFO, NEW, NOT_RUN, OK, REGRESSION,
                                      STATUS_ORDER, WARNING, Row, delta_text, is_missing, is_number,
                                      middle_ellipsis, number_text, text)
from rethinkbench.report.timing import timing_rows
from rethinkbench.report.tolerance import within
from rethinkbench.report.verdicts import INCONCLUSIVE, claim_verdict

_REPRODUCED = "reproduced"
_ERROR = "error"
_ERROR_NOTE = "error: a failure of rethinkbench or its setup, not of the paper"


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
        ordered = sorted(self.rows, key=lambda row: STATUS_ORDER.index(row.status))
        hidden = [] if show_unchanged else [row for row in ordered if row.unchanged]
        shown = ordered if show_unchanged else [row for row in ordered if not row.unchanged]
        lines = [f"rethinkbench compare: {self.baseline_label}  ->  {self.current_label}"]
        if shown:
            header = ("status", "check", "subject", "baseline", "current", "note")
            cells = [header] + [(row.status, row.check, middle_ellipsis(row.subject, 100),
                                 middle_ellipsis(row.baseline, 28),
                                 middle_ellipsis(row.current, 28), row.note) for row in shown]
            widths = [max(len(cell[i]) for cell in cells) for i in range(len(header) - 1)]
            for cell in cells:
                padded = [text.ljust(width) for text, width in zip(cell, widths)]
                lines.append("  ".join(padded + [cell[-1]]).rstrip())
        counts = {status: sum(row.status == status for row in self.rows)
                  for status in STATUS_ORDER}
        compared = ", ".join(f"{what} {number}" for what, number in self.counts.items())
        lines.append("")
        not_run = Counter(row.check for row in self.rows if row.status == NOT_RUN)
        if not_run:
            lines.append(f"{not_run['claim']} claim(s) and {not_run['item']} item(s) ran in only one "
                         f"of the two sessions (a subset was selected, or a session was interrupted): "
                         f"listed as not run, not compared")
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
    timed_rows, timed_runs = timing_rows(baseline, current, timing_factor)
    rows += timed_rows
    counts["timed runs"] = timed_runs
    return Comparison(rows=rows, timing_factor=float(timing_factor),
                      baseline_label=_describe(baseline), current_label=_describe(current),
                      counts=counts)


def _setup_rows(baseline: dict, current: dict) -> list[Row]:
    rows = []
    for name in ("scale", "dataset", "model"):
        before, now = baseline.get(name), current.get(name)
        if before != now:
            rows.append(Row(WARNING, "setup", name, text(before), text(now),
                            f"different {name}: the numbers are not expected to agree"))
    for side, results in (("baseline", baseline), ("current", current)):
        if results.get("interrupted"):
            progress = results.get("progress") if isinstance(results.get("progress"), dict) else {}
            rows.append(Row(WARNING, "setup", "interrupted", "-" if side == "current" else "yes",
                            "yes" if side == "current" else "-",
                            f"the {side} session was interrupted ({progress.get('finished', '?')} of "
                            f"{progress.get('selected', '?')} selected tests finished): what it did "
                            f"not run is listed as not run"))
    for nodeid in current.get("unreported", []):
        rows.append(Row(REGRESSION, "item", nodeid, "-", "unreported",
                        "collected but never reported a result (a crashed worker?): a failure of "
                        "rethinkbench, not of the paper"))
    return rows


class _Selection:
    """Which items a session selected (results.json's `selection.items`): None for a file that does
    not record it (then everything it lacks was meant to run). An interrupted session ran only
    part of what it selected."""

    def __init__(self, results: dict):
        selection = results.get("selection") if isinstance(results.get("selection"), dict) else {}
        items = selection.get("items")
        self.items = set(items) if isinstance(items, list) else None
        self.interrupted = bool(results.get("interrupted"))

    def why_not_run(self, item: dict, side: str) -> str:
        """Why `item` (of the other file) is absent from this side: "" when it should be there."""
        if self.items is not None and item.get("nodeid") not in self.items:
            return f"not selected in {side} (compared only what both sessions selected)"
        if self.interrupted:
            return f"{side} was interrupted before it finished"
        return ""


def _claim_rows(baseline: dict, current: dict) -> tuple[list[Row], dict[str, int]]:
    rows: list[Row] = []
    counts = {"claims": 0, "items": 0, "measurements": 0}
    selected_before, selected_now = _Selection(baseline), _Selection(current)
    current_claims = _first_by_id(current["claims"])
    for claim_id, before in _first_by_id(baseline["claims"]).items():
        now = current_claims.pop(claim_id, None)
        if now is None:
            items = before.get("items", [])
            why = [selected_now.why_not_run(item, "current") for item in items]
            if items and all(why):
                rows.append(Row(NOT_RUN, "claim", claim_id, text(before.get("verdict")), "not run",
                                why[0]))
            else:
                rows.append(Row(REGRESSION, "claim", claim_id, text(before.get("verdict")),
                                "missing", f"not in current ({len(items)} items)"))
            continue
        pairs, item_rows, not_run = [], [], []
        for item_before, item_now, note in _match_items(before.get("items", []),
                                                        now.get("items", [])):
            subject = _item_subject(claim_id, item_before or item_now)
            if item_now is None:
                why = selected_now.why_not_run(item_before, "current")
                not_run += [item_before] if why else []
                item_rows.append(Row(NOT_RUN, "item", subject, text(item_before.get("verdict")),
                                     "not run", why) if why else
                                 Row(REGRESSION, "item", subject, text(item_before.get("verdict")),
                                     "missing", "in the baseline, not in current"))
                continue
            if item_before is None:
                why = selected_before.why_not_run(item_now, "the baseline")
                not_run += [item_now] if why else []
                item_rows.append(Row(NOT_RUN, "item", subject, "not run", text(item_now.get("verdict")),
                                     why) if why else
                                 _new_row("item", subject, item_now.get("verdict"),
                                          _error_reason([item_now])))
                continue
            pairs.append((item_before, item_now))
            counts["items"] += 1
            row = _unless_seed_sensitive([(item_before, item_now)], _verdict_row(
                "item", subject, item_before.get("verdict"), item_now.get("verdict"), _error_reason([item_now])))
            if note:
                row = Row(row.status, row.check, row.subject, row.baseline, row.current,
                          "; ".join(filter(None, [row.note, note])))
            item_rows.append(row)
            measured_before = _mapping(item_before.get("measured"))
            measured_now = _mapping(item_now.get("measured"))
            counts["measurements"] += len(measured_before.keys() & measured_now.keys())
            item_rows += _measurement_rows(subject, measured_before, measured_now)
        rows.append(_claim_verdict_row(claim_id, before, now, pairs, not_run))
        counts["claims"] += bool(pairs)
        rows += item_rows
    for claim_id, now in current_claims.items():
        items = now.get("items", [])
        why = [selected_before.why_not_run(item, "the baseline") for item in items]
        if items and all(why):
            rows.append(Row(NOT_RUN, "claim", claim_id, "not run", text(now.get("verdict")), why[0]))
        else:
            rows.append(_new_row("claim", claim_id, now.get("verdict"), _error_reason(items)))
    return rows, counts


def _claim_verdict_row(claim_id: str, before: dict, now: dict, pairs: list, not_run: list) -> Row:
    """The claim's verdict row. When some of its items ran in only one session (`not_run`), both
    verdicts are taken without them, so that leaving out a claim's failing items never reads as
    an improvement (or its passing ones as a regression)."""
    if not pairs:
        return Row(NOT_RUN, "claim", claim_id, text(before.get("verdict")), text(now.get("verdict")),
                   "no item of this claim ran in both sessions")
    if not not_run:
        return _unless_seed_sensitive(pairs, _verdict_row("claim", claim_id, before.get("verdict"), now.get("verdict"),
                                                          _error_reason(now.get("items", []))))
    left_out = {id(item) for item in not_run}
    items_before = [item for item in before.get("items", []) if id(item) not in left_out]
    items_now = [item for item in now.get("items", []) if id(item) not in left_out]
    row = _unless_seed_sensitive(pairs, _verdict_row(
        "claim", claim_id, claim_verdict(i.get("verdict") for i in items_before),
        claim_verdict(i.get("verdict") for i in items_now), _error_reason(items_now)))
    note = f"without the {len(not_run)} item(s) that ran in only one session"
    return Row(row.status, row.check, row.subject, row.baseline, row.current,
               "; ".join(filter(None, [row.note, note])), row.changed)


def _unless_seed_sensitive(pairs: list, row: Row) -> Row:
    """`row`, or a CHANGED row in place of a verdict regression when every item whose verdict
    changed is seed-sensitive in either file (suite.evidence.SeedSensitive): another CPU's
    rounding flips such a verdict, so the flip says nothing about the code. An error stays one."""
    flipped = [(b, n) for b, n in pairs if b.get("verdict") != n.get("verdict")]
    if (row.status != REGRESSION or row.current == _ERROR or not flipped
            or not all(b.get("seed_sensitive") or n.get("seed_sensitive") for b, n in flipped)
            or any(n.get("verdict") == _ERROR for _, n in flipped)):
        return row
    return Row(CHANGED, row.check, row.subject, row.baseline, row.current,
               "seed-sensitive verdict (a known failure within seed noise of its threshold): not a regression",
               row.changed)


def _verdict_row(check: str, subject: str, before: Any, now: Any, reason: str = "") -> Row:
    if now == _ERROR:   # whatever the baseline said, even "error": the tool failed, not the paper
        return Row(REGRESSION, check, subject, text(before), text(now), _error_note(reason),
                   changed=before != now)
    if before == now:
        return Row(OK, check, subject, text(before), text(now), changed=False)
    if INCONCLUSIVE in (before, now):   # smoke scale: no evidence either way
        return Row(CHANGED, check, subject, text(before), text(now),
                   "inconclusive at smoke scale: no evidence either way")
    if before == _REPRODUCED:
        return Row(REGRESSION, check, subject, text(before), text(now), "no longer reproduced")
    if now == _REPRODUCED:
        return Row(IMPROVED, check, subject, text(before), text(now), "now reproduced")
    return Row(CHANGED, check, subject, text(before), text(now), "verdict changed")


def _new_row(check: str, subject: str, now: Any, reason: str) -> Row:
    if now == _ERROR:
        return Row(REGRESSION, check, subject, "-", text(now),
                   _error_note(reason) + "; not in the baseline")
    return Row(NEW, check, subject, "-", text(now), "not in the baseline")


def _error_reason(items: list[dict]) -> str:
    """The reason of the first errored item: what broke, for the note of an error row."""
    return next((str(item.get("reason") or "") for item in items
                 if item.get("verdict") == _ERROR), "")


def _error_note(reason: str) -> str:
    first = reason.strip().split("\n", 1)[0] if reason else ""
    return f"{_ERROR_NOTE} ({middle_ellipsis(first, 120)})" if first else _ERROR_NOTE


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
            rows.append(Row(status, "measure", where, number_text(value_before), "missing",
                            "measurement not recorded now"))
            continue
        rows.append(_measurement_row(where, measure_before, measure_now.get("value"), tolerance))
    for name, measure_now in now.items():
        if name not in before:
            rows.append(Row(NEW, "measure", f"{subject} › {name}", "-",
                            number_text(measure_now.get("value")), "not in the baseline"))
    return rows


def _measurement_row(where: str, measure_before: dict, now: Any, tolerance: dict | None) -> Row:
    before = measure_before.get("value")
    shown = (where, number_text(before), number_text(now))
    before_missing, now_missing = is_missing(before), is_missing(now)
    same = (before_missing and now_missing) or before == now
    if not tolerance:
        return Row(INFO, "measure", *shown, delta_text(before, now, "no tolerance: not checked"),
                   changed=not same)
    if before_missing and now_missing:
        return Row(OK, "measure", *shown, "no value in either", changed=False)
    if before_missing:
        return Row(CHANGED, "measure", *shown, "no value in the baseline, so nothing to check")
    if now_missing:
        return Row(REGRESSION, "measure", *shown, "had a value, has none now")
    if not (is_number(before) and is_number(now)):
        if before == now:
            return Row(OK, "measure", *shown, "unchanged", changed=False)
        return Row(REGRESSION, "measure", *shown, "non-numeric value changed")
    ok, note = within(tolerance, measure_before, now)   # the kinds and their rule: tolerance.py
    return Row(OK if ok else REGRESSION, "measure", *shown, note, changed=now != before)


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


__all__ = ["SUPPORTED_SCHEMA", "Comparison", "ResultsError", "Row", "check_results", "compare",
           "load_results"]
