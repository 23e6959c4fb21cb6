"""The randomizations of Zhang et al. §2.1, as pure functions of (dataset, level, seed).

Each draw is made once from an explicit generator and fixed for every epoch. Test labels stay
clean. The returned Dataset records the original labels (`y_train_clean`) and which training
examples the corruption changed (`corrupted`), so claims can follow clean and noisy subsets.

Which test images are changed (the paper's authors' own demo corrupted the test set too; we don't,
except where the corruption is a fixed re-encoding of the input):
- label corruptions: test set untouched;
- shuffled_pixels: the same permutation is applied to the test images (it is a fixed re-encoding,
  so test accuracy stays meaningful);
- random_pixels, gaussian: test images untouched (test accuracy on them is chance by design).
Pixel corruptions drop `x_train_raw`, so random-crop augmentation cannot silently undo them.
"""
from __future__ import annotations

import numbers
from dataclasses import replace

import torch

from rethinkbench.base.arguments import count
from rethinkbench.base.errors import UsageError
from rethinkbench.base.seeding import generator
from rethinkbench.harness.data import Dataset, balanced_subset

CORRUPTIONS = ("true_labels", "partial_labels", "random_labels", "shuffled_pixels",
               "random_pixels", "gaussian")
LABEL_CORRUPTIONS = ("true_labels", "partial_labels", "random_labels")


def check_corruption(kind: str, level: float | None) -> float | None:
    """Validate (kind, level); returns the level to use (None for kinds without one)."""
    if not isinstance(kind, str):
        raise UsageError(f"corruption kind must be a str, one of {', '.join(CORRUPTIONS)}; got "
                         f"{type(kind).__name__} {kind!r}")
    if kind not in CORRUPTIONS:
        raise UsageError(f"unknown corruption {kind!r}; known: {', '.join(CORRUPTIONS)}")
    if kind == "partial_labels":
        if level is None:
            raise UsageError("partial_labels needs level=p, the probability in [0, 1] that a "
                             "training label is replaced by a uniform draw")
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 <= level <= 1.0:
            raise UsageError(f"partial_labels level must be a probability in [0, 1], got {level!r}")
        return float(level)
    if level is not None and kind != "partial_labels":
        raise UsageError(f"corruption {kind!r} takes no level (got level={level!r}); only "
                         f"partial_labels does")
    return None


def corrupt(ds: Dataset, kind: str, level: float | None = None, seed: int = 0) -> Dataset:
    """Return a new Dataset with the randomization `kind` applied; `ds` is left untouched."""
    if not isinstance(ds, Dataset):
        raise UsageError(f"corrupt() takes an rb.Dataset as ds (e.g. from rb.load_dataset or "
                         f"rb.Dataset(...)), got {type(ds).__name__}")
    level = check_corruption(kind, level)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise UsageError(f"corrupt() seed must be an int, got {type(seed).__name__} {seed!r}")
    if kind == "random_labels":
        kind, level = "partial_labels", 1.0
        label = "random_labels"
    else:
        label = kind
    y_clean = ds.y_train_clean if ds.y_train_clean is not None else ds.y_train
    info = {**ds.info, "corruption": label, "corruption_level": level, "corruption_seed": seed}
    if kind == "true_labels":
        # Labels as they are: on an already corrupted dataset the mask still says which differ.
        return replace(ds, y_train_clean=y_clean.clone(), corrupted=ds.y_train != y_clean, info=info)
    if kind == "partial_labels":
        y_new = partial_labels(ds.y_train, ds.num_classes, level, seed)
        return replace(ds, y_train=y_new, y_train_clean=y_clean.clone(), corrupted=y_new != y_clean,
                       info=info)
    all_changed = torch.ones(ds.n_train, dtype=torch.bool, device=ds.y_train.device)
    common = dict(x_train_raw=None, y_train_clean=y_clean.clone(), corrupted=all_changed, info=info)
    if kind == "shuffled_pixels":
        perm = pixel_permutation(_positions(ds.x_train), seed)
        return replace(ds, x_train=permute_pixels(ds.x_train, perm),
                       x_test=permute_pixels(ds.x_test, perm), **common)
    if kind == "random_pixels":
        return replace(ds, x_train=per_image_permutation(ds.x_train, seed), **common)
    return replace(ds, x_train=gaussian_like(ds.x_train, seed), **common)  # gaussian


def partial_labels(y: torch.Tensor, num_classes: int, p: float, seed: int) -> torch.Tensor:
    """Each label, independently with probability p, replaced by a uniform draw over all classes.

    The draw may return the original class, so about (1 - 1/num_classes)·p of labels change.
    """
    gen = generator(seed, "labels")
    replace_mask = torch.rand(y.shape[0], generator=gen) < p
    draws = torch.randint(0, num_classes, (y.shape[0],), generator=gen)
    return torch.where(replace_mask.to(y.device), draws.to(y.device), y)


def pixel_permutation(num_values: int, seed: int) -> torch.Tensor:
    """One permutation of pixel positions (all channels of a position move together)."""
    return torch.randperm(num_values, generator=generator(seed, "pixels"))


def permute_pixels(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Apply one permutation of pixel positions to every image of x (N,C,H,W)."""
    return x.flatten(2)[..., perm.to(x.device)].reshape(x.shape).contiguous()


def _positions(x: torch.Tensor) -> int:
    return x.shape[-1] * x.shape[-2]


def per_image_permutation(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A different random permutation of pixel positions for each image."""
    gen = generator(seed, "pixels")
    n, c = x.shape[:2]
    perms = torch.argsort(torch.rand(n, _positions(x), generator=gen), dim=1).to(x.device)
    flat = x.flatten(2)
    return flat.gather(2, perms[:, None, :].expand(n, c, -1)).reshape(x.shape).contiguous()


def gaussian_like(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian noise with the dataset's mean and standard deviation (over all pixels)."""
    gen = generator(seed, "pixels")
    mean, std = x.mean(), x.std()
    noise = torch.randn(x.shape, generator=gen).to(x.device)
    return (noise * std + mean).to(x.dtype)


def random_signs(ds: Dataset, seed: int, n_train: int | None = None) -> Dataset:
    """Random ±1 labels (as classes 0/1) for the empirical Rademacher complexity (Zhang §2.2).

    A 2-class dataset over ds's training images (a class-balanced subset of n_train if given);
    each label is a fair coin from the "signs" stream. Test labels are the original classes mod 2,
    a placeholder: only training accuracy means anything here.
    """
    x = ds.x_train
    if n_train is not None and n_train != ds.n_train:
        x = x[balanced_subset(ds.y_train, n_train, seed, ds.name)]
    signs = torch.randint(0, 2, (x.shape[0],), generator=generator(seed, "signs")).to(ds.y_train.device)
    return Dataset(x, signs, ds.x_test, ds.y_test % 2, num_classes=2, name=f"{ds.name}-random-signs",
                   info={**ds.info, "corruption": "random_signs", "corruption_seed": seed})


def confusion_set(ds: Dataset, n_true: int, n_confusion: int, seed: int) -> Dataset:
    """Neyshabur et al. (2017, Fig. 3)'s training set: `n_true` digits with their true labels plus a
    "confusion set" of `n_confusion` other digits with uniformly random labels; test set untouched.

    The true set is the first n_true of a random permutation of ds's training examples ("confusion"
    stream of `seed`), the confusion set the next n_confusion, so at one seed the true set is the
    same for every size and a larger confusion set contains a smaller one with the same labels (each
    drawn once, for the pool's position). The true set comes first: examples n_true onwards are the
    confusion set; `y_train_clean` keeps their original labels and `corrupted` marks those whose
    label the draw changed (about 9 in 10 of them with 10 classes), as for the other corruptions."""
    n_true, n_confusion = count("confusion_set: n_true", n_true), count("confusion_set: n_confusion", n_confusion, 0)
    n = ds.x_train.shape[0]
    if n_true + n_confusion > n:
        raise UsageError(f"confusion_set: n_true + n_confusion = {n_true + n_confusion} is more than "
                         f"{ds.name}'s {n} training examples")
    gen = generator(seed, "confusion")
    order = torch.randperm(n, generator=gen)
    pool_labels = torch.randint(0, ds.num_classes, (n - n_true,), generator=gen)
    idx = order[:n_true + n_confusion].to(ds.y_train.device)
    y_clean = ds.y_train[idx]
    y = torch.cat([y_clean[:n_true], pool_labels[:n_confusion].to(y_clean.device)])
    return Dataset(ds.x_train[idx], y, ds.x_test, ds.y_test, num_classes=ds.num_classes,
                   name=f"{ds.name}-confusion{n_true}+{n_confusion}", y_train_clean=y_clean,
                   corrupted=y != y_clean,
                   info={**ds.info, "corruption": "confusion_set", "corruption_seed": seed,
                         "n_true": n_true, "n_confusion": n_confusion})
