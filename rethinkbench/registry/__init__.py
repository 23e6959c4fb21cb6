"""Models and datasets by name: the built-in ones, Python entry points, import paths.

    from rethinkbench import registry
    plugin = registry.resolve_model("mypkg.nets:resnet_small")     # or "tinyres", or "mlp1x512"
    net = plugin.build((1, 28, 28), num_classes=10, width=1.0)
    data = registry.resolve_dataset("mypkg.data:load").load(seed=0, root=None)

A name resolves, in this order (docs/plugins.md):

1. a built-in name (``rb.MODELS`` / ``rb.DATASETS``): the paper's networks and datasets;
2. ``custom:<id>`` (datasets only): an in-memory ``rb.Dataset`` given to ``rb.train(cfg, dataset=...)``;
3. ``module:attr`` (any name with a colon): imported with importlib;
4. an entry point of that name in the group ``rethinkbench.models`` / ``rethinkbench.datasets``.

A model factory is ``f(in_shape, num_classes, width) -> nn.Module`` (optionally with a ``dropout``
keyword); a dataset loader is ``f(seed, root) -> rb.Dataset``. A plugin's version (its ``version``
attribute, else a hash of its source) enters every run's cache key, so changed code retrains.
"""
from rethinkbench.registry.lookup import DATASET_GROUP, MODEL_GROUP
from rethinkbench.registry.core import (DatasetPlugin, ModelPlugin, build_model,
                                        build_plugin_model, check_model, config_plugins, entry_points,
                                        load_dataset, load_plugin_dataset, reset, resolve_dataset,
                                        resolve_model)

__all__ = ["MODEL_GROUP", "DATASET_GROUP", "ModelPlugin", "DatasetPlugin", "resolve_model",
           "resolve_dataset", "build_model", "load_dataset", "build_plugin_model", "load_plugin_dataset", "check_model",
           "config_plugins", "entry_points", "reset"]
