"""rb.train's argument checks at the top of train() (rethinkbench/engine/train.py): a wrong type is a
UsageError naming the argument, the value's type and what is allowed, not an AttributeError from
deep inside the loop. (The training loop itself is tested in test_train.py.)"""
from __future__ import annotations

import pytest
import torch

import rethinkbench as rb


@pytest.mark.parametrize("dataset, shown", [
    ("mnist5k", "str"), ((torch.zeros(4, 1, 4, 4), torch.zeros(4)), "tuple"), ({"x": 1}, "dict"),
])
def test_train_dataset_must_be_a_dataset(dataset, shown):
    cfg = rb.RunConfig(dataset="custom:mine", width=0.25, max_epochs=1)
    with pytest.raises(rb.UsageError) as exc:
        rb.train(cfg, dataset=dataset)
    assert str(exc.value) == f"train(dataset=...) takes an rb.Dataset or None, got {shown}"
