"""What each claim item's report becomes in results.json: its evidence, runs and outcome, decided
where the exception is at hand (reproduced, not reproduced, inconclusive at smoke scale, or an
error of the tool)."""
from __future__ import annotations

import pytest

from rethinkbench.suite.evidence import is_rejection
from rethinkbench.suite.plugin.keys import STATE_KEY
from rethinkbench.suite.runner import EVIDENCE_KEY, RUNS_KEY
from rethinkbench.suite.session import PROPERTY, ResultsSession


# tryfirst: the outermost wrapper, so the report it reads is final (xfail already applied).
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    ev = item.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        return
    final = (report.when == "call") or (report.when == "setup" and not report.passed)
    if not final:
        return
    ev_dict = ev.to_dict()
    ev_dict["summary"] = ev.summary()
    # Decided here, where the exception is at hand (an xdist controller only sees the report).
    result, reason = _outcome(report, call.excinfo)
    if item.config.stash[STATE_KEY].scale.name == "smoke" and _is_claims_rejection(result, report, call.excinfo):
        result, reason = _inconclusive(report, reason)
    payload = {"info": ev.info.to_dict(), "evidence": ev_dict,
               "runs": item.stash.get(RUNS_KEY, {}), "outcome": result, "reason": reason}
    report.user_properties.append((PROPERTY, payload))


class Collector:
    """Receives every test report (on the xdist controller too) and keeps the claim payloads."""

    def __init__(self, results: ResultsSession):
        self.results = results

    def pytest_runtest_logreport(self, report):
        payload = next((v for k, v in report.user_properties if k == PROPERTY), None)
        if payload is not None:
            self.results.add(payload, payload["outcome"], payload["reason"], round(report.duration, 3))


def _is_claims_rejection(result: str, report, excinfo) -> bool:
    """The claim itself said "not reproduced" (a failed `assert` or `claim.check` in the call, or
    `claim.not_reproduced`), not a harness error, a skip or a strict xfail whose test passed."""
    exc = excinfo.value if excinfo is not None else None
    if result == "failed":
        return exc is not None and report.when == "call" and is_rejection(exc)
    return result == "xfailed" and isinstance(exc, pytest.xfail.Exception)


def _inconclusive(report, reason: str) -> tuple[str, str]:
    """At smoke scale (one seed, a few epochs, tiny data) a claim's rejection is no evidence: the
    item is recorded as inconclusive and reported to pytest as an xfail, so it does not fail the
    session (errors still do). Only smoke: a cpu or paper rejection stays "not reproduced"."""
    reason = f"inconclusive at smoke scale: {reason}"
    report.outcome = "skipped"
    report.wasxfail = reason
    return "inconclusive", reason


REASON_LIMIT = 1000   # characters of an exception message kept in results.json


def _outcome(report, excinfo) -> tuple[str, str]:
    """(outcome, reason) of a claim item, as results.json records them.

    Only the claim decides that it did not reproduce: a failed `assert` or `claim.check` in the
    call ("failed"), or `claim.not_reproduced` (a strict xfail, "xfailed"). Every other exception,
    in setup or call, is a failure of the harness ("error"): its reason is the exception's type and
    message; the traceback stays in pytest's own output.
    """
    exc = excinfo.value if excinfo is not None else None
    if hasattr(report, "wasxfail"):
        if report.skipped and exc is not None and not (
                isinstance(exc, pytest.xfail.Exception) or is_rejection(exc)):
            return "error", _exception_text(exc)   # an xfail marker swallowed a harness error
        # pytest < 8 prefixes an imperative xfail's reason with "reason: "; 8 and later do not.
        reason = report.wasxfail.removeprefix("reason: ")
        return ("xfailed", reason) if report.skipped else ("xpassed", reason)
    if report.skipped:
        lr = report.longrepr
        return "skipped", (lr[2] if isinstance(lr, tuple) else str(lr or ""))
    if report.failed:
        if exc is None:   # a strict xfail marker whose test passed ("[XPASS(strict)] ...")
            return "failed", str(report.longrepr or "")
        if report.when == "call" and is_rejection(exc):
            return "failed", _exception_text(exc)
        return "error", _exception_text(exc)
    return "passed", ""


def _exception_text(exc: BaseException) -> str:
    """`DataError: MNIST not found under ...`; a claim's own rejection or a pytest.fail is its
    message alone (it already reads as a sentence)."""
    if isinstance(exc, pytest.fail.Exception):
        text = str(exc.msg or "")
    elif isinstance(exc, (AssertionError, pytest.xfail.Exception)) and str(exc):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 1] + "…"
