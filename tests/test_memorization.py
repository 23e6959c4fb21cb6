"""rethinkbench.measures.memorization.dispersion: the A-easy-examples statistic."""
from __future__ import annotations

import numpy as np
import pytest

from rethinkbench.base.errors import UsageError
from rethinkbench.measures.memorization import dispersion


def test_equally_hard_examples_give_an_index_near_one_and_fixed_ones_a_large_index():
    """H0 for independent draws: every example errs with the same q, the index is about 1."""
    rng = np.random.default_rng(0)
    noise = (rng.random((40, 3000)) > 0.3).astype(int)
    assert dispersion(noise)["dispersion_index"] == pytest.approx(1.0, abs=0.1)
    easy_hard = np.tile(rng.random(3000) > 0.3, (40, 1)).astype(int)   # each example always right or wrong
    flipped = np.where(rng.random(easy_hard.shape) < 0.05, 1 - easy_hard, easy_hard)
    assert dispersion(flipped)["dispersion_index"] > 10


@pytest.mark.parametrize("bad", [[[1, np.nan], [0, 1]], [[1, 2], [0, 1]], [1, 0, 1], []])
def test_anything_but_a_matrix_of_zeros_and_ones_is_refused_with_its_values(bad):
    with pytest.raises(UsageError, match="non-empty \\(runs x examples\\) array of 0/1"):
        dispersion(bad)
