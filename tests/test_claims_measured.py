"""claims/measured.py's paired rule, shared by N-norms-vs-noise and N-sharpness-kl: a seed passes
only when its true-label value is strictly below its random-label one, and a nan (a network the
measure could not read) counts against the claim, never for it."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import load_file_module

FILE = Path(__file__).resolve().parents[1] / "claims" / "measured.py"


@pytest.fixture(scope="module")
def measured():
    return load_file_module(FILE, "measured")


def test_only_strictly_lower_true_label_values_pass(measured):
    lo, hi = measured.LEVELS[0], measured.LEVELS[-1]
    bad = measured.not_lower("l2", [0, 1, 2, 3], [1.0, 2.0, math.nan, 5.0], [2.0, 2.0, 1.0, math.nan])
    assert bad == [f"l2 seed 1: 2 (p={lo:g}) >= 2 (p={hi:g})", f"l2 seed 2: nan (p={lo:g}) >= 1 (p={hi:g})",
                   f"l2 seed 3: 5 (p={lo:g}) >= nan (p={hi:g})"]
    assert measured.not_lower("l2", [0], [1.0], [2.0]) == []


def test_the_summary_counts_the_failed_comparisons_and_names_unfitted_runs(measured):
    assert measured.not_lower_summary("mlp1x512", [], 12, None) == (
        "mlp1x512: 0 of 12 comparisons not lower for true labels; unfitted runs: none")
    assert measured.not_lower_summary("mlp1x512", ["l2 seed 1: x", "l2 seed 2: y"], 12, ["p=1 seeds [0]"]) == (
        "mlp1x512: 2 of 12 comparisons not lower for true labels: l2 seed 1: x; l2 seed 2: y; "
        "unfitted runs: ['p=1 seeds [0]']")
