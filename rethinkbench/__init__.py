"""rethinkbench: re-check the claims of "Understanding deep learning requires rethinking
generalization" (Zhang et al., ICLR 2017) and its replies by training real networks.

The stable public API (other tools call it; see DESIGN.md):

    ds = rb.load_dataset("mnist5k", seed=0)
    cds = rb.corrupt(ds, "partial_labels", level=0.4, seed=0)
    net = rb.build_model("inception_small", in_shape=(3, 28, 28), num_classes=10)
    res = rb.train(rb.RunConfig(model="mlp1x512", corruption="random_labels"))
    net = rb.theory.fit_any_labeling(x, y)

Every name is imported on first use (PEP 562), so `import rethinkbench` does not load torch: the
torch-free commands (`rethinkbench report`, `compare`) import only what they need. The layers
below are in docs/architecture.md.
"""
from __future__ import annotations

import importlib

from rethinkbench.base.version import __version__

# public name -> the module that defines it
_PUBLIC = {
    "RunConfig": "rethinkbench.engine.config",
    "RunResult": "rethinkbench.engine.train", "train": "rethinkbench.engine.train",
    "train_many": "rethinkbench.engine.cohort",
    "CORRUPTIONS": "rethinkbench.harness.corruptions", "corrupt": "rethinkbench.harness.corruptions",
    "DATASETS": "rethinkbench.harness.data", "Dataset": "rethinkbench.harness.data",
    "MODELS": "rethinkbench.harness.models", "count_parameters": "rethinkbench.harness.models",
    # names that may be a user's plugin resolve through the registry
    "load_dataset": "rethinkbench.registry", "build_model": "rethinkbench.registry",
    "SCALES": "rethinkbench.suite.scales", "ScaleProfile": "rethinkbench.suite.scales",
    "get_scale": "rethinkbench.suite.scales",
    "RethinkbenchError": "rethinkbench.base.errors", "UsageError": "rethinkbench.base.errors",
    "DataError": "rethinkbench.base.errors", "TrainingDiverged": "rethinkbench.base.errors",
}


def __getattr__(name: str):
    if name == "theory":
        return importlib.import_module("rethinkbench.theory")
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value   # next time, a plain attribute
        return value
    raise AttributeError(f"module 'rethinkbench' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC, "theory"])


__all__ = ["__version__", *_PUBLIC, "theory"]
