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
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2

from rethinkbench.report.results_io import check_results, load_results
from rethinkbench.report.formatting import (anchor, css_token, date_text, first_line, format_number,
                                            format_seconds, is_number, param_text,
                                            sign_css, text, tolerance_text)
from rethinkbench.report.verdicts import INCONCLUSIVE, SMOKE_NOTE, VERDICT_LABELS, VERDICT_OF, claim_verdict, verdict_label
from rethinkbench.report.views import claims_using_each_run, figure_view, runs_view

_TEMPLATES = Path(__file__).parent / "templates"

ERROR_NOTE = ("Error: rethinkbench or its setup failed here (missing data, a usage error, a crash), "
              "so this item says nothing about the paper. The traceback is in pytest's output.")

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,                    # every results string is data, never markup
    undefined=jinja2.StrictUndefined,   # a typo in the template fails loudly, not as ""
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(results: dict) -> str:
    """The report page for ``results`` (a results dict in schema 1) as an HTML string; a
    :class:`~rethinkbench.report.results_io.ResultsError` if it does not follow the results schema."""
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
    used_by = claims_using_each_run(claims)
    claim_views = [_claim_view(claim, runs, figure_numbers, results.get("not_comparable"))
                   for claim in claims]
    item_verdicts = Counter(item["verdict"] for claim in claim_views for item in claim["items"])
    return {
        "title": _page_title(results),
        "notices": notices(results),
        "meta": _meta_rows(results, runs),
        "verdict_tiles": _verdict_tiles(Counter(claim["verdict"] for claim in claim_views)),
        "item_summary": _count_sentence(item_verdicts, "item"),
        "attention": [claim for claim in claim_views if claim["verdict"] != "reproduced"],
        "claims": claim_views,
        "runs": runs_view(runs, used_by),
        "generator": f"rethinkbench {results.get('rethinkbench_version') or ''}".strip(),
    }


def notices(results: dict) -> list[str]:
    """What a reader must know before any verdict: an interrupted session (a partial file) and the
    smoke scale (plumbing, not evidence). The terminal summary says the same."""
    out = []
    if results.get("interrupted"):
        progress = results.get("progress") if isinstance(results.get("progress"), dict) else {}
        done, selected = progress.get("finished"), progress.get("selected")
        count = f": {done} of {selected} selected tests finished" if selected is not None else ""
        out.append(f"Interrupted session{count}. These results are partial; the missing items "
                   f"did not run and say nothing about the paper.")
    if results.get("scale") == "smoke":
        out.append("Smoke scale: " + SMOKE_NOTE + ".")
    return out


def _page_title(results: dict) -> str:
    parts = [results.get("scale"), results.get("dataset"), results.get("model"),
             str(results.get("created") or "")[:10]]
    return "rethinkbench report — " + " · ".join(str(part) for part in parts if part)


def _meta_rows(results: dict, runs: dict) -> list[tuple[str, str]]:
    provenance = results.get("provenance") if isinstance(results.get("provenance"), dict) else {}
    commit = provenance.get("git_commit")
    commit_text = (str(commit)[:12] + (" (uncommitted changes)" if provenance.get("git_dirty")
                                       else "")) if commit else "unknown (not a git checkout)"
    torch_text = text(provenance.get("torch"))
    if provenance.get("cuda"):
        torch_text += f" (CUDA {provenance['cuda']})"
    trained = [run for run in runs.values() if run.get("cached") is False]
    cached = [run for run in runs.values() if run.get("cached") is True]
    train_seconds = sum(run.get("train_seconds") or 0 for run in trained
                        if is_number(run.get("train_seconds")))
    rows = [
        ("Scale", text(results.get("scale"))),
        ("Dataset", _plugin_text(results, "dataset", text(results.get("dataset")))),
        ("Model", _plugin_text(results, "model", text(results.get("model"), empty="the paper's "
                                                       "networks (each claim's)"))),
        ("Device", " — ".join(text(v) for v in (results.get("device"),
                                                   provenance.get("device_name")) if v)
         or "—"),
        ("Torch", torch_text),
        ("Python", text(provenance.get("python"))),
        ("rethinkbench", text(results.get("rethinkbench_version")
                               or provenance.get("rethinkbench_version"))),
        ("Commit", commit_text),
        ("Date", date_text(results.get("created") or provenance.get("date"))),
        ("Total time", format_seconds(results.get("total_seconds"))),
        ("Runs", f"{len(runs)}: {len(trained)} trained ({format_seconds(train_seconds)} of "
                 f"training), {len(cached)} from the cache"),
        ("Platform", text(provenance.get("platform"))),
    ]
    if provenance.get("hostname"):
        rows.append(("Host", str(provenance["hostname"])))
    if is_number(results.get("lr")):
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
    return f"{name} — {text(info.get('origin'))}, version {text(info.get('version'))}"


def _verdict_tiles(counts: Counter) -> list[dict[str, Any]]:
    # "inconclusive" exists only at smoke scale: a tile for it only when some claim has it.
    verdicts = [v for v in VERDICT_LABELS if v != INCONCLUSIVE or counts.get(v)]
    verdicts += sorted(v for v in counts if v not in VERDICT_LABELS)
    return [{"verdict": verdict, "css": css_token(verdict), "label": verdict_label(verdict),
             "count": counts.get(verdict, 0)} for verdict in verdicts]


def _count_sentence(counts: Counter, noun: str) -> str:
    total = sum(counts.values())
    if not total:
        return f"no {noun}s"
    parts = [f"{counts[v]} {verdict_label(v)}" for v in
             list(VERDICT_LABELS) + sorted(v for v in counts if v not in VERDICT_LABELS)
             if counts.get(v)]
    return f"{total} {noun}{'s' if total != 1 else ''}: " + ", ".join(parts)


def _claim_view(claim: dict, runs: dict, figure_numbers: Iterator[int],
                not_comparable: Any = None) -> dict[str, Any]:
    claim_id = str(claim.get("id"))
    items = [_item_view(item, claim_id, number, runs, figure_numbers)
             for number, item in enumerate(claim.get("items") or [], start=1)]
    verdict = claim.get("verdict") or claim_verdict([item["verdict"] for item in items])
    item_counts = Counter(item["verdict"] for item in items)
    # What the overview shows in one line: the first error's reason (an error hides whatever
    # else happened), else the first reason of an item that did not reproduce.
    headline = next((item["reason"] for item in items
                     if item["verdict"] == "error" and item["reason"]), "") or next(
        (item["reason"] for item in items if item["verdict"] != "reproduced" and item["reason"]), "")
    return {
        "id": claim_id,
        "anchor": anchor("claim-" + claim_id),
        "title": text(claim.get("title"), empty=""),
        "statement": text(claim.get("statement"), empty=""),
        "source": text(claim.get("source"), empty=""),
        "paper": text(claim.get("paper"), empty=""),
        "paper_specific": text(claim.get("paper_specific"), empty=""),
        "not_comparable": text(not_comparable, empty=""),
        "verdict": verdict,
        "verdict_css": css_token(verdict),
        "verdict_label": verdict_label(verdict),
        "item_summary": _count_sentence(item_counts, "item"),
        "headline": first_line(headline, 200),
        "items": items,
    }


def _item_view(item: dict, claim_id: str, number: int, runs: dict,
               figure_numbers: Iterator[int]) -> dict[str, Any]:
    verdict = item.get("verdict") or VERDICT_OF.get(item.get("outcome"), "error")
    reason = text(item.get("reason"), empty="")
    if verdict == "error" and not reason:
        reason = "error (no message was recorded)"
    nodeid = text(item.get("nodeid"), empty="")
    params = item.get("params") if isinstance(item.get("params"), dict) else {}
    measured = item.get("measured") if isinstance(item.get("measured"), dict) else {}
    figures = item.get("figures") if isinstance(item.get("figures"), list) else []
    run_keys = item.get("runs") if isinstance(item.get("runs"), list) else []
    return {
        "anchor": anchor(f"item-{claim_id}-{number}"),
        "nodeid": nodeid,
        "test_name": nodeid.rsplit("::", 1)[-1] if nodeid else f"item {number}",
        "params": [(str(key), param_text(value)) for key, value in params.items()],
        "outcome": text(item.get("outcome")),
        "verdict": verdict,
        "verdict_css": css_token(verdict),
        "verdict_label": verdict_label(verdict),
        # An error is the harness failing; say so, so that no reader takes it for the paper's.
        "error_note": ERROR_NOTE if verdict == "error" else "",
        "reason": reason,
        "reason_first_line": first_line(reason, 300),
        "reason_is_long": "\n" in reason.strip() or len(reason) > 300,
        "test": text(item.get("test"), empty=""),
        "duration": format_seconds(item.get("duration")) if item.get("duration") is not None
        else "",
        "measurements": [_measurement_view(str(name), value) for name, value in measured.items()],
        "figures": [figure_view(spec, next(figure_numbers)) for spec in figures],
        "runs": [{"key": str(key), "short": str(key)[:10], "anchor": anchor(f"run-{key}"),
                  "known": str(key) in runs} for key in run_keys],
    }


def _measurement_view(name: str, measurement: dict) -> dict[str, Any]:
    unit = text(measurement.get("unit"), empty="").strip()
    value, paper = measurement.get("value"), measurement.get("paper")
    sd, n = measurement.get("sd"), measurement.get("n")
    ours = format_number(value, unit)
    if is_number(sd) and n != 1:  # sd is null below two values; an old file's 0.0 for n = 1
        ours += f" ± {format_number(sd, unit)}"
    values = measurement.get("values")
    difference = value - paper if is_number(value) and is_number(paper) else None
    return {
        "name": name,
        "ours": ours,
        "n": f"n = {n}" if n is not None else "",
        "values": ("values: " + ", ".join(format_number(v) for v in values)
                   if isinstance(values, list) and values else ""),
        "paper": format_number(paper, unit) if paper is not None else "—",
        "paper_note": text(measurement.get("paper_note"), empty=""),
        "difference": format_number(difference, unit, signed=True) if difference is not None
        else "—",
        "difference_css": sign_css(difference),
        "tolerance": tolerance_text(measurement.get("tolerance"), unit),
    }


