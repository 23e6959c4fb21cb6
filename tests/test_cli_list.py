"""`rethinkbench list` prints every name a claim may use; results.json of a plugin session passes
the schema, and compare says the model differs from the baseline's (issue 12)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from rethinkbench import CORRUPTIONS, DATASETS, MODELS, SCALES
from rethinkbench.cli import main
from rethinkbench.report.compare import WARNING, check_results, compare

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "reports" / "baselines" / "cpu-mnist5k.json"


def test_list_prints_every_name_a_claim_may_use():
    # A subprocess, as a user runs it: in this process pytest has imported tests/test_theory.py,
    # and collecting claims/test_theory.py beside it would be an import-file mismatch.
    proc = subprocess.run([sys.executable, "-m", "rethinkbench", "list"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for name in (*MODELS, *DATASETS, *CORRUPTIONS, *SCALES, "module:factory", "module:loader", "custom:<id>"):
        assert f"  {name} " in out, name
    baseline_ids = {c["id"] for c in json.loads(BASELINE.read_text())["claims"]}
    for cid in baseline_ids | {"Z-T2-imagenet", "Z-S5-cifar-kernel"}:
        assert f"  {cid} " in out, cid
    assert "Z-T1-arch " in out and "[paper's networks only]" in out and "[runs on --model]" in out


def test_list_json_without_a_claims_directory(capsys, tmp_path):
    assert main(["list", "--json", "--claims-dir", str(tmp_path / "none")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data["models"]][:len(MODELS)] == list(MODELS)
    assert {c["name"] for c in data["corruptions"]} == set(CORRUPTIONS)
    assert next(c for c in data["corruptions"] if c["name"] == "partial_labels")["level"] is True
    assert "claims" not in data


def _plugin_session(results: dict) -> dict:
    r = copy.deepcopy(results)
    r.update(model="tinyres", lr=0.1, not_comparable="the model tinyres is not one of the paper's networks",
             plugins={"model": {"name": "tinyres", "source": "entry point", "origin": "entry point tinyres = x:y",
                                "version": "1", "default_lr": 0.1}})
    r["claims"][0]["paper_specific"] = "why"
    return r


def test_plugin_results_pass_the_schema_and_compare_flags_the_model():
    base = json.loads(BASELINE.read_text())
    check_results(base, source="baseline")
    assert compare(base, base).ok   # the committed baseline still compares clean with itself
    current = _plugin_session(base)
    check_results(current, source="current")
    rows = [r for r in compare(base, current).rows if r.check == "setup"]
    assert [(r.status, r.subject, r.baseline, r.current) for r in rows] == [(WARNING, "model", "-", "tinyres")]
