"""Run recipes shared by several claims, so that claims asking for the same run get the same
RunConfig (and therefore one training, through the cache).

Each function returns the override dicts a claim passes to the `run` fixture; the scale profile
fills in everything else (dataset, width, n_train, epoch budget, device).
"""
from __future__ import annotations

# Zhang et al. do not state their weight-decay coefficient; 5e-4 is the usual value for these
# CIFAR-10 models (unconfirmed against the paper's code). Recorded in every run's config.
WEIGHT_DECAY = 5e-4
PARTIAL_LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
RANDOMIZATIONS = ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")


def randomization(model: str, corruption: str, seeds, **extra) -> list[dict]:
    """The Fig. 1a runs: `model` trained to 100% (or its budget) on `corruption`."""
    return [dict(model=model, corruption=corruption, seed=s, **extra) for s in seeds]


def label_noise(model: str, level: float, seeds) -> list[dict]:
    """The Fig. 1b/1c runs. p = 0 and p = 1 are the true- and random-label runs of Fig. 1a (same
    configs, so they come from the cache)."""
    if level == 0.0:
        return randomization(model, "true_labels", seeds)
    if level == 1.0:
        return randomization(model, "random_labels", seeds)
    # Clean/noisy subset accuracy is tracked every epoch (a full train pass, ~1/3 of an epoch's
    # cost) so that A-patterns-first can read these same runs.
    return [dict(model=model, corruption="partial_labels", level=level, seed=s, track_subsets=True)
            for s in seeds]


def table1_n_train(scale) -> int | None:
    """Table 1 compares architectures, so every model trains on the same examples: the scale's
    conv-net subset (cpu: narrowed conv nets on a class-balanced subset; paper: all of CIFAR-10)."""
    return scale.setting(scale.conv_model).n_train


def table1(scale, model: str, *, crop: bool, wd: bool, seeds, corruption: str = "true_labels") -> list[dict]:
    """A Table 1 cell: `model` with random crop and/or weight decay on, trained to fit or budget."""
    return [dict(model=model, corruption=corruption, random_crop=crop,
                 weight_decay=WEIGHT_DECAY if wd else 0.0, n_train=table1_n_train(scale), seed=s)
            for s in seeds]
