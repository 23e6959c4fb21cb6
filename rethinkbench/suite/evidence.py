"""What a claim test measured: ClaimInfo (what the paper says), Evidence (what we found), statistics.

Evidence is plain data (JSON-ready); the pytest plugin collects one Evidence per test item and
writes them, merged by claim id, to reports/results.json.

Only the claim itself may decide that it did not reproduce: a failed `assert`, or `Evidence.check`
(see `is_rejection`). Any other exception out of a claim test is an error of the harness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from rethinkbench.report.tolerance import SEED_SE, tolerance_problem


@dataclass(frozen=True)
class ClaimInfo:
    id: str
    title: str
    statement: str
    source: str
    paper: str = ""
    # Non-empty when the claim is about the paper's own networks (an architecture ordering, BN in
    # small Inception): why. Such a claim is skipped, with this reason, under a plugin --model.
    paper_specific: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "statement": self.statement,
                "source": self.source, "paper": self.paper,
                **({"paper_specific": self.paper_specific} if self.paper_specific else {})}


class SeedSensitive(str):
    """A known failure (`Evidence.check(known_failure=...)`) whose verdict sits within seed noise of
    its test's threshold, shown by measurement: a fresh draw of that noise (another CPU model's
    rounding: base/threads.py, docs/results-schema.md) has flipped it. Not strict: where it
    reproduces, the item passes as reproduced instead of failing as "unexpectedly reproduced"; the
    item is marked `seed_sensitive` in results.json either way, and `rethinkbench compare` reports a
    flip of its verdict without counting it as a regression."""


@dataclass
class Evidence:
    """The `claim` fixture: a test's measurements, figures and decision rule."""

    info: ClaimInfo
    nodeid: str = ""
    params: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    test: str = ""
    # Why the paper's numbers do not apply to this session (a plugin model or dataset, --lr);
    # then `measure` keeps a paper value only as a note, never as a number to compare with.
    not_comparable: str = ""
    seed_sensitive: bool = False    # decided under a SeedSensitive known failure

    @property
    def id(self) -> str:
        return self.info.id

    def measure(self, name: str, value, *, unit: str = "", paper=None, paper_note: str | None = None,
                tolerance: dict | None = None) -> dict:
        """Record a measurement; a list/tuple/array is one value per seed (stored as mean, sd, n).

        `tolerance`: how far CI lets it move (rethinkbench/report/tolerance.py); for a value over two or
        more seeds, `{"se": SEED_SE}` is added unless the claim chose its own `se`."""
        # Values are checked here, where the claim's author sees the error, so that results.json
        # always passes its schema (rethinkbench/report/results.schema.json).
        if tolerance is not None and tolerance_problem(tolerance) is not None:
            raise ValueError(f"measurement {name!r}: tolerance {tolerance!r} is not usable: "
                             f"{tolerance_problem(tolerance)}")
        if isinstance(value, (list, tuple, np.ndarray)):
            values = [_number(name, v) for v in value]
            finite = [v for v in values if v is not None]
            # The sd of fewer than two values is not a measurement of zero spread: it is unknown.
            entry = {"value": float(np.mean(finite)) if finite else None,
                     "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
                     "n": len(values), "values": values}
        else:
            entry = {"value": _number(name, value)}
        entry["unit"] = unit
        entry["paper"] = _number(f"{name} (paper)", paper)
        if entry["paper"] is not None and self.not_comparable:
            paper_note = f"not comparable: {self.not_comparable} (paper: {entry['paper']:g}" + (
                f", {paper_note})" if paper_note else ")")
            entry["paper"] = None
        if paper_note:
            entry["paper_note"] = paper_note
        if tolerance is not None:
            if entry.get("n", 1) >= 2 and "se" not in tolerance:
                # Over several seeds: another CPU's rounding moves the mean like a new draw of its
                # seeds, so the declared floor widens to SEED_SE standard errors (tolerance.py).
                tolerance = {**tolerance, "se": SEED_SE}
            entry["tolerance"] = tolerance
        self.measured[name] = entry
        return entry

    def figure(self, spec: dict) -> None:
        if "kind" not in spec:
            raise ValueError(f"a figure spec needs a 'kind' (line, bar, hist, table), got keys {sorted(spec)}")
        self.figures.append(spec)

    def rejected(self, message: str) -> str:
        return f"{self.info.id} rejected: {message}"

    def not_reproduced(self, message: str) -> None:
        """Mark this item not reproduced at this scale (a strict xfail), with the measured numbers."""
        pytest.xfail(f"{self.info.id} not reproduced: {message}")

    def check(self, reproduced: bool, message: str, *, known_failure: str | None = None) -> None:
        """Decide this item from what was measured (call after every `measure`).

        `known_failure`: why this item is known not to reproduce at this scale (a strict xfail):
        then a failure is reported as not reproduced with the measured `message`, and a success
        fails the test so the known-failure entry gets removed (a SeedSensitive one passes). Without it a failure reads like a
        rejected hypothesis, and is recorded as not reproduced (`is_rejection`), never as an error.
        """
        __tracebackhide__ = True   # the failing line is the test's call, not this one
        if known_failure is None:
            if not reproduced:
                _reject(self.rejected(message))
            return
        self.seed_sensitive = isinstance(known_failure, SeedSensitive)
        if reproduced and self.seed_sensitive:
            return   # within seed noise of the threshold: this draw reproduced (see SeedSensitive)
        if reproduced:
            _reject(f"{self.info.id} unexpectedly reproduced (strict xfail: {known_failure}); "
                    f"measured: {message}")
        self.not_reproduced(f"{message} [{known_failure}]")

    def summary(self) -> str:
        """One line for the terminal table: the first few measurements."""
        parts = []
        for name, m in list(self.measured.items())[:3]:
            parts.append(f"{name}={format_measure(m)}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {"nodeid": self.nodeid, "params": {k: _plain(v) for k, v in self.params.items()},
                "test": self.test, "measured": self.measured, "figures": self.figures,
                "runs": list(dict.fromkeys(self.runs)), **({"seed_sensitive": True} if self.seed_sensitive else {})}


# Set on the pytest.fail exception that `check` raises, so the plugin can tell the claim's own
# "not reproduced" from any other failure without matching messages.
_REJECTED = "rethinkbench_claim_rejected"


def _reject(message: str) -> None:
    __tracebackhide__ = True
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as exc:
        setattr(exc, _REJECTED, True)
        raise


def is_rejection(exc: BaseException) -> bool:
    """True when `exc` is the claim deciding it did not reproduce: a failed `assert`
    (AssertionError) or the failure raised by `Evidence.check`. Anything else a claim test raises
    (UsageError, DataError, TrainingDiverged, RuntimeError, KeyError, a direct `pytest.fail`, ...)
    is an error of the harness, never evidence against the paper."""
    return isinstance(exc, AssertionError) or getattr(exc, _REJECTED, False) is True


def format_values(values, digits: int = 4) -> str:
    """Per-seed numbers for a message: `[0.645, 1, 0.9844]`, not `[0.6449999809265137, ...]`;
    None or NaN (never reached) reads `never`."""
    def one(v):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "never"
        return f"{v:.{digits}g}"
    return "[" + ", ".join(one(_plain(v)) for v in values) + "]"


def format_measure(m: dict) -> str:
    """`0.9934±0.0021(n=3)`. Without an sd (fewer than two finite values) no ± part: `0.9934`
    for one seed, `12(n=2)` when one of two seeds gave no number."""
    v = m.get("value")
    if v is None:
        return "n/a"
    text = f"{v:.4g}"
    sd, n = m.get("sd"), m.get("n")
    if sd is not None:
        text += f"±{sd:.2g}"
    if sd is not None or (n is not None and n != 1):
        text += f"(n={n})"
    return text + (m.get("unit") or "")


def _number(name: str, v):
    """A measured value as a JSON number: numpy/torch scalars to Python, NaN/inf to None."""
    v = _plain(v)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise TypeError(f"measurement {name!r} must be a number or a list of numbers (one per "
                        f"seed), got {v!r} ({type(v).__name__})")
    return v


def _plain(v):
    """JSON-safe scalar: numpy/torch numbers to Python, NaN/inf to None."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ----------------------------------------------------------------------------- statistics

def bootstrap_ratio_ci(num, den, *, level: float = 0.95, n_boot: int = 10_000, seed: int = 0):
    """Percentile bootstrap interval for mean(num) / mean(den), resampling each group (fixed seed).

    Returns (ratio, low, high)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    rng = np.random.default_rng(seed)
    bn = rng.choice(num, (n_boot, len(num))).mean(1)
    bd = rng.choice(den, (n_boot, len(den))).mean(1)
    ratios = bn / bd
    lo, hi = np.quantile(ratios, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(num.mean() / den.mean()), float(lo), float(hi)


def spearman(x, y) -> tuple[float, float]:
    """Spearman rank correlation and its one-sided p-value for a positive trend."""
    from scipy import stats   # ~0.3 s: only when a claim decides by this statistic

    r, p_two = stats.spearmanr(x, y)
    p_one = p_two / 2 if r > 0 else 1 - p_two / 2
    return float(r), float(p_one)
