"""The pytest plugin (rethinkbench/suite/plugin/) through pytester: options and their parsers,
markers, the claim fixtures, results.json, the cache across sessions.

The inner sessions run in-process (a subprocess would import torch and parse the mnist5k CSV again,
seconds each). pytester deletes the modules an inner session imported when it ends, so everything
an inner session could import lazily is imported here first (see `warm`).
"""
from __future__ import annotations

import json

import pytest
import torch

import rethinkbench as rb
from conftest import warm_for_pytester
from rethinkbench.engine.config import RunConfig
from rethinkbench.suite.scales import get_scale

pytestmark = pytest.mark.usefixtures("single_thread", "fast_mnist5k", "warm")

OPTIONS = ["--gpu", "--scale", "--dataset", "--seeds", "--data-root", "--imagenet-root", "--cache-dir",
           "--no-cache", "--clear-cache", "--report-dir"]
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR
# What the claim sessions below train (smoke scale: mlp1x512 at 1/4 width).
SMALL = dict(model="mlp1x512", n_train=100, max_epochs=5, stop_at_fit=False)


@pytest.fixture(scope="module")
def warm():
    warm_for_pytester()   # tests/conftest.py: why


@pytest.fixture
def pt(pytester):
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    return pytester


def dirs(pt):
    return ["--cache-dir", str(pt.path / "cache"), "--report-dir", str(pt.path / "rep")]


def results(pt, sub="rep") -> dict:
    return json.loads((pt.path / sub / "results.json").read_text())


# ----------------------------------------------------------------------------- options

def test_help_lists_every_option_with_its_default(pt):
    res = pt.runpytest("--help")
    assert res.ret == 0
    text = res.stdout.str()
    start = text.index("rethinkbench: re-check generalization claims")
    section = " ".join(text[start:].split())
    positions = []
    for opt in OPTIONS:
        assert f" {opt}" in section, f"{opt} missing from --help"
        positions.append(section.index(f" {opt}"))
    ends = positions[1:] + [section.index("[pytest]") if "[pytest]" in section else len(section)]
    for opt, a, b in zip(OPTIONS, positions, ends):
        assert "default" in section[a:b], f"{opt}'s help does not state its default: {section[a:b]!r}"


@pytest.mark.parametrize("args, shown", [
    (["--seeds", "0"], "--seeds must be a positive integer"),
    (["--seeds", "-3"], "-3"),
    (["--seeds", "x"], "'x'"),
    (["--seeds", "1.5"], "'1.5'"),
    (["--scale", "huge"], "'huge'"),
    (["--scale", "huge"], "smoke, cpu, paper"),
    (["--dataset", "nope"], "'nope'"),
    (["--dataset", "nope"], "mnist5k"),
])
def test_bad_option_values_are_usage_errors(pt, args, shown):
    res = pt.runpytest(*args)
    assert res.ret == USAGE_ERROR
    assert shown in res.stderr.str()


def test_gpu_without_cuda_is_a_usage_error(pt):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    res = pt.runpytest("--gpu")
    assert res.ret == USAGE_ERROR
    assert "--gpu" in res.stderr.str() and "CUDA" in res.stderr.str()


def test_fixtures_follow_the_options(pt):
    pt.makepyfile(test_fx="""
        def test_fx(scale, device, seeds, dataset, data_root, run):
            assert scale.name == "smoke" and device == "cpu"
            assert seeds == [0, 1]
            assert dataset.name == "mnist5k" and dataset.n_train == 4000
            assert str(data_root).endswith("somewhere")
            cfg = run.config(model="mlp3x512", seed=1)
            assert (cfg.width, cfg.n_train, cfg.seed, cfg.dataset) == (0.25, 200, 1, "mnist5k")
            assert cfg.n_test == 200   # smoke evaluates 200 test digits an epoch
    """)
    res = pt.runpytest("--scale", "smoke", "--seeds", "2", "--data-root", str(pt.path / "somewhere"),
                       *dirs(pt))
    res.assert_outcomes(passed=1)


def test_default_scale_is_cpu_with_its_seeds(pt):
    pt.makepyfile(test_fx="""
        def test_fx(scale, seeds, run):
            assert scale.name == "cpu" and seeds == [0, 1, 2]
            assert run.config().n_test is None   # cpu scale evaluates the whole test set
    """)
    pt.runpytest(*dirs(pt)).assert_outcomes(passed=1)


# ----------------------------------------------------------------------------- claims and results.json

CLAIMS = """
import pytest
from rethinkbench.suite.evidence import ClaimInfo

def info(cid):
    return ClaimInfo(id=cid, title=f"title {cid}", statement=f"statement {cid}", source="tests",
                     paper=f"paper {cid}")

SMALL = dict(n_train=100, max_epochs=5, stop_at_fit=False)

@pytest.mark.claim(info("T-pass"))
@pytest.mark.models(default=["mlp1x512"])
def test_pass(claim, run, model):
    r = run(model=model, **SMALL)
    claim.test = "train acc > 0"
    claim.measure("final_train_acc", [r.final_train_acc], paper=1.0, tolerance={"abs": 0.5})
    assert r.final_train_acc > 0, claim.rejected("no training accuracy")

@pytest.mark.claim(info("T-fail"))
def test_fail(claim, run):
    r = run(model="mlp1x512", **SMALL)
    claim.measure("final_train_acc", r.final_train_acc)
    assert r.final_train_acc > 2, claim.rejected(f"train acc {r.final_train_acc:.3f} <= 2")

@pytest.mark.claim(info("T-xfail"))
def test_xfail(claim, run):
    r = run(model="mlp1x512", **SMALL)
    claim.measure("final_test_acc", r.final_test_acc)
    claim.not_reproduced(f"test acc {r.final_test_acc:.3f} at smoke scale")

@pytest.mark.claim(info("T-skip"))
def test_skip(claim):
    pytest.skip("needs ImageNet (--imagenet-root)")

@pytest.mark.claim(info("T-mixed"))
@pytest.mark.parametrize("need", [0.0, 2.0])
def test_mixed(claim, run, need):
    r = run(model="mlp1x512", **SMALL)
    assert r.final_train_acc >= need, claim.rejected("below")
"""

TOP_KEYS = {"schema", "rethinkbench_version", "created", "total_seconds", "scale", "dataset", "device",
            "provenance", "claims", "runs"}
PROVENANCE_KEYS = {"rethinkbench_version", "git_commit", "git_dirty", "python", "torch", "cuda",
                   "device_name", "device_kind", "platform", "hostname", "date"}
CLAIM_KEYS = {"id", "title", "statement", "source", "paper", "verdict", "items"}
ITEM_KEYS = {"nodeid", "params", "outcome", "verdict", "reason", "test", "duration", "measured", "runs",
             "figures"}
RUN_KEYS = {"key", "config", "cached", "train_seconds", "device_kind", "epochs_to_fit", "steps_to_fit",
            "final_train_acc", "final_test_acc", "best_test_acc", "history"}
HISTORY_KEYS = {"epoch", "step", "train_loss", "train_acc", "test_acc", "seconds"}


@pytest.fixture
def claim_session(pt):
    """One smoke session over CLAIMS: (pytester, RunResult, results.json)."""
    pt.makepyfile(test_claims=CLAIMS)
    res = pt.runpytest("--scale", "smoke", *dirs(pt))
    return pt, res, results(pt)


def small_key() -> str:
    return get_scale("smoke").config(**SMALL).key()


def test_claim_session_outcomes_and_summary(claim_session):
    pt, res, _ = claim_session
    res.assert_outcomes(passed=2, xfailed=3, skipped=1)
    out = res.stdout.str()
    assert "rethinkbench claims" in out
    assert "runs: 1 trained, 0 from the cache" in out
    assert f"rethinkbench: results in {pt.path / 'rep' / 'results.json'}" in out
    for cid in ("T-pass", "T-fail", "T-xfail", "T-skip", "T-mixed"):
        assert cid in out


def test_results_json_follows_the_schema(claim_session):
    _, _, rj = claim_session
    assert TOP_KEYS <= set(rj)
    assert rj["schema"] == 1 and rj["rethinkbench_version"] == rb.__version__
    assert (rj["scale"], rj["dataset"], rj["device"]) == ("smoke", "mnist5k", "cpu")
    assert PROVENANCE_KEYS <= set(rj["provenance"])
    assert rj["total_seconds"] > 0 and rj["created"][:2] == "20"
    assert [c["id"] for c in rj["claims"]] == ["T-pass", "T-fail", "T-xfail", "T-skip", "T-mixed"]
    for c in rj["claims"]:
        assert CLAIM_KEYS <= set(c), c["id"]
        assert c["title"] == f"title {c['id']}" and c["paper"] == f"paper {c['id']}"
        for item in c["items"]:
            assert ITEM_KEYS <= set(item), (c["id"], set(item))
            assert item["duration"] >= 0
    # the one run every claim shared
    assert list(rj["runs"]) == [small_key()]
    run = rj["runs"][small_key()]
    assert RUN_KEYS <= set(run)
    assert run["key"] == small_key() and run["cached"] is False and run["train_seconds"] > 0
    assert RunConfig.from_dict(run["config"]) == get_scale("smoke").config(**SMALL)
    assert len(run["history"]) == 5 and all(HISTORY_KEYS <= set(h) for h in run["history"])
    json.dumps(rj, allow_nan=False)   # strict JSON


def test_verdicts_reasons_and_measurements(claim_session):
    _, _, rj = claim_session
    claims = {c["id"]: c for c in rj["claims"]}
    (item,) = claims["T-pass"]["items"]
    assert claims["T-pass"]["verdict"] == "reproduced"
    assert (item["outcome"], item["verdict"], item["reason"]) == ("passed", "reproduced", "")
    assert item["params"] == {"model": "mlp1x512"} and item["test"] == "train acc > 0"
    assert item["runs"] == [small_key()]
    m = item["measured"]["final_train_acc"]
    assert m["n"] == 1 and m["values"] == [m["value"]] and m["paper"] == 1.0
    assert m["tolerance"] == {"abs": 0.5} and 0 < m["value"] <= 1

    # Smoke scale: a claim's rejection is inconclusive, an xfail to pytest (test_first_hour.py);
    # at cpu scale the same is "not reproduced" (test_error_verdict.py).
    (item,) = claims["T-fail"]["items"]
    assert claims["T-fail"]["verdict"] == "inconclusive"
    assert (item["outcome"], item["verdict"]) == ("inconclusive", "inconclusive")
    assert item["reason"].startswith("inconclusive at smoke scale: T-fail rejected: train acc")
    assert "value" in item["measured"]["final_train_acc"]

    (item,) = claims["T-xfail"]["items"]
    assert claims["T-xfail"]["verdict"] == "inconclusive"
    assert (item["outcome"], item["verdict"]) == ("inconclusive", "inconclusive")
    assert "T-xfail not reproduced: test acc" in item["reason"]
    assert "final_test_acc" in item["measured"], "measured before not_reproduced() is kept"

    (item,) = claims["T-skip"]["items"]
    assert claims["T-skip"]["verdict"] == "skipped"
    assert (item["outcome"], item["verdict"]) == ("skipped", "skipped")
    assert "needs ImageNet" in item["reason"] and item["runs"] == []

    mixed = claims["T-mixed"]
    assert mixed["verdict"] == "inconclusive"
    assert [(i["params"], i["verdict"]) for i in mixed["items"]] == [
        ({"need": 0.0}, "reproduced"), ({"need": 2.0}, "inconclusive")]


def test_second_session_comes_from_the_cache_and_no_cache_trains_again(claim_session):
    pt, _, first = claim_session
    entry = pt.path / "cache" / f"{small_key()}.json"
    assert entry.exists() and (pt.path / "cache" / ".gitignore").exists()

    again = pt.runpytest("--scale", "smoke", *dirs(pt))
    again.assert_outcomes(passed=2, xfailed=3, skipped=1)
    assert "runs: 0 trained, 1 from the cache" in again.stdout.str()
    rj = results(pt)
    assert rj["runs"][small_key()]["cached"] is True
    assert rj["runs"][small_key()]["history"] == first["runs"][small_key()]["history"]
    assert [c["verdict"] for c in rj["claims"]] == [c["verdict"] for c in first["claims"]]

    stamp = entry.stat().st_mtime_ns
    fresh = pt.runpytest("--scale", "smoke", "--no-cache", *dirs(pt))
    fresh.assert_outcomes(passed=2, xfailed=3, skipped=1)
    assert "runs: 1 trained, 0 from the cache" in fresh.stdout.str()
    assert results(pt)["runs"][small_key()]["cached"] is False
    assert entry.stat().st_mtime_ns == stamp, "--no-cache wrote the cache"

    cleared = pt.runpytest("--scale", "smoke", "--clear-cache", *dirs(pt))
    assert "runs: 1 trained, 0 from the cache" in cleared.stdout.str()
    assert entry.exists()


def test_run_many_with_one_config_spelled_two_ways(pt):
    """weight_decay=0 and weight_decay=0.0 are equal RunConfigs (one run); run.many must return a
    result for both, trained once."""
    pt.makepyfile(test_dup="""
        import pytest
        from rethinkbench.suite.evidence import ClaimInfo

        @pytest.mark.claim(ClaimInfo(id="T-dup", title="t", statement="s", source="x"))
        def test_dup(claim, run):
            small = dict(model="mlp1x512", n_train=100, max_epochs=1)
            a, b = run.many([dict(small, weight_decay=0), dict(small, weight_decay=0.0)])
            assert a.history == b.history
    """)
    res = pt.runpytest("--scale", "smoke", *dirs(pt))
    res.assert_outcomes(passed=1)
    assert "runs: 1 trained, 0 from the cache" in res.stdout.str()


def test_relative_report_and_cache_dirs_are_under_the_rootdir(pt):
    pt.makepyfile(test_claims=CLAIMS)
    res = pt.runpytest("--scale", "smoke", "-k", "test_pass", "--cache-dir", "c", "--report-dir", "out")
    res.assert_outcomes(passed=1)
    assert results(pt, "out")["claims"][0]["id"] == "T-pass"
    assert (pt.path / "c" / f"{small_key()}.json").exists()


def test_dataset_option_runs_the_claims_on_other_data(pt, fake_cifar10):
    root, _ = fake_cifar10
    pt.makepyfile(test_other_data="""
        import pytest
        from rethinkbench.suite.evidence import ClaimInfo

        @pytest.mark.claim(ClaimInfo(id="T-data", title="t", statement="s", source="x"))
        def test_d(claim, run, dataset):
            r = run(model="mlp1x512", n_train=20, max_epochs=2)
            assert dataset.name == "cifar10" and dataset.in_shape == (3, 28, 28)
            assert r.config.dataset == "cifar10" and len(r.history) <= 2
    """)
    # "--opt=PATH": a separate PATH outside the rootdir would be taken for a test path before the
    # plugin's options are known, and the rootdir would move above the conftest
    res = pt.runpytest("--scale", "smoke", "--dataset", "cifar10", f"--data-root={root}", *dirs(pt))
    res.assert_outcomes(passed=1)
    rj = results(pt)
    assert rj["dataset"] == "cifar10"
    assert [r["config"]["dataset"] for r in rj["runs"].values()] == ["cifar10"]


def test_missing_dataset_fails_naming_the_path(pt, tmp_path, monkeypatch):
    """Files that vanish after the configure-time check (test_first_hour.py) still fail the test
    that loads them, naming the path."""
    import rethinkbench.suite.plugin.state as state

    monkeypatch.setattr(state, "missing_dataset", lambda name, root: None)
    pt.makepyfile(test_missing="def test_d(dataset):\n    pass\n")
    missing = tmp_path / "empty-root"
    res = pt.runpytest("--dataset", "cifar10", f"--data-root={missing}", *dirs(pt))
    res.assert_outcomes(failed=0, errors=1)
    res.stdout.fnmatch_lines([f"*could not load dataset 'cifar10'*{missing}*"])


def test_no_claims_no_results_file(pt):
    pt.makepyfile(test_plain="def test_plain():\n    pass\n")
    pt.runpytest(*dirs(pt)).assert_outcomes(passed=1)
    assert not (pt.path / "rep" / "results.json").exists()


# ----------------------------------------------------------------------------- markers

def test_scales_marker_skips_with_a_reason_naming_the_flag(pt):
    pt.makepyfile(test_sc="""
        import pytest
        from rethinkbench.suite.evidence import ClaimInfo

        @pytest.mark.scales("paper")
        def test_paper_only():
            pass

        @pytest.mark.scales("smoke", "cpu")
        def test_small_only():
            pass

        @pytest.mark.claim(ClaimInfo(id="T-paper", title="t", statement="s", source="x"))
        @pytest.mark.scales("paper")
        def test_paper_claim(claim):
            pass
    """)
    res = pt.runpytest("--scale", "smoke", "-rs", *dirs(pt))
    res.assert_outcomes(passed=1, skipped=2)
    res.stdout.fnmatch_lines(["*SKIPPED*runs at scale paper only; this session is --scale smoke (use --gpu)*"])
    (claim,) = results(pt)["claims"]
    assert claim["verdict"] == "skipped" and "--gpu" in claim["items"][0]["reason"]


def test_scales_marker_at_cpu_names_the_scale_flag(pt):
    pt.makepyfile(test_sc="""
        import pytest

        @pytest.mark.scales("smoke")
        def test_smoke_only():
            pass
    """)
    res = pt.runpytest("-rs", *dirs(pt))
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["*--scale cpu (use --scale smoke)*"])


MODELS_FILE = """
import pytest

@pytest.mark.models(default=["mlp1x512", "mlp3x512"], smoke=["alexnet_small"])
def test_m(model):
    assert model in ("mlp1x512", "mlp3x512", "alexnet_small")
"""


@pytest.mark.parametrize("scale, ids", [("smoke", ["alexnet_small"]), ("cpu", ["mlp1x512", "mlp3x512"])])
def test_models_marker_parametrizes_per_scale(pt, scale, ids):
    pt.makepyfile(test_models_marker=MODELS_FILE)
    res = pt.runpytest("--scale", scale, "-v", *dirs(pt))
    res.assert_outcomes(passed=len(ids))
    res.stdout.fnmatch_lines([f"*test_m[[]{m}[]] PASSED*" for m in ids])


def test_models_marker_without_a_list_for_the_scale_is_an_error(pt):
    pt.makepyfile(test_nolist="""
        import pytest

        @pytest.mark.models(paper=["inception_small"])
        def test_m(model):
            pass
    """)
    res = pt.runpytest("--scale", "smoke", *dirs(pt))
    assert res.ret != 0
    assert "has no list for scale 'smoke'" in res.stdout.str() + res.stderr.str()


def test_claim_fixture_without_the_marker_is_an_error(pt):
    pt.makepyfile(test_nomark="""
        def test_c(claim):
            pass
    """)
    res = pt.runpytest(*dirs(pt))
    res.assert_outcomes(errors=1)
    res.stdout.fnmatch_lines(["*uses the `claim` fixture but has no @pytest.mark.claim*"])


def test_claim_marker_needs_a_claim_info(pt):
    pt.makepyfile(test_badmark="""
        import pytest

        @pytest.mark.claim("Z-F1a-fit")
        def test_c(claim):
            pass
    """)
    res = pt.runpytest(*dirs(pt))
    assert res.ret != 0
    assert "@pytest.mark.claim takes a ClaimInfo" in res.stdout.str() + res.stderr.str()
