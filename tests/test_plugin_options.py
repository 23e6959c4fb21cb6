"""--model, --dataset plugins and --lr in the pytest plugin, through pytester: resolution and checks
before anything trains, which claims run or skip on a user's model, what results.json and the report
say, and that a changed plugin retrains instead of reading the cache (issue 12)."""
from __future__ import annotations

import json
import sys

import pytest

from rethinkbench import registry

pytestmark = pytest.mark.usefixtures("single_thread", "fast_mnist5k", "warm")
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR

NETS = '''
import math
from torch import nn

def mlp(in_shape, num_classes, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), 16), nn.ReLU(),
                         nn.Linear(16, num_classes))
mlp.version = "{version}"
mlp.default_lr = 0.05

def wrong_classes(in_shape, num_classes, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), num_classes + 1))
wrong_classes.default_lr = 0.05

def no_lr(in_shape, num_classes, width):
    return mlp(in_shape, num_classes, width)
'''

DATA = '''
import torch
import rethinkbench as rb

def load(seed, root):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 1, 6, 6, generator=g)
    return rb.Dataset(x, torch.arange(60) % 3, x[:12].clone(), torch.arange(12) % 3, num_classes=3)
load.version = "1"

def nan(seed, root):
    ds = load(seed, root)
    ds.x_test[0, 0, 0, 0] = float("nan")
    return ds
'''

CLAIMS = '''
import pytest
from rethinkbench.suite.evidence import ClaimInfo

GENERIC = ClaimInfo(id="T-generic", title="t", statement="s", source="tests", paper="p")
PAPER = ClaimInfo(id="T-paper", title="t", statement="s", source="tests", paper="p",
                  paper_specific="it compares the paper's fixed networks")
DROP = ClaimInfo(id="T-dropout", title="t", statement="s", source="tests")

@pytest.mark.claim(GENERIC)
@pytest.mark.models(default=["mlp1x512", "mlp3x512"])
def test_generic(claim, run, model):
    r = run(model=model, max_epochs=2, stop_at_fit=False)
    claim.measure("final_train_acc", r.final_train_acc, paper=0.9)

@pytest.mark.claim(PAPER)
def test_paper(claim, run):
    run(model="mlp1x512", max_epochs=1, stop_at_fit=False)

@pytest.mark.claim(DROP)
@pytest.mark.models(default=["mlp1x512"])
@pytest.mark.requires("dropout")
def test_dropout(claim, run, model):
    run(model=model, dropout=0.5, max_epochs=1, stop_at_fit=False)
'''


@pytest.fixture(scope="module")
def warm():
    import importlib

    for name in ("rethinkbench.report", "rethinkbench.report.render", "rethinkbench.report.figures",
                 "rethinkbench.suite.session", "rethinkbench.base.provenance", "rethinkbench.engine.plan",
                 "mlxtend.data", "tqdm", "hypothesis", "hypothesis.extra.pytestplugin"):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    # Train once, so that torch's lazily imported submodules are in place before pytester's
    # sys.modules snapshot (tests/test_plugin.py's `warm` does the same).
    import torch

    import rethinkbench as rb
    ds = rb.Dataset(torch.randn(8, 1, 4, 4), torch.arange(8) % 2, torch.randn(2, 1, 4, 4),
                    torch.zeros(2, dtype=torch.int64), num_classes=2)
    rb.train(rb.RunConfig(dataset="custom:warm", width=0.05, max_epochs=1), dataset=ds)


@pytest.fixture
def pt(pytester):
    pytester.makeconftest('pytest_plugins = ["rethinkbench.pytest_plugin"]')
    pytester.makepyfile(rb_user_nets=NETS.format(version="1"), rb_user_data=DATA)
    pytester.syspathinsert()
    yield pytester
    registry.reset()
    for name in ("rb_user_nets", "rb_user_data"):
        sys.modules.pop(name, None)


def dirs(pt):
    return ["--cache-dir", str(pt.path / "cache"), "--report-dir", str(pt.path / "rep"),
            "-p", "no:cacheprovider"]


def results(pt) -> dict:
    return json.loads((pt.path / "rep" / "results.json").read_text())


# ----------------------------------------------------------------------------- errors at configure

@pytest.mark.parametrize("args, shown", [
    (["--model", "digits"], ["unknown model 'digits'", "mlp1x512", "rethinkbench.models", "module:factory"]),
    (["--dataset", "digits"], ["unknown dataset 'digits'", "mnist5k", "rethinkbench.datasets", "custom:<id>"]),
    (["--model", "rb_user_nets:wrong_classes"],
     ["model plugin 'rb_user_nets:wrong_classes': output shape (2, 11)", "expected (2, 10)"]),
    (["--model", "rb_user_nets:no_lr"], ["model plugin 'rb_user_nets:no_lr' declares no default_lr", "--lr"]),
    (["--model", "rb_user_nets:wrong_classes", "--dataset", "rb_user_data:load"],
     ["output shape (2, 4)", "expected (2, 3)"]),
    (["--dataset", "rb_user_data:nan"], ["dataset plugin 'rb_user_data:nan' returned bad data", "x_test has 1 non-finite"]),
    (["--model", "nope_pkg:f"], ["model plugin 'nope_pkg:f': cannot import module 'nope_pkg'"]),
    (["--lr", "0"], ["--lr must be a positive number"]),
    (["--lr", "fast"], ["--lr must be a positive number, got 'fast'"]),
])
def test_bad_plugins_and_options_are_usage_errors_before_training(pt, args, shown):
    pt.makepyfile(test_claims=CLAIMS)
    res = pt.runpytest("--scale", "smoke", *args, *dirs(pt))
    assert res.ret == USAGE_ERROR
    err = res.stderr.str()
    for text in shown:
        assert text in err, err
    assert not (pt.path / "cache").exists() or not list((pt.path / "cache").glob("*.json"))


def test_a_plugin_without_default_lr_runs_with_lr(pt):
    pt.makepyfile(test_claims=CLAIMS)
    res = pt.runpytest("--scale", "smoke", "--model", "rb_user_nets:no_lr", "--lr", "0.02",
                       "-k", "generic", *dirs(pt))
    res.assert_outcomes(passed=1, deselected=2)
    run = next(iter(results(pt)["runs"].values()))
    assert run["config"]["lr"] == 0.02 and results(pt)["lr"] == 0.02


def test_help_shows_the_plugin_options_even_with_a_bad_model(pt):
    res = pt.runpytest("--help", "--model", "digits")
    assert res.ret == 0
    out = " ".join(res.stdout.str().split())
    assert "--model=NAME" in out and "--lr=X" in out and "module:factory" in out and "module:loader" in out


# ----------------------------------------------------------------------------- a session on a plugin

def test_a_plugin_model_runs_generic_claims_and_skips_paper_ones_with_the_reason(pt):
    pt.makepyfile(test_claims=CLAIMS)
    res = pt.runpytest("--scale", "smoke", "--model", "rb_user_nets:mlp", "--dataset", "rb_user_data:load",
                       "-rs", *dirs(pt))
    res.assert_outcomes(passed=1, skipped=2)
    res.stdout.fnmatch_lines([
        "rethinkbench: scale smoke, device cpu, dataset rb_user_data:load (import path, version 1), "
        "model rb_user_nets:mlp (import path, version 1)",
        "*T-paper is about the paper's own networks (it compares the paper's fixed networks); this "
        "session's --model rb_user_nets:mlp is not one of them",
        "*T-dropout varies dropout, and model plugin 'rb_user_nets:mlp'*has no `dropout` keyword*",
    ])
    rj = results(pt)
    assert (rj["model"], rj["dataset"]) == ("rb_user_nets:mlp", "rb_user_data:load")
    assert rj["plugins"]["model"] == {"name": "rb_user_nets:mlp", "source": "import path",
                                      "origin": "import path", "version": "1", "default_lr": 0.05}
    assert rj["plugins"]["dataset"]["version"] == "1"
    assert "rb_user_nets:mlp is not one of the paper's networks" in rj["not_comparable"]
    claims = {c["id"]: c for c in rj["claims"]}
    generic = claims["T-generic"]["items"]
    assert [i["params"]["model"] for i in generic] == ["rb_user_nets:mlp"]   # not the paper's list
    m = generic[0]["measured"]["final_train_acc"]
    assert m["paper"] is None and m["paper_note"].startswith("not comparable: ") and "paper: 0.9" in m["paper_note"]
    assert claims["T-paper"]["paper_specific"] == "it compares the paper's fixed networks"
    (run,) = rj["runs"].values()
    assert (run["config"]["model_version"], run["config"]["dataset_version"], run["config"]["lr"]) == ("1", "1", 0.05)
    html = (pt.path / "rep" / "index.html").read_text()
    assert "<dt>Model</dt><dd>rb_user_nets:mlp — import path, version 1" in html
    assert "not comparable" in html


def test_a_builtin_model_keeps_paper_claims_and_comparisons(pt):
    pt.makepyfile(test_claims=CLAIMS)
    res = pt.runpytest("--scale", "smoke", "--model", "mlp3x512", "-k", "generic or paper", *dirs(pt))
    res.assert_outcomes(passed=2, deselected=1)
    rj = results(pt)
    assert rj["model"] == "mlp3x512" and "plugins" not in rj and "not_comparable" not in rj
    (item,) = next(c for c in rj["claims"] if c["id"] == "T-generic")["items"]
    assert item["params"]["model"] == "mlp3x512" and item["measured"]["final_train_acc"]["paper"] == 0.9


def test_default_session_names_no_model(pt):
    pt.makepyfile(test_claims=CLAIMS)
    pt.runpytest("--scale", "smoke", "-k", "paper", *dirs(pt)).assert_outcomes(passed=1, deselected=3)
    rj = results(pt)
    assert rj["model"] is None and "plugins" not in rj and "not_comparable" not in rj


# ----------------------------------------------------------------------------- versions and the cache

def _trained_and_cached(res) -> str:
    return next(line for line in res.stdout.lines if line.startswith("runs: "))


@pytest.mark.parametrize("change", ["version", "source"])
def test_a_changed_plugin_retrains_instead_of_reading_the_cache(pt, change):
    """version: the factory's `version` attribute is bumped; source: the factory has no version
    attribute, so its module's hash is the version, and the file is edited."""
    if change == "source":
        pt.makepyfile(rb_user_nets=NETS.replace('mlp.version = "{version}"\n', ""))
    pt.makepyfile(test_claims=CLAIMS)
    args = ["--scale", "smoke", "--model", "rb_user_nets:mlp", "-k", "generic", *dirs(pt)]
    first = pt.runpytest(*args)
    assert _trained_and_cached(first).startswith("runs: 1 trained, 0 from the cache")
    again = pt.runpytest(*args)
    assert _trained_and_cached(again).startswith("runs: 0 trained, 1 from the cache")
    version_before = results(pt)["plugins"]["model"]["version"]

    if change == "version":
        pt.makepyfile(rb_user_nets=NETS.format(version="2"))
    else:   # a different size too: a .pyc of the same size and second could pass for fresh
        pt.makepyfile(rb_user_nets=NETS.replace('mlp.version = "{version}"\n', "") + "# a new layer size\n")
    changed = pt.runpytest(*args)
    assert _trained_and_cached(changed).startswith("runs: 1 trained, 0 from the cache")
    version_after = results(pt)["plugins"]["model"]["version"]
    assert version_after != version_before
    if change == "version":
        assert (version_before, version_after) == ("1", "2")
    else:
        assert version_after.startswith("sha256:")
    assert len(list((pt.path / "cache").glob("*.json"))) == 2
