"""Whether a built-in dataset's files are on disk, checked at configure time (before anything
trains) without loading anything; when they are not, the session downloads them once, and if that
fails this module's line is the session's one usage error instead of a traceback per test
(issue 21). The layouts are where rethinkbench.harness.data reads them:
torchvision's folders under the data root, and for Fashion-MNIST also the idx files of a
`fashion-mnist` folder there or of Debian's dataset-fashion-mnist package."""
from __future__ import annotations

from pathlib import Path

from rethinkbench.harness.data import FASHION_MNIST_DEBIAN

_IDX = [f"{split}-{kind}-idx{n}-ubyte" for split in ("train", "t10k")
        for kind, n in (("images", 3), ("labels", 1))]
# name -> (torchvision class, [files it needs under the data root])
_TORCHVISION = {
    "mnist": ("MNIST", [f"MNIST/raw/{f}" for f in _IDX]),
    "fashion_mnist": ("FashionMNIST", [f"FashionMNIST/raw/{f}" for f in _IDX]),
    "cifar10": ("CIFAR10", [f"cifar-10-batches-py/{f}" for f in
                            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]]),
}


def _idx_folder_complete(folder: Path) -> bool:
    return all((folder / f).exists() or (folder / f"{f}.gz").exists() for f in _IDX)


def missing_dataset(name: str, root: Path) -> str | None:
    """None when built-in dataset `name` can be read from `root` without a download (mnist5k
    ships inside a package: always); else one line naming what is missing and how to get it."""
    if name not in _TORCHVISION:
        return None
    root = Path(root)
    if name == "fashion_mnist" and any(_idx_folder_complete(f) for f in (root / "fashion-mnist",
                                                                           FASHION_MNIST_DEBIAN)):
        return None
    cls, files = _TORCHVISION[name]
    missing = [f for f in files if not (root / f).is_file()]
    if not missing:
        return None
    where = f"{root / files[0].split('/')[0]}"
    debian = (f", or install Debian's dataset-fashion-mnist (read from {FASHION_MNIST_DEBIAN})"
              if name == "fashion_mnist" else "")
    return (f"--dataset {name}: not found under --data-root {root} ({len(missing)} of its "
            f"{len(files)} files missing from {where}, e.g. {missing[0]}); fetch it with network "
            f"access: python -c \"import "
            f"torchvision; torchvision.datasets.{cls}('{root}', download=True)\"{debian}, or pass "
            f"--data-root PATH to a folder that holds it")
