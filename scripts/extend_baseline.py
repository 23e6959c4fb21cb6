"""Extend a committed baseline with the claims, items and runs a newer results.json adds, keeping
every value the baseline already has.

    python scripts/extend_baseline.py reports/baselines/cpu-mnist5k.json reports/results.json

Why not copy the new results.json over the baseline: the baseline's numbers are what CI has been
comparing against; re-recording them would hide a drift between the two sessions behind a
"refresh". Here an item the baseline has (same claim id and nodeid) keeps its stored outcome,
verdict and measurements, and a run it has (same key) keeps its history; only what is new is
copied, and the file records what was added, from which commit (`extended`). Before writing, every
kept item is compared with the new session's (rethinkbench compare): a regression there is
reported and nothing is written, so an extension never papers over a change.

Refused, with the reason: a different scale, dataset, model or device; a new session from a dirty
tree or with more than one intra-op thread per CPU run; a new item with an error verdict.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from rethinkbench.report.compare import compare


def extend(baseline: dict, new: dict) -> tuple[dict, dict]:
    """(extended baseline, what was added: {"items": [...], "runs": [...]}). Raises ValueError
    when `new` cannot extend `baseline`."""
    for field in ("scale", "dataset", "model", "device"):
        if baseline.get(field) != new.get(field):
            raise ValueError(f"{field} differs: baseline {baseline.get(field)!r}, new {new.get(field)!r}")
    prov = new["provenance"]
    if not prov.get("git_commit") or prov.get("git_dirty") is not False:
        raise ValueError(f"the new session ran on a dirty tree ({prov.get('git_commit')}): make it from a clean clone")
    out = copy.deepcopy(baseline)
    claims = {c["id"]: c for c in out["claims"]}
    added_items, added_runs = [], []
    for claim in new["claims"]:
        errors = [i["nodeid"] for i in claim["items"] if i.get("verdict") == "error"]
        if claim["id"] not in claims and errors:
            raise ValueError(f"{claim['id']}: error verdicts in {errors}: fix them before they become a baseline")
        if claim["id"] not in claims:
            out["claims"].append(copy.deepcopy(claim))
            claims[claim["id"]] = out["claims"][-1]
            added_items += [i["nodeid"] for i in claim["items"]]
            continue
        have = {i["nodeid"] for i in claims[claim["id"]]["items"]}
        for item in claim["items"]:
            if item["nodeid"] not in have:
                if item.get("verdict") == "error":
                    raise ValueError(f"{item['nodeid']}: error verdict: fix it before it becomes a baseline")
                claims[claim["id"]]["items"].append(copy.deepcopy(item))
                added_items.append(item["nodeid"])
    for key, run in new["runs"].items():
        if key not in out["runs"]:
            kind = run.get("device_kind", "")
            if kind.startswith("cpu:") and not kind.endswith(" x1"):
                raise ValueError(f"run {key} trained on {kind}: baselines hold one-thread CPU runs only")
            out["runs"][key] = copy.deepcopy(run)
            added_runs.append(key)
    selection = out.get("selection", {})
    if "items" in selection:
        selection["items"] += [n for n in added_items if n not in selection["items"]]
    added = {"items": added_items, "runs": added_runs}
    out.setdefault("extended", []).append({"created": new.get("created"), "git_commit": prov["git_commit"],
                                           "total_seconds": new.get("total_seconds"), **added})
    return out, added


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", type=Path)
    ap.add_argument("new", type=Path, help="results.json of a full session from a clean clone")
    ap.add_argument("-o", "--output", type=Path, help="where to write (default: over the baseline)")
    args = ap.parse_args(argv)
    baseline, new = (json.loads(p.read_text()) for p in (args.baseline, args.new))
    check = compare(baseline, new)
    if not check.ok:
        print(check.format_table(), file=sys.stderr)
        print("extend_baseline: the new session regresses against the baseline: nothing written", file=sys.stderr)
        return 1
    try:
        out, added = extend(baseline, new)
    except ValueError as exc:
        print(f"extend_baseline: {exc}: nothing written", file=sys.stderr)
        return 2
    (args.output or args.baseline).write_text(json.dumps(out, indent=1) + "\n")
    print(f"extend_baseline: kept {len(baseline['runs'])} runs and every stored item; added "
          f"{len(added['items'])} items and {len(added['runs'])} runs -> {args.output or args.baseline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
