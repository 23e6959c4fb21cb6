"""``results.json`` -> one self-contained HTML page.

The page is rendered only from the results dict (``docs/results-schema.md``): no training, no cache,
no network. Everything a reader needs is inline (CSS, SVG figures), so the file can be mailed,
archived as a CI artifact or opened offline. Jinja2 autoescapes every string that comes from the
results; the only markup marked safe is SVG this package generated itself.

The work is split in two: this module turns the results dict into plain "view" dicts of display
strings (numbers formatted, verdicts labelled, figures drawn), and ``templates/report.html`` lays
them out. The template makes no decisions about numbers.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from rethinkbench.report.compare import check_results, load_results
from rethinkbench.report.figures import (DRAWN_KINDS, FigureSpecError, draw_figure,
                                         sparkline_svg)

_TEMPLATES = Path(__file__).parent / "templates"
_ABSENT = object()  # a config key a run does not have (distinct from a null value)

VERDICT_LABELS = {
    "reproduced": "reproduced",
    "not_reproduced": "not reproduced",
    "partial": "partial",
    "skipped": "skipped",
    "error": "error",
}

ERROR_NOTE = ("Error: rethinkbench or its setup failed here (missing data, a usage error, a crash), "
              "so this item says nothing about the paper. The traceback is in pytest's output.")

# The schema's rule, for the rare item stored without a verdict.
_VERDICT_OF_OUTCOME = {"passed": "reproduced", "xpassed": "reproduced",
                       "failed": "not_reproduced", "xfailed": "not_reproduced",
                       "skipped": "skipped", "error": "error"}

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,                    # every results string is data, never markup
    undefined=jinja2.StrictUndefined,   # a typo in the template fails loudly, not as ""
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(results: dict) -> str:
    """The report page for ``results`` (a results dict in schema 1) as an HTML string; a
    :class:`~rethinkbench.report.compare.ResultsError` if it does not follow the results schema."""
    check_results(results, source="results")
    return _render(results)


def _render(results: dict) -> str:
    """The page of results that passed ``check_results`` (not checked again: a large file takes
    a noticeable fraction of a second to validate)."""
    return _ENVIRONMENT.get_template("report.html").render(report=build_view(results))


def write_report(results: dict | str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Render ``results`` (a dict, or the path of a ``results.json``) to ``out_dir/index.html``.

    The file is written to a temporary name and renamed into place, so a reader (or a CI artifact
    upload) never sees half a page. Returns the path of ``index.html``.
    """
    html = render_html(results) if isinstance(results, dict) else _render(load_results(results))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "index.html"
    handle, temporary = tempfile.mkstemp(dir=out_dir, prefix=".index.html.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); a report is meant to be read, e.g. when served.
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return target


# ----------------------------------------------------------------------------------------------
# The view: display strings for the template.


def build_view(results: dict) -> dict[str, Any]:
    """Everything the template shows, as display-ready values (strings, lists, dicts)."""
    runs = results.get("runs") or {}
    claims = results.get("claims") or []
    figure_numbers = itertools.count(1)   # unique SVG ids and anchors within the page
    used_by = _claims_using_each_run(claims)
    claim_views = [_claim_view(claim, runs, figure_numbers, results.get("not_comparable"))
                   for claim in claims]
    item_verdicts = Counter(item["verdict"] for claim in claim_views for item in claim["items"])
    return {
        "title": _page_title(results),
        "meta": _meta_rows(results, runs),
        "verdict_tiles": _verdict_tiles(Counter(claim["verdict"] for claim in claim_views)),
        "item_summary": _count_sentence(item_verdicts, "item"),
        "attention": [claim for claim in claim_views if claim["verdict"] != "reproduced"],
        "claims": claim_views,
        "runs": _runs_view(runs, used_by),
        "generator": f"rethinkbench {results.get('rethinkbench_version') or ''}".strip(),
    }


def _page_title(results: dict) -> str:
    parts = [results.get("scale"), results.get("dataset"), results.get("model"),
             str(results.get("created") or "")[:10]]
    return "rethinkbench report — " + " · ".join(str(part) for part in parts if part)


def _meta_rows(results: dict, runs: dict) -> list[tuple[str, str]]:
    provenance = results.get("provenance") if isinstance(results.get("provenance"), dict) else {}
    commit = provenance.get("git_commit")
    commit_text = (str(commit)[:12] + (" (uncommitted changes)" if provenance.get("git_dirty")
                                       else "")) if commit else "unknown (not a git checkout)"
    torch_text = _text(provenance.get("torch"))
    if provenance.get("cuda"):
        torch_text += f" (CUDA {provenance['cuda']})"
    trained = [run for run in runs.values() if run.get("cached") is False]
    cached = [run for run in runs.values() if run.get("cached") is True]
    train_seconds = sum(run.get("train_seconds") or 0 for run in trained
                        if _is_number(run.get("train_seconds")))
    rows = [
        ("Scale", _text(results.get("scale"))),
        ("Dataset", _plugin_text(results, "dataset", _text(results.get("dataset")))),
        ("Model", _plugin_text(results, "model", _text(results.get("model"), empty="the paper's "
                                                       "networks (each claim's)"))),
        ("Device", " — ".join(_text(v) for v in (results.get("device"),
                                                   provenance.get("device_name")) if v)
         or "—"),
        ("Torch", torch_text),
        ("Python", _text(provenance.get("python"))),
        ("rethinkbench", _text(results.get("rethinkbench_version")
                               or provenance.get("rethinkbench_version"))),
        ("Commit", commit_text),
        ("Date", _date_text(results.get("created") or provenance.get("date"))),
        ("Total time", format_seconds(results.get("total_seconds"))),
        ("Runs", f"{len(runs)}: {len(trained)} trained ({format_seconds(train_seconds)} of "
                 f"training), {len(cached)} from the cache"),
        ("Platform", _text(provenance.get("platform"))),
    ]
    if provenance.get("hostname"):
        rows.append(("Host", str(provenance["hostname"])))
    if _is_number(results.get("lr")):
        rows.insert(3, ("Learning rate", f"{results['lr']:g} (--lr, every run)"))
    if results.get("not_comparable"):
        rows.insert(3, ("Paper's numbers", f"not comparable: {results['not_comparable']}"))
    return rows


def _plugin_text(results: dict, kind: str, name: str) -> str:
    """`tinyres — entry point tinyres = pkg.nets:resnet_small from pkg 0.1.0, version 1`."""
    plugins = results.get("plugins") if isinstance(results.get("plugins"), dict) else {}
    info = plugins.get(kind) if isinstance(plugins.get(kind), dict) else None
    if not info:
        return name
    return f"{name} — {_text(info.get('origin'))}, version {_text(info.get('version'))}"


def _verdict_tiles(counts: Counter) -> list[dict[str, Any]]:
    verdicts = list(VERDICT_LABELS) + sorted(v for v in counts if v not in VERDICT_LABELS)
    return [{"verdict": verdict, "css": _css_token(verdict), "label": _verdict_label(verdict),
             "count": counts.get(verdict, 0)} for verdict in verdicts]


def _count_sentence(counts: Counter, noun: str) -> str:
    total = sum(counts.values())
    if not total:
        return f"no {noun}s"
    parts = [f"{counts[v]} {_verdict_label(v)}" for v in
             list(VERDICT_LABELS) + sorted(v for v in counts if v not in VERDICT_LABELS)
             if counts.get(v)]
    return f"{total} {noun}{'s' if total != 1 else ''}: " + ", ".join(parts)


def _claim_view(claim: dict, runs: dict, figure_numbers: Iterator[int],
                not_comparable: Any = None) -> dict[str, Any]:
    claim_id = str(claim.get("id"))
    items = [_item_view(item, claim_id, number, runs, figure_numbers)
             for number, item in enumerate(claim.get("items") or [], start=1)]
    verdict = claim.get("verdict") or _derived_verdict([item["verdict"] for item in items])
    item_counts = Counter(item["verdict"] for item in items)
    # What the overview shows in one line: the first error's reason (an error hides whatever
    # else happened), else the first reason of an item that did not reproduce.
    headline = next((item["reason"] for item in items
                     if item["verdict"] == "error" and item["reason"]), "") or next(
        (item["reason"] for item in items if item["verdict"] != "reproduced" and item["reason"]), "")
    return {
        "id": claim_id,
        "anchor": _anchor("claim-" + claim_id),
        "title": _text(claim.get("title"), empty=""),
        "statement": _text(claim.get("statement"), empty=""),
        "source": _text(claim.get("source"), empty=""),
        "paper": _text(claim.get("paper"), empty=""),
        "paper_specific": _text(claim.get("paper_specific"), empty=""),
        "not_comparable": _text(not_comparable, empty=""),
        "verdict": verdict,
        "verdict_css": _css_token(verdict),
        "verdict_label": _verdict_label(verdict),
        "item_summary": _count_sentence(item_counts, "item"),
        "headline": _first_line(headline, 200),
        "items": items,
    }


def _derived_verdict(item_verdicts: list[str]) -> str:
    """Only for results that lack a claim verdict: the plugin normally writes one."""
    kinds = set(item_verdicts)
    if not kinds:
        return "skipped"
    if "error" in kinds:
        return "error"
    if len(kinds) == 1:
        return kinds.pop()
    if "reproduced" in kinds:
        return "partial"
    return "not_reproduced" if "not_reproduced" in kinds else "skipped"


def _item_view(item: dict, claim_id: str, number: int, runs: dict,
               figure_numbers: Iterator[int]) -> dict[str, Any]:
    verdict = item.get("verdict") or _VERDICT_OF_OUTCOME.get(item.get("outcome"), "error")
    reason = _text(item.get("reason"), empty="")
    if verdict == "error" and not reason:
        reason = "error (no message was recorded)"
    nodeid = _text(item.get("nodeid"), empty="")
    params = item.get("params") if isinstance(item.get("params"), dict) else {}
    measured = item.get("measured") if isinstance(item.get("measured"), dict) else {}
    figures = item.get("figures") if isinstance(item.get("figures"), list) else []
    run_keys = item.get("runs") if isinstance(item.get("runs"), list) else []
    return {
        "anchor": _anchor(f"item-{claim_id}-{number}"),
        "nodeid": nodeid,
        "test_name": nodeid.rsplit("::", 1)[-1] if nodeid else f"item {number}",
        "params": [(str(key), _param_text(value)) for key, value in params.items()],
        "outcome": _text(item.get("outcome")),
        "verdict": verdict,
        "verdict_css": _css_token(verdict),
        "verdict_label": _verdict_label(verdict),
        # An error is the harness failing; say so, so that no reader takes it for the paper's.
        "error_note": ERROR_NOTE if verdict == "error" else "",
        "reason": reason,
        "reason_first_line": _first_line(reason, 300),
        "reason_is_long": "\n" in reason.strip() or len(reason) > 300,
        "test": _text(item.get("test"), empty=""),
        "duration": format_seconds(item.get("duration")) if item.get("duration") is not None
        else "",
        "measurements": [_measurement_view(str(name), value) for name, value in measured.items()],
        "figures": [_figure_view(spec, next(figure_numbers)) for spec in figures],
        "runs": [{"key": str(key), "short": str(key)[:10], "anchor": _anchor(f"run-{key}"),
                  "known": str(key) in runs} for key in run_keys],
    }


def _measurement_view(name: str, measurement: dict) -> dict[str, Any]:
    unit = _text(measurement.get("unit"), empty="").strip()
    value, paper = measurement.get("value"), measurement.get("paper")
    sd, n = measurement.get("sd"), measurement.get("n")
    ours = format_number(value, unit)
    if _is_number(sd) and n != 1:  # sd is null below two values; an old file's 0.0 for n = 1
        ours += f" ± {format_number(sd, unit)}"
    values = measurement.get("values")
    difference = value - paper if _is_number(value) and _is_number(paper) else None
    return {
        "name": name,
        "ours": ours,
        "n": f"n = {n}" if n is not None else "",
        "values": ("values: " + ", ".join(format_number(v) for v in values)
                   if isinstance(values, list) and values else ""),
        "paper": format_number(paper, unit) if paper is not None else "—",
        "paper_note": _text(measurement.get("paper_note"), empty=""),
        "difference": format_number(difference, unit, signed=True) if difference is not None
        else "—",
        "difference_css": _sign_css(difference),
        "tolerance": _tolerance_text(measurement.get("tolerance"), unit),
    }


def _figure_view(spec: Any, number: int) -> dict[str, Any]:
    view: dict[str, Any] = {"anchor": f"figure-{number}", "svg": None, "table": None,
                            "error": None}
    if not isinstance(spec, dict):
        view.update(kind="invalid", css="invalid", title=f"Figure {number}",
                    error=f"a figure spec must be an object, got {type(spec).__name__}")
        return view
    kind = _text(spec.get("kind"))
    view.update(kind=kind, css=_css_token(kind), title=_text(spec.get("title"), empty=""))
    try:
        if kind == "table":
            view["table"] = _table_view(spec)
        elif kind in DRAWN_KINDS:
            # Safe to mark: matplotlib generated this SVG and escaped every label in it.
            view["svg"] = Markup(draw_figure(spec, number))
        else:
            view["error"] = (f"unknown figure kind {kind!r}; known kinds are "
                             f"{', '.join(DRAWN_KINDS + ('table',))}")
    except FigureSpecError as error:
        view["error"] = f"this figure could not be drawn: {error}"
    except Exception as error:  # one bad figure must not cost the reader the whole report
        view["error"] = f"this figure could not be drawn: {type(error).__name__}: {error}"
    return view


def _table_view(spec: dict) -> dict[str, Any]:
    columns = spec.get("columns")
    rows = spec.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise FigureSpecError("a table figure needs a list 'columns' and a list 'rows'")
    diff_column = spec.get("diff_column")
    diff_index = columns.index(diff_column) if diff_column in columns else None
    note = ""
    if diff_column is not None and diff_index is None:
        note = f"diff_column {diff_column!r} is not one of the columns, so it is not coloured"
    # The shade of a difference is its size relative to the largest in this table: the unit
    # (fraction, points, steps) is the claim's, so there is no absolute scale to use.
    diffs = [row[diff_index] for row in rows if diff_index is not None
             and isinstance(row, list) and diff_index < len(row) and _is_number(row[diff_index])]
    largest = max((abs(d) for d in diffs), default=0.0)
    body = []
    for row in rows:
        cells = row if isinstance(row, list) else [row]
        rendered = []
        for index, cell in enumerate(cells):
            is_diff = index == diff_index
            rendered.append({
                "text": format_number(cell, signed=is_diff),
                "numeric": _is_number(cell),
                "css": _sign_css(cell) if is_diff and _is_number(cell) else "",
                "style": _diff_shade(cell, largest) if is_diff and _is_number(cell) else "",
            })
        body.append(rendered)
    return {"columns": [_text(c) for c in columns], "rows": body, "note": note,
            "diff_index": diff_index}


def _diff_shade(value: float, largest: float) -> str:
    """Background colour of a diff cell: blue for positive, orange for negative, stronger when
    larger. Built from numbers only, so it is safe in a style attribute."""
    if value == 0 or largest == 0:
        return ""
    strength = 0.12 + 0.58 * min(abs(value) / largest, 1.0)
    rgb = "37, 99, 235" if value > 0 else "234, 88, 12"
    return f"background-color: rgba({rgb}, {strength:.2f})"


def _runs_view(runs: dict, used_by: dict[str, list[str]]) -> dict[str, Any]:
    configs = {key: run.get("config") if isinstance(run.get("config"), dict) else {}
               for key, run in runs.items()}
    varying, common = _split_config_keys(list(configs.values()))
    kinds = {str(run.get("device_kind")) for run in runs.values()}
    rows = []
    for key, run in runs.items():
        config = configs[key]
        rows.append({
            "key": str(key),
            "short": str(key)[:10],
            "anchor": _anchor(f"run-{key}"),
            "config": [(name, _param_text(config[name])) for name in varying if name in config],
            "used_by": [{"id": claim_id, "anchor": _anchor("claim-" + claim_id)}
                        for claim_id in used_by.get(str(key), [])],
            "epochs_to_fit": format_number(run.get("epochs_to_fit"), none="never"),
            "steps_to_fit": format_number(run.get("steps_to_fit"), none="never"),
            "final_train_acc": format_percent(run.get("final_train_acc")),
            "final_test_acc": format_percent(run.get("final_test_acc")),
            "best_test_acc": format_percent(run.get("best_test_acc")),
            "train_seconds": format_seconds(run.get("train_seconds")),
            "cached": {True: "yes", False: "no"}.get(run.get("cached"), "—"),
            "device_kind": _text(run.get("device_kind")),
            "curve": Markup(sparkline_svg(run.get("history") or [])),
        })
    return {
        "rows": rows,
        "common": [(name, _param_text(value)) for name, value in common],
        "show_device_kind": len(kinds) > 1,
    }


def _split_config_keys(configs: list[dict]) -> tuple[list[str], list[tuple[str, Any]]]:
    """Config keys whose value differs between runs (shown per run) and those every run shares
    (shown once above the table), each in first-seen order."""
    names: list[str] = []
    for config in configs:
        names += [name for name in config if name not in names]
    varying, common = [], []
    for name in names:
        values = {_canonical(config.get(name, _ABSENT)) for config in configs}
        if len(values) == 1 and len(configs) > 1:
            common.append((name, configs[0].get(name)))
        else:
            varying.append(name)
    return varying, common


def _claims_using_each_run(claims: list[dict]) -> dict[str, list[str]]:
    used_by: dict[str, list[str]] = {}
    for claim in claims:
        for item in claim.get("items") or []:
            for key in item.get("runs") or []:
                users = used_by.setdefault(str(key), [])
                if str(claim.get("id")) not in users:
                    users.append(str(claim.get("id")))
    return used_by


# ----------------------------------------------------------------------------------------------
# Formatting: one place decides how numbers look.


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
    if signed and _is_number(value) and value > 0:
        text = "+" + text
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def format_percent(fraction: Any) -> str:
    """Accuracies are stored as fractions in [0, 1]; runs show them in percent."""
    if not _is_number(fraction):
        return "—"
    return f"{100 * fraction:.2f}%"


def format_seconds(seconds: Any) -> str:
    if not _is_number(seconds):
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


def _tolerance_text(tolerance: Any, unit: str) -> str:
    if not isinstance(tolerance, dict) or not tolerance:
        return "—"
    parts = []
    if tolerance.get("abs") == 0 and not tolerance.get("rel"):
        return "exact"
    if _is_number(tolerance.get("abs")):
        parts.append("± " + format_number(tolerance["abs"], unit))
    if _is_number(tolerance.get("rel")):
        parts.append(f"± {100 * tolerance['rel']:.3g}% (relative)")
    if _is_number(tolerance.get("log10")):
        parts.append(f"× or ÷ {10 ** tolerance['log10']:.3g}")
    if _is_number(tolerance.get("se")):   # the kinds: rethinkbench/report/tolerance.py
        parts.append(f"± {tolerance['se']:g} standard errors")
    return " or ".join(parts) if parts else str(tolerance)


def _verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, str(verdict).replace("_", " "))


def _sign_css(value: Any) -> str:
    if not _is_number(value) or value == 0:
        return "zero"
    return "positive" if value > 0 else "negative"


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format_number(value)
    return json.dumps(value, default=str)


def _date_text(value: Any) -> str:
    if not value:
        return "—"
    # "2026-11-26T23:59:00+00:00" -> "2026-11-26 23:59:00 UTC": easier to read, same content.
    text = str(value).replace("T", " ", 1)
    return text[:-6] + " UTC" if text.endswith("+00:00") else text


def _first_line(text: str, limit: int) -> str:
    line = text.strip().split("\n", 1)[0] if text else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _text(value: Any, empty: str = "—") -> str:
    return empty if value is None or value == "" else str(value)


def _anchor(text: str) -> str:
    """An HTML id: ids cannot contain whitespace; everything else is allowed (and escaped)."""
    return "-".join(str(text).split())


def _css_token(text: Any) -> str:
    """A class-name fragment from a verdict or kind; unexpected characters become '-'."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))

