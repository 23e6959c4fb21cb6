"""A rejected claim reads as one line with formatted numbers (issue 21, item 7).

A bare `assert` in a claim test makes pytest print the test's source and the reprs of Evidence and
ScaleProfile (dozens of lines); `claim.check` fails with its message alone. A per-seed list of
floats put into a message as-is prints `[0.6449999809265137, ...]`; `format_values` rounds it.
These checks read the claim modules' source: nothing trains.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from rethinkbench.suite.evidence import format_values

CLAIM_FILES = sorted((Path(__file__).parent.parent / "claims").glob("test_*.py"))
MESSAGE_CALLS = {"check", "rejected", "not_reproduced"}


def test_there_are_claim_modules():
    assert len(CLAIM_FILES) >= 5


@pytest.mark.parametrize("path", CLAIM_FILES, ids=lambda p: p.name)
def test_claims_decide_through_claim_check_not_a_bare_assert(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bare = [f"{path.name}:{node.lineno}" for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_")
            for node in ast.walk(fn) if isinstance(node, ast.Assert)]
    assert not bare, f"use claim.check(ok, message) instead of assert at {bare}"


@pytest.mark.parametrize("path", CLAIM_FILES, ids=lambda p: p.name)
def test_messages_do_not_print_per_seed_lists_raw(path):
    """In a claim.check / claim.rejected / claim.not_reproduced message, a name bound to a list
    of run attributes (`accs = [r.final_train_acc for r in res]`) goes through format_values."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    raw = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        lists = {target.id for node in ast.walk(fn) if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.ListComp) and isinstance(node.value.elt, ast.Attribute)
                 for target in node.targets if isinstance(target, ast.Name)}
        for call in ast.walk(fn):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr in MESSAGE_CALLS):
                continue
            for value in ast.walk(call):
                if (isinstance(value, ast.FormattedValue) and value.format_spec is None
                        and isinstance(value.value, ast.Name) and value.value.id in lists):
                    raw.append(f"{path.name}:{value.lineno} {{{value.value.id}}}")
    assert not raw, f"format these lists with format_values(...): {raw}"


def test_format_values():
    assert format_values([0.6449999809265137, 1.0, np.float32(0.984375)]) == "[0.645, 1, 0.9844]"
    assert format_values([12, None, math.nan]) == "[12, never, never]"
    assert format_values([]) == "[]"
