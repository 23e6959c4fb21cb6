"""Results cache: one JSON file per RunConfig key, so a run shared by several claims trains once.

Semantics follow pytest's cacheprovider: the directory is created atomically with a .gitignore; an
unreadable or mismatched entry (bad JSON, another config, a field of the wrong type) is a miss
(with a warning), never a crash; a failed write is a warning; writes go to a temp file and are
renamed into place, so an interrupted run leaves no half-written entry. Only finished runs are
stored: a run that raised is never cached.

What lives in the directory, all named by `RunConfig.key()` (20 hex digits):

    .gitignore        "*": the cache is never committed
    CACHEDIR.TAG      the marker that makes the directory provably the cache's own (below)
    <key>.json        a stored RunResult
    <key>.pt          its trained weights, when the run kept its model
    <key>.lock        the cross-process lock of that key (see `ResultsCache.locked`)
    .tmp-*            a write in progress (renamed into place or removed when it ends)

The marker follows the Cache Directory Tagging spec (https://bford.info/cachedir/): backup tools
skip the directory, and its "rethinkbench" comment line tells our cache from another tool's.
`clear()` deletes only in a directory that carries it, and there only the names above (never the
.gitignore or the tag, and nothing else a user put there): one wrong --cache-dir cannot lose a
user's files. Caches made before the marker existed have none; clearing one is refused with a
message that says how to remove it by hand.

Two processes sharing one cache (two pytest sessions, xdist workers) would train the same missing
run twice. `locked(cfgs)` holds a file lock per key (the `filelock` package), taken in sorted key
order so that processes asking for overlapping sets never deadlock; a caller looks its misses up
again once it holds their locks and trains only what is still missing (`cached_train` shows how).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from rethinkbench.base.errors import UsageError
from rethinkbench.engine.config import HARNESS_VERSION, RunConfig
from rethinkbench.engine.result import RunResult
from rethinkbench.registry import build_model

DEFAULT_DIR = ".rethinkbench-cache"
MARKER = "CACHEDIR.TAG"
# The spec's fixed first line, then our own line (what `clear()` checks for).
MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
               "# This file is a cache directory tag created by rethinkbench (its results cache).\n"
               "# For information about cache directory tags, see https://bford.info/cachedir/\n")
# The cache's own files: entries, weights and locks named by a RunConfig.key(), and temp files.
_OWN_FILE = re.compile(r"[0-9a-f]{20}\.(json|pt|lock)|\.tmp-.*")
_ENTRY = re.compile(r"[0-9a-f]{20}\.json")


class CacheWarning(UserWarning):
    pass


class ResultsCache:
    def __init__(self, directory: str | os.PathLike = DEFAULT_DIR, enabled: bool = True):
        self.dir = Path(directory)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, cfg: RunConfig) -> Path:
        return self.dir / f"{cfg.key()}.json"

    def model_path(self, cfg: RunConfig) -> Path:
        return self.dir / f"{cfg.key()}.pt"

    def get(self, cfg: RunConfig, with_model: bool = False) -> RunResult | None:
        """The stored result of `cfg`, or None (a miss) if absent, unreadable or not this config.
        `with_model`: also load the trained weights into `result.model` (a miss without them)."""
        if not self.enabled:
            return None
        path = self.path(cfg)
        if not path.exists() or (with_model and not self.model_path(cfg).exists()):
            self.misses += 1
            return None
        try:
            blob = json.loads(path.read_text())
            if not isinstance(blob, dict):
                raise ValueError(f"entry is a JSON {type(blob).__name__}, not an object")
            if blob.get("harness") != HARNESS_VERSION or blob["result"]["config"] != cfg.to_dict():
                raise ValueError("entry belongs to another config or harness version")
            check_result_fields(blob["result"])
            result = RunResult.from_dict(blob["result"])
            if with_model:
                result.model = self._load_model(cfg)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            warnings.warn(CacheWarning(f"ignoring unreadable cache entry {path}: {exc}"), stacklevel=2)
            self.misses += 1
            return None
        result.cached = True
        self.hits += 1
        return result

    def _load_model(self, cfg: RunConfig):
        state = torch.load(self.model_path(cfg), map_location=cfg.device, weights_only=True)
        model = build_model(cfg.model, tuple(state.pop("__in_shape__").tolist()),
                            int(state.pop("__num_classes__")), cfg.width, cfg.dropout)
        model.load_state_dict(state)
        return model.to(cfg.device).eval()

    def put(self, result: RunResult) -> Path | None:
        if not self.enabled:
            return None
        path = self.path(result.config)
        try:
            self.ensure_dir()
            if result.model is not None:
                self._save_model(result)
            blob = json.dumps({"harness": HARNESS_VERSION, "result": result.to_dict()})
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(blob)
                os.replace(tmp, path)  # atomic: readers see the old entry or the whole new one
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            warnings.warn(CacheWarning(f"could not write cache entry {path}: {exc}"), stacklevel=2)
            return None
        return path

    def _save_model(self, result: RunResult) -> None:
        model = result.model
        in_shape = model.in_shape  # set by build_model
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        state["__in_shape__"] = torch.tensor(in_shape)
        state["__num_classes__"] = torch.tensor(_num_classes(model))
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".pt")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.model_path(result.config))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def lock_path(self, cfg: RunConfig) -> Path:
        return self.dir / f"{cfg.key()}.lock"

    @contextlib.contextmanager
    def locked(self, cfgs: Iterable[RunConfig]) -> Iterator[None]:
        """Hold the cross-process lock of every config in `cfgs` (each key once) for the block.

        Blocks while another process holds one of them (it is training that run). Locks are taken
        in sorted key order, so two processes asking for overlapping sets never deadlock. A disabled
        cache takes no locks. A lock that cannot be taken (a read-only directory) is a warning, as
        a failed write is: the block still runs, at worst a run is trained twice.
        """
        from filelock import FileLock   # here: only sessions that train need it

        with contextlib.ExitStack() as held:
            if self.enabled:
                by_key = {c.key(): c for c in cfgs}
                try:
                    if by_key:
                        self.ensure_dir()
                    for key in sorted(by_key):
                        lock = FileLock(self.lock_path(by_key[key]))
                        lock.acquire()
                        held.callback(lock.release)
                except OSError as exc:
                    warnings.warn(CacheWarning(f"could not lock the cache at {self.dir}: {exc}; "
                                               f"another process may train the same runs"), stacklevel=3)
            yield

    def clear(self) -> int:
        """Remove the cache's own files; returns how many entries (stored results) were removed.

        A missing directory clears 0. A directory without the rethinkbench marker is refused with a
        UsageError; in a marked one only the cache's own names go (see the module docstring).
        Removing a lock another process holds is harmless: at worst it trains a run twice.
        """
        if not self.dir.exists():
            return 0
        if not self.dir.is_dir():
            raise UsageError(f"refusing to clear the cache at {self.dir}: it is not a directory")
        if not self.is_marked():
            raise UsageError(
                f"refusing to clear {self.dir}: it has no {MARKER} marker with a rethinkbench line, so "
                f"it may not be a rethinkbench cache and its files may be someone else's; if it is a "
                f"cache made by an older rethinkbench, check what it holds and remove it by hand "
                f"(rm -r {self.dir})")
        removed = 0
        for p in self.dir.iterdir():
            if _OWN_FILE.fullmatch(p.name) and (p.is_symlink() or p.is_file()):
                p.unlink(missing_ok=True)
                removed += bool(_ENTRY.fullmatch(p.name))
        return removed

    def is_marked(self) -> bool:
        """Does the directory carry the rethinkbench cache marker (written when the cache made it)?"""
        try:
            lines = (self.dir / MARKER).read_text(errors="replace").splitlines()
        except OSError:
            return False
        return bool(lines) and lines[0] == MARKER_TEXT.splitlines()[0] and any(
            "rethinkbench" in line for line in lines[1:])

    def __len__(self) -> int:
        if not self.dir.is_dir():
            return 0
        return sum(1 for p in self.dir.iterdir() if _ENTRY.fullmatch(p.name))

    def entries(self) -> Iterator[tuple[Path, dict | None, int]]:
        """Every stored run: (its .json path, its config or None when unreadable, the bytes of its
        .json and .pt together). Reads only; a missing directory has none."""
        if not self.dir.is_dir():
            return
        for p in sorted(self.dir.iterdir()):
            if not _ENTRY.fullmatch(p.name):
                continue
            weights = p.with_suffix(".pt")
            try:
                size = p.stat().st_size + (weights.stat().st_size if weights.exists() else 0)
                config = json.loads(p.read_text(encoding="utf-8")).get("config")
            except (OSError, ValueError, AttributeError):   # unreadable: a miss, counted as such
                config, size = None, (p.stat().st_size if p.exists() else 0)
            yield p, config if isinstance(config, dict) else None, size

    def ensure_dir(self) -> None:
        """Create the cache directory if absent, atomically with its .gitignore and marker.

        Raises OSError when it cannot (a read-only parent, a file in the way)."""
        if self.dir.is_dir():
            return
        if self.dir.exists():   # a file in the way: say so, not "cannot rename .tmp-cache-x"
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.dir))
        # Build it aside, then rename, so no one ever sees a cache dir without its .gitignore/marker.
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-cache-", dir=self.dir.parent))
        try:
            (tmp / ".gitignore").write_text("# created by rethinkbench\n*\n")
            (tmp / MARKER).write_text(MARKER_TEXT)
            tmp.rename(self.dir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not self.dir.is_dir():  # not a lost race with another process: a real failure
                raise


def cached_train(cfg: RunConfig, cache: ResultsCache | None, train_fn, **kwargs) -> RunResult:
    """cache.get(cfg) or train and store. Failures propagate and are not stored.

    A miss takes the key's lock and looks again before training: another process sharing the
    cache may have trained the run while this one waited for the lock."""
    if cache is None:
        return train_fn(cfg, **kwargs)
    hit = cache.get(cfg)
    if hit is not None:
        return hit
    with cache.locked([cfg]):
        hit = cache.get(cfg)
        if hit is not None:
            return hit
        result = train_fn(cfg, **kwargs)
        cache.put(result)
    return result


def check_result_fields(d: dict) -> None:
    """Raise ValueError unless the stored result dict `d` has fields of the types RunResult holds.

    RunResult.from_dict copies values as they are: a hand-edited or foreign entry with
    "epochs_to_fit": "12" would otherwise be a hit that breaks whichever claim reads it."""
    for name, (allowed, ok) in _RESULT_FIELDS.items():
        if name not in d:
            if name in _OPTIONAL_FIELDS:
                continue
            raise ValueError(f"field {name!r} is missing")
        if not ok(d[name]):
            shown = repr(d[name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ValueError(f"field {name!r} is {type(d[name]).__name__} {shown}, expected {allowed}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)   # JSON true is not a count


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_RESULT_FIELDS = {
    "history": ("a list of objects", lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v)),
    "epochs_to_fit": ("an integer or null", lambda v: v is None or _is_int(v)),
    "steps_to_fit": ("an integer or null", lambda v: v is None or _is_int(v)),
    "final_train_acc": ("a number", _is_number),
    "final_test_acc": ("a number", _is_number),
    "best_test_acc": ("a number", _is_number),
    "wall_seconds": ("a number", _is_number),
    "provenance": ("an object", lambda v: isinstance(v, dict)),
    "per_example_correct": ("a list of integers or null",
                            lambda v: v is None or (isinstance(v, list) and all(_is_int(i) for i in v))),
    "collapsed": ("true or false", lambda v: isinstance(v, bool)),
}
_OPTIONAL_FIELDS = {"provenance", "per_example_correct", "collapsed"}   # from_dict has defaults


def _num_classes(model) -> int:
    declared = getattr(model, "num_classes", None)   # set on plugin models by the registry
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    return last.out_features
