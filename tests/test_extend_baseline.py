"""scripts/extend_baseline.py: a baseline grows by the claims, items and runs a newer session adds,
and keeps every value it had; a regression, a dirty tree or an error verdict writes nothing."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import report_samples as samples
from conftest import load_file_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    return load_file_module(ROOT / "scripts" / "extend_baseline.py", "extend_baseline")


def _one_thread(results):
    for run in results["runs"].values():
        run["device_kind"] = "cpu:Intel(R) Xeon(R) Processor x1"
    return results


@pytest.fixture
def pair():
    """(baseline, new): new = the baseline's two claims, re-measured with last-bit differences, plus
    a third claim and its runs."""
    new = _one_thread(samples.sample_results(claims=3))
    base = copy.deepcopy(new)
    base["claims"] = base["claims"][:2]
    base["runs"] = {k: r for k, r in base["runs"].items() if any(k in i["runs"] for c in base["claims"] for i in c["items"])}
    for claim in new["claims"][:2]:
        for item in claim["items"]:
            for m in item["measured"].values():
                if isinstance(m.get("value"), float):
                    m["value"] *= 1 + 1e-12
    new["provenance"]["git_commit"] = "feedface" * 5
    return base, new


def test_new_claims_and_runs_are_added_and_old_values_kept(script, pair, tmp_path):
    base, new = pair
    paths = [tmp_path / "base.json", tmp_path / "new.json"]
    for p, d in zip(paths, pair):
        p.write_text(json.dumps(d))
    assert script.main([str(paths[0]), str(paths[1])]) == 0
    out = json.loads(paths[0].read_text())
    assert [c["id"] for c in out["claims"]] == [c["id"] for c in new["claims"]]
    assert out["claims"][:2] == base["claims"]                    # old items exactly as stored
    assert out["runs"].keys() == new["runs"].keys()
    assert all(out["runs"][k] == base["runs"][k] for k in base["runs"])
    assert out["provenance"] == base["provenance"]
    (ext,) = out["extended"]
    assert ext["git_commit"] == "feedface" * 5
    assert ext["items"] == [i["nodeid"] for i in new["claims"][2]["items"]]
    assert set(ext["runs"]) == set(new["runs"]) - set(base["runs"])


def test_a_regression_writes_nothing(script, pair, tmp_path, capsys):
    base, new = pair
    new["claims"][0]["items"][0]["outcome"] = "failed"
    new["claims"][0]["items"][0]["verdict"] = "not_reproduced"
    paths = [tmp_path / "base.json", tmp_path / "new.json"]
    for p, d in zip(paths, (base, new)):
        p.write_text(json.dumps(d))
    before = paths[0].read_text()
    assert script.main([str(paths[0]), str(paths[1])]) == 1
    assert paths[0].read_text() == before
    assert "regresses against the baseline: nothing written" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda n: n["provenance"].update(git_dirty=True), "dirty tree"),
    (lambda n: n.update(scale="smoke"), "scale differs: baseline 'cpu', new 'smoke'"),
    (lambda n: n["claims"][2]["items"][0].update(verdict="error"), "error verdict"),
    (lambda n: next(iter(n["runs"].values())).update(device_kind="cpu:Intel x2"), "one-thread CPU runs only"),
])
def test_what_cannot_extend_a_baseline_is_refused(script, pair, change, message):
    base, new = pair
    if "device_kind" in message or "one-thread" in message:   # make the changed run a new one
        key = next(k for k in new["runs"] if k not in base["runs"])
        new["runs"][key]["device_kind"] = "cpu:Intel x2"
    else:
        change(new)
    with pytest.raises(ValueError, match=message):
        script.extend(base, new)
