"""--plan / `rethinkbench plan`: the runs a selection of claims needs, what is cached, and an
estimate from costs measured on this device; nothing is trained and no results are written."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rethinkbench as rb
from rethinkbench import cli
from rethinkbench.base.errors import UsageError
from rethinkbench.engine.plan import Plan, load_priors, placeholder_dataset, prior_key
from rethinkbench.harness.corruptions import corrupt

pytestmark = pytest.mark.usefixtures("single_thread")

CLAIMS = """
import pytest
from rethinkbench.suite.evidence import ClaimInfo

SMALL = dict(model="mlp1x512", n_train=100, max_epochs=4)


@pytest.mark.claim(ClaimInfo(id="P-two", title="t", statement="s", source="tests"))
def test_two_runs(claim, run, seeds, dataset):
    res = run.many([dict(seed=s, **SMALL) for s in seeds] + [dict(corruption="random_labels", **SMALL)])
    assert all(r.fitted for r in res), claim.rejected("placeholders never fit")


@pytest.mark.claim(ClaimInfo(id="P-theory", title="t", statement="s", source="tests"))
def test_no_training(claim):
    raise RuntimeError("a test that trains nothing must not be executed by --plan")
"""


@pytest.fixture
def pt(pytester):
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.makepyfile(test_claims=CLAIMS)
    return pytester


def _args(pt):
    return ["--scale", "smoke", "--seeds", "2", "--cache-dir", str(pt.path / "cache"),
            "--report-dir", str(pt.path / "rep")]


def test_plan_lists_runs_trains_nothing_and_writes_no_results(pt):
    res = pt.runpytest_subprocess("--plan", *_args(pt))
    out = res.stdout.str()
    assert res.ret == 0, out
    assert "rethinkbench plan" in out
    assert "plan on cpu: 3 runs, 0 cached, 3 to train, estimated" in out
    assert "(tests executed for their runs: 1; tests that train nothing: 1); nothing was trained" in out
    assert "mlp1x512" in out and not re.search(r"^\s*trained ", out, re.M)   # no run's progress line
    # The summary line counts planned tests, never "passed" ones (nothing was checked).
    assert "1 planned, 1 without runs" in out and " passed" not in out
    assert not (pt.path / "rep" / "results.json").exists()
    assert not any((pt.path / "cache").glob("*.json"))


def test_plan_counts_cached_runs_and_takes_their_epochs(pt):
    pt.runpytest_subprocess(*_args(pt))          # trains the 3 runs (smoke width, 4 epochs)
    res = pt.runpytest_subprocess("--plan", *_args(pt))
    assert "plan on cpu: 3 runs, 3 cached, 0 to train, estimated 0 s" in res.stdout.str()


def test_plan_with_unavailable_data_plans_with_its_known_size(pt, tmp_path):
    res = pt.runpytest_subprocess("--plan", *_args(pt), "--dataset", "cifar10",
                                  "--data-root", str(tmp_path / "none"))
    out = res.stdout.str()
    assert res.ret == 0, out
    assert "cifar10" in out and "planned with its known size" in out


def test_priors_from_stored_results_give_the_epochs_of_other_seeds(tmp_path):
    cfg = rb.RunConfig(model="mlp1x512", seed=0, max_epochs=300)
    stored = {"runs": {"k": {"config": cfg.to_dict(), "history": [{}] * 40}},
              "claims": [], "schema": 1}
    (tmp_path / "base.json").write_text(json.dumps(stored))
    (tmp_path / "broken.json").write_text("{not json")
    priors = load_priors([tmp_path / "base.json", tmp_path / "broken.json"])
    plan = Plan(None, priors=priors)
    plan.request([cfg.replace(seed=5, device="cuda"), cfg.replace(lr=0.5)], "t")
    runs = list(plan.runs.values())
    assert (runs[0].epochs, runs[0].epochs_known) == (40, True)     # same config, other seed/device
    assert (runs[1].epochs, runs[1].epochs_known) == (300, False)   # another lr: the budget, "≤"
    assert prior_key(cfg) == prior_key(cfg.replace(seed=9, device="cuda"))


def test_placeholder_dataset_has_the_known_shape():
    ds = placeholder_dataset("cifar10")
    assert ds.in_shape == (3, 28, 28) and ds.num_classes == 10


def test_cli_plan_runs_pytest_with_plan_and_defaults_to_claims(monkeypatch):
    seen = []
    monkeypatch.setattr(pytest, "main", lambda args: seen.append(args) or 0)
    assert cli.main(["plan"]) == 0
    assert cli.main(["plan", "claims/test_theory.py", "--gpu"]) == 0
    assert seen[0][-1] == "claims/" and "--plan" in seen[0]
    assert seen[1][-2:] == ["claims/test_theory.py", "--gpu"] and "claims/" not in seen[1]
    # An option's value is not a path: `rethinkbench plan --scale paper` plans claims/ too.
    assert cli.main(["plan", "--scale", "paper", "-k", "mlp"]) == 0
    assert "claims/" in seen[2] and seen[2][-4:] == ["--scale", "paper", "-k", "mlp"]


def test_plan_with_xdist_is_a_usage_error(pt):
    res = pt.runpytest_subprocess("--plan", "-n", "2", *_args(pt))
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "--plan runs in one process (it trains nothing): drop -n/--numprocesses" in res.stderr.str()


def test_an_adversarial_run_is_estimated_at_the_cost_of_its_extra_passes(monkeypatch):
    from rethinkbench.engine import plan as plan_mod
    from rethinkbench.harness.regularizers import ADV_STEPS

    monkeypatch.setattr(plan_mod, "measure_costs", lambda *a, **k: (0.01, 0.001))
    table = plan_mod.CostTable("cpu")
    plain = table.get(rb.RunConfig(dropout=0.5), 1000)
    adv = table.get(rb.RunConfig(dropout=0.5, adversarial=0.5), 1000)
    assert plain == (0.01, 0.001)
    assert adv == (pytest.approx(0.01 * (ADV_STEPS + 2)), 0.001)


# ----------------------------------------------------------------------------- issue 17, item 1

ROOT = Path(__file__).resolve().parents[1]


def test_paper_scale_plan_on_cpu_prints_a_table_for_in_memory_data(tmp_path):
    """`rethinkbench plan claims/ --scale paper` on CPU (CIFAR-10 absent: its known size). The
    custom: runs (A-easy-examples, Z-S22-rademacher) have n_train None; they used to be sized 0
    and divide by zero in measure_costs. Costs timed at 1/16 width (tests/plan_tiny_costs.py)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "rethinkbench", "plan", "claims/", "--scale", "paper",
           "-p", "plan_tiny_costs", "-k", "easy_and_hard or rademacher",
           "--data-root", str(tmp_path / "none"), "--cache-dir", str(tmp_path / "cache"),
           "--plan-json", str(tmp_path / "plan.json")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    assert "ZeroDivisionError" not in out + proc.stderr
    rows = [line.split() for line in out.splitlines() if "custom:" in line]
    kinds = {r[2] for r in rows}
    assert {"custom:easy-cifar10-true_labels", "custom:easy-cifar10-random_labels",
            "custom:easy-cifar10-gaussian", "custom:rademacher-cifar10-0"} <= kinds
    assert all(r[3] == "50000" for r in rows), rows     # the stand-in's CIFAR-10 size, not 1 or 0
    assert "plan on cpu: 302 runs, 0 cached, 302 to train" in out
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["to_train"] == 302 and all(r["seconds"] > 0 for r in plan["runs"])


def test_in_memory_data_is_planned_at_its_size_and_unknown_sizes_are_named():
    cfg = rb.RunConfig(dataset="custom:mine", model="mlp1x512", n_train=None, max_epochs=2)
    x = torch.zeros(30, 1, 28, 28)
    ds = rb.Dataset(x, torch.zeros(30, dtype=torch.int64), x[:7], torch.zeros(7, dtype=torch.int64), name="mine")
    plan = Plan(None)
    plan.request([cfg], "t", data={cfg.key(): ds})
    assert plan.n_train(cfg) == (30, 7)
    # Derived from a stand-in (the dataset is not on this machine): planned at the real size.
    stand_in = corrupt(placeholder_dataset("cifar10"), "gaussian", seed=0)
    other = cfg.replace(dataset="custom:derived")
    plan.request([other], "t", data={other.key(): stand_in})
    assert plan.n_train(other) == (50000, 10000)
    with pytest.raises(UsageError, match=r"does not know the size of dataset 'custom:nowhere'"):
        plan.n_train(cfg.replace(dataset="custom:nowhere"))


# ----------------------------------------------------------------------------- issue 17, item 2

class _Costs:
    """A CostTable that records the cohort size each run was priced at."""

    def __init__(self):
        self.k = []

    def get(self, cfg, n_train, k=1):
        self.k.append(k)
        return 0.01, 0.0


def _mlp(seed, **kw):
    return rb.RunConfig(model="mlp1x512", seed=seed, device="cuda", max_epochs=3, n_train=256, **kw)


def test_cohorts_are_formed_per_request_as_the_runner_trains_them():
    """Runs stack only inside one run.many call: two one-seed requests are two solo runs, never a
    cohort of two (it made the --seeds 1 estimate of the MLPs several times too low)."""
    plan = Plan(None)
    plan.request([_mlp(0)], "a", stacks=False)              # a one-run request: the runner trains it solo
    plan.request([_mlp(1)], "b", stacks=False)
    plan.request([_mlp(2), _mlp(3), _mlp(2)], "c", stacks=True)   # one cohort of two (a repeat trains once)
    plan.request([_mlp(0), _mlp(4)], "d", stacks=True)      # seed 0 trained already: seed 4 alone
    plan.request([_mlp(5), _mlp(6)], "e", stacks=False)     # in-memory data / keep_model: no stacking
    costs = _Costs()
    plan.estimate(costs)
    assert costs.k == [1, 1, 2, 1, 1, 1]
    solo, member = plan.runs[_mlp(0).key()].seconds, plan.runs[_mlp(2).key()].seconds
    assert member == pytest.approx(solo / 2)


def test_a_cpu_request_never_stacks_and_conv_nets_stack_only_when_asked():
    plan = Plan(None)
    plan.request([_mlp(0).replace(device="cpu"), _mlp(1).replace(device="cpu")], "a", stacks=True)
    plan.request([_mlp(0).replace(model="inception_small"), _mlp(1).replace(model="inception_small")],
                 "b", stacks=True)
    costs = _Costs()
    plan.estimate(costs)
    assert costs.k == [1, 1]   # stacks_by_default: MLPs on CUDA only (engine/cohort.py)


# ----------------------------------------------------------------------------- issue 17, item 8

@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA (run by scripts/gpu_check.sh)"))])
def test_costs_are_timed_with_cudnns_autotuner_as_train_has_it(device):
    """train() turns cudnn.benchmark on for CUDA runs; a plan timed without it priced another
    convolution algorithm than the one that trains. Off (untouched) on CPU, restored after."""
    from rethinkbench.engine import plan as plan_mod

    seen = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append(torch.backends.cudnn.benchmark))
    before = torch.backends.cudnn.benchmark
    try:
        plan_mod.measure_costs(rb.RunConfig(model="alexnet_small", width=0.0625, device=device),
                               (1, 28, 28), 8, device)
    finally:
        hook.remove()
    assert seen and set(seen) == {device == "cuda" or before}
    assert torch.backends.cudnn.benchmark == before
