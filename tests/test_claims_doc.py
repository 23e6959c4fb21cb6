"""docs/claims.md: its claim catalogue is generated from the claims' ClaimInfos by
scripts/gen_claims_doc.py, and this test fails when the two disagree."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rethinkbench.suite.evidence import ClaimInfo

from conftest import load_file_module

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_claims_doc.py"


@pytest.fixture(scope="module")
def gen():
    return load_file_module(SCRIPT, "gen_claims_doc")


def test_docs_claims_md_is_up_to_date_with_the_claim_infos():
    """Collects claims/ in a subprocess (nothing trains): a few seconds."""
    res = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "is up to date" in res.stdout


FAKE = {
    "T-one": {"info": ClaimInfo(id="T-one", title="A | title", statement="It holds.",
                                source="Z §1", paper="99.3%"),
              "modules": {"claims/test_a.py": {"test_one": (), "test_one_paper": ("paper",)}}},
    "T-two": {"info": ClaimInfo(id="T-two", title="Two", statement="Also.", source="A §2"),
              "modules": {"claims/test_b.py": {"test_two": ()}}},
}


def test_the_catalogue_names_every_field_and_test(gen):
    block = gen.render(FAKE)
    assert block.startswith(gen.BEGIN) and block.rstrip().endswith(gen.END)
    assert "| [T-one](#t-one) | A \\| title | `claims/test_a.py` |" in block
    assert "### T-one\n\n**A | title.** It holds.\n\n- Source: Z §1\n- The paper's numbers: 99.3%" in block
    assert "- Checked by: `claims/test_a.py::test_one`\n" in block
    assert "- Checked by: `claims/test_a.py::test_one_paper` (paper scale only)" in block
    assert "- The paper's numbers: (none stated)" in block


def test_check_fails_on_a_stale_catalogue_and_writing_fixes_it(gen, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gen, "collect", lambda: FAKE)
    doc = tmp_path / "claims.md"
    doc.write_text(f"# Claims\n\nHand-written protocol notes.\n\n{gen.BEGIN}\nold\n{gen.END}\n",
                   encoding="utf-8")
    assert gen.main(["--check", "--doc", str(doc)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{doc} is out of date with the claims' ClaimInfos: run `python scripts/gen_claims_doc.py` "
        f"and commit the result")
    assert "old" in doc.read_text(encoding="utf-8")   # --check writes nothing
    assert gen.main(["--doc", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Claims\n\nHand-written protocol notes.\n\n")
    assert "### T-two" in text and "\nold\n" not in text
    assert gen.main(["--check", "--doc", str(doc)]) == 0


def test_a_doc_without_the_markers_is_refused(gen, tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "collect", lambda: FAKE)
    doc = tmp_path / "claims.md"
    doc.write_text("# Claims\n", encoding="utf-8")
    with pytest.raises(SystemExit) as error:
        gen.main(["--check", "--doc", str(doc)])
    assert str(error.value).startswith(f"{doc} must hold the markers\n  {gen.BEGIN}\n")
