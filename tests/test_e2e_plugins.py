"""End to end: the real claims/ on the example plugin package (examples/tinyres), in subprocesses.

    pytest claims/ --scale smoke --model examples.tinyres.nets:resnet_small -k "..."   # import path
    pip install --no-deps --target T examples/tinyres; PYTHONPATH=T pytest claims/ --model tinyres
                                                        --dataset shapes -k "..."      # entry points

A few claims are selected (-k) to keep each run around 20-40 s on two shared cores; the paper-specific
claims are among them, to show they skip with their reason. OMP_NUM_THREADS=1: the tiny CNN's steps
are overhead-bound, and on two cores shared with other processes a second thread made the same
session 5x slower (measured 104 s vs 18 s). The installed copy goes to a temporary folder: the
project's virtual environment is never touched. Deselect with `-m "not e2e"`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELECT = "Z-F1a-fit or Z-T1-rand-chance or Z-T1-arch or Z-S31-bn"
PAPER_SPECIFIC = {"Z-T1-arch", "Z-S31-bn"}


def _env(*paths) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in [*map(str, paths), str(ROOT),
                                                     os.environ.get("PYTHONPATH")] if p)}
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        env.pop(name, None)
    return env


def _claims(tmp_path, env, *args):
    cmd = [sys.executable, "-m", "pytest", "claims/", "--scale", "smoke", "-k", SELECT, "-rs",
           "--cache-dir", str(tmp_path / "cache"), "--report-dir", str(tmp_path / "reports"),
           "-p", "no:cacheprovider", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    took = time.perf_counter() - start
    # Whether the tiny CNN reproduces a claim is a finding, not the harness's business; at smoke
    # scale a rejection is inconclusive and fails nothing, so anything but exit 0 is an error.
    assert proc.returncode == 0, (f"exit {proc.returncode} after {took:.0f} s\n"
                                       f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    print(f"{' '.join(args)}: {took:.1f} s")
    return proc, json.loads((tmp_path / "reports" / "results.json").read_text())


def _check_session(proc, rj, model, dataset):
    claims = {c["id"]: c for c in rj["claims"]}
    assert set(claims) == {"Z-F1a-fit", "Z-T1-rand-chance"} | PAPER_SPECIFIC
    for cid in PAPER_SPECIFIC:   # skipped, saying why
        assert claims[cid]["verdict"] == "skipped"
        for item in claims[cid]["items"]:
            assert f"{cid} is about the paper's own networks" in item["reason"]
            assert f"--model {model} is not one of them" in item["reason"]
    for cid in ("Z-F1a-fit", "Z-T1-rand-chance"):   # ran on the plugin model: a verdict, never an error
        assert claims[cid]["verdict"] in ("reproduced", "inconclusive"), claims[cid]
        assert all(i["params"]["model"] == model for i in claims[cid]["items"])
    assert len(claims["Z-F1a-fit"]["items"]) == 5
    assert (rj["model"], rj["dataset"], rj["scale"]) == (model, dataset, "smoke")
    assert rj["plugins"]["model"]["version"] == "1"
    assert "not one of the paper's networks" in rj["not_comparable"]
    assert all(r["config"]["model"] == model and r["config"]["model_version"] == "1"
               for r in rj["runs"].values())
    assert f"model {model} (" in proc.stdout   # the terminal header names it
    html = (Path(rj["_dir"]) / "index.html").read_text()
    assert f"<dt>Model</dt><dd>{model} — " in html


@pytest.mark.e2e
def test_claims_on_the_example_model_by_import_path(tmp_path):
    model = "examples.tinyres.nets:resnet_small"
    proc, rj = _claims(tmp_path, _env(), "--model", model)
    rj["_dir"] = str(tmp_path / "reports")
    _check_session(proc, rj, model, "mnist5k")
    assert rj["plugins"]["model"]["source"] == "import path"
    assert "runs: 5 trained, 0 from the cache" in proc.stdout   # rand-chance reuses Z-F1a-fit's run


@pytest.mark.e2e
def test_claims_on_the_installed_example_through_entry_points(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "tinyres", src)   # the build leaves files beside the source
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = _env(target)

    listed = subprocess.run([sys.executable, "-m", "rethinkbench", "list", "--claims-dir", "/nonexistent"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "tinyres" in listed.stdout and "rethinkbench_tinyres.nets:resnet_small from rethinkbench-tinyres 0.1.0" in listed.stdout
    assert "shapes" in listed.stdout and "version 1" in listed.stdout

    proc, rj = _claims(tmp_path, env, "--model", "tinyres", "--dataset", "shapes")
    rj["_dir"] = str(tmp_path / "reports")
    _check_session(proc, rj, "tinyres", "shapes")
    assert rj["plugins"]["model"]["source"] == "entry point"
    assert rj["plugins"]["dataset"]["origin"].startswith("entry point shapes = rethinkbench_tinyres.data:load")
    assert all(r["config"]["dataset_version"] == "1" for r in rj["runs"].values())
