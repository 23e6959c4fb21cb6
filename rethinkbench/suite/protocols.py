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
# The runs whose trained networks the norm-measure claims read (claims/test_bartlett_neyshabur.py):
# widely spaced corruption levels of the Fig. 1b/1c MLP. Every claim asking for these runs keeps
# the network (keep_model, not part of the cache key), so whichever claim trains them first leaves
# the weights in the cache and the measures never retrain (a cached result without its weights is
# a miss for a keep_model request). On CUDA a kept network is trained solo, not in a stacked cohort.
MEASURE_MODEL = "mlp1x512"
MEASURE_LEVELS = (0.0, 0.4, 1.0)            # B-margin-separates, N-norms-vs-noise
# Arpit et al.'s capacity runs (A-capacity-time), also read by N-norms-grow-with-n: every noise
# level at several training-set sizes (the largest is the Fig. 1b run itself).
CAPACITY_SIZES = {"smoke": (50, 100, 200), "cpu": (500, 1000, 2000, 4000), "paper": (5000, 10000, 25000, 50000)}
CAPACITY_NOISE = (0.0, 0.4, 0.8)
KEEP_LEVELS = tuple(sorted(set(MEASURE_LEVELS) | set(CAPACITY_NOISE)))


def _keeps(model: str, level: float) -> dict:
    return {"keep_model": True} if model == MEASURE_MODEL and level in KEEP_LEVELS else {}


def capacity(model: str, level: float, n: int, full: int, seeds) -> list[dict]:
    """The A-capacity-time runs at noise `level` on `n` training examples (`full`: the scale's
    whole training set, whose run is the Fig. 1b run, n_train None)."""
    return [{**o, "n_train": None if n >= full else n} for o in label_noise(model, level, seeds)]


def randomization(model: str, corruption: str, seeds, **extra) -> list[dict]:
    """The Fig. 1a runs: `model` trained to 100% (or its budget) on `corruption`."""
    level = {"true_labels": 0.0, "random_labels": 1.0}.get(corruption)
    keep = _keeps(model, level) if level is not None and not extra else {}
    return [dict(model=model, corruption=corruption, seed=s, **extra, **keep) for s in seeds]


def label_noise(model: str, level: float, seeds) -> list[dict]:
    """The Fig. 1b/1c runs. p = 0 and p = 1 are the true- and random-label runs of Fig. 1a (same
    configs, so they come from the cache)."""
    if level == 0.0:
        return randomization(model, "true_labels", seeds)
    if level == 1.0:
        return randomization(model, "random_labels", seeds)
    # Clean/noisy subset accuracy is tracked every epoch (a full train pass, ~1/3 of an epoch's
    # cost) so that A-patterns-first can read these same runs.
    return [dict(model=model, corruption="partial_labels", level=level, seed=s, track_subsets=True,
                 **_keeps(model, level)) for s in seeds]


def table1_n_train(scale) -> int | None:
    """Table 1 compares architectures, so every model trains on the same examples: the scale's
    conv-net subset (cpu: narrowed conv nets on a class-balanced subset; paper: all of CIFAR-10)."""
    return scale.setting(scale.conv_model).n_train


def table1(scale, model: str, *, crop: bool, wd: bool, seeds, corruption: str = "true_labels") -> list[dict]:
    """A Table 1 cell: `model` with random crop and/or weight decay on, trained to fit or budget."""
    return [dict(model=model, corruption=corruption, random_crop=crop,
                 weight_decay=WEIGHT_DECAY if wd else 0.0, n_train=table1_n_train(scale), seed=s)
            for s in seeds]


def steps_to_fit(results) -> list[int]:
    """steps_to_fit per run; a run that never fitted counts as its whole budget (a lower bound)."""
    return [r.steps_to_fit if r.fitted else r.history[-1]["step"] for r in results]


def fits_faster(claim, model: str, faster: str, slower: str, fast_runs, slow_runs):
    """Record and decide "`faster` is fitted in fewer steps than `slower`" (Z-F1a-noise-faster,
    A-noise-slower): one-sided exact Mann-Whitney U over seeds, rejected at p ≤ 0.05 (with 3 seeds
    a side that needs every `faster` run to beat every `slower` run), and every `faster` run fitted.
    Returns (reproduced, message) for `claim.check`."""
    import numpy as np   # protocols.py is imported by every claim module: numpy and scipy (~0.3 s)
    from scipy import stats   # load only when a statistical test is actually decided

    s_fast, s_slow = steps_to_fit(fast_runs), steps_to_fit(slow_runs)
    p = float(stats.mannwhitneyu(s_fast, s_slow, alternative="less", method="exact").pvalue)
    claim.test = f"one-sided exact Mann-Whitney U: steps({faster}) < steps({slower}), p ≤ 0.05"
    claim.measure(f"steps_{faster}", s_fast, unit=" steps", tolerance={"rel": 0.5})
    claim.measure(f"steps_{slower}", s_slow, unit=" steps", tolerance={"rel": 0.5})
    claim.measure("p_value", p)
    fitted = sum(r.fitted for r in fast_runs)
    message = (f"{model}: steps({faster}) = {np.mean(s_fast):.0f} (n={len(s_fast)}, fitted {fitted}/"
               f"{len(fast_runs)}) vs steps({slower}) = {np.mean(s_slow):.0f}; Mann-Whitney p = {p:.3f}")
    return p <= 0.05 and fitted == len(fast_runs), message
