"""Give a committed baseline the tolerances the claims declare today, keeping every measured value.

    python scripts/redeclare_tolerances.py BASELINE.json DECLARED.json [-o OUT.json]

A tolerance is a declaration of the claim code, not a measurement: when the rule changes
(docs/results-schema.md, Tolerances), the baseline's numbers stay valid and only its declarations
need to follow. DECLARED.json is any results file written by the current code for the same claims
(a warm-cache `pytest claims/` gives one in seconds). Each measurement of BASELINE takes the
tolerance that DECLARED gives the same claim, item (node id) and name; its value, sd, n and
values are left untouched. Prints what changed; a measurement DECLARED lacks keeps its tolerance.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _measures(results: dict):
    for claim in results["claims"]:
        for item in claim["items"]:
            for name, m in item.get("measured", {}).items():
                yield (claim["id"], item.get("nodeid"), name), m


def redeclare(baseline: dict, declared: dict) -> list[str]:
    wanted = {key: m.get("tolerance") for key, m in _measures(declared)}
    changes = []
    for key, m in _measures(baseline):
        if key in wanted and wanted[key] != m.get("tolerance"):
            changes.append(f"{key[0]} {key[1].rsplit('::', 1)[-1]} {key[2]}: "
                           f"{m.get('tolerance')} -> {wanted[key]}")
            if wanted[key] is None:
                m.pop("tolerance", None)
            else:
                m["tolerance"] = wanted[key]
    return changes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baseline", type=Path)
    p.add_argument("declared", type=Path)
    p.add_argument("-o", "--output", type=Path, default=None, help="default: overwrite BASELINE")
    a = p.parse_args(argv)
    baseline = json.loads(a.baseline.read_text())
    changes = redeclare(baseline, json.loads(a.declared.read_text()))
    (a.output or a.baseline).write_text(json.dumps(baseline, indent=1) + "\n")
    print("\n".join(changes) or "no tolerance changed")
    print(f"{len(changes)} tolerance(s) redeclared", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
