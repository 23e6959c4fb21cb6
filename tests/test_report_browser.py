"""The report as a browser shows it: headless Chromium loads the file offline, and we check the
DOM it built and the pixels it drew. Skipped where Chromium is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import report_samples as samples
from report_samples import parse_html
from rethinkbench.report import write_report

BROWSER_TIMEOUT_SECONDS = 30
WINDOW = (1280, 2000)


def find_chromium() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM = find_chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not found at /usr/bin/chromium or on PATH "
           "(install the Debian package `chromium`)")


def run_chromium(page, profile_dir, *action: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile_dir}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", *action, page.as_uri(),
    ]
    try:
        process = subprocess.run(command, capture_output=True, text=True,
                                 timeout=BROWSER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"headless Chromium did not finish within {BROWSER_TIMEOUT_SECONDS} s: "
                    f"{' '.join(command)}")
    assert process.returncode == 0, f"Chromium failed ({process.returncode}): {process.stderr}"
    return process


@pytest.fixture(scope="module")
def sample():
    return samples.sample_results(claims=3, items_per_claim=2, runs_per_item=2, epochs=6,
                                  outcomes=["passed", "xfailed", "skipped", "passed"])


@pytest.fixture(scope="module")
def page(sample, tmp_path_factory):
    return write_report(sample, tmp_path_factory.mktemp("report"))


def test_browser_dom_has_every_claim_and_figure(sample, page, tmp_path):
    dom = parse_html(run_chromium(page, tmp_path / "profile", "--dump-dom").stdout)
    sections = {s.attrs.get("id"): s for s in dom.find_all("section", "claim")}
    assert set(sections) == {f"claim-{claim['id']}" for claim in sample["claims"]}
    for claim in sample["claims"]:
        specs = [spec for item in claim["items"] for spec in item["figures"]]
        figures = sections[f"claim-{claim['id']}"].find_all("figure", "figure")
        assert len(figures) == len(specs)
        for spec, figure in zip(specs, figures):
            if spec["kind"] == "table":
                assert figure.find_all("table", "spec-table")
            else:
                (svg,) = figure.find_all("svg", "plot")
                assert svg.find_all("path"), "an SVG figure with nothing drawn in it"
    assert not dom.find_all("script")


def test_browser_screenshot_is_not_blank(page, tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow (a matplotlib dependency) "
                                                           "is needed to read the screenshot")
    shot = tmp_path / "report.png"
    run_chromium(page, tmp_path / "profile", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with image_module.open(shot) as image:
        assert image.size == WINDOW
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
    # A blank (or error) page is one or two colours; the report has text, tiles and badges.
    assert colours is not None and len(colours) > 50
    white = next((count for count, colour in colours if colour == (255, 255, 255)), 0)
    assert white < 0.97 * WINDOW[0] * WINDOW[1]


def test_browser_shows_hostile_strings_as_text(tmp_path):
    page = write_report(samples.hostile_results(), tmp_path / "report")
    dom = parse_html(run_chromium(page, tmp_path / "profile", "--dump-dom").stdout)
    assert not dom.find_all("script"), "a string from results.json became a script element"
    text = dom.text()
    assert samples.HOSTILE in text
    claim = dom.find_all("section", "claim")[0]
    assert samples.HOSTILE in claim.find_all("h2")[0].text()
