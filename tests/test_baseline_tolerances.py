"""The committed cpu baseline declares tolerances by the rule of docs/results-schema.md
(Tolerances): what another CPU changes passes `compare`, a real change still fails."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rethinkbench.report.compare import compare

BASELINE = Path(__file__).resolve().parents[1] / "reports" / "baselines" / "cpu-mnist5k.json"


@pytest.fixture(scope="module")
def baseline() -> dict:
    return json.loads(BASELINE.read_text())


def _measures(results):
    for claim in results["claims"]:
        for item in claim["items"]:
            for name, m in item["measured"].items():
                yield claim["id"], item, name, m


def _find(results, claim_id, name, nodeid_part=""):
    return next(m for cid, item, n, m in _measures(results)
                if cid == claim_id and n == name and nodeid_part in item["nodeid"])


def test_condition_numbers_are_compared_on_a_log_scale(baseline):
    conds = [(cid, name, m.get("tolerance")) for cid, _, name, m in _measures(baseline) if name.startswith("cond")]
    assert conds and all(t == {"log10": 1.0} for *_, t in conds), conds


def test_every_multi_seed_tolerance_allows_seed_noise(baseline):
    missing = [(cid, name) for cid, _, name, m in _measures(baseline)
               if m.get("tolerance") and (m.get("n") or 1) >= 2 and "se" not in m["tolerance"]]
    assert missing == []


def _changed(baseline, claim_id, name, how, nodeid_part=""):
    current = copy.deepcopy(baseline)
    m = _find(current, claim_id, name, nodeid_part)
    m["value"] = how(m["value"])
    return compare(baseline, current)


def test_what_another_cpu_moves_passes(baseline):
    # Measured: an AMD EPYC gave cond_1(A) = 1.83e10 where the Intel baseline has 2.27e10.
    assert _changed(baseline, "Z-TH1", "cond1_A", lambda v: v * 1.83 / 2.27).ok
    # Measured with AVX2 forced: random-label test accuracy of mlp1x512 moved 1.7 points.
    assert _changed(baseline, "Z-T1-rand-chance", "test_acc", lambda v: v + 0.017, "mlp1x512").ok


@pytest.mark.parametrize("claim_id, name, how, part", [
    ("Z-TH1", "cond1_A", lambda v: v * 20, ""),                       # 1.3 orders of magnitude
    ("Z-T1-noreg", "test_acc", lambda v: v - 0.05, "inception_small"),  # 5 points, sd 0.6
    ("Z-C-optim-easy", "ratio", lambda v: v * 2, "mlp1x512"),
    ("Z-TH1", "train_accuracy", lambda v: v - 0.001, "random_labels"),
])
def test_a_real_change_still_fails(baseline, claim_id, name, how, part):
    result = _changed(baseline, claim_id, name, how, part)
    assert not result.ok and len(result.regressions) == 1


def test_a_flipped_verdict_still_fails(baseline):
    current = copy.deepcopy(baseline)
    claim = next(c for c in current["claims"] if c["verdict"] == "reproduced")
    claim["verdict"] = claim["items"][0]["verdict"] = "not_reproduced"
    claim["items"][0]["outcome"] = "failed"
    assert not compare(baseline, current).ok


def test_committed_baselines_come_from_a_clean_tree_and_one_thread_per_run():
    """A baseline names the commit that made it, so that commit must be all of its code (issue 21:
    one said `+dirty`); and every run in it trained on one intra-op thread (base/threads.py)."""
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "reports" / "baselines").glob("*.json")):
        results = json.loads(path.read_text())
        prov = results["provenance"]
        assert prov["git_commit"] and prov["git_dirty"] is False, f"{path.name}: made from {prov['git_commit']} dirty"
        kinds = {run["device_kind"] for run in results["runs"].values()}
        assert all(k.endswith(" x1") for k in kinds if k.startswith("cpu:")), (path.name, kinds)
