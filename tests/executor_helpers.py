"""Shared by the executor tests: the claims run as a user runs them (a pytest subprocess from the
repository root), and what results.json says about them, without the timings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import outside_xdist

ROOT = Path(__file__).resolve().parents[1]
# A small real selection: mlp3x512 fitting five randomizations at smoke scale (five runs, ~10 s).
SELECTION = ["claims/test_fit_randomizations.py", "--scale", "smoke", "-k", "mlp3x512"]


def run_claims(tmp: Path, *args, env=None, timeout=300, path_first=None) -> subprocess.CompletedProcess:
    """`pytest SELECTION args` in the repository root, caching and reporting under `tmp`;
    `path_first`: a directory put before everything on the subprocess's import path."""
    path = str(ROOT) if path_first is None else f"{path_first}{os.pathsep}{ROOT}"
    full_env = {**outside_xdist(os.environ), **(env or {}), "PYTHONPATH": path,
                # One intra-op thread, as a Ray task with num_cpus=1 has (Ray sets it): the same
                # thread count on both sides is what makes CPU histories bit-identical.
                "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", *SELECTION, "-p", "no:randomly", "-p", "no:cacheprovider",
           "--cache-dir", str(tmp / "cache"), "--report-dir", str(tmp / "rep"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


def claim_items(report_dir: Path) -> dict:
    """What results.json says, timings left out: nodeid -> (outcome, verdict, measured values,
    {run key: its history without the seconds of each epoch})."""
    data = json.loads((report_dir / "results.json").read_text())
    out = {}
    for claim in data["claims"]:
        for item in claim["items"]:
            measured = {name: m["values"] for name, m in item["measured"].items()}
            runs = {k: [{f: v for f, v in rec.items() if f != "seconds"} for rec in data["runs"][k]["history"]]
                    for k in item["runs"]}
            out[item["nodeid"]] = (item["outcome"], item["verdict"], measured, runs)
    return out


def executor_record(report_dir: Path) -> dict:
    return json.loads((report_dir / "executor.json").read_text())
