"""How far a stored measurement may move before `rethinkbench compare` calls it a regression.

A claim declares the tolerance with each measurement (`claim.measure(..., tolerance=...)`); the
baseline's declaration is the one compare applies. The kinds, and what each is for:

- `{"abs": x}`: |now - before| <= x. Quantities with a natural unit of slack: accuracies (points),
  exact counts (x = 0), floating-point error magnitudes (an upper bound such as 1e-6).
- `{"rel": r}`: |now - before| <= r * |before|. Positive quantities whose size sets the scale:
  steps to fit, ratios, norms.
- `{"log10": d}`: |log10(now / before)| <= d, both positive. Ill-conditioned quantities such as a
  condition number near 1e10: rounding in the last bits of the inputs (another BLAS, another
  instruction set) moves them by tens of percent, so only their order of magnitude is a result.
- `{"se": k}`: |now - before| <= k * sd * sqrt(2 / n), with the baseline's sd over its n seeds:
  k standard errors of the difference of two n-seed means. For seed-averaged training outcomes:
  on another CPU model the float summation order differs, each run's trajectory diverges like a new
  draw of its seed noise, and the mean moves by about its standard error.

Several kinds in one declaration: the loosest applies (a relative band is useless near zero, a
standard error is useless when the seeds happened to agree). The rule for choosing them is stated
in docs/results-schema.md.
"""
from __future__ import annotations

import math
from typing import Any

KINDS = ("abs", "rel", "log10", "se")

# A condition number is a result only to its order of magnitude (see `log10` above): measured on an
# AMD EPYC, the Theorem 1 matrix's cond_1 was 1.83e10 where an Intel Xeon's baseline had 2.27e10.
CONDITION_NUMBER = {"log10": 1.0}
# Seed-averaged training outcomes may move by this many standard errors (see `se` above), on top
# of the floor the claim declares: Evidence.measure adds it to every multi-seed measurement.
SEED_SE = 4.0


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def tolerance_problem(tolerance: Any) -> str | None:
    """Why `tolerance` is not usable, or None when it is."""
    if not isinstance(tolerance, dict) or not tolerance:
        return f"expected an object with one or more of {', '.join(KINDS)}, got {tolerance!r}"
    unknown = set(tolerance) - set(KINDS)
    if unknown:
        return f"unknown tolerance kind(s) {sorted(unknown)}; known: {', '.join(KINDS)}"
    bad = {k: v for k, v in tolerance.items() if not (_number(v) and v >= 0)}
    if bad:
        return f"tolerance values must be numbers >= 0, got {bad!r}"
    return None


def within(tolerance: dict, before: dict, now: float) -> tuple[bool, str]:
    """(ok, how far it moved and against what) for the measurement `before` (the baseline's stored
    entry: value, and sd/n when several seeds) and the current value `now`."""
    value = before["value"]
    moved = now - value
    limits = []   # (text, ok)
    if "abs" in tolerance:
        limits.append((f"abs {tolerance['abs']:g}", abs(moved) <= tolerance["abs"] + _slack(value)))
    if "rel" in tolerance:
        allowed = tolerance["rel"] * abs(value)
        limits.append((f"rel {tolerance['rel']:g} (±{allowed:.4g})", abs(moved) <= allowed + _slack(value)))
    if "log10" in tolerance:
        if value > 0 and now > 0:
            orders = abs(math.log10(now / value))
            limits.append((f"log10 {tolerance['log10']:g} ({orders:.3g} orders)", orders <= tolerance["log10"]))
        else:
            limits.append((f"log10 {tolerance['log10']:g} (needs positive values)", False))
    if "se" in tolerance:
        sd, n = before.get("sd"), before.get("n")
        if _number(sd) and isinstance(n, int) and n >= 2:
            allowed = tolerance["se"] * sd * math.sqrt(2 / n)
            limits.append((f"{tolerance['se']:g} se (±{allowed:.4g})", abs(moved) <= allowed + _slack(value)))
    ok = any(passed for _, passed in limits)
    text = " or ".join(t for t, _ in limits) or "no usable tolerance"
    return ok, f"moved {moved:+.4g}, {'within' if ok else 'beyond'} tolerance {text}"


def _slack(value: float) -> float:
    # A hair of slack so that 0.1 + 0.2 style float noise never trips an exact ({"abs": 0}) guard.
    return 1e-12 * max(1.0, abs(value))
