"""RunConfig (rethinkbench/engine/config.py): validation of every field, the cache key, replace()."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rethinkbench as rb
from rethinkbench.engine.config import RunConfig

# For every field, a valid value different from the default (each must change the key).
OTHER = dict(dataset="cifar10", corruption="random_labels", model="alexnet_small", width=0.5, seed=1,
             split_seed=1, n_train=100, n_test=50, lr=0.05, momentum=0.5, lr_decay=0.9, decay_steps=100,
             batch_size=64, weight_decay=1e-4, random_crop=True, dropout=0.5, input_dropout=0.2,
             input_noise=0.5, hidden_noise=0.1, adversarial=0.3, init="glorot_uniform", max_epochs=10,
             max_steps=50, stop_at_fit=False, stall_epochs=5, track_subsets=True, record_per_example=True,
             track_spectral=True, optimizer="adam",
             device="cuda")


# A plugin's version: set from the registry for plugin names only (tests/test_registry.py checks
# that it changes the key).
PLUGIN_VERSIONS = {"model_version", "dataset_version"}


def test_other_covers_every_field():
    assert set(OTHER) | {"level"} | PLUGIN_VERSIONS == {f.name for f in dataclasses.fields(RunConfig)}


# ----------------------------------------------------------------------------- validation

BAD = [
    ("dataset", "nope"), ("dataset", "MNIST"), ("dataset", 3),
    ("corruption", "nope"),
    ("model", "resnet"), ("model", None),
    ("width", 0), ("width", -1.0), ("width", "1"), ("width", True), ("width", float("nan")),
    ("width", float("inf")),
    ("seed", 1.5), ("seed", "0"), ("seed", True), ("seed", None),
    ("split_seed", 1.5), ("split_seed", None),
    ("n_train", 0), ("n_train", -5), ("n_train", 1.5), ("n_train", True),
    ("n_test", 0), ("n_test", -1), ("n_test", 2.5), ("n_test", True),
    ("lr", 0), ("lr", -0.1), ("lr", 0.0), ("lr", float("nan")), ("lr", float("inf")), ("lr", "0.1"),
    ("momentum", -0.1), ("momentum", 1.0), ("momentum", float("nan")),
    ("lr_decay", 0), ("lr_decay", 1.5), ("lr_decay", -0.95),
    ("decay_steps", 0), ("decay_steps", 1.5), ("decay_steps", -390),
    ("stall_epochs", 0), ("stall_epochs", 2.5),
    ("batch_size", 0), ("batch_size", 2.5), ("batch_size", True), ("batch_size", "128"),
    ("weight_decay", -1e-4), ("weight_decay", float("nan")), ("weight_decay", float("inf")),
    ("random_crop", "no"), ("stop_at_fit", "false"), ("record_per_example", None), ("track_spectral", 1),
    ("dropout", 1.0), ("dropout", -0.1), ("dropout", float("nan")),
    ("max_epochs", 0), ("max_epochs", 2.5), ("max_epochs", None),
    ("max_steps", 0), ("max_steps", -1), ("max_steps", 1.5),
    ("device", "tpu"), ("device", "gpu"), ("device", 0),
    ("optimizer", "Adam"), ("optimizer", "lbfgs"), ("optimizer", None),
]


@pytest.mark.parametrize("field, value", BAD, ids=[f"{f}={v!r}" for f, v in BAD])
def test_bad_field_is_a_usage_error_naming_the_value(field, value):
    with pytest.raises(rb.UsageError) as exc:
        RunConfig(**{field: value})
    assert repr(value) in str(exc.value) or str(value) in str(exc.value), str(exc.value)


@pytest.mark.parametrize("corruption", ["shuffled_pixels", "random_pixels", "gaussian"])
def test_random_crop_cannot_move_randomized_pixels(corruption):
    with pytest.raises(rb.UsageError, match=f"random_crop.*{corruption}"):
        RunConfig(corruption=corruption, random_crop=True)


@pytest.mark.parametrize("corruption", ["true_labels", "random_labels"])
def test_random_crop_with_label_corruptions_is_fine(corruption):
    assert RunConfig(corruption=corruption, random_crop=True).random_crop


@pytest.mark.parametrize("kw, match", [
    (dict(corruption="partial_labels"), "needs level"),
    (dict(corruption="partial_labels", level=1.5), "1.5"),
    (dict(corruption="random_labels", level=0.5), "takes no level"),
    (dict(level=0.5), "takes no level"),
])
def test_level_rules(kw, match):
    with pytest.raises(rb.UsageError, match=match):
        RunConfig(**kw)


def test_valid_configs():
    assert RunConfig().effective_lr == 0.01
    assert RunConfig(model="inception_small").effective_lr == 0.1
    assert RunConfig(lr=0.5).effective_lr == 0.5
    assert RunConfig(corruption="partial_labels", level=1).level == 1.0
    assert RunConfig(dataset="custom:mine").dataset == "custom:mine"
    assert RunConfig(device="cuda:1").device == "cuda:1"   # valid without CUDA: checked at train time
    assert RunConfig(**OTHER).to_dict()["dataset"] == "cifar10"


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().lr = 1.0


# ----------------------------------------------------------------------------- key

def test_equal_configs_have_equal_keys():
    a = RunConfig(model="mlp3x512", corruption="partial_labels", level=0.4, seed=2, n_train=500)
    b = RunConfig(seed=2, n_train=500, level=0.4, corruption="partial_labels", model="mlp3x512")
    assert a == b and a.key() == b.key()
    assert RunConfig.from_dict(a.to_dict()) == a and RunConfig.from_dict(a.to_dict()).key() == a.key()
    assert a.replace(seed=2).key() == a.key()


@pytest.mark.parametrize("field, value", [("width", 1), ("weight_decay", 0), ("lr", 1)])
def test_int_and_float_spellings_of_a_number_are_one_config_and_one_key(field, value):
    """`RunConfig(width=1) == RunConfig(width=1.0)` (dataclass equality), so they are the same run
    and must share the cache key; a key that differs makes Runner.many (which de-duplicates
    configs by equality, then looks results up by key) return None for the second spelling."""
    a, b = RunConfig(**{field: value}), RunConfig(**{field: float(value)})
    assert a == b
    assert a.key() == b.key()


@pytest.mark.parametrize("field", sorted(OTHER))
def test_any_field_change_changes_the_key(field):
    assert RunConfig().replace(**{field: OTHER[field]}).key() != RunConfig().key()


def test_all_single_field_changes_give_distinct_keys():
    keys = {RunConfig().replace(**{f: v}).key() for f, v in OTHER.items()}
    keys.add(RunConfig(corruption="partial_labels", level=0.3).key())
    keys.add(RunConfig(corruption="partial_labels", level=0.4).key())
    assert len(keys) == len(OTHER) + 2


def test_key_is_stable_across_processes():
    """The key is a content hash (no Python hash(), no id()): another interpreter with a different
    hash seed computes the same key for the same fields."""
    cfg = RunConfig(model="alexnet_small", corruption="partial_labels", level=0.2, seed=7, width=0.25,
                    n_train=1000, random_crop=True)
    code = ("from rethinkbench.engine.config import RunConfig as R; "
            "print(R(model='alexnet_small', corruption='partial_labels', level=0.2, seed=7, "
            "width=0.25, n_train=1000, random_crop=True).key())")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == cfg.key()
    assert len(cfg.key()) == 20 and int(cfg.key(), 16) >= 0


# ----------------------------------------------------------------------------- replace / label

def test_replace_unknown_field_is_a_usage_error_naming_it():
    with pytest.raises(rb.UsageError, match=r"unknown RunConfig field\(s\) \['learning_rate'\]") as exc:
        RunConfig().replace(learning_rate=0.1)
    assert "lr" in str(exc.value)


def test_replace_validates_the_new_values():
    with pytest.raises(rb.UsageError, match="lr must be > 0"):
        RunConfig().replace(lr=-1.0)
    cfg = RunConfig().replace(corruption="partial_labels", level=0.3)
    assert cfg.level == 0.3 and cfg.corruption == "partial_labels"


def test_label_names_the_run():
    label = RunConfig(model="alexnet_small", corruption="partial_labels", level=0.4, width=0.25,
                      random_crop=True, weight_decay=5e-4, n_train=1000, seed=3).label()
    for part in ("alexnet_small", "partial_labels(0.4)", "w0.25", "crop", "wd0.0005", "n1000", "seed3"):
        assert part in label


# Keys as ea9ed21 computed them (before the package was split into layers), for configs of the
# committed cpu baseline: the cache and every stored results.json know runs by these. The baseline
# test below cannot catch a key change once the baseline is remade with new code; these can.
PINNED = [
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "partial_labels", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": 0.4, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "mlp1x512", "momentum": 0.9, "n_train": None, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": True, "weight_decay": 0.0, "width": 1.0},
     'cd28dfa5ab1e01505327'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "true_labels", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "mlp1x512", "momentum": 0.9, "n_train": None, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 1.0},
     '423a77f5e7fe9a5a42b8'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "random_labels", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "mlp1x512", "momentum": 0.9, "n_train": None, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 1.0},
     'e21d4adc30a552ff3a53'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "gaussian", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "mlp1x512", "momentum": 0.9, "n_train": None, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 1.0},
     'c8269560b19e67a21f67'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "true_labels", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "inception_small", "momentum": 0.9, "n_train": 500, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 0.125},
     '0f4142f37e96f0f5668b'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "random_labels", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "inception_small", "momentum": 0.9, "n_train": 500, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 0.125},
     '4fcd131984d30b3d8b13'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "gaussian", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "inception_small", "momentum": 0.9, "n_train": 500, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 0.125},
     '710b882c080229ef6cf1'),
    ({"adversarial": 0.0, "batch_size": 128, "corruption": "true_labels", "dataset": "mnist5k", "decay_steps": 390, "device": "cpu", "dropout": 0.0, "hidden_noise": 0.0, "init": "torch", "input_dropout": 0.0, "input_noise": 0.0, "level": None, "lr": None, "lr_decay": 0.95, "max_epochs": 300, "max_steps": None, "model": "mlp1x512", "momentum": 0.9, "n_train": 500, "random_crop": False, "record_per_example": False, "seed": 0, "split_seed": 0, "stall_epochs": 25, "stop_at_fit": True, "track_subsets": False, "weight_decay": 0.0, "width": 1.0},
     '0f3d98be5258d2291de4'),
]


@pytest.mark.parametrize("config, key", PINNED)
def test_keys_are_those_ea9ed21_computed(config, key):
    assert RunConfig.from_dict(config).key() == key


def test_every_committed_baseline_run_keeps_its_key():
    """Every run in reports/baselines/*.json rebuilds, from its stored config, the key it is stored
    under (and the one a cache entry of that run has)."""
    import json
    from pathlib import Path

    baselines = sorted((Path(__file__).resolve().parents[1] / "reports" / "baselines").glob("*.json"))
    assert baselines
    checked = 0
    for path in baselines:
        for key, run in json.loads(path.read_text())["runs"].items():
            assert RunConfig.from_dict(run["config"]).key() == key == run["key"], (path.name, run["config"])
            checked += 1
    assert checked >= 100


def test_the_default_optimizer_leaves_dict_and_key_as_they_were():
    """RunConfig.optimizer came after the baselines: at "sgd" it is not in to_dict() (results.json,
    the cache's config check) nor in the key, so every earlier run keeps its key."""
    cfg = RunConfig()
    assert "optimizer" not in cfg.to_dict()
    assert RunConfig.from_dict(cfg.to_dict()).key() == cfg.replace(optimizer="sgd").key()
    adam = cfg.replace(optimizer="adam")
    assert adam.to_dict()["optimizer"] == "adam" and adam.key() != cfg.key()
    assert "adam" in adam.label() and "sgd" not in cfg.label()
