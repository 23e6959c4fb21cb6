"""The plugin registry (rethinkbench/registry): names, versions in the cache key, and one clear
error naming the plugin for every bad factory or loader (issue 12, point 3)."""
from __future__ import annotations

import textwrap

import pytest
import torch
from hypothesis import given, settings, strategies as st

import rethinkbench as rb
from rethinkbench import registry
from rethinkbench.engine.config import RunConfig

EXAMPLE_MODEL = "examples.tinyres.nets:resnet_small"
EXAMPLE_DATA = "examples.tinyres.data:load"

# Plugins for the error cases, written as a module the tests import by path.
PLUGINS = '''
import math
import torch
from torch import nn
import rethinkbench as rb


def good(in_shape, num_classes, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), num_classes))
good.version = "1"
good.default_lr = 0.05


def no_lr(in_shape, num_classes, width):
    return good(in_shape, num_classes, width)
no_lr.version = "1"


def raises(in_shape, num_classes, width):
    raise ValueError("no such layer")


def not_a_module(in_shape, num_classes, width):
    return 42


def wrong_classes(in_shape, num_classes, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), 3))


def bad_forward(in_shape, num_classes, width):
    return nn.Sequential(nn.Flatten(), nn.Linear(7, num_classes))


def nan_output(in_shape, num_classes, width):
    net = good(in_shape, num_classes, width)
    with torch.no_grad():
        net[1].bias.fill_(float("nan"))
    return net


def one_argument(in_shape):
    return good(in_shape, 10, 1.0)


def _data(x=None, y=None, k=4, **kw):
    x = torch.randn(16, 1, 6, 6) if x is None else x
    y = torch.arange(16) % k if y is None else y
    return rb.Dataset(x, y, torch.randn(8, 1, 6, 6), torch.arange(8) % k, num_classes=k, **kw)


def loader(seed, root):
    return _data()
loader.version = "1"


def float64(seed, root):
    return _data(x=torch.randn(16, 1, 6, 6, dtype=torch.float64))


def int32_labels(seed, root):
    return _data(y=(torch.arange(16) % 4).to(torch.int32))


def flat_images(seed, root):
    return _data(x=torch.randn(16, 36))


def nans(seed, root):
    x = torch.randn(16, 1, 6, 6)
    x[3, 0, 2, 2] = float("nan")
    return _data(x=x)


def label_out_of_range(seed, root):
    return _data(y=torch.arange(16) % 5)


def crashes(seed, root):
    raise OSError("disk on fire")


def a_tuple(seed, root):
    return (torch.randn(4, 1, 6, 6), torch.zeros(4, dtype=torch.int64))


def mutated(seed, root):
    ds = _data()
    ds.x_train[0, 0, 0, 0] = float("inf")
    return ds


not_callable = 3
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """The module `rb_test_plugins` (PLUGINS) importable; the registry forgets it afterwards."""
    (tmp_path / "rb_test_plugins.py").write_text(PLUGINS)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    yield "rb_test_plugins"
    registry.reset()
    import sys
    sys.modules.pop("rb_test_plugins", None)


# ----------------------------------------------------------------------------- resolution

def test_builtin_names_resolve_through_the_registry_with_no_version():
    m = registry.resolve_model("inception_small")
    assert (m.builtin, m.version, m.default_lr, "dropout" in m.accepts) == (True, None, 0.1, True)
    d = registry.resolve_dataset("mnist5k")
    assert (d.builtin, d.version, d.dataset_name) == (True, None, "mnist5k")


def test_builtin_cache_keys_are_unchanged():
    """The keys of built-in configs before plugins existed (so the cache and the committed cpu
    baseline still match): the plugin fields are left out of the dict and the key."""
    assert RunConfig().key() == "295b2d55ca172ff43717"
    assert RunConfig().replace(model="alexnet_small").key() == "b1ae6cfdffc735aea97a"
    assert "model_version" not in RunConfig().to_dict()


def test_an_import_path_model_gets_its_version_and_default_lr_into_the_config():
    cfg = RunConfig(model=EXAMPLE_MODEL, dataset=EXAMPLE_DATA)
    assert (cfg.model_version, cfg.dataset_version, cfg.lr) == ("1", "1", 0.1)
    assert cfg.to_dict()["model_version"] == "1"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert RunConfig(model=EXAMPLE_MODEL, lr=0.01).lr == 0.01      # an explicit lr wins


def test_the_version_is_in_the_cache_key(monkeypatch):
    from examples.tinyres import nets

    before = RunConfig(model=EXAMPLE_MODEL).key()
    monkeypatch.setattr(nets.resnet_small, "version", "2", raising=False)
    registry.reset()
    try:
        assert RunConfig(model=EXAMPLE_MODEL).key() != before
    finally:
        monkeypatch.undo()
        registry.reset()
    assert RunConfig(model=EXAMPLE_MODEL).key() == before


@settings(max_examples=30, deadline=None)
@given(a=st.text(min_size=1, max_size=12), b=st.text(min_size=1, max_size=12))
def test_distinct_versions_give_distinct_keys(a, b):
    """Property: the key is a function of the version: equal versions, equal keys; different
    versions, different keys (a stored config keeps the version it was trained with)."""
    ka = RunConfig(model=EXAMPLE_MODEL, model_version=a, lr=0.1).key()
    kb = RunConfig(model=EXAMPLE_MODEL, model_version=b, lr=0.1).key()
    assert (ka == kb) == (a == b)


def test_without_a_version_attribute_the_source_hash_is_the_version(tmp_path, monkeypatch):
    pkg = tmp_path / "rb_hashed"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text("WIDTH = 4\n")
    (pkg / "nets.py").write_text(textwrap.dedent("""
        from torch import nn
        from .layers import WIDTH
        def net(in_shape, num_classes, width):
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
        net.default_lr = 0.1
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    v1 = registry.resolve_model("rb_hashed.nets:net").version
    assert v1.startswith("sha256:")
    (pkg / "layers.py").write_text("WIDTH = 8  # another file of the same package\n")
    registry.reset()
    assert registry.resolve_model("rb_hashed.nets:net").version not in (v1, None)
    registry.reset()


def test_replacing_the_model_takes_the_new_models_version_and_lr():
    cfg = RunConfig(model=EXAMPLE_MODEL)
    assert cfg.replace(model="mlp1x512") == RunConfig(model="mlp1x512")
    assert cfg.replace(seed=3).model_version == "1"
    assert RunConfig(model=EXAMPLE_MODEL, lr=0.3).replace(model="mlp1x512").lr == 0.3


def test_plugin_dataset_loads_checked_subset_and_versioned_name():
    ds = rb.load_dataset(EXAMPLE_DATA, 0, n_train=40)
    assert ds.name == f"{EXAMPLE_DATA}@1" and ds.n_train == 40 and ds.num_classes == 4
    assert torch.bincount(ds.y_train).tolist() == [10, 10, 10, 10]
    assert rb.load_dataset(EXAMPLE_DATA, 0, n_train=40) is ds   # memoized


def test_a_plugin_model_trains_and_its_network_comes_back_from_the_cache(tmp_path):
    from rethinkbench.engine.cache import ResultsCache

    data = registry.resolve_dataset(EXAMPLE_DATA).load(0)
    cfg = RunConfig(model=EXAMPLE_MODEL, dataset=EXAMPLE_DATA, n_train=16, max_epochs=1, stop_at_fit=False)
    res = rb.train(cfg, keep_model=True)
    assert res.model.num_classes == data.num_classes
    cache = ResultsCache(tmp_path / "cache")
    cache.put(res)
    back = cache.get(cfg, with_model=True)
    x = data.x_test[:3]
    assert torch.equal(back.model(x).argmax(1), res.model(x).argmax(1))


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kind, name", [("model", "digits"), ("dataset", "digits"), ("model", "")])
def test_unknown_names_list_the_builtins_and_how_to_register(kind, name):
    with pytest.raises(rb.UsageError) as exc:
        (registry.resolve_model if kind == "model" else registry.resolve_dataset)(name)
    text = str(exc.value)
    assert f"unknown {kind} {name!r}" in text
    assert ("mlp1x512" if kind == "model" else "mnist5k") in text
    assert f"rethinkbench.{kind}s" in text and "docs/plugins.md" in text and "rethinkbench list" in text
    assert ("module:factory" if kind == "model" else "module:loader") in text
    if kind == "dataset":
        assert "custom:<id>" in text


def test_unknown_names_through_the_public_api():
    with pytest.raises(rb.UsageError, match="unknown dataset 'digits'.*module:loader"):
        RunConfig(dataset="digits")
    with pytest.raises(rb.UsageError, match="unknown model 'resnet'.*module:factory"):
        rb.build_model("resnet")


MODEL_ERRORS = [
    ("raises", "failed to build a network for in_shape (1, 6, 6), num_classes 4, width 1: ValueError: no such layer"),
    ("not_a_module", "returned a int, not a torch.nn.Module"),
    ("wrong_classes", "output shape (2, 3) for 2 inputs of shape (1, 6, 6); expected (2, 4)"),
    ("bad_forward", "the forward pass failed on 2 inputs of shape (1, 6, 6): RuntimeError"),
    ("nan_output", "non-finite outputs"),
    ("one_argument", "must take (in_shape, num_classes, width) positionally"),
    ("not_callable", "is a int, not a factory"),
    ("missing", "module 'rb_test_plugins' has no attribute 'missing'"),
]


@pytest.mark.parametrize("attr, message", MODEL_ERRORS, ids=[a for a, _ in MODEL_ERRORS])
def test_a_bad_model_plugin_is_one_usage_error_naming_it(plugins, attr, message):
    name = f"{plugins}:{attr}"
    with pytest.raises(rb.UsageError) as exc:
        registry.check_model(name, (1, 6, 6), 4, examples=torch.randn(3, 1, 6, 6))
    assert f"model plugin {name!r}" in str(exc.value)
    assert message in str(exc.value)


def test_a_missing_module_says_how_to_make_it_importable():
    with pytest.raises(rb.UsageError, match=r"model plugin 'nope_pkg\.nets:f': cannot import module "
                                            r"'nope_pkg\.nets' .*PYTHONPATH"):
        registry.resolve_model("nope_pkg.nets:f")


def test_a_plugin_without_default_lr_needs_an_lr(plugins):
    with pytest.raises(rb.UsageError, match=r"model plugin 'rb_test_plugins:no_lr' declares no "
                                            r"default_lr .*--lr"):
        RunConfig(model=f"{plugins}:no_lr")
    assert RunConfig(model=f"{plugins}:no_lr", lr=0.2).lr == 0.2


def test_dropout_on_a_factory_without_it_is_refused(plugins):
    with pytest.raises(rb.UsageError, match=r"model plugin 'rb_test_plugins:good' takes no dropout"):
        rb.build_model(f"{plugins}:good", (1, 6, 6), 4, dropout=0.5)


DATA_ERRORS = [
    ("float64", "x_train must be float32 (the models' dtype), got torch.float64"),
    ("int32_labels", "y_train must be int64, got torch.int32"),
    ("flat_images", "x_train must be (N,C,H,W), got shape (16, 36)"),
    ("nans", "x_train has 1 non-finite value (NaN or inf)"),
    ("label_out_of_range", "y_train has labels outside [0, 3] (min 0, max 4)"),
    ("crashes", "failed while loading (seed=0, root="),
    ("a_tuple", "returned a tuple, not an rb.Dataset"),
    ("mutated", "x_train has 1 non-finite value"),
]


@pytest.mark.parametrize("attr, message", DATA_ERRORS, ids=[a for a, _ in DATA_ERRORS])
def test_a_bad_dataset_plugin_is_one_data_error_naming_it(plugins, attr, message):
    name = f"{plugins}:{attr}"
    with pytest.raises(rb.DataError) as exc:
        rb.load_dataset(name)
    assert f"dataset plugin {name!r}" in str(exc.value)
    assert message in str(exc.value)


def test_an_import_path_needs_both_parts():
    with pytest.raises(rb.UsageError, match="an import path is module:attr"):
        registry.resolve_model("mypkg.nets:")
