"""claims/known_failures.py: the lookup takes the fixtures or their names and refuses the rest (a
lookup that silently missed would turn a listed non-reproduction into a plain failure)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rethinkbench as rb
from rethinkbench.suite.scales import get_scale

from conftest import load_file_module

FILE = Path(__file__).resolve().parents[1] / "claims" / "known_failures.py"


@pytest.fixture(scope="module")
def kf():
    return load_file_module(FILE, "known_failures")


def test_fixtures_and_names_find_the_same_entry(kf):
    (claim_id, scale, dataset, item), why = next(iter(kf.KNOWN.items()))
    x, y = torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int64)
    ds = rb.Dataset(x, y, x, y, name=dataset)
    assert kf.known_failure(claim_id, get_scale(scale), ds, item) == why
    assert kf.known_failure(claim_id, scale, dataset, item) == why
    assert kf.known_failure(claim_id, scale, "fashion_mnist", item) is None


@pytest.mark.parametrize("args, message", [
    (("Z-S31-bn", "cpu", 3, "wd"), r"dataset must be a name \(str\) or the fixture, got int 3"),
    (("Z-S31-bn", object(), "mnist5k", "wd"), r"scale must be a name \(str\) or the fixture, got NoneType"),
    (("Z-S31-bn", "cpu", "mnist5k", 1), r"item must be a name \(str\), got int 1"),
])
def test_what_it_cannot_use_is_refused(kf, args, message):
    with pytest.raises(TypeError, match=r"known_failure\(\): " + message):
        kf.known_failure(*args)


def test_only_the_entry_measured_to_flip_between_cpus_is_seed_sensitive(kf):
    from rethinkbench.suite.evidence import SeedSensitive

    sensitive = [key for key, why in kf.KNOWN.items() if isinstance(why, SeedSensitive)]
    assert sensitive == [("Z-T1-aug-beats-wd", "cpu", "mnist5k", "inception_small")]
