"""Collection: the `models` marker's parametrization, each claim item's Evidence, `-k` by claim id,
and the skips (scale, long claims at cpu scale without --long, paper-specific claims and missing
features under a plugin), each with its reason."""
from __future__ import annotations

import pytest

from rethinkbench.suite.evidence import ClaimInfo, Evidence
from rethinkbench.suite.plugin.keys import CLAIM_ITEMS_KEY, STATE_KEY
from rethinkbench.suite.runner import EVIDENCE_KEY


def pytest_generate_tests(metafunc):
    m = metafunc.definition.get_closest_marker("models")
    if m is None or "model" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE_KEY]
    scale = state.scale.name
    names = [state.model] if state.model is not None else m.kwargs.get(scale, m.kwargs.get("default"))
    if not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.models has no list for "
                                f"scale {scale!r} and no default")
    metafunc.parametrize("model", names)


def pytest_collection_modifyitems(config, items):
    state = config.stash[STATE_KEY]
    scale = state.scale.name
    for item in items:
        m = item.get_closest_marker("claim")
        if m is not None:
            if not m.args or not isinstance(m.args[0], ClaimInfo):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.claim takes a ClaimInfo, got "
                                        f"{m.args!r}")
            params = dict(getattr(item, "callspec", None).params) if hasattr(item, "callspec") else {}
            item.stash[EVIDENCE_KEY] = Evidence(m.args[0], nodeid=item.nodeid, params=params,
                                                not_comparable=state.not_comparable)
            item.extra_keyword_matches.add(m.args[0].id)   # so `-k Z-F1a-fit` / `-k "A-"` select by claim
            config.stash[CLAIM_ITEMS_KEY].add(item.nodeid)
            _skip_for_plugins(item, m.args[0], state)
        long = item.get_closest_marker("long")
        if long is not None and scale == "cpu" and not config.option.long:
            name = m.args[0].id if m is not None else item.name
            item.add_marker(pytest.mark.skip(
                reason=f"{name} is a long claim at cpu scale ({long.kwargs.get('cost') or 'no cost given'}); "
                       f"pass --long to run it"))
        s = item.get_closest_marker("scales")
        if s is not None and scale not in s.args:
            # `needs`: what else the test needs at that scale (ImageNet's --imagenet-root PATH),
            # so that the skip names every option that would run it.
            needs = f" {s.kwargs['needs']}" if s.kwargs.get("needs") else ""
            item.add_marker(pytest.mark.skip(
                reason=f"runs at scale {'/'.join(s.args)} only; this session is --scale {scale} "
                       f"(use {'--gpu' if 'paper' in s.args else '--scale ' + s.args[0]}{needs})"))


def _skip_for_plugins(item, info: ClaimInfo, state) -> None:
    """Skip, saying why, a claim about the paper's own networks when --model is a plugin, and a
    claim needing what the session's plugin model or dataset lacks (the `requires` marker)."""
    plugin = state.model_plugin
    if info.paper_specific and plugin is not None and not plugin.builtin:
        item.add_marker(pytest.mark.skip(
            reason=f"{info.id} is about the paper's own networks ({info.paper_specific}); this "
                   f"session's --model {state.model} is not one of them"))
        return
    needs = item.get_closest_marker("requires")
    for feature in (needs.args if needs is not None else ()):
        if feature == "dropout" and plugin is not None and "dropout" not in plugin.accepts:
            item.add_marker(pytest.mark.skip(
                reason=f"{info.id} varies dropout, and model plugin {state.model!r}'s factory has no "
                       f"`dropout` keyword (add `dropout: float = 0.0` to run it)"))
        elif feature == "raw_images" and not state.dataset_has_raw:
            item.add_marker(pytest.mark.skip(
                reason=f"{info.id} needs random crops, and dataset plugin {state.dataset!r} gives no "
                       f"uncropped images (Dataset.x_train_raw)"))
        elif feature not in ("dropout", "raw_images"):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.requires knows 'dropout' and "
                                    f"'raw_images', got {feature!r}")
