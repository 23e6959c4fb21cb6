"""The fixtures a claim test uses: scale, device, data_root, dataset, seeds, claim, run."""
from __future__ import annotations

from pathlib import Path

import pytest

from rethinkbench.engine.plan import placeholder_dataset
from rethinkbench.registry import load_dataset
from rethinkbench.suite.evidence import Evidence
from rethinkbench.suite.plugin.keys import PLAN_KEY, STATE_KEY
from rethinkbench.suite.plugin.state import PluginState
from rethinkbench.suite.runner import EVIDENCE_KEY, Runner


@pytest.fixture(scope="session")
def rb_state(pytestconfig) -> PluginState:
    return pytestconfig.stash[STATE_KEY]


@pytest.fixture(scope="session")
def scale(rb_state):
    """The session's ScaleProfile (smoke, cpu or paper), on the session's device."""
    return rb_state.scale


@pytest.fixture(scope="session")
def device(rb_state) -> str:
    return rb_state.device


@pytest.fixture(scope="session")
def data_root(rb_state) -> Path:
    return rb_state.data_root


@pytest.fixture(scope="session")
def dataset(rb_state, pytestconfig):
    """The session's dataset (--dataset, else the scale's), loaded once."""
    plan = pytestconfig.stash.get(PLAN_KEY, None)
    try:
        ds = load_dataset(rb_state.dataset, 0, root=rb_state.data_root)
    except Exception as exc:  # a missing dataset is the user's to fix: say which and where
        if plan is not None:   # a plan needs only the data's shape: plan now, download later
            plan.notes.append(f"dataset {rb_state.dataset!r} is not available here ({exc}); planned "
                              f"with its known size")
            ds = placeholder_dataset(rb_state.dataset)
            plan.know_dataset(ds, rb_state.dataset)
            return ds
        # A setup failure, so every claim item that needs it is an error, never "not reproduced".
        pytest.fail(f"could not load dataset {rb_state.dataset!r}: {type(exc).__name__}: {exc}",
                    pytrace=False)
    if plan is not None:   # a plugin's data: the plan learns its size here
        plan.know_dataset(ds, rb_state.dataset)
    return ds


@pytest.fixture
def seeds(rb_state) -> list[int]:
    n = rb_state.seeds or rb_state.scale.default_seeds
    return list(range(n))


@pytest.fixture
def claim(request) -> Evidence:
    """The evidence recorder of this claim test (needs @pytest.mark.claim(INFO))."""
    ev = request.node.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the `claim` fixture but has no "
                                f"@pytest.mark.claim(ClaimInfo(...)) marker")
    return ev


@pytest.fixture
def run(request, rb_state):
    """run(**overrides) -> RunResult: the scale's config for a model, trained or from the cache."""
    return Runner(request, rb_state)
