"""Name resolution, plugin objects and their checks (see the package docstring for the rules).

Every error here names the plugin (`model plugin 'mypkg.nets:resnet_small' ...`) and says what was
expected; a model's errors are UsageErrors, a dataset's DataErrors. Resolutions are memoized per
process (RunConfig resolves its names each time it is built); `reset()` forgets them, and the pytest
plugin calls it at the start of every session.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from rethinkbench.base.errors import DataError, RethinkbenchError, UsageError
from rethinkbench.harness import data as builtin_data
from rethinkbench.harness import models as builtin_models
from rethinkbench.harness.data import DATASETS, Dataset, balanced_subset, default_data_root, subset
from rethinkbench.harness.models import MODELS, PAPER_LR
from rethinkbench.registry.checks import CHECK_EXAMPLES, check_forward, check_in_shape
from rethinkbench.registry.lookup import entry_points, ep_text, import_attr, unknown_message
from rethinkbench.registry.versions import plugin_version

CUSTOM_PREFIX = "custom:"   # in-memory datasets (rb.train(cfg, dataset=...)), cached by that id


@dataclass(frozen=True)
class _Plugin:
    name: str                 # as the user wrote it: "mlp1x512", "tinyres", "mypkg.nets:resnet_small"
    obj: Callable             # the factory / loader
    source: str               # "built-in" | "entry point" | "import path"
    origin: str               # where it came from, for messages and the report
    version: str | None       # None for built-ins; else the `version` attribute or "sha256:<hash>"

    kind = "plugin"

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"

    def describe(self) -> str:
        """`tinyres (entry point rethinkbench_tinyres.nets:resnet_small from rethinkbench-tinyres
        0.1.0, version 1)`."""
        if self.builtin:
            return f"{self.name} (built-in)"
        return f"{self.name} ({self.origin}, version {self.version})"

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "origin": self.origin, "version": self.version}


@dataclass(frozen=True)
class ModelPlugin(_Plugin):
    default_lr: float | None = None
    accepts: frozenset = field(default_factory=frozenset)   # optional keywords: {"dropout"}
    kind = "model"

    def build(self, in_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> torch.nn.Module:
        """The factory's network, checked once per shape: an nn.Module whose output for a batch of
        `in_shape` inputs is (batch, num_classes) and finite. Draws its init from the global RNG,
        like the built-in models (train() seeds it inside a fork)."""
        if self.builtin:
            return builtin_models.build_model(self.name, in_shape, num_classes, width, dropout)
        in_shape = check_in_shape(self, in_shape)
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise UsageError(f"width multiplier must be a positive number, got {width!r}")
        kwargs = {}
        if "dropout" in self.accepts:
            kwargs["dropout"] = float(dropout)
        elif dropout:
            raise UsageError(f"model plugin {self.name!r} takes no dropout (its factory has no "
                             f"`dropout` keyword), and this run asks for dropout={dropout}; add a "
                             f"`dropout: float = 0.0` parameter to the factory to run dropout claims")
        try:
            net = self.obj(in_shape, int(num_classes), float(width), **kwargs)
        except Exception as exc:
            raise UsageError(f"model plugin {self.name!r} failed to build a network for in_shape "
                             f"{in_shape}, num_classes {num_classes}, width {width:g}: "
                             f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(net, torch.nn.Module):
            raise UsageError(f"model plugin {self.name!r} returned a {type(net).__name__}, not a "
                             f"torch.nn.Module (a factory takes (in_shape, num_classes, width) and "
                             f"returns the network)")
        # What the cache needs to rebuild a saved network (rethinkbench/engine/cache.py), as build_model sets.
        for attr, value in (("in_shape", in_shape), ("num_classes", int(num_classes))):
            if not hasattr(net, attr):
                setattr(net, attr, value)
        shape_key = (self.name, self.version, in_shape, int(num_classes), float(width), float(dropout))
        if shape_key not in _CHECKED:
            check_forward(self, net, in_shape, int(num_classes), None)
            _CHECKED.add(shape_key)
        return net

    def to_dict(self) -> dict:
        return {**super().to_dict(), "default_lr": self.default_lr}


@dataclass(frozen=True)
class DatasetPlugin(_Plugin):
    kind = "dataset"

    @property
    def dataset_name(self) -> str:
        """The loaded Dataset's `name`: the plugin name and its version, so that claims which
        build `custom:<...>-{dataset.name}` cache ids from it never share runs across versions."""
        return self.name if self.builtin else f"{self.name}@{self.version}"

    def load(self, seed: int = 0, root=None) -> Dataset:
        """Call the loader and check what it returns (a DataError naming the plugin otherwise)."""
        if self.builtin:
            return builtin_data.load_dataset(self.name, seed, root=root)
        root = Path(root) if root is not None else _default_root()
        try:
            ds = self.obj(seed, root)
        except RethinkbenchError as exc:   # e.g. rb.Dataset(...) refusing the loader's tensors
            raise DataError(f"dataset plugin {self.name!r} returned bad data: {exc}") from exc
        except Exception as exc:
            raise DataError(f"dataset plugin {self.name!r} failed while loading (seed={seed}, "
                            f"root={root}): {type(exc).__name__}: {exc}") from exc
        if not isinstance(ds, Dataset):
            raise DataError(f"dataset plugin {self.name!r} returned a {type(ds).__name__}, not an "
                            f"rb.Dataset; build one with rb.Dataset(x_train, y_train, x_test, y_test, "
                            f"num_classes=K, name=...)")
        try:   # again: the loader may have changed its tensors after building the Dataset
            ds = replace(ds, name=self.dataset_name)
        except DataError as exc:
            raise DataError(f"dataset plugin {self.name!r} returned bad data: {exc}") from exc
        for split in ("x_train", "x_test"):
            dtype = getattr(ds, split).dtype
            if dtype != torch.float32:
                raise DataError(f"dataset plugin {self.name!r} returned bad data: {split} must be "
                                f"float32 (the models' dtype), got {dtype}; convert with .float()")
        if ds.x_train_raw is not None and ds.x_train_raw.dtype != torch.float32:
            raise DataError(f"dataset plugin {self.name!r} returned bad data: x_train_raw must be "
                            f"float32, got {ds.x_train_raw.dtype}")
        return ds

    def to_dict(self) -> dict:
        return super().to_dict()


# ----------------------------------------------------------------------------- resolution

_RESOLVED: dict[tuple[str, str], _Plugin] = {}
_CHECKED: set = set()
_LOADED: dict = {}


def reset() -> None:
    """Forget every resolved plugin, checked shape and loaded plugin dataset (a new session:
    a changed version attribute or source file is seen again)."""
    _RESOLVED.clear()
    _CHECKED.clear()
    _LOADED.clear()


def resolve_model(name: str) -> ModelPlugin:
    """The model plugin `name` names (built-in, `module:factory` or an entry point name)."""
    return _resolve("model", name)


def resolve_dataset(name: str) -> DatasetPlugin:
    """The dataset plugin `name` names (built-in, `module:loader` or an entry point name).
    `custom:<id>` is an in-memory dataset, not a plugin: a UsageError here."""
    if isinstance(name, str) and name.startswith(CUSTOM_PREFIX):
        raise UsageError(f"{name!r} is an in-memory dataset (rb.train(cfg, dataset=...)), not a "
                         f"loadable plugin")
    return _resolve("dataset", name)


def _resolve(kind: str, name: str):
    if not isinstance(name, str):
        raise UsageError(f"{kind} must be a name (str), got {type(name).__name__} {name!r}")
    key = (kind, name)
    if key not in _RESOLVED:
        _RESOLVED[key] = _find(kind, name)
    return _RESOLVED[key]


def _find(kind: str, name: str):
    builtins = MODELS if kind == "model" else DATASETS
    if name in builtins:
        return _builtin(kind, name)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if not module_name or not attr or " " in name:
            raise UsageError(f"{kind} plugin {name!r}: an import path is module:attr, e.g. "
                             f"{'mypkg.nets:resnet_small' if kind == 'model' else 'mypkg.data:load'}")
        obj = import_attr(kind, name, module_name, attr)
        return _plugin(kind, name, obj, "import path", "import path")
    matches = [ep for ep in entry_points(kind) if ep.name == name]
    if not matches:
        raise UsageError(unknown_message(kind, name))
    if len(matches) > 1:
        raise UsageError(f"{kind} plugin {name!r} is registered by more than one entry point: "
                         f"{'; '.join(ep_text(ep) for ep in matches)}; uninstall one, or use an "
                         f"import path (module:attr)")
    ep = matches[0]
    try:
        obj = ep.load()
    except Exception as exc:
        raise UsageError(f"{kind} plugin {name!r} ({ep_text(ep)}) could not be loaded: "
                         f"{type(exc).__name__}: {exc}") from exc
    return _plugin(kind, name, obj, "entry point", ep_text(ep))


def _plugin(kind: str, name: str, obj, source: str, origin: str):
    what, params = (("factory", ("in_shape", "num_classes", "width")) if kind == "model"
                    else ("loader", ("seed", "root")))
    if not callable(obj):
        raise UsageError(f"{kind} plugin {name!r} is a {type(obj).__name__}, not a {what} "
                         f"(a callable taking ({', '.join(params)}))")
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):   # some builtins and C callables have none: trust the call
        sig = None
    if sig is not None:
        try:
            sig.bind(*params)
        except TypeError:
            raise UsageError(f"{kind} plugin {name!r}: a {what} must take ({', '.join(params)}) "
                             f"positionally; {getattr(obj, '__name__', what)}{sig} does not") from None
    version = plugin_version(kind, name, obj)
    if kind == "dataset":
        return DatasetPlugin(name, obj, source, origin, version)
    lr = getattr(obj, "default_lr", None)
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not math.isfinite(lr) or lr <= 0):
        raise UsageError(f"model plugin {name!r}: default_lr must be a positive number, got {lr!r}")
    accepts = frozenset(p for p in ("dropout",) if sig is not None and p in sig.parameters)
    return ModelPlugin(name, obj, source, origin, version,
                       default_lr=None if lr is None else float(lr), accepts=accepts)


def _builtin(kind: str, name: str):
    if kind == "model":
        factory = lambda in_shape, num_classes, width, dropout=0.0: builtin_models.build_model(  # noqa: E731
            name, in_shape, num_classes, width, dropout)
        return ModelPlugin(name, factory, "built-in", "rethinkbench (the paper's)", None,
                           default_lr=PAPER_LR[name], accepts=frozenset({"dropout"}))
    return DatasetPlugin(name, lambda seed, root: builtin_data.load_dataset(name, seed, root=root), "built-in",
                         "rethinkbench", None)


def check_model(name: str, in_shape, num_classes: int, width: float = 1.0, examples=None) -> ModelPlugin:
    """Resolve model `name`, build it for (in_shape, num_classes, width) and run one forward pass
    on `examples` (a few inputs of the dataset; random ones if None), before any training. The
    global RNG is left as it was. Returns the plugin; a UsageError naming it otherwise."""
    plugin = resolve_model(name)
    with torch.random.fork_rng(devices=[]):
        net = plugin.build(in_shape, num_classes, width)
        if examples is not None:
            check_forward(plugin, net, tuple(in_shape), int(num_classes), examples[:CHECK_EXAMPLES])
    return plugin


def build_model(name: str, in_shape=(3, 28, 28), num_classes: int = 10, width: float = 1.0,
                dropout: float = 0.0) -> torch.nn.Module:
    """``rb.build_model``: a network by name, the paper's (rethinkbench/harness/models.py) or a
    plugin's factory (checked); an unknown name lists the built-ins and how to register one."""
    if name in MODELS:
        return builtin_models.build_model(name, in_shape, num_classes, width, dropout)
    return build_plugin_model(name, in_shape, num_classes, width, dropout)


def load_dataset(name: str = "mnist5k", seed: int = 0, *, n_train: int | None = None, root=None,
                 download: bool = True) -> Dataset:
    """``rb.load_dataset``: a dataset by name, built in (preprocessed as in the paper,
    rethinkbench/harness/data.py) or a plugin loader's Dataset (checked)."""
    if name in DATASETS:
        return builtin_data.load_dataset(name, seed, n_train=n_train, root=root, download=download)
    return load_plugin_dataset(name, seed, n_train=n_train, root=root)


def build_plugin_model(name: str, in_shape, num_classes: int, width: float = 1.0,
                       dropout: float = 0.0) -> torch.nn.Module:
    """rb.build_model for a name that is not built in."""
    return resolve_model(name).build(in_shape, num_classes, width, dropout)


def load_plugin_dataset(name: str, seed: int = 0, *, n_train: int | None = None, root=None) -> Dataset:
    """rb.load_dataset for a name that is not built in: the loader's Dataset (checked), with the
    class-balanced `n_train` subset drawn like a built-in dataset's. Memoized per process."""
    plugin = resolve_dataset(name)
    root = Path(root) if root is not None else _default_root()
    key = (name, plugin.version, seed, n_train, str(root))
    if key not in _LOADED:
        ds = plugin.load(seed, root)
        if n_train is not None and n_train != ds.n_train:
            ds = subset(ds, balanced_subset(ds.y_train, n_train, seed, ds.name))
        _LOADED[key] = ds
    return _LOADED[key]


def config_plugins(model: str, model_version, dataset: str, dataset_version, lr) -> tuple:
    """What RunConfig stores for its names: (model_version, dataset_version, lr). Built-in names
    and custom: datasets have no version (None, so their cache keys are unchanged); a plugin's is
    looked up unless given (a stored config keeps its own). A plugin model without an lr takes its
    factory's `default_lr`; with neither it is a UsageError."""
    if not isinstance(model, str):
        raise UsageError(f"model must be a name (str), got {type(model).__name__} {model!r}")
    for what, name, v, builtins in (("model", model, model_version, MODELS),
                                    ("dataset", dataset, dataset_version, DATASETS)):
        if v is not None and (name in builtins or name.startswith(CUSTOM_PREFIX)):
            raise UsageError(f"{what}_version is for plugins; {name!r} has none (got "
                             f"{what}_version={v!r})")
        if v is not None and (not isinstance(v, str) or not v):
            raise UsageError(f"{what}_version must be a non-empty str or None, got {v!r}")
    if model not in MODELS and model_version is None:
        plugin = resolve_model(model)
        model_version = plugin.version
        if lr is None:
            if plugin.default_lr is None:
                raise UsageError(f"model plugin {model!r} declares no default_lr and no lr was "
                                 f"given: pass --lr X (pytest) or RunConfig(lr=X), or set "
                                 f"`{getattr(plugin.obj, '__name__', 'factory')}.default_lr = X` "
                                 f"on the factory")
            lr = plugin.default_lr
    if not (dataset in DATASETS or dataset.startswith(CUSTOM_PREFIX)) and dataset_version is None:
        dataset_version = resolve_dataset(dataset).version
    return model_version, dataset_version, lr


def _default_root() -> Path:
    return default_data_root()

