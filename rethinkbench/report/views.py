"""The report's figures, tables and run list as view dicts (display strings for the template)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from rethinkbench.report.figures import DRAWN_KINDS, FigureSpecError, draw_figure, sparkline_svg
from rethinkbench.report.formatting import (anchor, canonical, css_token, format_number, format_percent,
                                            format_seconds, is_number, param_text, sign_css, text)

_ABSENT = object()  # a config key a run does not have (distinct from a null value)


def figure_view(spec: Any, number: int) -> dict[str, Any]:
    view: dict[str, Any] = {"anchor": f"figure-{number}", "svg": None, "table": None,
                            "error": None}
    if not isinstance(spec, dict):
        view.update(kind="invalid", css="invalid", title=f"Figure {number}",
                    error=f"a figure spec must be an object, got {type(spec).__name__}")
        return view
    kind = text(spec.get("kind"))
    view.update(kind=kind, css=css_token(kind), title=text(spec.get("title"), empty=""))
    try:
        if kind == "table":
            view["table"] = table_view(spec)
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


def table_view(spec: dict) -> dict[str, Any]:
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
             and isinstance(row, list) and diff_index < len(row) and is_number(row[diff_index])]
    largest = max((abs(d) for d in diffs), default=0.0)
    body = []
    for row in rows:
        cells = row if isinstance(row, list) else [row]
        rendered = []
        for index, cell in enumerate(cells):
            is_diff = index == diff_index
            rendered.append({
                "text": format_number(cell, signed=is_diff),
                "numeric": is_number(cell),
                "css": sign_css(cell) if is_diff and is_number(cell) else "",
                "style": diff_shade(cell, largest) if is_diff and is_number(cell) else "",
            })
        body.append(rendered)
    return {"columns": [text(c) for c in columns], "rows": body, "note": note,
            "diff_index": diff_index}


def diff_shade(value: float, largest: float) -> str:
    """Background colour of a diff cell: blue for positive, orange for negative, stronger when
    larger. Built from numbers only, so it is safe in a style attribute."""
    if value == 0 or largest == 0:
        return ""
    strength = 0.12 + 0.58 * min(abs(value) / largest, 1.0)
    rgb = "37, 99, 235" if value > 0 else "234, 88, 12"
    return f"background-color: rgba({rgb}, {strength:.2f})"


def runs_view(runs: dict, used_by: dict[str, list[str]]) -> dict[str, Any]:
    configs = {key: run.get("config") if isinstance(run.get("config"), dict) else {}
               for key, run in runs.items()}
    varying, common = split_config_keys(list(configs.values()))
    kinds = {str(run.get("device_kind")) for run in runs.values()}
    rows = []
    for key, run in runs.items():
        config = configs[key]
        rows.append({
            "key": str(key),
            "short": str(key)[:10],
            "anchor": anchor(f"run-{key}"),
            "config": [(name, param_text(config[name])) for name in varying if name in config],
            "used_by": [{"id": claim_id, "anchor": anchor("claim-" + claim_id)}
                        for claim_id in used_by.get(str(key), [])],
            "epochs_to_fit": format_number(run.get("epochs_to_fit"), none="never"),
            "steps_to_fit": format_number(run.get("steps_to_fit"), none="never"),
            "final_train_acc": format_percent(run.get("final_train_acc")),
            "final_test_acc": format_percent(run.get("final_test_acc")),
            "best_test_acc": format_percent(run.get("best_test_acc")),
            "train_seconds": format_seconds(run.get("train_seconds")),
            "cached": {True: "yes", False: "no"}.get(run.get("cached"), "—"),
            "device_kind": text(run.get("device_kind")),
            "curve": Markup(sparkline_svg(run.get("history") or [])),
        })
    return {
        "rows": rows,
        "common": [(name, param_text(value)) for name, value in common],
        "show_device_kind": len(kinds) > 1,
    }


def split_config_keys(configs: list[dict]) -> tuple[list[str], list[tuple[str, Any]]]:
    """Config keys whose value differs between runs (shown per run) and those every run shares
    (shown once above the table), each in first-seen order."""
    names: list[str] = []
    for config in configs:
        names += [name for name in config if name not in names]
    varying, common = [], []
    for name in names:
        values = {canonical(config.get(name, _ABSENT)) for config in configs}
        if len(values) == 1 and len(configs) > 1:
            common.append((name, configs[0].get(name)))
        else:
            varying.append(name)
    return varying, common


def claims_using_each_run(claims: list[dict]) -> dict[str, list[str]]:
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


