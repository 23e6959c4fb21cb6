"""PluginState: the session's settings from its options, checked at configure time (usage errors,
exit 4, before anything trains): CUDA for --gpu, the device per xdist worker, the --model and
--dataset plugins, the cache and report directories."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from rethinkbench import registry
from rethinkbench.base.errors import RethinkbenchError, UsageError
from rethinkbench.engine.cache import ResultsCache
from rethinkbench.engine.plan import KNOWN_DATA
from rethinkbench.harness.data import default_data_root
from rethinkbench.harness.datafiles import missing_dataset
from rethinkbench.registry import load_dataset
from rethinkbench.suite.scales import get_scale


class PluginState:
    """The session's settings, from the options, checked at configure time.

    Checks that would otherwise fail only after all the training fail here, as usage errors
    (pytest exits 4): the report dir and, unless --no-cache, the cache dir must be creatable and
    writable. Both are therefore created at configure time, on a --collect-only run too (the
    cache dir atomically, with its .gitignore and marker); that is harmless and keeps the check
    honest. Only `--help` skips the checks. --clear-cache refuses a directory that is not the
    cache's own (see rethinkbench.engine.cache), also as a usage error.
    """

    def __init__(self, config):
        opt = config.option
        if opt.gpu:
            if not torch.cuda.is_available():
                raise pytest.UsageError(
                    f"--gpu asks for CUDA, but torch.cuda.is_available() is False on this machine "
                    f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run without --gpu "
                    f"for the cpu scale")
        self.scale = get_scale(opt.scale or ("paper" if opt.gpu else "cpu"))
        device = "cuda" if opt.gpu else "cpu"
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if opt.gpu and worker:  # one GPU per xdist worker: gw0 -> cuda:0, gw1 -> cuda:1, ...
            device = f"cuda:{int(worker[2:]) % torch.cuda.device_count()}"
        elif worker:
            # CPU workers share the cores: torch's default (all cores per process) makes small
            # matmuls spin against each other, measured 5-20x slower; give each its share.
            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        self.device = device
        self.scale = self.scale.with_device(device)
        self.dataset = opt.dataset or self.scale.dataset
        root = Path(config.rootpath)
        self.data_root = opt.data_root or default_data_root()
        self.model = opt.model        # None: each claim's paper models
        self.lr = opt.lr
        self._resolve_plugins(opt)
        self.cache = ResultsCache(_under(root, opt.cache_dir), enabled=not opt.no_cache)
        self.report_dir = _under(root, opt.report_dir)
        if not opt.help:   # `pytest --help` must work in a read-only checkout too
            if self.cache.enabled:
                self._check_writable("--cache-dir", self.cache.dir, self.cache.ensure_dir)
            self._check_writable("--report-dir", self.report_dir,
                                 lambda: self.report_dir.mkdir(parents=True, exist_ok=True))
        if opt.clear_cache:
            try:
                self.cache.clear()
            except (UsageError, OSError) as exc:   # not the cache's directory: nothing was deleted
                raise pytest.UsageError(f"--clear-cache: {exc}") from None
        self.seeds = opt.seeds
        self.config = config
        self.plan = None   # engine.plan.Plan under --plan (set in pytest_configure)

    def _resolve_plugins(self, opt) -> None:
        """Resolve --model and --dataset through the registry and check a plugin before anything
        trains: the dataset's loader output, the model's output shape on a few of its examples, an
        lr for it. Any problem is one usage error naming the plugin (pytest exits 4)."""
        registry.reset()   # a new session sees a changed version attribute or source file
        self.model_plugin = self.dataset_plugin = None
        self.dataset_has_raw = True
        self.data_shape = None   # (in_shape, n_train, n_test, num_classes) of the session's dataset
        if opt.help:   # `pytest --help --model typo` still shows the help
            return
        try:
            self.dataset_plugin = registry.resolve_dataset(self.dataset)
            if self.model is not None:
                self.model_plugin = registry.resolve_model(self.model)
            # A built-in dataset's files, now rather than as a traceback in every test; not under
            # --plan or --collect-only, which read no data. Missing files are downloaded into the
            # data root (DESIGN.md); where that fails (no network), one line says what to do.
            if self.dataset_plugin.builtin and not (opt.plan or opt.collectonly):
                missing = missing_dataset(self.dataset_plugin.name, self.data_root)
                if missing:
                    try:
                        load_dataset(self.dataset_plugin.name, 0, root=self.data_root)
                    except RethinkbenchError as exc:
                        raise UsageError(f"{missing} (the download failed: {_first_line(exc)})") from None
            shape, classes, n_train, examples = _data_shape(self.dataset_plugin, self.data_root)
            n_test = KNOWN_DATA[self.dataset_plugin.name][1] if examples is None else examples[2]
            self.data_shape = (shape, n_train, n_test, classes)
            self.dataset_has_raw = examples is None or examples[1]
            if self.model_plugin is not None and not self.model_plugin.builtin:
                registry.check_model(self.model, shape, classes, 1.0,
                                     examples=None if examples is None else examples[0])
                if self.lr is None and self.model_plugin.default_lr is None:
                    raise UsageError(f"model plugin {self.model!r} declares no default_lr: pass --lr X, "
                                     f"or set `default_lr` on the factory (docs/plugins.md)")
                self.scale = self.scale.with_model(self.model, n_train)
        except RethinkbenchError as exc:
            raise pytest.UsageError(str(exc)) from None

    @property
    def not_comparable(self) -> str:
        """Why the paper's numbers cannot be set beside this session's ("" when they can)."""
        why = []
        if self.model_plugin is not None and not self.model_plugin.builtin:
            why.append(f"the model {self.model} is not one of the paper's networks")
        if self.dataset_plugin is not None and not self.dataset_plugin.builtin:
            why.append(f"the dataset {self.dataset} is not the paper's")
        if self.lr is not None:
            why.append(f"--lr {self.lr:g} replaces the paper's learning rates")
        return "; ".join(why)

    def describe_model(self) -> str:
        if self.model_plugin is None:
            return "the paper's networks (each claim's)"
        return self.model_plugin.describe()

    @staticmethod
    def _check_writable(option: str, path: Path, create) -> None:
        """`create()` the directory `path`, then write and delete a probe file in it; a usage error
        naming the option, the path and the OS error otherwise (found now, not after training)."""
        try:
            create()
            fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise pytest.UsageError(
                f"{option} {path} is not a directory this session can create and write: {exc}; "
                f"pass {option} PATH with one that is") from None


def _data_shape(plugin, data_root):
    """(in_shape, num_classes, n_train, examples) of the session's dataset: a built-in one's known
    sizes (nothing is loaded or downloaded), a plugin's by loading and checking it. `examples` is
    None for a built-in dataset, else (a few training inputs, whether it has x_train_raw, n_test)."""
    if plugin.builtin:
        n_train, _, shape, classes = KNOWN_DATA[plugin.name]
        return shape, classes, n_train, None
    ds = load_dataset(plugin.name, 0, root=data_root)
    return ds.in_shape, ds.num_classes, ds.n_train, (ds.x_train[:4], ds.x_train_raw is not None, len(ds.y_test))


def _under(root: Path, p: Path) -> Path:
    return p if p.is_absolute() else root / p


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
