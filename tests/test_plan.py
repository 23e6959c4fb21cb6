"""--plan / `rethinkbench plan`: the runs a selection of claims needs, what is cached, and an
estimate from costs measured on this device; nothing is trained and no results are written."""
from __future__ import annotations

import json

import pytest

import rethinkbench as rb
from rethinkbench import cli
from rethinkbench.engine.plan import Plan, load_priors, placeholder_dataset, prior_key

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
    assert "(tests executed for their runs: 1; tests that train nothing: 1)" in out
    assert "mlp1x512" in out and "trained " not in out
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
