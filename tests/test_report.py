"""The HTML report: one self-contained page rendered from a results dict alone."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

import report_samples as samples
from report_samples import parse_html
from rethinkbench.report.results_io import ResultsError
from rethinkbench.report import render_html, write_report
from rethinkbench.report.formatting import format_number, format_percent, format_seconds


@pytest.fixture(scope="module")
def mixed_results():
    """Four claims, every figure kind, every verdict the plugin writes."""
    return samples.sample_results(claims=4, items_per_claim=2, runs_per_item=2, epochs=8,
                                  outcomes=["passed", "failed", "passed", "xfailed", "passed",
                                            "skipped", "error", "passed"])


@pytest.fixture(scope="module")
def mixed_html(mixed_results):
    return render_html(mixed_results)


@pytest.fixture(scope="module")
def mixed_dom(mixed_html):
    return parse_html(mixed_html)


def test_every_claim_has_a_section_with_its_id(mixed_results, mixed_dom):
    sections = {s.attrs.get("id"): s for s in mixed_dom.find_all("section", "claim")}
    assert set(sections) == {f"claim-{c['id']}" for c in mixed_results["claims"]}
    for claim in mixed_results["claims"]:
        section = sections[f"claim-{claim['id']}"]
        text = section.text()
        for field in ("title", "statement", "source", "paper"):
            assert claim[field] in text
        assert f"v-{claim['verdict']}" in section.classes


def test_every_figure_spec_is_drawn_or_tabled(mixed_results, mixed_dom):
    specs = [f for c in mixed_results["claims"] for i in c["items"] for f in i["figures"]]
    figures = mixed_dom.find_all("figure", "figure")
    assert len(figures) == len(specs)
    for spec, figure in zip(specs, figures):
        assert f"kind-{spec['kind']}" in figure.classes
        if spec["kind"] == "table":
            assert figure.find_all("table", "spec-table")
        else:
            assert figure.find_all("svg", "plot"), f"no SVG for a {spec['kind']} figure"
        assert not figure.find_all(cls="figure-error")
        assert spec["title"] in figure.text()


def test_page_is_self_contained(mixed_html):
    # Nothing to fetch: no scripts, stylesheets, images or fonts from elsewhere. (SVG's
    # xmlns="http://www.w3.org/…" is a namespace name, not a request.)
    assert "<script" not in mixed_html
    assert "<link" not in mixed_html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", mixed_html)
    assert "url(http" not in mixed_html and "@import" not in mixed_html
    assert "<style>" in mixed_html


def test_element_ids_are_unique(mixed_dom):
    # Inline SVGs carry ids (clip paths, markers); a duplicate would make one figure use another's.
    ids = [e.attrs["id"] for e in mixed_dom.iter() if "id" in e.attrs]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates


def test_svg_references_point_inside_their_own_figure(mixed_dom):
    for svg in mixed_dom.find_all("svg", "plot"):
        defined = {e.attrs["id"] for e in svg.iter() if "id" in e.attrs}
        for element in svg.iter():
            for value in element.attrs.values():
                for target in re.findall(r"url\(#([^)]+)\)", value):
                    assert target in defined
            href = element.attrs.get("xlink:href") or element.attrs.get("href")
            if href:
                assert href[1:] in defined


def test_summary_counts_verdicts_and_shows_provenance(mixed_results, mixed_dom):
    tiles = {t.find_all(cls="label")[0].text(): int(t.find_all(cls="count")[0].text())
             for t in mixed_dom.find_all("div", "tile")}
    expected = {"reproduced": 0, "not reproduced": 0, "partial": 0, "skipped": 0, "error": 0}
    for claim in mixed_results["claims"]:
        expected[claim["verdict"].replace("_", " ")] += 1
    assert tiles == expected
    summary = mixed_dom.find_all("section", "glance")[0].text()
    for shown in ("cpu", "mnist5k", "Intel(R) Xeon(R) Processor", "2.9.0+cpu", "abc123def456",
                  "2026-11-26 23:59:00 UTC", "6 min 52 s"):
        assert shown in summary


def test_skip_and_failure_reasons_are_shown(mixed_results, mixed_dom):
    reasons = {i["reason"] for c in mixed_results["claims"] for i in c["items"] if i["reason"]}
    assert "paper scale only (run with --gpu)" in reasons
    shown = " ".join(e.text() for e in mixed_dom.find_all(cls="reason"))
    for reason in reasons:
        assert reason in shown
    attention = mixed_dom.find_all("div", "attention")[0].text()
    for claim in mixed_results["claims"]:
        assert (claim["id"] in attention) == (claim["verdict"] != "reproduced")


def test_measurements_show_paper_value_difference_and_tolerance(mixed_dom):
    first_table = mixed_dom.find_all("table", "measured")[0]
    rows = {r.find_all("th")[0].text(): [td.text() for td in r.find_all("td")]
            for r in first_table.find_all("tr")[1:]}
    ours, n, paper, difference, tolerance = rows["final_train_acc"]
    assert ours == "1 ± 0" and n == "n = 2" and paper == "0.9934"
    assert difference == "+0.0066" and tolerance == "± 0.02"
    assert "(unconfirmed)" in rows["test_acc_ratio"][2]
    assert rows["test_acc_ratio"][3] == "-1.8 x"
    assert rows["steps_to_fit"][4] == "± 25% (relative)"


def test_an_exact_tolerance_and_a_padded_unit_read_well():
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=3)
    results["claims"][0]["items"][0]["measured"] = {
        "epochs_to_fit": {"value": 29.0, "unit": " ep", "tolerance": {"abs": 0.0}}}
    row = parse_html(render_html(results)).find_all("table", "measured")[0].find_all("tr")[1]
    cells = [td.text() for td in row.find_all("td")]
    assert cells[0] == "29 ep" and cells[-1] == "exact"


def test_table_figure_colours_the_diff_column(mixed_dom):
    table = mixed_dom.find_all("table", "spec-table")[0]
    diff_cells = [row.find_all("td")[-1] for row in table.find_all("tr")[1:]]
    assert [c.text() for c in diff_cells] == ["+0.4649", "-0.0439", "0"]
    assert "positive" in diff_cells[0].classes and "negative" in diff_cells[1].classes
    assert "rgba(37, 99, 235, 0.70)" in diff_cells[0].attrs["style"]  # the largest: full shade
    assert "style" not in diff_cells[2].attrs


def test_runs_appendix_lists_timing_and_cache_state(mixed_results, mixed_dom):
    rows = {r.attrs["id"]: r for r in mixed_dom.find_all("table", "runs-table")[0].find_all("tr")
            if "id" in r.attrs}
    assert set(rows) == {f"run-{key}" for key in mixed_results["runs"]}
    for key, run in mixed_results["runs"].items():
        cells = [td.text() for td in rows[f"run-{key}"].find_all("td")]
        assert format_seconds(run["train_seconds"]) in cells
        assert ("yes" if run["cached"] else "no") in cells
        assert rows[f"run-{key}"].find_all("svg", "spark")


def test_hostile_strings_are_text_not_markup():
    html = render_html(samples.hostile_results())
    dom = parse_html(html)
    assert not dom.find_all("script")
    assert "<script" not in html
    text = dom.text()
    assert text.count(samples.HOSTILE) >= 20
    # In SVG too: the figure labels went through matplotlib's escaping.
    assert any(samples.HOSTILE in svg.text() for svg in dom.find_all("svg", "plot"))


def test_dollar_signs_and_underscores_in_labels_are_literal():
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=4)
    figure = results["claims"][0]["items"][0]["figures"][0]
    figure["xlabel"] = "cost in $ (one $ sign)"
    figure["series"][0]["label"] = "_hidden_by_default"
    dom = parse_html(render_html(results))
    svg_text = dom.find_all("svg", "plot")[0].text()
    assert "cost in $ (one $ sign)" in svg_text
    assert "_hidden_by_default" in svg_text


def test_a_bad_figure_is_reported_and_the_rest_still_render():
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=4)
    item = results["claims"][0]["items"][0]
    good = item["figures"][0]
    item["figures"] = [
        {"kind": "pie", "title": "unknown kind"},
        {"kind": "line", "title": "ragged", "series": [{"label": "a", "x": [1, 2, 3], "y": [1]}]},
        {"kind": "bar", "title": "text value", "bars": [{"label": "a", "value": "high"}]},
        "not an object",
        good,
    ]
    dom = parse_html(render_html(results))
    errors = [e.text() for e in dom.find_all(cls="figure-error")]
    assert len(errors) == 4
    assert "unknown figure kind 'pie'" in errors[0]
    assert "x has 3 values but y has 1" in errors[1]
    assert "bar 1 value: 'high' is not a number" in errors[2]
    assert "must be an object" in errors[3]
    assert len(dom.find_all("svg", "plot")) == 1


def test_minimal_and_empty_results_render():
    empty = {"schema": 1, "claims": [], "runs": {}}
    assert "No claim ran" in render_html(empty)
    sparse = {"schema": 1, "claims": [{"id": "Z-TH1", "items": [
        {"nodeid": "claims/test_theory.py::test_th1", "outcome": "passed"},
        {"outcome": "skipped", "verdict": "skipped", "measured": {"m": {"value": 3}},
         "runs": ["gone"]},
    ]}], "runs": {"r": {"config": {}}}}
    dom = parse_html(render_html(sparse))
    section = dom.find_all("section", "claim")[0]
    assert section.attrs["id"] == "claim-Z-TH1"
    # No verdicts stored: the item's from its outcome, the claim's from its items by the plugin's
    # own rule (rethinkbench.report.verdicts.claim_verdict: a skipped item does not count).
    assert "v-reproduced" in section.classes
    assert [i.classes[-1] for i in section.find_all("article", "item")] == ["v-reproduced",
                                                                             "v-skipped"]


def test_unsupported_schema_is_rejected():
    with pytest.raises(ResultsError, match="schema 2 is not supported"):
        render_html({"schema": 2, "claims": []})


def test_rendering_leaves_matplotlib_settings_alone():
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    render_html(samples.sample_results(claims=1, items_per_claim=1, epochs=3))
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


def test_rendering_is_deterministic():
    results = samples.sample_results(claims=1, items_per_claim=4, runs_per_item=1, epochs=5)
    assert render_html(results) == render_html(results)


def test_write_report_writes_index_html_atomically(tmp_path, mixed_results):
    out = tmp_path / "deep" / "reports"
    path = write_report(mixed_results, out)
    assert path == out / "index.html"
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert os.listdir(out) == ["index.html"]   # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_report_accepts_a_results_path(tmp_path, mixed_results):
    results_path = tmp_path / "results.json"
    results_path.write_text(json.dumps(mixed_results), encoding="utf-8")
    path = write_report(results_path, tmp_path)
    assert "claim-Z-sample-1" in path.read_text(encoding="utf-8")
    with pytest.raises(ResultsError, match="nowhere.json: no such results file"):
        write_report(tmp_path / "nowhere.json", tmp_path)


def test_a_failed_render_keeps_the_previous_report(tmp_path, mixed_results):
    path = write_report(mixed_results, tmp_path)
    previous = path.read_text(encoding="utf-8")
    with pytest.raises(ResultsError):
        write_report({"schema": 99, "claims": []}, tmp_path)
    assert path.read_text(encoding="utf-8") == previous
    assert os.listdir(tmp_path) == ["index.html"]


def test_a_realistic_session_renders_in_seconds():
    """~40 items, 60 runs with 100-epoch histories, ~70 figures. The target is well under 10 s;
    the bound is loose because the test machine's cores are shared."""
    results = samples.realistic_results()
    start = time.perf_counter()
    html = render_html(results)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"rendering took {elapsed:.1f} s"
    assert len(html) < 3_000_000


@pytest.mark.parametrize("value, unit, signed, expected", [
    (None, "", False, "—"),
    (1.0, "", False, "1"),
    (0.97341, "", False, "0.9734"),
    (384, "steps", False, "384 steps"),
    (1209866, "", False, "1,209,866"),
    (12345.6, "", False, "12,346"),
    (0.0000123, "", False, "1.230e-05"),
    (3.5, "x", False, "3.5 x"),
    (85.75, "%", False, "85.75%"),
    (0.0066, "", True, "+0.0066"),
    (-1.8, "", True, "-1.8"),
    (0.0, "", True, "0"),
    (float("nan"), "", False, "NaN"),
    (True, "", False, "yes"),
    ("n/a", "", False, "n/a"),
])
def test_format_number(value, unit, signed, expected):
    assert format_number(value, unit, signed=signed) == expected


def test_format_seconds_and_percent():
    assert format_seconds(0.42) == "0.42 s"
    assert format_seconds(12.34) == "12.3 s"
    assert format_seconds(412.3) == "6 min 52 s"
    assert format_seconds(3 * 3600 + 125) == "3 h 02 min"
    assert format_seconds(None) == "—"
    assert format_percent(0.9934) == "99.34%"
    assert format_percent(None) == "—"


def test_an_error_item_shows_its_message_and_is_never_not_reproduced(mixed_results, mixed_dom):
    """An error is the harness failing: its own badge, its message, a note that it says nothing
    about the paper, and the error tile (not "not reproduced") counts its claim."""
    errored = [(claim, item) for claim in mixed_results["claims"] for item in claim["items"]
               if item["outcome"] == "error"]
    assert errored and all(claim["verdict"] == "error" for claim, _ in errored)
    for claim, item in errored:
        section = next(s for s in mixed_dom.find_all("section", "claim")
                       if s.attrs["id"] == f"claim-{claim['id']}")
        article = next(a for a in section.find_all("article", "item")
                       if "v-error" in a.classes)
        assert "RuntimeError: NaN loss at epoch 3" in article.find_all(cls="reason")[0].text()
        note = article.find_all(cls="error-note")[0].text()
        assert "says nothing about the paper" in note
        assert article.find_all(cls="badge")[0].text() == "error"
    attention = mixed_dom.find_all("div", "attention")[0]
    assert "Not reproduced, partial, inconclusive, skipped or error" in attention.text()
    assert "RuntimeError: NaN loss at epoch 3" in attention.text()
    assert not [a for a in mixed_dom.find_all("article", "item")
                if "v-not_reproduced" in a.classes and a.find_all(cls="error-note")]


def test_an_error_without_a_message_still_says_error():
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=3,
                                     outcomes=["error"])
    results["claims"][0]["items"][0]["reason"] = ""
    article = parse_html(render_html(results)).find_all("article", "item")[0]
    assert article.find_all(cls="reason")[0].text() == "error (no message was recorded)"


def test_an_sd_of_null_shows_no_spread():
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=3)
    results["claims"][0]["items"][0]["measured"] = {
        "one_seed": {"value": 0.97, "sd": None, "n": 1, "values": [0.97]},
        "one_finite": {"value": 12.0, "sd": None, "n": 2, "values": [12.0, None]},
        "three": {"value": 0.7, "sd": 0.2, "n": 3, "values": [0.5, 0.7, 0.9]}}
    table = parse_html(render_html(results)).find_all("table", "measured")[0]
    ours = {r.find_all("th")[0].text(): [td.text() for td in r.find_all("td")][:2]
            for r in table.find_all("tr")[1:]}
    assert ours == {"one_seed": ["0.97", "n = 1"], "one_finite": ["12", "n = 2"],
                    "three": ["0.7 ± 0.2", "n = 3"]}


def test_a_results_file_of_the_wrong_types_is_not_rendered(tmp_path):
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=3)
    results["claims"][0]["items"][0]["verdict"] = "passed"
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(ResultsError) as error:
        write_report(path, tmp_path)
    assert str(error.value).startswith(f"{path}: claims[0].items[0].verdict: expected one of ")
    assert not (tmp_path / "index.html").exists()


def test_log10_and_se_tolerances_read_well():
    results = samples.sample_results(claims=1, items_per_claim=1, runs_per_item=1, epochs=3)
    results["claims"][0]["items"][0]["measured"] = {
        "cond1_A": {"value": 2.3e10, "tolerance": {"log10": 1.0}},
        "test_acc": {"value": 0.9, "sd": 0.01, "n": 3, "values": [0.89, 0.9, 0.91],
                     "tolerance": {"abs": 0.02, "se": 4.0}}}
    rows = parse_html(render_html(results)).find_all("table", "measured")[0].find_all("tr")[1:]
    tolerances = [[td.text() for td in r.find_all("td")][-1] for r in rows]
    assert tolerances == ["× or ÷ 10", "± 0.02 or ± 4 standard errors"]
