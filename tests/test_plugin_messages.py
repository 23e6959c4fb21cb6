"""What a plugin user reads when a name is wrong (issue 21, item 9): an error raised inside their
module is shown as itself with its traceback (not as a missing module), a dotted name is pointed
to the module:attr form, and a missing attribute lists what the module does define."""
from __future__ import annotations

import sys

import pytest

import rethinkbench as rb
from rethinkbench import registry


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    """`rb_user_pkg` on sys.path: nets.py imports fine; broken.py imports a missing package;
    raises.py raises while importing."""
    pkg = tmp_path / "rb_user_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "import torch\n\n\ndef mlp2(in_shape, num_classes, width):\n    return torch.nn.Flatten()\n\n\n"
        "def mlp3(in_shape, num_classes, width):\n    return torch.nn.Flatten()\n\n\n"
        "class Small(torch.nn.Module):\n    pass\n\n\n_private = 1\n")
    (pkg / "broken.py").write_text("import os\nimport rb_no_such_dependency  # line 2\n")
    (pkg / "raises.py").write_text("X = 1\nraise ValueError('bad config in the plugin')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    yield "rb_user_pkg"
    registry.reset()
    for name in [m for m in sys.modules if m.startswith("rb_user_pkg")]:
        del sys.modules[name]


def test_an_import_error_inside_the_plugin_shows_itself_and_its_traceback(user_pkg):
    with pytest.raises(rb.UsageError) as exc:
        registry.resolve_model(f"{user_pkg}.broken:net")
    text = str(exc.value)
    assert (f"model plugin '{user_pkg}.broken:net': module '{user_pkg}.broken' was found, but "
            f"importing it raised ModuleNotFoundError: No module named 'rb_no_such_dependency'") in text
    assert "Traceback (most recent call last):" in text
    assert "broken.py\", line 2, in <module>" in text and "import rb_no_such_dependency" in text
    assert "cannot import module" not in text and "PYTHONPATH" not in text


def test_any_exception_while_importing_the_plugin_shows_its_traceback(user_pkg):
    with pytest.raises(rb.UsageError) as exc:
        registry.resolve_model(f"{user_pkg}.raises:net")
    text = str(exc.value)
    assert "importing it raised ValueError: bad config in the plugin" in text
    assert "raises.py\", line 2, in <module>" in text


def test_a_missing_module_is_still_a_missing_module(user_pkg):
    with pytest.raises(rb.UsageError, match=r"cannot import module 'rb_user_pkg\.gone' .*PYTHONPATH"):
        registry.resolve_model(f"{user_pkg}.gone:net")


def test_a_missing_attribute_lists_the_candidates(user_pkg):
    with pytest.raises(rb.UsageError) as exc:
        registry.resolve_model(f"{user_pkg}.nets:mlp4")
    assert str(exc.value) == (f"model plugin '{user_pkg}.nets:mlp4': module '{user_pkg}.nets' has no "
                              f"attribute 'mlp4'; did you mean 'mlp3'? its public callables: Small, "
                              f"mlp2, mlp3")


def test_a_dotted_name_suggests_the_module_attr_form(user_pkg):
    with pytest.raises(rb.UsageError) as exc:
        registry.resolve_model(f"{user_pkg}.nets.mlp2")
    assert str(exc.value).startswith(f"unknown model '{user_pkg}.nets.mlp2'; did you mean the "
                                      f"import path {user_pkg}.nets:mlp2 (module:attribute, with a colon)?")
    with pytest.raises(rb.UsageError) as exc:
        registry.resolve_model("resnet")
    assert "did you mean" not in str(exc.value)


CLAIMS = '''
import pytest
from rethinkbench.suite.evidence import ClaimInfo


def info(cid):
    return ClaimInfo(id=cid, title=cid, statement="s", source="tests")


@pytest.mark.claim(info("U-generic"))
@pytest.mark.models(default=["mlp1x512"])
def test_generic(claim, run, model):
    run(model=model)


@pytest.mark.claim(info("U-own-net"))
def test_own_net(claim, run):
    run(model="mypkg.nets:mlp2")


@pytest.mark.claim(info("U-theory"))
def test_theory(claim):
    pass
'''


def test_list_tags_a_claim_that_trains_its_own_network(tmp_path):
    from rethinkbench.suite.listing import collect_claims, format_listing

    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_user_claims.py").write_text(CLAIMS)
    claims = collect_claims(tmp_path / "claims")
    text = format_listing({"models": [], "datasets": [], "corruptions": [], "scales": [],
                           "claims": claims})
    assert "U-generic  U-generic  [runs on --model]" in text
    assert "U-own-net  U-own-net  [trains the networks it names, not --model]" in text
    assert "U-theory   U-theory  [trains no network]" in text


def test_results_record_the_models_an_item_trained():
    from rethinkbench.suite.session import ResultsSession

    rs = ResultsSession("smoke", "mnist5k", "cpu")
    info = {"id": "U-own-net", "title": "t", "statement": "s", "source": "x", "paper": ""}
    runs = {"k1": {"config": {"model": "mypkg.nets:mlp2"}, "cached": False},
            "k2": {"config": {"model": "mlp1x512"}, "cached": True}}
    rs.add({"info": info, "evidence": {"nodeid": "t.py::test_own_net"}, "runs": runs}, "passed", "", 0.1)
    results = rs.results()
    assert results["model"] is None   # --model was not given
    (claim,) = results["claims"]
    assert claim["models"] == ["mlp1x512", "mypkg.nets:mlp2"]
    assert claim["items"][0]["models"] == ["mlp1x512", "mypkg.nets:mlp2"]


def test_a_dataset_repr_is_one_short_line(make_dataset):
    ds = make_dataset(n=500, shape=(1, 28, 28), n_test=100, name="digits")
    assert repr(ds) == "Dataset('digits', train 500x(1, 28, 28), test 100, 10 classes, cpu)"
    corrupted = rb.corrupt(make_dataset(raw=True), "random_labels", seed=0)
    assert repr(corrupted).endswith(", raw images, corrupted)") and "\n" not in repr(corrupted)
    assert "tensor(" not in repr(corrupted)


def test_cache_info_counts_runs_and_size_by_model_dataset_and_scale(tmp_path, capsys):
    import json

    from rethinkbench.cli import main
    from rethinkbench.suite.scales import get_scale

    cache = tmp_path / "cache"
    cache.mkdir()
    configs = [get_scale("smoke").config(model="mlp1x512", seed=s).to_dict() for s in (0, 1)]
    configs.append(get_scale("cpu").config(model="inception_small").to_dict())
    configs.append({**configs[0], "model": "mypkg.nets:mlp2", "width": 1.0})
    for i, config in enumerate(configs):
        (cache / f"{i:020x}.json").write_text(json.dumps({"config": config}))
    (cache / f"{0:020x}.pt").write_bytes(b"\0" * 2048)
    (cache / f"{9:020x}.json").write_text("{not json")
    (cache / "notes.txt").write_text("not an entry")

    assert main(["cache", "info", "--cache-dir", str(cache), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["entries"], info["unreadable"]) == (5, 1)
    assert info["bytes"] == sum(p.stat().st_size for p in cache.iterdir() if p.name != "notes.txt")
    assert [(g["model"], g["scale"], g["entries"]) for g in info["groups"]] == [
        ("inception_small", "cpu", 1), ("mlp1x512", "smoke", 2), ("mypkg.nets:mlp2", "other", 1)]

    assert main(["cache", "info", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"5 cached run(s), ") and "(1 unreadable" in out[0]
    assert out[1].split() == ["model", "dataset", "scale", "runs", "size"]
    assert out[3].split()[:4] == ["mlp1x512", "mnist5k", "smoke", "2"]

    assert main(["cache", "info", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "holds no runs" in capsys.readouterr().out
