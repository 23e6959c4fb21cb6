"""rethinkbench: re-check the claims of "Understanding deep learning requires rethinking
generalization" (Zhang et al., ICLR 2017) and its replies by training real networks.

The stable public API (other tools call it; see DESIGN.md):

    ds = rb.load_dataset("mnist5k", seed=0)
    cds = rb.corrupt(ds, "partial_labels", level=0.4, seed=0)
    net = rb.build_model("inception_small", in_shape=(3, 28, 28), num_classes=10)
    res = rb.train(rb.RunConfig(model="mlp1x512", corruption="random_labels"))
    net = rb.theory.fit_any_labeling(x, y)
"""
__version__ = "0.1.0"

from .config import RunConfig  # noqa: E402
from .corruptions import CORRUPTIONS, corrupt  # noqa: E402
from .data import DATASETS, Dataset, load_dataset  # noqa: E402
from .errors import DataError, RethinkbenchError, TrainingDiverged, UsageError  # noqa: E402
from .models import MODELS, build_model, count_parameters  # noqa: E402
from .scales import SCALES, ScaleProfile, get_scale  # noqa: E402
from .train import RunResult, train  # noqa: E402
from .engine.cohort import train_many  # noqa: E402


def __getattr__(name):
    # theory pulls in nothing heavy, but keep `import rethinkbench` lean for the CLI.
    if name == "theory":
        import importlib
        return importlib.import_module(".theory", __name__)
    raise AttributeError(f"module 'rethinkbench' has no attribute {name!r}")


__all__ = ["RunConfig", "RunResult", "Dataset", "load_dataset", "corrupt", "build_model",
           "count_parameters", "train", "train_many", "ScaleProfile", "SCALES", "get_scale", "CORRUPTIONS",
           "DATASETS", "MODELS", "RethinkbenchError", "UsageError", "DataError", "TrainingDiverged",
           "theory"]
