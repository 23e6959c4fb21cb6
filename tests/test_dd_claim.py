"""DD-model-wise (claims/test_double_descent.py): its decision rule on made-up curves, its label
noise, its sweeps; the --long opt-in (the `long` marker) through pytester; the claim itself at
smoke scale and skipped at cpu scale without --long; its runs in the plan (cpu with --long, paper)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rethinkbench as rb
from rethinkbench.engine.config import RunConfig

from conftest import load_file_module, warm_for_pytester

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "claims"


@pytest.fixture(scope="module")
def dd():
    sys.path.insert(0, str(CLAIMS))   # the claim module imports known_failures from its folder
    try:
        yield load_file_module(CLAIMS / "test_double_descent.py", "dd_claim")
    finally:
        sys.path.remove(str(CLAIMS))


# ----------------------------------------------------------------------------- the rule

UNITS = [2, 4, 8, 16, 32, 64, 128, 256]


def test_a_double_descent_curve_reproduces(dd):
    test = [0.30, 0.20, 0.18, 0.24, 0.27, 0.22, 0.16, 0.14]
    train = [0.40, 0.20, 0.08, 0.02, 0.005, 0.0, 0.0, 0.0]
    d = dd.decide(UNITS, test, train)
    assert (d["w_fit"], d["w_peak"], d["ok"]) == (32, 32, True)
    assert d["rise"] == pytest.approx(0.09) and d["fall"] == pytest.approx(0.13)


@pytest.mark.parametrize("test, train, why", [
    # Classical: test error falls monotonically with width.
    ([0.30, 0.25, 0.22, 0.20, 0.19, 0.18, 0.17, 0.16], [0.4, 0.2, 0.05, 0.0, 0, 0, 0, 0], "no interior peak"),
    # A peak that never falls again (U-shape without the second descent).
    ([0.30, 0.20, 0.18, 0.24, 0.27, 0.28, 0.29, 0.30], [0.4, 0.2, 0.08, 0.02, 0.005, 0, 0, 0], "no fall"),
    # A bump far (4x) from the interpolation width, the curve falling near it.
    ([0.30, 0.20, 0.24, 0.22, 0.20, 0.19, 0.18, 0.17], [0.4, 0.2, 0.1, 0.05, 0.005, 0, 0, 0], "far"),
    # The underfitting end is the only high point (the classical U's left arm, no peak).
    ([0.40, 0.20, 0.18, 0.17, 0.17, 0.165, 0.16, 0.15], [0.5, 0.2, 0.08, 0.02, 0.005, 0, 0, 0], "left end"),
    # A bump within seed noise (1 point).
    ([0.30, 0.20, 0.18, 0.185, 0.19, 0.18, 0.17, 0.17], [0.4, 0.2, 0.08, 0.02, 0.005, 0, 0, 0], "small"),
    # No width fits the training set.
    ([0.30, 0.20, 0.18, 0.24, 0.27, 0.22, 0.16, 0.14], [0.4, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.02], "no fit"),
])
def test_curves_without_double_descent_do_not_reproduce(dd, test, train, why):
    assert not dd.decide(UNITS, test, train)["ok"], why


def test_the_noise_level_gives_the_expected_fraction_of_wrong_labels(dd):
    assert dd.noise_level(10) == pytest.approx(1 / 6)
    n = 20_000
    x = torch.zeros(n, 1, 2, 2)
    y = torch.arange(n) % 10
    ds = rb.Dataset(x, y, x[:10], y[:10], num_classes=10)
    noisy = rb.corrupt(ds, "partial_labels", level=dd.noise_level(10), seed=0)
    wrong = (noisy.y_train != y).float().mean().item()
    assert abs(wrong - dd.NOISE) < 0.01          # sd of the fraction: 0.0025
    assert torch.equal(noisy.y_test, ds.y_test)  # the test set stays clean


def test_the_sweeps_span_their_interpolation_thresholds(dd):
    cpu, paper = dd.SWEEPS["cpu"], dd.SWEEPS["paper"]
    # Belkin et al.: H (d + 1) + (H + 1) K = n K at n = 4,000, d = 784, K = 10.
    h = (4000 * 10 - 10) / (784 + 1 + 10)
    assert 50 < h < 51 and min(cpu.units) <= h / 8 and max(cpu.units) >= 8 * h
    assert cpu.n_train == 4000 and cpu.model == "mlp1x512"
    for u in cpu.units:    # the width multiplier gives exactly u hidden units
        net = rb.build_model(cpu.model, (1, 28, 28), 10, cpu.width(u))
        assert net.net[1].out_features == u
    assert paper.model == "resnet18" and (min(paper.units), max(paper.units)) == (1, 64)
    cfg = RunConfig(model=paper.model, width=paper.width(64), dataset="cifar10", **dict(paper.extra))
    assert cfg.optimizer == "adam" and cfg.effective_lr == 1e-4


# ----------------------------------------------------------------------------- --long

LONG_CLAIM = """
import pytest
from rethinkbench.suite.evidence import ClaimInfo

@pytest.mark.claim(ClaimInfo(id="T-long", title="t", statement="s", source="x"))
@pytest.mark.long(cost="about an hour on two cores")
def test_long(claim):
    pass

def test_short():
    pass
"""


@pytest.fixture(scope="module")
def warm():
    warm_for_pytester()   # tests/conftest.py: why


@pytest.fixture
def pt(pytester, warm):
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    return pytester


def _dirs(pt):
    return ["--cache-dir", str(pt.path / "cache"), "--report-dir", str(pt.path / "rep")]


def test_a_long_claim_is_skipped_at_cpu_scale_naming_long_and_its_cost(pt):
    pt.makepyfile(test_l=LONG_CLAIM)
    res = pt.runpytest("-rs", "-p", "no:randomly", *_dirs(pt))
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines(["*SKIPPED*T-long is a long claim at cpu scale (about an hour on two "
                              "cores); pass --long to run it*"])
    (claim,) = json.loads((pt.path / "rep" / "results.json").read_text())["claims"]
    assert claim["verdict"] == "skipped" and "--long" in claim["items"][0]["reason"]


@pytest.mark.parametrize("args", [["--long"], ["--scale", "smoke"], ["--scale", "smoke", "--long"]])
def test_a_long_claim_runs_with_long_and_at_smoke_scale(pt, args):
    pt.makepyfile(test_l=LONG_CLAIM)
    pt.runpytest("-p", "no:randomly", *args, *_dirs(pt)).assert_outcomes(passed=2)


def test_help_shows_long(pt):
    res = pt.runpytest("--help")
    res.stdout.fnmatch_lines(["*--long*also run the long claims at cpu scale*"])


# ----------------------------------------------------------------------------- the claim itself

@pytest.fixture
def claim_dir(pt):
    # Another basename than claims/test_double_descent.py: pytest's "prepend" import mode keys
    # test modules by basename, and the real one may be imported already.
    shutil.copy(CLAIMS / "test_double_descent.py", pt.path / "test_dd_copy.py")
    shutil.copy(CLAIMS / "known_failures.py", pt.path / "known_failures.py")
    return pt


@pytest.mark.usefixtures("single_thread", "fast_mnist5k")
def test_the_claim_runs_at_smoke_scale_and_draws_its_curve(claim_dir):
    res = claim_dir.runpytest("--scale", "smoke", "-p", "no:randomly", *_dirs(claim_dir))
    outcomes = res.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("xfailed", 0) == 1, res.stdout.str()[-2000:]
    rj = json.loads((claim_dir.path / "rep" / "results.json").read_text())
    (claim,) = rj["claims"]
    assert claim["id"] == "DD-model-wise"
    (item,) = claim["items"]
    assert {"test_error_w2", "train_error_w32", "interpolation_width", "fall_after_peak"} <= set(item["measured"])
    (fig,) = item["figures"]
    assert fig["logx"] is True and [s["x"] for s in fig["series"]] == [[2, 8, 32]] * 2
    configs = [RunConfig.from_dict(r["config"]) for r in rj["runs"].values()]
    assert sorted(c.width * 512 for c in configs) == [2, 8, 32]
    assert all(not c.stop_at_fit and c.stall_epochs is None and c.lr_decay == 1 for c in configs)


def test_the_claim_is_skipped_at_cpu_scale_without_long(claim_dir):
    res = claim_dir.runpytest("-rs", "-p", "no:randomly", *_dirs(claim_dir))
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["*DD-model-wise is a long claim at cpu scale (36 runs, 12 widths x 3 "
                              "seeds x 1,000 epochs*); pass --long to run it*"])


# ----------------------------------------------------------------------------- the plan

def _plan(tmp_path, *args) -> dict:
    out = tmp_path / "plan.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    for name in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "rethinkbench", "plan", "claims/test_double_descent.py", *args,
           "-p", "plan_tiny_costs", "--cache-dir", str(tmp_path / "cache"), "--plan-json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text()) if out.exists() else {"runs": []}


@pytest.mark.e2e
def test_the_plan_lists_the_sweep_with_long_and_at_paper_scale(tmp_path):
    # Without --long the cpu plan has none of these runs: tests/test_plan_keys.py checks that the
    # default cpu plan is exactly the committed baseline's runs.
    runs = _plan(tmp_path, "--long")["runs"]
    configs = [RunConfig.from_dict(r["config"]) for r in runs]
    assert len(configs) == 36 and {c.max_epochs for c in configs} == {1000}
    assert sorted({round(c.width * 512) for c in configs}) == [2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512]
    paper = [RunConfig.from_dict(r["config"]) for r in _plan(tmp_path, "--scale", "paper")["runs"]]
    assert len(paper) == 12 and all(c.model == "resnet18" and c.optimizer == "adam" and c.random_crop
                                    and c.dataset == "cifar10" for c in paper)
