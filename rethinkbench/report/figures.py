"""Draw the figure specs of ``results.json`` as inline SVG.

A claim stores the *data* of its plots (``docs/results-schema.md``, "Figure specs"); this module
turns the drawable kinds (``line``, ``bar``, ``hist``) into SVG markup that can be pasted into the
one-file HTML report, and draws the tiny learning-curve sparklines of the runs appendix. ``table``
specs are not drawings: :mod:`rethinkbench.report.render` turns them into HTML tables.

Why SVG through matplotlib's object API (``Figure`` + ``savefig(format="svg")``) rather than pyplot:
no global figure registry and no change to the caller's backend, so rendering a report inside a
pytest session or a notebook leaves their matplotlib state alone. Text stays text
(``svg.fonttype = "none"``): smaller files, selectable labels, and matplotlib XML-escapes it.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, LogLocator

DRAWN_KINDS = ("line", "bar", "hist")

# Fixed margins instead of tight/constrained layout: those cost a second full draw per figure,
# which more than doubles report time; the title lives in the HTML caption, so the margins only
# need room for tick labels and axis labels.
_FIGSIZE_INCHES = (5.2, 3.0)
_MARGINS = dict(left=0.14, right=0.98, top=0.95, bottom=0.17)

_RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    # One font name keeps every <text> element's style attribute short (it is repeated per label).
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.4,
}

# matplotlib's own SVG preamble: an XML declaration and DOCTYPE are not allowed inside HTML, the
# metadata block is noise, and the per-file `*{stroke-linejoin…}` style would leak into the whole
# HTML page (the report's CSS sets it once for `svg.plot *`).
_SVG_PREAMBLE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_GLOBAL_STYLE = re.compile(r"<style type=\"text/css\">.*?</style>\s*", re.S)
# Group ids ("figure_1", "axes_1", …) repeat in every figure and nothing refers to them; duplicate
# ids in one HTML document are invalid, so drop them. Referenced ids (clip paths, markers) are
# hashes made unique per figure through svg.hashsalt, see draw_figure.
_SVG_GROUP_ID = re.compile(r"<g id=\"[^\"]*\"")
_SVG_ROOT = re.compile(r"<svg\b")


class FigureSpecError(ValueError):
    """A figure spec that cannot be drawn; the message names the offending field."""


def draw_figure(spec: dict[str, Any], figure_number: int) -> str:
    """Draw one ``line`` / ``bar`` / ``hist`` spec and return its ``<svg>`` element as a string.

    ``figure_number`` makes the SVG's internal ids unique within the report.
    Raises :class:`FigureSpecError` naming the bad field when the spec is malformed.
    """
    kind = spec.get("kind")
    drawers = {"line": _draw_line, "bar": _draw_bar, "hist": _draw_hist}
    if kind not in drawers:
        raise FigureSpecError(
            f"figure kind {kind!r} cannot be drawn; drawable kinds are {', '.join(DRAWN_KINDS)}")
    with matplotlib.rc_context(_RC):
        # Clip-path and marker ids are hashes of their content plus this salt: a per-figure salt
        # keeps two figures from sharing an id (the first definition would win in one document)
        # while keeping the output deterministic.
        matplotlib.rcParams["svg.hashsalt"] = f"rethinkbench-figure-{figure_number}"
        fig = Figure(figsize=_FIGSIZE_INCHES)
        fig.subplots_adjust(**_MARGINS)
        ax = fig.add_subplot()
        drawers[kind](ax, spec)
        ax.set_xlabel(_plain_text(spec.get("xlabel", "")))
        ax.set_ylabel(_plain_text(spec.get("ylabel", "")))
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return _clean_svg(buffer.getvalue(), title=str(spec.get("title") or kind))


def _draw_line(ax, spec: dict[str, Any]) -> None:
    series = _list_field(spec, "series")
    for number, one in enumerate(series, start=1):
        where = f"line series {number} ({one.get('label', '')!r})" if isinstance(one, dict) \
            else f"line series {number}"
        if not isinstance(one, dict):
            raise FigureSpecError(f"{where} is {type(one).__name__}, expected an object")
        y = _floats(one.get("y"), f"{where} y")
        x = _floats(one["x"], f"{where} x") if one.get("x") is not None \
            else list(range(1, len(y) + 1))
        if len(x) != len(y):
            raise FigureSpecError(f"{where}: x has {len(x)} values but y has {len(y)}")
        # A lone point draws no line: mark every point when the series is short.
        marker = "o" if len(y) <= 12 else None
        ax.plot(x, y, label=_legend_label(one.get("label")), marker=marker, markersize=3)
    if spec.get("logy"):
        _log_scale(ax.yaxis, ax.set_yscale)
    if spec.get("logx"):
        _log_scale(ax.xaxis, ax.set_xscale)
    _legend_if_labelled(ax)


def _log_scale(axis, set_scale) -> None:
    set_scale("log")
    # Minor ticks at 2 and 5 only: each tick is a handful of artists, and eight per decade made
    # log plots cost twice as much to draw as linear ones.
    axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    # The default labels ("6 × 10⁻¹" on minor ticks) are wider than the fixed margin allows;
    # "6e-01" is narrow and says the same.
    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.5)))


def _draw_bar(ax, spec: dict[str, Any]) -> None:
    bars = _list_field(spec, "bars")
    labels, values, errors = [], [], []
    for number, bar in enumerate(bars, start=1):
        if not isinstance(bar, dict):
            raise FigureSpecError(f"bar {number} is {type(bar).__name__}, expected an object")
        labels.append(_plain_text(_shorten(str(bar.get("label", number)), 18)))
        values.append(_float(bar.get("value"), f"bar {number} value"))
        errors.append(_float(bar.get("err"), f"bar {number} err"))
    positions = list(range(len(bars)))
    has_errors = any(not math.isnan(e) for e in errors)
    ax.bar(positions, values, yerr=errors if has_errors else None, capsize=3,
           color="#4c78a8", edgecolor="none")
    # Long or many labels overlap when horizontal: slant them and make room below the axes.
    crowded = len(labels) > 6 or max((len(label) for label in labels), default=0) > 10
    ax.set_xticks(positions, labels, rotation=30 if crowded else 0,
                  ha="right" if crowded else "center")
    if crowded:
        ax.figure.subplots_adjust(bottom=0.36)
    ax.grid(axis="x", visible=False)


def _draw_hist(ax, spec: dict[str, Any]) -> None:
    series = _list_field(spec, "series")
    columns = []
    for number, one in enumerate(series, start=1):
        if not isinstance(one, dict):
            raise FigureSpecError(f"hist series {number} is {type(one).__name__}, "
                                  "expected an object")
        values = [v for v in _floats(one.get("values"), f"hist series {number} values")
                  if not math.isnan(v)]
        columns.append((one.get("label"), values))
    bins = spec.get("bins", 20)
    if not (isinstance(bins, int) and bins > 0) and not isinstance(bins, list):
        raise FigureSpecError(f"hist bins must be a positive integer or a list of edges, "
                              f"got {bins!r}")
    everything = [v for _, values in columns for v in values]
    # Shared bin edges so overlaid histograms are comparable bar for bar.
    edges = np.histogram_bin_edges(everything or [0.0, 1.0], bins=bins)
    overlaid = len(columns) > 1
    for label, values in columns:
        ax.hist(values, bins=edges, label=_legend_label(label), alpha=0.55 if overlaid else 0.9,
                histtype="stepfilled", edgecolor="none")
    _legend_if_labelled(ax)


def sparkline_svg(history: Sequence[dict[str, Any]], *, width: int = 120,
                  height: int = 28) -> str:
    """A tiny SVG of train accuracy (solid) and test accuracy (dashed) per epoch, y from 0 to 1.

    Hand-written rather than matplotlib: a run table with dozens of rows needs something that
    costs microseconds, not tens of milliseconds. Returns "" when there is nothing to draw.
    """
    lines = []
    for key, css_class in (("train_acc", "spark-train"), ("test_acc", "spark-test")):
        points = [(i, _float_or_nan(entry.get(key))) for i, entry in enumerate(history)
                  if isinstance(entry, dict)]
        points = [(i, v) for i, v in points if not math.isnan(v)]
        if len(points) < 2:
            continue
        points = _thin(points, 120)
        first, last = points[0][0], points[-1][0]
        span = max(last - first, 1)
        coordinates = " ".join(
            f"{1 + (i - first) / span * (width - 2):.1f},"
            f"{1 + (1 - min(max(v, 0.0), 1.0)) * (height - 2):.1f}"
            for i, v in points)
        lines.append(f'<polyline class="{css_class}" points="{coordinates}"/>')
    if not lines:
        return ""
    return (f'<svg class="spark" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="learning curve">'
            + "".join(lines) + "</svg>")


def _clean_svg(svg: str, *, title: str) -> str:
    svg = _SVG_PREAMBLE.sub("", svg, count=1)
    svg = _SVG_METADATA.sub("", svg, count=1)
    svg = _SVG_GLOBAL_STYLE.sub("", svg, count=1)
    svg = _SVG_GROUP_ID.sub("<g", svg)
    # role/aria-label so a screen reader announces the figure by its title (escaped here: this
    # string is later marked safe for the template).
    label = (title.replace("&", "&amp;").replace('"', "&quot;")
             .replace("<", "&lt;").replace(">", "&gt;"))
    return _SVG_ROOT.sub(f'<svg class="plot" role="img" aria-label="{label}"', svg, count=1)


def _plain_text(value: Any) -> str:
    """Text shown literally: a `$` would otherwise start matplotlib mathtext (and an unbalanced
    one raises while drawing)."""
    return "" if value is None else str(value).replace("$", r"\$")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _legend_label(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = _plain_text(_shorten(str(value), 48))
    # matplotlib hides legend entries whose label starts with "_"; a zero-width space shows them.
    return "\u200b" + text if text.startswith("_") else text


def _legend_if_labelled(ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(handles, labels, loc="best")


def _list_field(spec: dict[str, Any], name: str) -> list:
    value = spec.get(name)
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else type(value).__name__
        raise FigureSpecError(f"{spec.get('kind')} figure needs a non-empty list {name!r}, "
                              f"got {got}")
    return value


def _floats(values: Any, where: str) -> list[float]:
    if not isinstance(values, (list, tuple)):
        raise FigureSpecError(f"{where} must be a list of numbers, got {type(values).__name__}")
    return [_float(v, where) for v in values]


def _float(value: Any, where: str) -> float:
    """A number for plotting; None (JSON null) is a gap."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FigureSpecError(f"{where}: {value!r} is not a number")
    return float(value)


def _float_or_nan(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _thin(points: list, at_most: int) -> list:
    """Every k-th point (always keeping the last), so a 10,000-step history stays a small path."""
    if len(points) <= at_most:
        return points
    step = math.ceil(len(points) / at_most)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


__all__ = ["DRAWN_KINDS", "FigureSpecError", "draw_figure", "sparkline_svg"]
