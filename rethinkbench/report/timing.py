"""compare's timing check: the summed train seconds of the runs trained (not cached) in both
files, matched by run key, per device kind (seconds on different hardware say nothing about the code).

Two VMs of one CPU model share a device kind yet differ in speed (up to 2x measured: base/speed.py).
When both files carry the machine-speed probe (provenance `speed_probe_seconds`) and the current
machine probed slower, a CPU kind's ratio is divided by the probes' ratio before it meets the
factor, so a slower machine is not read as slower code; the note shows the raw ratio and the
machine's too. A machine that probed faster leaves the raw ratio: the probe is a noisier and
narrower measure than the runs themselves (0.059-0.080 s on the idle Xeon within 20 minutes; 1.81x
slower with AVX2 forced where the claims' training was 1.15x), so it may excuse a slowdown, never
make one. Without both probes the raw ratio is checked, and the note says so."""

from __future__ import annotations

from rethinkbench.report.rows import IMPROVED, INFO, OK, REGRESSION, Row, is_number, text


def timing_rows(baseline: dict, current: dict, factor: float) -> tuple[list[Row], int]:
    """Summed train seconds of the runs trained in both files, one row per device kind, and one
    row for each reason some runs in both files could not be compared (so a skipped timing check
    is never silent)."""
    runs_before, runs_now = baseline.get("runs", {}), current.get("runs", {})
    common = [key for key in runs_before if key in runs_now]
    if not common:
        return [Row(INFO, "timing", "train seconds", "-", "-",
                    "timing not compared: no run key in both files")], 0
    by_kind: dict[str, list[tuple[str, float, float]]] = {}
    kinds_differ: list[tuple[str, str]] = []
    cached, untimed = 0, 0
    for key in common:
        before, now = runs_before[key], runs_now[key]
        # Only runs actually trained this time in both sessions: a cached run's seconds are
        # those of an older session, possibly on another machine.
        if before.get("cached") is not False or now.get("cached") is not False:
            cached += 1
            continue
        seconds_before, seconds_now = before.get("train_seconds"), now.get("train_seconds")
        if not (is_number(seconds_before) and is_number(seconds_now)) or seconds_before <= 0:
            untimed += 1
            continue
        kind_before = before.get("device_kind") or _provenance_kind(baseline)
        kind_now = now.get("device_kind") or _provenance_kind(current)
        if not kind_before or kind_before != kind_now:
            kinds_differ.append((text(kind_before), text(kind_now)))
            continue
        by_kind.setdefault(kind_before, []).append((key, seconds_before, seconds_now))
    rows = []
    if kinds_differ:
        before_kinds = ", ".join(sorted({b for b, _ in kinds_differ}))
        now_kinds = ", ".join(sorted({n for _, n in kinds_differ}))
        unknown = any(b == "-" or n == "-" for b, n in kinds_differ)
        rows.append(Row(INFO, "timing", f"{len(kinds_differ)} run(s)", before_kinds, now_kinds,
                        "timing not compared: " + ("device kind unknown" if unknown
                                                   else "different device kinds")))
    if untimed:
        rows.append(Row(INFO, "timing", f"{untimed} run(s)", "-", "-",
                        "timing not compared: no train_seconds above zero in both files"))
    if not by_kind and cached:
        rows.append(Row(INFO, "timing", "train seconds", "-", "-",
                        "timing not compared: no run was trained (not cached) in both files"))
    machine = machine_factor(baseline, current)
    for kind, triples in by_kind.items():
        total_before = sum(before for _, before, _ in triples)
        total_now = sum(now for _, _, now in triples)
        ratio = raw = total_now / total_before
        key, before, now = max(triples, key=lambda triple: triple[2] / triple[1])
        slowest = f"; slowest run {key[:12]} {now / before:.2f}x"
        if kind.startswith("cpu:") and machine is not None:
            ratio = raw / max(machine, 1.0)
            slowest = (f"; raw {raw:.2f}x, machine {machine:.2f}x by the speed probe"
                       f"{'' if machine > 1.0 else ' (faster: not applied)'}{slowest}")
        elif kind.startswith("cpu:"):
            slowest += "; raw: no speed probe in both files"
        speed = "slower" if ratio > 1.005 else "faster" if ratio < 0.995 else "(same speed)"
        note = f"{ratio:.2f}x {speed} (limit {factor:g}x){slowest}"
        if cached:
            note += f"; {cached} run(s) cached in either file left out"
        if ratio > factor:
            status = REGRESSION
        elif ratio < 1.0 / factor:
            status = IMPROVED
        else:
            status = OK
        rows.append(Row(status, "timing", f"{len(triples)} run(s) trained in both on {kind}",
                        f"{total_before:.1f} s", f"{total_now:.1f} s", note))
    return rows, sum(len(triples) for triples in by_kind.values())


def machine_factor(baseline: dict, current: dict) -> float | None:
    """How many times slower the current machine ran the speed probe than the baseline's, or None
    when either file lacks a usable probe."""
    probes = [(r.get("provenance") or {}).get("speed_probe_seconds") if isinstance(r.get("provenance"), dict) else None
              for r in (baseline, current)]
    if all(is_number(p) and p > 0 for p in probes):
        return probes[1] / probes[0]
    return None


def _provenance_kind(results: dict) -> str | None:
    provenance = results.get("provenance")
    return provenance.get("device_kind") if isinstance(provenance, dict) else None
