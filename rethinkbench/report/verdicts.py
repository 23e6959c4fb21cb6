"""The verdicts of results.json, one place for their names, labels and how a claim's verdict
follows from its items' (the plugin writes them, the report and compare read them).

An item's outcome is pytest's word for what happened (passed, failed, ...) plus ``inconclusive``:
a claim's own rejection at smoke scale, where one seed and a few epochs cannot reject a null
hypothesis. Its verdict is what that means for the paper.
"""
from __future__ import annotations

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not_reproduced"
INCONCLUSIVE = "inconclusive"
ERROR = "error"
SKIPPED = "skipped"

VERDICT_OF = {"passed": REPRODUCED, "failed": NOT_REPRODUCED, "xfailed": NOT_REPRODUCED,
              "xpassed": REPRODUCED, "skipped": SKIPPED, "error": ERROR,
              "inconclusive": INCONCLUSIVE}

# How a person reads each verdict (results.json keeps the identifiers).
VERDICT_LABELS = {
    REPRODUCED: "reproduced",
    NOT_REPRODUCED: "not reproduced",
    "partial": "partial",
    INCONCLUSIVE: "inconclusive at smoke scale",
    SKIPPED: "skipped",
    ERROR: "error",
}

SMOKE_NOTE = ("smoke scale tests the plumbing (one seed, a few epochs, tiny data): its numbers "
              "are not evidence about the paper, and a claim's statistical rejection here is "
              "recorded as inconclusive, not as not reproduced; use the cpu or paper scale for "
              "verdicts")


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, str(verdict).replace("_", " "))


def claim_verdict(item_verdicts) -> str:
    """A claim's verdict from its items': an error anywhere is an error; every item skipped is
    skipped (a problem, not a pass); all reproduced is reproduced, all not reproduced is not
    reproduced; an inconclusive item with no not-reproduced one leaves the claim inconclusive (it
    cannot be called reproduced); any other mix is partial."""
    verdicts = set(item_verdicts)
    if ERROR in verdicts:
        return ERROR
    ran = verdicts - {SKIPPED}
    if not ran:
        return SKIPPED
    if len(ran) == 1:
        return ran.pop()
    if INCONCLUSIVE in ran and NOT_REPRODUCED not in ran:
        return INCONCLUSIVE
    return "partial"
