"""End to end: the real claims/ directory, the real command line, in a subprocess.

    pytest claims/test_fit_randomizations.py --scale smoke -k mlp1x512 --seeds 1

Five smoke-scale runs of mlp1x512 (1/4 width, 200 digits, at most 60 epochs each): ~30 s on two
shared cores, most of it the fit of true labels. The subprocess is killed after 240 s; deselect with
`-m "not e2e"`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORRUPTIONS = {"true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian"}


@pytest.mark.e2e
def test_fit_randomizations_at_smoke_scale(tmp_path):
    cmd = [sys.executable, "-m", "pytest", "claims/test_fit_randomizations.py", "--scale", "smoke",
           "-k", "mlp1x512", "--seeds", "1", "--cache-dir", str(tmp_path / "cache"),
           "--report-dir", str(tmp_path / "reports"), "-p", "no:cacheprovider", "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p)}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    took = time.perf_counter() - start
    assert proc.returncode == 0, (f"exit {proc.returncode} after {took:.0f} s\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    assert "5 passed" in proc.stdout and "runs: 5 trained, 0 from the cache" in proc.stdout

    rj = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert (rj["scale"], rj["dataset"], rj["device"]) == ("smoke", "mnist5k", "cpu")
    claims = {c["id"]: c for c in rj["claims"]}
    assert set(claims) == {"Z-F1a-fit"}
    fit = claims["Z-F1a-fit"]
    assert fit["verdict"] == "reproduced"
    assert {i["params"]["corruption"] for i in fit["items"]} == CORRUPTIONS
    assert all(i["params"]["model"] == "mlp1x512" and i["outcome"] == "passed" for i in fit["items"])
    assert all(i["measured"]["final_train_acc"]["value"] == 1.0 for i in fit["items"])
    assert len(rj["runs"]) == 5
    assert all(r["final_train_acc"] == 1.0 and r["config"]["model"] == "mlp1x512" for r in rj["runs"].values())
    assert len(list((tmp_path / "cache").glob("*.json"))) == 5
