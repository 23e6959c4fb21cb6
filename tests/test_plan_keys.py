"""The plan lists exactly the runs a real session trains (issue 21, item 5).

A claim test runs under --plan on placeholder results; if a placeholder makes it stop early (an
empty history, no per-example record, no network to probe), the runs it would ask for next are
missing from the plan. At ea9ed21 the smoke plan listed 59 runs and the real session trained 83.

- smoke: the whole suite planned, then run for real on the same empty cache; the plan's run keys
  must equal the keys of the runs the session stored (about 4-7 minutes on two shared cores).
- cpu: the whole suite planned; its run keys must equal those of the runs in the committed
  baseline reports/baselines/cpu-mnist5k.json (a full cpu session; keys recomputed from the
  stored configs, so a change of the key's recipe alone does not fail this). Costs are timed at
  1/16 width (tests/plan_tiny_costs.py): only the run list is checked here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rethinkbench.engine.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "reports" / "baselines" / "cpu-mnist5k.json"


def _env():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        env.pop(name, None)
    return env


def _plan_keys(tmp_path, *args) -> dict[str, str]:
    out = tmp_path / "plan.json"
    cmd = [sys.executable, "-m", "rethinkbench", "plan", "claims/", *args, "-p", "plan_tiny_costs",
           "--cache-dir", str(tmp_path / "cache"), "--plan-json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "RuntimeWarning" not in proc.stdout + proc.stderr   # placeholders leak no warnings
    assert " passed" not in proc.stdout.splitlines()[-1]       # planned, not passed
    return {r["key"]: r["label"] for r in json.loads(out.read_text())["runs"]}


def _diff(planned: dict, trained: dict) -> str:
    return (f"planned only: {sorted(planned[k] for k in set(planned) - set(trained))}; "
            f"trained only: {sorted(trained[k] for k in set(trained) - set(planned))}")


@pytest.mark.e2e
def test_the_smoke_plan_lists_exactly_the_runs_a_smoke_session_trains(tmp_path):
    planned = _plan_keys(tmp_path, "--scale", "smoke")
    cmd = [sys.executable, "-m", "pytest", "claims/", "--scale", "smoke", "-q", "-p", "no:randomly",
           "-p", "no:cacheprovider", "--cache-dir", str(tmp_path / "cache"),
           "--report-dir", str(tmp_path / "reports")]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1500)
    # Smoke scale rejects claims (one seed, tiny nets): exit 1 is expected, an error is not.
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    runs = json.loads((tmp_path / "reports" / "results.json").read_text())["runs"]
    trained = {k: RunConfig.from_dict(r["config"]).label() for k, r in runs.items()}
    stored = {p.stem for p in (tmp_path / "cache").glob("*.json")}
    assert stored == set(trained), "every run the session used was trained here and stored"
    assert set(planned) == set(trained), _diff(planned, trained)


@pytest.mark.e2e
def test_the_cpu_plan_lists_exactly_the_runs_of_the_cpu_baseline(tmp_path):
    planned = _plan_keys(tmp_path)   # the default scale: cpu
    baseline = json.loads(BASELINE.read_text())
    assert baseline["scale"] == "cpu"
    configs = [RunConfig.from_dict(r["config"]) for r in baseline["runs"].values()]
    trained = {c.key(): c.label() for c in configs}
    assert set(planned) == set(trained), _diff(planned, trained)
