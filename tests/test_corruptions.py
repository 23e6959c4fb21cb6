"""The randomizations of Zhang et al. §2.1 (rethinkbench/harness/corruptions.py), mostly as Hypothesis
properties on small random datasets built here.

Every statistical assertion states its null hypothesis and uses a 5-sigma binomial bound (or a
tolerance at least that wide), so a correct implementation fails one of these with probability
below 1e-6 per example.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rethinkbench as rb
from rethinkbench.harness.corruptions import CORRUPTIONS, LABEL_CORRUPTIONS, check_corruption

pytestmark = pytest.mark.usefixtures("single_thread")

PROPS = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)
PIXEL_CORRUPTIONS = ("shuffled_pixels", "random_pixels", "gaussian")
LEVEL = {"partial_labels": 0.5}     # the one kind that takes a level


def five_sigma(n: int, q: float) -> float:
    """Half-width of a 5-sigma interval for a Binomial(n, q) count (+1 for discreteness)."""
    return 5 * math.sqrt(n * q * (1 - q)) + 1


def recover_permutation(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """The perm with after == before[perm], for 1-D tensors of distinct values."""
    assert before.unique().numel() == before.numel(), "values must be distinct to recover a permutation"
    where = {v: i for i, v in enumerate(before.tolist())}
    return torch.tensor([where[v] for v in after.tolist()])


def clone_fields(ds: rb.Dataset) -> dict:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else v)
            for k, v in vars(ds).items() if k != "info"} | {"info": dict(ds.info)}


def assert_same_fields(ds: rb.Dataset, saved: dict) -> None:
    for k, v in saved.items():
        now = getattr(ds, k)
        if isinstance(v, torch.Tensor):
            assert torch.equal(now, v), f"field {k} of the input dataset changed"
        else:
            assert now == v, f"field {k} of the input dataset changed: {v!r} -> {now!r}"


# ----------------------------------------------------------------------------- label corruptions

@PROPS
@given(p=st.floats(0.0, 1.0), k=st.integers(2, 10), seed=SEEDS)
def test_partial_labels_changes_about_p_times_one_minus_one_over_k(make_dataset, p, k, seed):
    """Null hypothesis: each of the n=2000 labels changes independently with probability
    q = p·(1 - 1/k) (replaced with probability p by a uniform draw, which keeps the old class with
    probability 1/k: about 0.9·p for 10 classes). Rejected if the count of changed labels is more
    than 5 binomial sigmas from n·q."""
    ds = make_dataset(n=2000, shape=(1, 2, 2), num_classes=k, seed=seed % 1000)
    out = rb.corrupt(ds, "partial_labels", level=p, seed=seed)
    n, q = 2000, p * (1 - 1 / k)
    changed = int((out.y_train != ds.y_train).sum())
    assert abs(changed - n * q) <= five_sigma(n, q), (changed, n * q)
    assert out.y_train.dtype == torch.int64
    assert int(out.y_train.min()) >= 0 and int(out.y_train.max()) < k


def test_partial_labels_ten_classes_changes_0_9_p(make_dataset):
    """Null hypothesis: with 10 classes and p = 0.4, each of n=5000 labels changes with probability
    0.36; rejected beyond 5 sigma."""
    ds = make_dataset(n=5000, shape=(1, 2, 2), num_classes=10, seed=3)
    out = rb.corrupt(ds, "partial_labels", level=0.4, seed=11)
    changed = int(out.corrupted.sum())
    assert abs(changed - 5000 * 0.36) <= five_sigma(5000, 0.36)


@PROPS
@given(k=st.integers(2, 10), seed=SEEDS)
def test_random_labels_is_partial_labels_with_p_1(make_dataset, k, seed):
    ds = make_dataset(n=300, num_classes=k, seed=seed % 997)
    rand = rb.corrupt(ds, "random_labels", seed=seed)
    p1 = rb.corrupt(ds, "partial_labels", level=1.0, seed=seed)
    assert torch.equal(rand.y_train, p1.y_train)
    assert rand.info["corruption"] == "random_labels" and rand.info["corruption_level"] == 1.0


def test_random_labels_are_uniform_and_independent_of_the_true_label(make_dataset):
    """Null hypothesis: the n=5000 new labels are i.i.d. uniform over 10 classes, independent of
    the old ones: each class count ~ Binomial(5000, 0.1) and the number unchanged ~
    Binomial(5000, 0.1). Rejected beyond 5 sigma."""
    ds = make_dataset(n=5000, shape=(1, 2, 2), num_classes=10, seed=5)
    out = rb.corrupt(ds, "random_labels", seed=7)
    counts = torch.bincount(out.y_train, minlength=10)
    assert (counts - 500).abs().max() <= five_sigma(5000, 0.1), counts.tolist()
    kept = int((out.y_train == ds.y_train).sum())
    assert abs(kept - 500) <= five_sigma(5000, 0.1)


@PROPS
@given(kind=st.sampled_from(LABEL_CORRUPTIONS), p=st.floats(0.0, 1.0), seed=SEEDS,
       n=st.integers(1, 200))
def test_label_corruptions_record_clean_labels_and_the_changed_mask(make_dataset, kind, p, n, seed):
    ds = make_dataset(n=n, seed=seed % 991)
    out = rb.corrupt(ds, kind, level=p if kind == "partial_labels" else None, seed=seed)
    assert torch.equal(out.y_train_clean, ds.y_train)
    assert out.corrupted.dtype == torch.bool and out.corrupted.shape == (n,)
    assert torch.equal(out.corrupted, out.y_train != out.y_train_clean)
    # inputs and the test set are never touched by a label corruption
    assert torch.equal(out.x_train, ds.x_train) and torch.equal(out.x_test, ds.x_test)
    assert torch.equal(out.y_test, ds.y_test)
    if kind == "true_labels":
        assert torch.equal(out.y_train, ds.y_train) and not out.corrupted.any()


def test_chained_corruptions_keep_the_original_clean_labels(make_dataset):
    ds = make_dataset(n=500, seed=2)
    once = rb.corrupt(ds, "partial_labels", level=0.5, seed=1)
    twice = rb.corrupt(once, "partial_labels", level=0.5, seed=2)
    assert torch.equal(twice.y_train_clean, ds.y_train)
    assert torch.equal(twice.corrupted, twice.y_train != ds.y_train)


def test_true_labels_on_a_corrupted_dataset_keeps_the_mask_invariant(make_dataset):
    """`corrupted` is which training labels differ from the clean ones: applying true_labels to an
    already label-corrupted dataset must not report the changed labels as clean."""
    ds = make_dataset(n=500, seed=2)
    noisy = rb.corrupt(ds, "random_labels", seed=1)
    out = rb.corrupt(noisy, "true_labels", seed=0)
    assert torch.equal(out.y_train_clean, ds.y_train)
    assert torch.equal(out.corrupted, out.y_train != out.y_train_clean)


def test_partial_labels_level_0_and_1_edges(make_dataset):
    ds = make_dataset(n=400, seed=4)
    assert torch.equal(rb.corrupt(ds, "partial_labels", level=0.0, seed=3).y_train, ds.y_train)
    assert rb.corrupt(ds, "partial_labels", level=0, seed=3).info["corruption_level"] == 0.0


# ----------------------------------------------------------------------------- pixel corruptions

@PROPS
@given(seed=SEEDS, n=st.integers(1, 12), c=st.sampled_from([1, 3]), h=st.integers(4, 9),
       w=st.integers(4, 9))
def test_shuffled_pixels_is_one_permutation_for_every_image_and_the_test_set(make_dataset, seed, n, c, h, w):
    ds = make_dataset(n=n, shape=(c, h, w), n_test=5, seed=seed % 983, raw=True)
    out = rb.corrupt(ds, "shuffled_pixels", seed=seed)
    perm = recover_permutation(ds.x_train[0, 0].flatten(), out.x_train[0, 0].flatten())
    assert sorted(perm.tolist()) == list(range(h * w))
    assert torch.equal(out.x_train.flatten(2), ds.x_train.flatten(2)[..., perm]), "train images"
    assert torch.equal(out.x_test.flatten(2), ds.x_test.flatten(2)[..., perm]), "test images"
    if h * w >= 16:   # P(identity) = 1/(h·w)! < 1e-13
        assert not torch.equal(perm, torch.arange(h * w))
    assert out.x_train_raw is None, "random crop must not be able to undo the permutation"
    assert torch.equal(out.y_train, ds.y_train) and torch.equal(out.y_test, ds.y_test)
    assert out.corrupted.all() and torch.equal(out.y_train_clean, ds.y_train)


@PROPS
@given(seed=SEEDS, n=st.integers(2, 12), c=st.sampled_from([1, 3]), h=st.integers(4, 9),
       w=st.integers(4, 9))
def test_random_pixels_permutes_each_image_with_its_own_permutation(make_dataset, seed, n, c, h, w):
    ds = make_dataset(n=n, shape=(c, h, w), n_test=5, seed=seed % 977, raw=True)
    out = rb.corrupt(ds, "random_pixels", seed=seed)
    before, after = ds.x_train.flatten(2), out.x_train.flatten(2)
    # each image keeps its pixel multiset, per channel
    assert torch.equal(before.sort(dim=2).values, after.sort(dim=2).values)
    perms = []
    for i in range(n):
        perm = recover_permutation(before[i, 0], after[i, 0])
        # all channels of a position move together
        assert torch.equal(after[i], before[i][:, perm])
        perms.append(perm)
    if h * w >= 16:   # two equal uniform permutations of >= 16 positions: P < 1e-13
        assert len({tuple(p.tolist()) for p in perms}) == n, "images share a permutation"
    assert torch.equal(out.x_test, ds.x_test), "random_pixels leaves the test images alone"
    assert out.x_train_raw is None and out.corrupted.all()
    assert torch.equal(out.y_train, ds.y_train)


@PROPS
@given(seed=SEEDS, loc=st.floats(-5, 5), scale=st.floats(0.1, 10))
def test_gaussian_matches_the_datasets_mean_and_std(make_dataset, seed, loc, scale):
    """Null hypothesis: the M = 200·3·8·8 = 38,400 noise values are i.i.d. Normal(mean, sd²) with
    the dataset's mean and sd. Then the sample mean is within 6·sd/sqrt(M) of the mean and the
    sample sd within a relative 6/sqrt(2M) of sd (both > 5 sigma); rejected otherwise."""
    ds = make_dataset(n=200, shape=(3, 8, 8), seed=seed % 971, loc=loc, scale=scale)
    out = rb.corrupt(ds, "gaussian", seed=seed)
    m = ds.x_train.numel()
    mean, sd = ds.x_train.double().mean().item(), ds.x_train.double().std().item()
    got_mean, got_sd = out.x_train.double().mean().item(), out.x_train.double().std().item()
    assert abs(got_mean - mean) <= 6 * sd / math.sqrt(m) + 1e-6 * abs(mean)
    assert abs(got_sd / sd - 1) <= 6 / math.sqrt(2 * m)
    assert out.x_train.shape == ds.x_train.shape and out.x_train.dtype == ds.x_train.dtype
    assert torch.equal(out.x_test, ds.x_test) and torch.equal(out.y_train, ds.y_train)
    assert out.x_train_raw is None and out.corrupted.all()


def test_gaussian_replaces_the_images(make_dataset):
    """The noise is not a reshuffle of the data: (almost) none of its values occur in the data.
    Two continuous draws share a float32 value only by rounding coincidence (expected < 1 of 720)."""
    ds = make_dataset(n=20, shape=(1, 6, 6), loc=2.0, seed=8)
    out = rb.corrupt(ds, "gaussian", seed=0)
    assert torch.isin(out.x_train, ds.x_train).float().mean() < 0.01
    assert not torch.equal(out.x_train.flatten().sort().values, ds.x_train.flatten().sort().values)


# ----------------------------------------------------------------------------- all kinds

@PROPS
@given(kind=st.sampled_from(CORRUPTIONS), seed=SEEDS)
def test_same_seed_same_output(make_dataset, kind, seed):
    ds = make_dataset(n=50, shape=(1, 5, 5), seed=seed % 967, raw=True)
    a = rb.corrupt(ds, kind, level=LEVEL.get(kind), seed=seed)
    b = rb.corrupt(ds, kind, level=LEVEL.get(kind), seed=seed)
    for f in ("x_train", "y_train", "x_test", "y_test", "y_train_clean", "corrupted"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


@PROPS
@given(kind=st.sampled_from(("random_labels", *PIXEL_CORRUPTIONS)), s1=SEEDS, s2=SEEDS)
def test_different_seed_different_output(make_dataset, kind, s1, s2):
    """With 200 labels over 10 classes or 5x5 = 25 pixel positions, two different seeds give the
    same draw with probability < 1e-20."""
    if s1 == s2:
        s2 = s1 + 1
    ds = make_dataset(n=200, shape=(1, 5, 5), seed=1)
    a, b = rb.corrupt(ds, kind, seed=s1), rb.corrupt(ds, kind, seed=s2)
    assert not (torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train))


@PROPS
@given(kind=st.sampled_from(CORRUPTIONS), seed=SEEDS, p=st.floats(0, 1))
def test_input_dataset_is_untouched(make_dataset, kind, seed, p):
    ds = make_dataset(n=40, shape=(3, 5, 5), seed=seed % 953, raw=True)
    ds = rb.corrupt(ds, "partial_labels", level=0.3, seed=seed)   # with clean labels and a mask too
    saved = clone_fields(ds)
    out = rb.corrupt(ds, kind, level=p if kind == "partial_labels" else None, seed=seed)
    assert out is not ds
    assert_same_fields(ds, saved)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_every_kind_records_what_it_did(make_dataset, kind):
    ds = make_dataset(n=30, raw=True)
    out = rb.corrupt(ds, kind, level=LEVEL.get(kind), seed=9)
    assert out.info["corruption"] == kind and out.info["corruption_seed"] == 9
    assert out.num_classes == ds.num_classes and out.name == ds.name
    assert out.x_train.shape == ds.x_train.shape and out.n_train == ds.n_train


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("level, shown", [(-0.1, "-0.1"), (1.5, "1.5"), (float("nan"), "nan"),
                                          (float("inf"), "inf"), (True, "True"), ("0.5", "'0.5'"),
                                          (None, "level")])
def test_partial_labels_rejects_bad_levels(make_dataset, level, shown):
    with pytest.raises(rb.UsageError, match="partial_labels") as exc:
        rb.corrupt(make_dataset(), "partial_labels", level=level)
    assert shown in str(exc.value)


@pytest.mark.parametrize("kind", [k for k in CORRUPTIONS if k != "partial_labels"])
def test_kinds_without_a_level_reject_one(make_dataset, kind):
    with pytest.raises(rb.UsageError) as exc:
        rb.corrupt(make_dataset(), kind, level=0.25)
    assert kind in str(exc.value) and "0.25" in str(exc.value)


@pytest.mark.parametrize("kind", ["nope", "random_label", "", "RANDOM_LABELS"])
def test_unknown_kind_is_a_usage_error_naming_it(make_dataset, kind):
    with pytest.raises(rb.UsageError, match="unknown corruption") as exc:
        rb.corrupt(make_dataset(), kind)
    assert repr(kind) in str(exc.value) and "random_labels" in str(exc.value)


@pytest.mark.parametrize("ds, shown", [([1, 2], "list"), (None, "NoneType"), ("mnist5k", "str")])
def test_corrupt_needs_a_dataset(ds, shown):
    with pytest.raises(rb.UsageError) as exc:
        rb.corrupt(ds, "random_labels")
    assert str(exc.value).startswith("corrupt() takes an rb.Dataset as ds")
    assert str(exc.value).endswith(f"got {shown}")


@pytest.mark.parametrize("kind, shown", [(3, "int 3"), (None, "NoneType None"), (["random_labels"], "list")])
def test_kind_that_is_not_a_string_is_a_usage_error(make_dataset, kind, shown):
    with pytest.raises(rb.UsageError) as exc:
        rb.corrupt(make_dataset(), kind)
    assert str(exc.value).startswith("corruption kind must be a str, one of true_labels, partial_labels")
    assert f"got {shown}" in str(exc.value)


@pytest.mark.parametrize("seed, shown", [("x", "str 'x'"), (1.5, "float 1.5"), (None, "NoneType None"),
                                         (True, "bool True")])
def test_seed_that_is_not_an_int_is_a_usage_error(make_dataset, seed, shown):
    with pytest.raises(rb.UsageError) as exc:
        rb.corrupt(make_dataset(), "random_labels", seed=seed)
    assert str(exc.value) == f"corrupt() seed must be an int, got {shown}"


def test_check_corruption_normalizes_levels():
    assert check_corruption("partial_labels", 1) == 1.0
    assert isinstance(check_corruption("partial_labels", 0), float)
    assert check_corruption("random_labels", None) is None


# ----------------------------------------------------------------------------- confusion set

@PROPS
@given(n_true=st.integers(1, 60), sizes=st.lists(st.integers(0, 100), min_size=2, max_size=3), seed=SEEDS)
def test_confusion_set_keeps_its_true_set_and_nests_its_confusion_sets(make_dataset, n_true, sizes, seed):
    """Neyshabur et al.'s Fig. 3 sets: at one seed the true-label part is the same for every size,
    a larger confusion set extends a smaller one (same digits, same labels), the input dataset and
    the test set are untouched, and the true part keeps its labels."""
    from rethinkbench.harness.corruptions import confusion_set
    ds = make_dataset(n=200, num_classes=10)
    saved = clone_fields(ds)
    built = [confusion_set(ds, n_true, k, seed) for k in sorted(sizes)]
    assert_same_fields(ds, saved)
    small = built[0]
    for big, k in zip(built, sorted(sizes)):
        assert big.n_train == n_true + k and big.info["n_confusion"] == k
        assert torch.equal(big.x_train[:n_true + sorted(sizes)[0]], small.x_train)
        assert torch.equal(big.y_train[:n_true + sorted(sizes)[0]], small.y_train)
        assert torch.equal(big.y_train[:n_true], big.y_train_clean[:n_true])
        assert not big.corrupted[:n_true].any()
        assert torch.equal(big.corrupted, big.y_train != big.y_train_clean)
        assert torch.equal(big.x_test, ds.x_test) and torch.equal(big.y_test, ds.y_test)
    rows = {tuple(r) for r in ds.x_train.flatten(1).tolist()}
    picked = [tuple(r) for r in built[-1].x_train.flatten(1).tolist()]
    assert len(set(picked)) == len(picked) and set(picked) <= rows      # distinct training digits


def test_confusion_set_labels_are_random_and_errors_are_clear(make_dataset):
    """Null hypothesis: each of the 1,800 confusion labels is uniform over 10 classes, so it keeps
    its true class with probability 1/10 (5-sigma bound)."""
    from rethinkbench.harness.corruptions import confusion_set
    ds = make_dataset(n=2000, num_classes=10)
    c = confusion_set(ds, 200, 1800, seed=3)
    kept = int((c.y_train[200:] == c.y_train_clean[200:]).sum())
    assert abs(kept - 180) <= five_sigma(1800, 0.1)
    assert not torch.equal(c.y_train, confusion_set(ds, 200, 1800, seed=4).y_train)
    with pytest.raises(rb.UsageError, match=r"n_true \+ n_confusion = 2001 is more than .*2000 training examples"):
        confusion_set(ds, 1000, 1001, seed=0)
    with pytest.raises(rb.UsageError, match="n_confusion must be an integer >= 0, got -1"):
        confusion_set(ds, 10, -1, seed=0)
    with pytest.raises(rb.UsageError, match="confusion_set: n_true must be an integer >= 1, got 0"):
        confusion_set(ds, 0, 10, seed=0)
